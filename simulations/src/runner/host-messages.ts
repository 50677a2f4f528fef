import type { Scenario } from '../scenario/schema.js';

/** What the main thread gives a device host. */
export interface HostSetup {
  url: string;
  taskId: string;
  coordinatorKey: string;
  scenario: Scenario;
  devices: Array<{
    deviceId: string;
    /** base64 32-byte ed25519 seed of the device key (a simulation secret). */
    seedKey: string;
    /** Indices into the shifted-domain training pool. */
    trainIndices: number[];
    holdoutIndices: number[];
    byzantine: boolean;
    straggler: boolean;
    /** Seed of the device's batch order. */
    seed: number;
  }>;
}

/** Main thread -> host. */
export type HostMessage =
  | { type: 'round'; index: number; participants: string[]; dropouts: string[] }
  /** "A little is enough": the vector every attacker of round `index` sends. */
  | { type: 'crafted'; index: number; delta: Map<string, Float32Array> }
  | { type: 'bytes' }
  | { type: 'stop' };

/** Host -> main thread. */
export type HostEvent =
  | { type: 'ready'; devices: number }
  | { type: 'selected'; deviceId: string; roundId: string }
  | { type: 'accepted'; deviceId: string; roundId: string }
  | { type: 'refused'; deviceId: string; roundId: string; code: string }
  | { type: 'skipped'; deviceId: string; roundId: string; reason: string }
  | { type: 'bytes'; up: number; down: number }
  | { type: 'adapter'; deviceId: string; version: number }
  | { type: 'error'; deviceId: string; message: string; fatal: boolean }
  /** "A little is enough": what a device of round `index` would send honestly (null: nothing). */
  | { type: 'honest-update'; index: number; deviceId: string; delta: Map<string, Float32Array> | null }
  | { type: 'stopped' };
