import { FlotillaError } from '@flotilla/protocol';
import * as tf from '@tensorflow/tfjs';
import { registerWasmKernels } from './wasm-kernels.js';

/** Backends Flotilla can run local training on, fastest first. */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

/** Receives the one line that says which backend was chosen. */
export type BackendLogger = (line: string) => void;

export interface InitBackendOptions {
  /**
   * Backend to try first; the others are still tried in the default order (tensorflow, wasm,
   * cpu) if it cannot load. Default: 'tensorflow'.
   */
  prefer?: BackendName;
  /** Where the one-line choice goes. Default: a line on stderr. */
  logger?: BackendLogger;
}

export interface BackendInfo {
  /** The tfjs backend name actually active ('tensorflow', 'wasm' or 'cpu'). */
  name: string;
}

const ORDER: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

let chosen: Promise<BackendInfo> | null = null;
let activeName: string | null = null;

const isNode =
  typeof process !== 'undefined' &&
  typeof process.versions === 'object' &&
  process.versions.node !== undefined;

function defaultLogger(line: string): void {
  if (isNode) process.stderr.write(`${line}\n`);
  else console.info(line);
}

/**
 * Registers tfjs-node's native backend. The module name is held in a variable so bundlers and
 * the type checker do not insist on the optional dependency being installed.
 */
async function loadTensorflow(): Promise<boolean> {
  if (!isNode) return false;
  const moduleName = '@tensorflow/tfjs-node';
  await import(/* @vite-ignore */ moduleName);
  return tf.setBackend('tensorflow');
}

/**
 * In Node the wasm backend reads its .wasm files with fs, so it needs an absolute directory
 * (with a trailing separator) instead of the URL it would fetch in a browser.
 */
async function loadWasm(): Promise<boolean> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  if (isNode) {
    const { createRequire } = await import('node:module');
    const path = await import('node:path');
    const require = createRequire(import.meta.url);
    const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
    wasm.setWasmPaths(`${dir}${path.sep}`);
  }
  registerWasmKernels();
  return tf.setBackend('wasm');
}

async function tryBackend(name: BackendName): Promise<boolean> {
  try {
    const ok =
      name === 'tensorflow'
        ? await loadTensorflow()
        : name === 'wasm'
          ? await loadWasm()
          : await tf.setBackend('cpu');
    if (!ok) return false;
    await tf.ready();
    return tf.getBackend() === name;
  } catch {
    return false;
  }
}

async function choose(options: InitBackendOptions): Promise<BackendInfo> {
  const prefer = options.prefer ?? 'tensorflow';
  const order = [prefer, ...ORDER.filter((name) => name !== prefer)];
  const skipped: string[] = [];
  for (const name of order) {
    if (await tryBackend(name)) {
      activeName = name;
      const note = skipped.length > 0 ? ` (unavailable: ${skipped.join(', ')})` : '';
      (options.logger ?? defaultLogger)(`flotilla: tfjs backend ${name}${note}`);
      return { name };
    }
    skipped.push(name);
  }
  // The cpu backend ships inside @tensorflow/tfjs, so reaching this means tfjs itself is broken.
  throw new FlotillaError('INTERNAL', 'no tfjs backend could be initialised');
}

/**
 * Chooses the tfjs backend once per process: tfjs-node if installed, else wasm, else cpu.
 * Later calls return the first choice whatever their options say, so every caller trains on
 * the same backend.
 */
export function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  chosen ??= choose(options);
  return chosen;
}

/** The backend chosen by {@link initBackend}, or null before it has finished. */
export function activeBackendName(): string | null {
  return activeName;
}
