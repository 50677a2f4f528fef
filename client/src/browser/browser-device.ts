import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { FlotillaError, toBase64 } from '@flotilla/protocol';
import { initBackend, type BackendInfo } from '../backend/backend.js';
import type { BlobCache } from '../cache/blob-cache.js';
import { FlotillaDevice } from '../device/flotilla-device.js';
import { coordinatorUrls } from '../device/failover-socket.js';
import type { FlotillaDeviceOptions } from '../device/options.js';
import { TfjsTrainer, type LocalData } from '../device/tfjs-trainer.js';
import type { Trainer } from '../device/trainer.js';
import { enrollDevice } from '../identity/enroll.js';
import { loadOrCreateDeviceKeys } from '../identity/key-store.js';
import { IndexedDbBlobCache } from './indexeddb-blob-cache.js';
import { IndexedDbKeyStore } from './indexeddb-key-store.js';

export interface BrowserDeviceOptions extends Omit<
  FlotillaDeviceOptions,
  'keys' | 'keyStore' | 'cache' | 'cacheDir' | 'trainer'
> {
  /**
   * One-time enrollment token. Used only when this browser has not enrolled `deviceId` with
   * `url` yet; afterwards the keys in IndexedDB are reused. Without it the device must have been
   * registered by an operator.
   */
  enrollmentToken?: string;
  /**
   * URL of the directory serving `tfjs-backend-wasm.wasm` and `tfjs-backend-wasm-simd.wasm`
   * (ending in '/'), e.g. `/device/wasm/`. Absent: the cpu backend.
   */
  wasmPaths?: string;
  /** Local data for the default `TfjsTrainer`; ignored when `trainer` is given. */
  data?: LocalData | ((plan: Parameters<Trainer['train']>[0]) => LocalData | Promise<LocalData>);
  trainer?: Trainer;
  /** Default: an `IndexedDbKeyStore` (database `flotilla-device`). */
  keyStore?: IndexedDbKeyStore;
  /** Default: an `IndexedDbBlobCache` (database `flotilla-cache`). */
  cache?: BlobCache;
}

export interface BrowserDevice {
  device: FlotillaDevice;
  /** The device public key (base64) as stored in IndexedDB and enrolled. */
  publicKey: string;
  /** The tfjs backend chosen ('wasm' or 'cpu'). */
  backend: BackendInfo;
  /** Whether this start enrolled the device (false: it was enrolled before). */
  enrolled: boolean;
}

/** Milliseconds a browser device trains before the page gets a turn (input, rendering, Stop). */
const BROWSER_TRAINING_TURN_MS = 50;

/** Chooses the tfjs backend for a page: wasm when its files are served, else cpu. */
export async function initBrowserBackend(options: { wasmPaths?: string } = {}): Promise<BackendInfo> {
  if (options.wasmPaths !== undefined) setWasmPaths(options.wasmPaths);
  return initBackend({
    prefer: options.wasmPaths !== undefined ? 'wasm' : 'cpu',
    logger: (line) => console.info(line),
  });
}

/**
 * Starts a device in a browser page: keys from IndexedDB (created on first use), enrollment
 * with a token the first time, the wasm (or cpu) tfjs backend, and a `FlotillaDevice` joining
 * the task's rounds. Resolves once the device authenticated.
 */
export async function startBrowserDevice(options: BrowserDeviceOptions): Promise<BrowserDevice> {
  if (!options.trainer && !options.data)
    throw new FlotillaError('BAD_REQUEST', 'a browser device needs `data` or a `trainer`');
  const {
    enrollmentToken,
    wasmPaths,
    data,
    trainer,
    keyStore: givenStore,
    cache,
    ...deviceOptions
  } = options;
  const keyStore = givenStore ?? new IndexedDbKeyStore();
  const keys = await loadOrCreateDeviceKeys(keyStore);
  // Enrollment is stored in the fleet's Redis, so every one of its coordinators accepts it.
  const [enrollUrl] = coordinatorUrls(options.url);
  const note = `enrolled:${enrollUrl ?? ''}:${options.deviceId}`;
  let enrolled = false;
  if (enrollmentToken !== undefined && enrollUrl !== undefined && (await keyStore.readNote(note)) === null) {
    const result = await enrollDevice({
      url: enrollUrl,
      token: enrollmentToken,
      deviceId: options.deviceId,
      keys,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
    // Pin the key the enrollment answer named (trust on first use, over the page's origin).
    if ((await keyStore.loadCoordinatorKey()) === null)
      await keyStore.saveCoordinatorKey(result.coordinatorKey);
    await keyStore.writeNote(note, new Date().toISOString());
    enrolled = true;
  }
  const backend = await initBrowserBackend(wasmPaths !== undefined ? { wasmPaths } : {});
  const chosenTrainer =
    trainer ??
    new TfjsTrainer({
      data: data ?? (() => Promise.reject(new FlotillaError('BAD_REQUEST', 'no data'))),
      preferBackend: backend.name === 'wasm' ? 'wasm' : 'cpu',
      // The page stays responsive while it trains, and stop() ends training at once.
      yieldEveryMs: BROWSER_TRAINING_TURN_MS,
    });
  const device = new FlotillaDevice({
    ...deviceOptions,
    keys,
    keyStore,
    cache: cache ?? new IndexedDbBlobCache(),
    trainer: chosenTrainer,
  });
  await device.start();
  return { device, publicKey: toBase64(keys.publicKey), backend, enrolled };
}
