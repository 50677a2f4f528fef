// Bundles the browser device page with esbuild: `npx tsx simulations/web/build.ts [outDir]`
// (default simulations/web/dist). The output is static: index.html, device.js and the
// tfjs-backend-wasm .wasm files under wasm/, so the page works offline from any static server,
// e.g. the coordinator's `staticMounts: [{ urlPrefix: '/device/', dir }]`.
import { copyFile, mkdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';

const HERE = dirname(fileURLToPath(import.meta.url));
const WASM_FILES = [
  'tfjs-backend-wasm.wasm',
  'tfjs-backend-wasm-simd.wasm',
  'tfjs-backend-wasm-threaded-simd.wasm',
];

/**
 * Node built-ins become empty CommonJS modules: the library only reaches them on Node-only paths
 * (file caches, tfjs-node, wasm paths from disk) that a page never takes. Externals would not do:
 * ESM output hoists them into static imports the browser cannot load.
 */
const nodeBuiltinStub: Plugin = {
  name: 'node-builtin-stub',
  setup(b) {
    b.onResolve(
      { filter: /^(node:.*|fs|fs\/promises|path|os|crypto|module|url|worker_threads|perf_hooks)$/ },
      (args) => ({
        path: args.path,
        namespace: 'node-builtin-stub',
      }),
    );
    b.onLoad({ filter: /.*/, namespace: 'node-builtin-stub' }, () => ({
      contents: 'module.exports = {};',
      loader: 'js',
    }));
  },
};

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
  await mkdir(join(outDir, 'wasm'), { recursive: true });
  await build({
    entryPoints: [join(HERE, 'device-page.ts')],
    outfile: join(outDir, 'device.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: options.minify ?? false,
    sourcemap: 'linked',
    logLevel: 'silent',
    plugins: [nodeBuiltinStub],
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const require = createRequire(import.meta.url);
  const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  for (const file of WASM_FILES) await copyFile(join(wasmDir, file), join(outDir, 'wasm', file));
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
