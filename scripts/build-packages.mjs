#!/usr/bin/env node
// `npm run build`: builds the publishable packages (@flotilla/protocol, client, coordinator) to
// JavaScript and `.d.ts` under each package's dist/, the way `npm pack` ships them:
//   1. tsc -b over each package's tsconfig.build.json (sources only, no tests), in dependency order;
//   2. the non-TypeScript files under src/ (worker-thread boot, Redis supervisor, dashboard assets)
//      copied to the same place under dist/, where the built code looks for them;
//   3. for @flotilla/client, the browser bundle dist/bundle/flotilla-device.js (+ wasm/).
// Usage: node scripts/build-packages.mjs [protocol|client|coordinator ...] [--clean]
// Incremental: tsc -b skips packages whose sources did not change since the last build.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleForBrowser } from './browser-bundle.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PACKAGES = ['protocol', 'client', 'coordinator'];
// What each package needs built first (its tsconfig.build.json references say the same).
const DEPENDS = { protocol: [], client: ['protocol'], coordinator: ['protocol'] };

const args = process.argv.slice(2);
const clean = args.includes('--clean');
const named = args.filter((arg) => !arg.startsWith('--'));
for (const name of named) {
  if (!PACKAGES.includes(name)) {
    console.error(`build-packages: unknown package "${name}" (known: ${PACKAGES.join(', ')})`);
    process.exit(2);
  }
}
const wanted = named.length > 0 ? named : PACKAGES;
const targets = PACKAGES.filter((name) => wanted.some((w) => w === name || DEPENDS[w].includes(name)));

const buildInfo = (name) => join(ROOT, name, 'dist', '.tsbuildinfo');
for (const name of targets) {
  const dist = join(ROOT, name, 'dist');
  // dist/src and dist/test are what `tsc -b` wrote there before it moved to dist-tools/: stale.
  if (clean || existsSync(join(dist, 'src')) || existsSync(join(dist, 'test')))
    rmSync(dist, { recursive: true, force: true });
}

const started = Date.now();
const tsc = spawnSync(
  process.execPath,
  [
    join(ROOT, 'node_modules/typescript/bin/tsc'),
    '-b',
    ...targets.map((n) => join(ROOT, n, 'tsconfig.build.json')),
  ],
  { stdio: 'inherit', cwd: ROOT },
);
if (tsc.status !== 0) {
  console.error('build-packages: tsc failed (see above)');
  process.exit(1);
}
for (const name of targets) {
  if (!existsSync(buildInfo(name))) {
    console.error(`build-packages: tsc wrote no ${relative(ROOT, buildInfo(name))}`);
    process.exit(1);
  }
}

// Test data kept beside the code (e.g. strategies/robust-golden.json) is not shipped.
const TEST_ONLY = /(\.test\.|\.fixture\.|-golden\.)/;

/** Every file under `dir` (recursively) that tsc does not emit (not .ts) and that is not test data. */
function assets(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...assets(path));
    else if (!entry.name.endsWith('.ts') && !TEST_ONLY.test(entry.name)) out.push(path);
  }
  return out;
}
for (const name of targets) {
  const src = join(ROOT, name, 'src');
  for (const file of assets(src)) {
    const target = join(ROOT, name, 'dist', relative(src, file));
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(file, target);
  }
}

if (targets.includes('client')) {
  await bundleForBrowser({
    entry: join(ROOT, 'client/dist/browser/index.js'),
    outfile: join(ROOT, 'client/dist/bundle/flotilla-device.js'),
    minify: true,
    sourcemap: false,
  });
}
console.error(
  `build-packages: built ${targets.join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
);
