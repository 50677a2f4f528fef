import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// A fresh process per case (module caches are per process), run as the `flotilla` CLI runs:
// TypeScript through tsx, source maps on.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PRELOAD = fileURLToPath(new URL('./preload-tfjs.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'flotilla-preload-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Loaded {
  mapsAfterPreload: boolean;
  /** Whether Node holds a source map for tfjs-core's bundle once tfjs is imported. */
  tfjsCoreMapped: boolean;
  /** The `import`ed tfjs is the `require`d one (same functions). */
  sameModule: boolean;
}

function load(preload: boolean): Loaded {
  const script = join(dir, `load-${String(preload)}.mjs`);
  writeFileSync(
    script,
    `import { createRequire, findSourceMap } from 'node:module';
import { pathToFileURL } from 'node:url';
process.setSourceMapsEnabled(true);
const { preloadTfjs } = await import(${JSON.stringify(pathToFileURL(PRELOAD).href)});
if (${String(preload)}) preloadTfjs();
const mapsAfterPreload = process.sourceMapsEnabled;
const require = createRequire(${JSON.stringify(PRELOAD)});
const tf = await import(pathToFileURL(require.resolve('@tensorflow/tfjs')).href);
const core = require.resolve('@tensorflow/tfjs-core');
console.log(JSON.stringify({
  mapsAfterPreload,
  tfjsCoreMapped: findSourceMap(core) !== undefined,
  sameModule: tf.tensor === require('@tensorflow/tfjs').tensor,
}));
`,
  );
  const run = spawnSync(process.execPath, ['--conditions=@flotilla/source', '--import', 'tsx', script], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (run.status !== 0) throw new Error(`the load script failed: ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as Loaded;
}

describe('preloadTfjs', () => {
  it('loads tfjs without its source map, restores the setting, and imports then get the same tfjs', () => {
    // Without the preload, the import keeps tfjs-core's map (the memory the preload saves).
    expect(load(false)).toEqual({ mapsAfterPreload: true, tfjsCoreMapped: true, sameModule: true });
    expect(load(true)).toEqual({ mapsAfterPreload: true, tfjsCoreMapped: false, sameModule: true });
  });
});
