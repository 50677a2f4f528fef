import type {
  DeviceBudget,
  Eligibility,
  RoundPlan,
  SigningKeyPair,
  Telemetry,
  UpdateReceipt,
  UpdateSkip,
} from '@flotilla/protocol';
import type { BlobCache } from '../cache/blob-cache.js';
import type { KeyStore } from '../identity/key-store.js';
import type { FetchFn } from './http-client.js';
import type { DeviceLogger } from './logger.js';
import type { BackoffOptions } from './retry.js';
import type { Trainer } from './trainer.js';
import type { InclusionOutcome } from './inclusion-check.js';

/** Callbacks a device owner can subscribe to. Each is optional; none may throw (errors are logged). */
export interface FlotillaDeviceEvents {
  /** The device was selected and received a plan; training starts. */
  onRound?: (plan: RoundPlan) => void;
  /**
   * Local training of a round ended, before anything is sent: what the device measured
   * (examples, steps, loss and accuracy on its local holdout) and, when it has an update to send,
   * the update's L2 norm after clipping, whether clipping scaled it down and its size in bytes
   * (`update` is null when the round is skipped; `telemetry` is null only for a skip the device
   * could not measure).
   */
  onTrained?: (event: {
    plan: RoundPlan;
    telemetry: Telemetry | null;
    update: { norm: number; clipped: boolean; bytes: number } | null;
  }) => void;
  /** The coordinator durably accepted the update (also after a DUPLICATE_UPDATE for a lost ack). */
  onUpdateAccepted?: (event: { plan: RoundPlan; receipt: UpdateReceipt | null; duplicate: boolean }) => void;
  /**
   * The device checked that the coordinator's round log holds its answered update: an inclusion
   * proof of the answer's record (the receipt's `update.accepted`, or the refusal's
   * `update.refused`) against a tree head signed by the pinned coordinator key. `refusal` is null
   * for an accepted update, else the reason code the update was refused with. `ok: false` (also
   * reported to `onError`) means the log does not prove the update was counted (or refused for
   * that reason).
   */
  onInclusionChecked?: (event: { plan: RoundPlan; refusal: string | null } & InclusionOutcome) => void;
  /** The coordinator refused the update; `code` is the refusal reason (e.g. NORM_EXCEEDED, ROUND_CLOSED). */
  onUpdateRefused?: (event: { plan: RoundPlan; code: string; message: string }) => void;
  /** The trainer (or the runtime) declined to send an update for this round. */
  onSkip?: (event: { plan: RoundPlan; reason: UpdateSkip['reason']; detail: string }) => void;
  /** A newer verified adapter was swapped in. */
  onAdapterChanged?: (event: {
    version: number;
    previousVersion: number;
    route: 'delta-chain' | 'full' | 'plan';
  }) => void;
  /** A manifest or blob failed verification; the device keeps its current adapter. */
  onAdapterRefused?: (event: { reason: string }) => void;
  /** The device moved to another coordinator of its `url` list (the current one stopped answering). */
  onCoordinatorChanged?: (event: { url: string }) => void;
  /** The coordinator key was pinned on first use. */
  onCoordinatorKeyPinned?: (publicKeyB64: string) => void;
  /** Anything that went wrong; `fatal` errors stop the device (unknown device, key mismatch…). */
  onError?: (error: Error, fatal: boolean) => void;
}

export interface FlotillaDeviceOptions extends FlotillaDeviceEvents {
  /**
   * Coordinator base URL (socket.io and HTTP share it), e.g. `http://127.0.0.1:8080`; or several
   * coordinators of one fleet (processes sharing one Redis): the device starts with the first and
   * fails over to the next after `failoverAfter` failed connection attempts in a row.
   */
  url: string | readonly string[];
  /** Failed connection attempts in a row to one coordinator before the next URL. Default 2. */
  failoverAfter?: number;
  /** Enrolled device id. */
  deviceId: string;
  /** The device's ed25519 key pair (the public key was enrolled). */
  keys: SigningKeyPair;
  taskId: string;
  trainer: Trainer;
  /** What the device offers (fixed, or asked before every check-in). Default: charging, unmetered, 1 GiB free, medium. */
  eligibility?: Eligibility | (() => Eligibility | Promise<Eligibility>);
  /** Per-round spending limit. Default 300 s and 256 MiB. */
  budget?: DeviceBudget;
  /**
   * The coordinator's public key (base64), pinned from configuration. When absent, the key in
   * `keyStore` is used, else the first challenge's key is pinned (trust on first use) and saved.
   */
  coordinatorKey?: string;
  /** Where a pinned coordinator key is kept across runs. */
  keyStore?: KeyStore;
  /** Content-addressed cache of base models and adapters. Default: in memory. */
  cache?: BlobCache;
  /** Node only: a directory for a `FileBlobCache` (used when `cache` is absent). */
  cacheDir?: string;
  logger?: DeviceLogger;
  /** Aborting it stops the device, like `stop()`. */
  signal?: AbortSignal;
  /** Power figure for the energy estimate, in watts. Default 5. */
  watts?: number;
  /** Stop after this many finished rounds (accepted, refused or skipped). Default: never. */
  maxRounds?: number;
  /** `off` only to simulate misbehaving devices (see `buildUpdate`). Default `enforce`. */
  clipping?: 'enforce' | 'off';
  /** Backoff for HTTP transfers. Default 5 attempts, 200 ms base, 5 s cap. */
  retry?: BackoffOptions;
  /** Milliseconds to wait for a socket ack. Default 30 000. */
  ackTimeoutMs?: number;
  /**
   * Check the inclusion of every answered update (accepted, or refused with a logged reason) in
   * the coordinator's round log (`log:proof`, then `onInclusionChecked`). Default true;
   * coordinators without a round log send no leaf to check.
   */
  checkInclusion?: boolean;
  /**
   * socket.io transports, in the order tried. Default: socket.io-client's own, long-polling
   * first and then an upgrade to WebSocket, which gets through proxies that refuse WebSocket.
   * `['websocket']` skips the polling handshake (one round trip less; no sticky sessions needed
   * behind a load balancer); `['polling']` never upgrades.
   */
  transports?: Array<'polling' | 'websocket'>;
  /** Milliseconds between reconnection attempts (socket.io's reconnectionDelay). Default 1000. */
  reconnectDelayMs?: number;
  /** Milliseconds to wait for a plan after a `waiting` check-in before checking in again. Default 120 000. */
  planWaitMs?: number;
  fetch?: FetchFn;
}

export const DEFAULT_ELIGIBILITY: Eligibility = {
  charging: true,
  unmeteredNetwork: true,
  freeStorageBytes: 1 << 30,
  computeClass: 'medium',
};

export const DEFAULT_BUDGET: DeviceBudget = { maxSeconds: 300, maxBytes: 256 * 1024 * 1024 };
