// esbuild settings shared by every browser bundle of the device library: the published
// `@flotilla/client` bundle (scripts/build-packages.mjs) and the demo page (simulations/web).
import { copyFile, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';

/** The tfjs-backend-wasm binaries a page may fetch (the browser picks the one it supports). */
export const WASM_FILES = [
  'tfjs-backend-wasm.wasm',
  'tfjs-backend-wasm-simd.wasm',
  'tfjs-backend-wasm-threaded-simd.wasm',
];

/**
 * Node built-ins become empty CommonJS modules: the library only reaches them on Node-only paths
 * (file caches, tfjs-node, wasm paths from disk) that a page never takes. Externals would not do:
 * ESM output hoists them into static imports the browser cannot load.
 */
const nodeBuiltinStub = {
  name: 'node-builtin-stub',
  setup(b) {
    b.onResolve(
      { filter: /^(node:.*|fs|fs\/promises|path|os|crypto|module|url|worker_threads|perf_hooks|stream)$/ },
      (args) => ({ path: args.path, namespace: 'node-builtin-stub' }),
    );
    b.onLoad({ filter: /.*/, namespace: 'node-builtin-stub' }, () => ({
      contents: 'module.exports = {};',
      loader: 'js',
    }));
  },
};

/**
 * Bundles `entry` and everything it imports (tfjs, socket.io-client, …) into one ES module a page
 * can load with `<script type="module">` or `import`, and copies the wasm binaries into `wasm/`
 * beside it.
 */
export async function bundleForBrowser({
  entry,
  outfile,
  minify = false,
  sourcemap = true,
  conditions = [],
}) {
  const outDir = dirname(outfile);
  await mkdir(join(outDir, 'wasm'), { recursive: true });
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify,
    sourcemap: sourcemap ? 'linked' : false,
    logLevel: 'silent',
    conditions,
    plugins: [nodeBuiltinStub],
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const require = createRequire(import.meta.url);
  const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  for (const file of WASM_FILES) await copyFile(join(wasmDir, file), join(outDir, 'wasm', file));
}
