// Worker-thread entry: hosts a share of the simulated fleet. A device is dormant (its spec and a
// few cache records, no socket, no model) until the schedule picks it; then it is materialized
// as a real FlotillaDevice (socket.io + HTTP, the real tfjs trainer), takes part in that round
// and goes dormant again. Idle devices therefore cost nothing, however large the fleet.
import { parentPort, workerData } from 'node:worker_threads';
import { installNativeEd25519, installNativeSha256 } from '@flotilla/protocol/node';
import { BaseModelPool, type FlotillaDevice } from '@flotilla/client';
import { isColludingAttack } from '../attacks/colluding.js';
import { createRng } from '../rng/random.js';
import { scenarioSeeds } from '../scenario/seeds.js';
import type { Collusion } from './sim-trainer.js';
import type { HostEvent, HostMessage, HostSetup, RoundBytes, VirtualDeviceSpec } from './host-messages.js';
import { materializeDevice, type HostContext } from './virtual-device.js';
import { SharedBlobStore, emptyDormantCache, type DormantCache } from './virtual-device-cache.js';

const setup = (workerData as { data: HostSetup }).data;
const port = parentPort;
if (!port) throw new Error('device-host must run in a worker thread');
// A simulated device is a Node process: it signs and hashes with node:crypto.
installNativeEd25519();
installNativeSha256();

function post(event: HostEvent): void {
  port?.postMessage(event);
}

let round: { index: number; participants: Set<string>; dropouts: Set<string> } | null = null;
/** Crafted vectors of a colluding attack by round index, as promises the attackers await. */
const crafted = new Map<
  number,
  { promise: Promise<Map<string, Float32Array>>; resolve: (d: Map<string, Float32Array>) => void }
>();

function craftedFor(index: number) {
  let entry = crafted.get(index);
  if (!entry) {
    let resolve: (d: Map<string, Float32Array>) => void = () => undefined;
    const promise = new Promise<Map<string, Float32Array>>((r) => (resolve = r));
    entry = { promise, resolve };
    crafted.set(index, entry);
  }
  return entry;
}

/** The main thread collects every participant's honest delta and answers the attackers. */
function collusionFor(deviceId: string): Collusion | undefined {
  if (!isColludingAttack(setup.scenario.behaviour.attack)) return undefined;
  const index = () => round?.index ?? -1;
  return {
    share: (_plan, delta) => post({ type: 'honest-update', index: index(), deviceId, delta }),
    crafted: (_plan, signal) =>
      new Promise((resolve, reject) => {
        signal.addEventListener('abort', () =>
          reject(new Error('round aborted while waiting for the crafted update')),
        );
        craftedFor(index()).promise.then(resolve, reject);
      }),
  };
}

const bytes: RoundBytes = { up: 0, down: 0, adapterDown: 0 };
const BLOB_PATH = /\/blobs\/([0-9a-f]{64})$/;

/**
 * Counts request and response bytes, so the runner can report traffic per round; blob bodies other
 * than the base model are the adapter downloads (full adapters, deltas).
 */
const countingFetch = async (input: string, init?: RequestInit): Promise<Response> => {
  const body = init?.body;
  if (body instanceof Uint8Array) bytes.up += body.byteLength;
  else if (body instanceof Blob) bytes.up += body.size;
  else if (typeof body === 'string') bytes.up += body.length;
  const response = await fetch(input, init);
  const copy = await response.arrayBuffer();
  bytes.down += copy.byteLength;
  const blob = BLOB_PATH.exec(new URL(input).pathname);
  if (blob && blob[1] !== setup.baseModelDigest && (init?.method ?? 'GET') === 'GET' && response.ok)
    bytes.adapterDown += copy.byteLength;
  return new Response(copy, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
};

const context: HostContext = {
  url: setup.url,
  taskId: setup.taskId,
  coordinatorKey: setup.coordinatorKey,
  scenario: setup.scenario,
  pool: setup.pool,
  inputShape: setup.inputShape,
  backdoorTrigger: setup.backdoorTrigger,
  root: createRng(scenarioSeeds(setup.scenario).training),
  blobs: new SharedBlobStore(),
  baseModels: new BaseModelPool(),
  fetch: countingFetch,
  post,
};
const specs = new Map<string, VirtualDeviceSpec>(setup.devices.map((d) => [d.deviceId, d]));
/** What each device that ever came online keeps while dormant (its cache view). */
const dormant = new Map<string, DormantCache>();
const live = new Map<string, FlotillaDevice>();

function bringOnline(spec: VirtualDeviceSpec): void {
  let cache = dormant.get(spec.deviceId);
  if (!cache) {
    cache = emptyDormantCache();
    dormant.set(spec.deviceId, cache);
  }
  const device = materializeDevice(context, spec, cache, {
    dropsOut: (deviceId) => round?.dropouts.has(deviceId) ?? false,
    collusion: collusionFor,
  });
  live.set(spec.deviceId, device);
  void device.stopped.then((reason) => {
    if (live.get(spec.deviceId) === device) live.delete(spec.deviceId);
    post({ type: 'dormant', deviceId: spec.deviceId, reason });
  });
  device.start().then(
    () => post({ type: 'online', deviceId: spec.deviceId }),
    (error: unknown) =>
      post({
        type: 'error',
        deviceId: spec.deviceId,
        message: error instanceof Error ? error.message : String(error),
        fatal: true,
      }),
  );
}

/** Stops every device still online and waits until each has let go of its socket. */
async function sendDormant(): Promise<void> {
  const devices = [...live.values()];
  for (const device of devices) device.stop();
  await Promise.all(devices.map((device) => device.stopped));
  live.clear();
}

port.on('message', (message: HostMessage) => {
  if (message.type === 'round') {
    round = {
      index: message.index,
      participants: new Set(message.participants),
      dropouts: new Set(message.dropouts),
    };
    for (const deviceId of message.participants) {
      const spec = specs.get(deviceId);
      if (spec && !live.has(deviceId)) bringOnline(spec);
    }
  } else if (message.type === 'crafted') {
    craftedFor(message.index).resolve(message.delta);
    // Older rounds' vectors are no longer awaited.
    for (const index of crafted.keys()) if (index < message.index) crafted.delete(index);
  } else if (message.type === 'end-round') {
    void sendDormant().then(() => {
      post({ type: 'round-ended', bytes: { ...bytes } });
      bytes.up = 0;
      bytes.down = 0;
      bytes.adapterDown = 0;
    });
  } else {
    void sendDormant().then(() => {
      context.baseModels.dispose();
      post({ type: 'stopped' });
    });
  }
});
post({ type: 'ready', devices: specs.size });
