// Bundles the browser device page with esbuild: `npx tsx simulations/web/build.ts [outDir]`
// (default simulations/web/dist). The output is static: index.html, device.js and the
// tfjs-backend-wasm .wasm files under wasm/, so the page works offline from any static server,
// e.g. the coordinator's `staticMounts: [{ urlPrefix: '/device/', dir }]`. The page is bundled
// from the TypeScript sources of @flotilla/client (the `@flotilla/source` export condition);
// pages outside this repository import the published bundle, @flotilla/client/browser-bundle.
import { copyFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WASM_FILES, bundleForBrowser } from '../../scripts/browser-bundle.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));

export interface BuildDevicePageOptions {
  /** Output directory (created). */
  outDir: string;
  /** Minify the bundle. Default false (readable stack traces in tests). */
  minify?: boolean;
}

export interface BuiltDevicePage {
  outDir: string;
  /** Files written, relative to outDir. */
  files: string[];
  /** Bundle size in bytes. */
  bundleBytes: number;
}

export async function buildDevicePage(options: BuildDevicePageOptions): Promise<BuiltDevicePage> {
  const outDir = resolve(options.outDir);
  await bundleForBrowser({
    entry: join(HERE, 'device-page.ts'),
    outfile: join(outDir, 'device.js'),
    minify: options.minify ?? false,
    conditions: ['@flotilla/source'],
  });
  await copyFile(join(HERE, 'device.html'), join(outDir, 'index.html'));
  const bundle = await stat(join(outDir, 'device.js'));
  return {
    outDir,
    files: ['index.html', 'device.js', 'device.js.map', ...WASM_FILES.map((f) => `wasm/${f}`)],
    bundleBytes: bundle.size,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const outDir = process.argv[2] ?? join(HERE, 'dist');
  buildDevicePage({ outDir, minify: true }).then(
    (built) => console.log(`device page built in ${built.outDir} (${built.files.length} files)`),
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
