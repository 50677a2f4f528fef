import type { BackdoorTrigger } from '../attacks/backdoor.js';
import type { Dataset } from '../data/dataset.js';
import type { Scenario } from '../scenario/schema.js';

/** One simulated device as its host knows it while it is dormant: a few numbers and its shard. */
export interface VirtualDeviceSpec {
  deviceId: string;
  /** base64 32-byte ed25519 seed of the device key (a simulation secret). */
  seedKey: string;
  /** Indices into the task's device pool (`HostSetup.pool`). */
  trainIndices: number[];
  holdoutIndices: number[];
  byzantine: boolean;
  straggler: boolean;
  /** Seed of the device's batch order. */
  seed: number;
}

/** What the main thread gives a device host. */
export interface HostSetup {
  url: string;
  taskId: string;
  coordinatorKey: string;
  scenario: Scenario;
  /**
   * The task's device pool, in shared memory (`shareDataset`): every host reads the main thread's
   * copy instead of building the task's data again.
   */
  pool: Dataset;
  /** One example as the base model takes it (e.g. [28, 28, 1] for a CNN, [784] for an MLP). */
  inputShape: number[];
  /** The task's base model: its downloads are counted apart from the adapters'. */
  baseModelDigest: string;
  /** The trigger a backdoor run's attackers stamp on their data (null in other runs). */
  backdoorTrigger: BackdoorTrigger | null;
  devices: VirtualDeviceSpec[];
}

/** HTTP bytes of a round's devices: `down` counts everything, `adapterDown` the adapter blobs in it. */
export interface RoundBytes {
  up: number;
  down: number;
  /** Full adapters and deltas downloaded (blob bodies other than the base model). */
  adapterDown: number;
}

/** Main thread -> host. */
export type HostMessage =
  /** Round `index` starts: the host brings its scheduled devices online. */
  | { type: 'round'; index: number; participants: string[]; dropouts: string[] }
  /** A colluding attack: the vector every attacker of round `index` sends. */
  | { type: 'crafted'; index: number; delta: Map<string, Float32Array> }
  /** The round is decided: devices still online go dormant; the host answers `round-ended`. */
  | { type: 'end-round' }
  | { type: 'stop' };

/** Host -> main thread. */
export type HostEvent =
  | { type: 'ready'; devices: number }
  /** A scheduled device authenticated with the coordinator. */
  | { type: 'online'; deviceId: string }
  | { type: 'selected'; deviceId: string; roundId: string }
  | { type: 'accepted'; deviceId: string; roundId: string }
  | { type: 'refused'; deviceId: string; roundId: string; code: string }
  | { type: 'skipped'; deviceId: string; roundId: string; reason: string }
  /** The device went dormant again (its round is over for it, or the round ended). */
  | { type: 'dormant'; deviceId: string; reason: string }
  /** Answer to `end-round`: bytes the round's devices sent and received over HTTP. */
  | { type: 'round-ended'; bytes: RoundBytes }
  | { type: 'error'; deviceId: string; message: string; fatal: boolean }
  /** A colluding attack: what a device of round `index` would send honestly (null: nothing). */
  | { type: 'honest-update'; index: number; deviceId: string; delta: Map<string, Float32Array> | null }
  | { type: 'stopped' };
