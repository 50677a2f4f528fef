// Worker-thread entry: hosts a share of the simulated fleet. Every device is a real
// FlotillaDevice (socket.io + HTTP) training with the real tfjs trainer; the main thread tells
// the host which devices may take part in each round and collects what they report.
import { parentPort, workerData } from 'node:worker_threads';
import { scenarioDomains, toLocalDataset } from './scenario-data.js';
import { fromBase64, keyPairFromSeed, type Eligibility, type RoundPlan } from '@flotilla/protocol';
import { FlotillaDevice, TfjsTrainer } from '@flotilla/client';
import { subsetDataset } from '../data/dataset.js';

import { labelFlipAttack } from '../attacks/attacks.js';
import { createRng } from '../rng/random.js';
import type { Scenario } from '../scenario/schema.js';
import { SimulatedTrainer, type Collusion } from './sim-trainer.js';
import type { HostEvent, HostMessage, HostSetup } from './host-messages.js';

const setup = (workerData as { data: HostSetup }).data;
const port = parentPort;
if (!port) throw new Error('device-host must run in a worker thread');

const ELIGIBLE: Eligibility = {
  charging: true,
  unmeteredNetwork: true,
  freeStorageBytes: 1 << 30,
  computeClass: 'high',
};
const RESTING: Eligibility = { ...ELIGIBLE, charging: false };

let round: { index: number; participants: Set<string>; dropouts: Set<string> } | null = null;
/** Crafted "little is enough" vectors by round index, as promises the attackers await. */
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
function collusionFor(deviceId: string): Collusion {
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
const joinedIndex = new Map<string, number>();
const bytes = { up: 0, down: 0 };

function post(event: HostEvent): void {
  port?.postMessage(event);
}

/** Counts request and response bytes, so the runner can report traffic per round. */
const countingFetch = async (input: string, init?: RequestInit): Promise<Response> => {
  const body = init?.body;
  if (body instanceof Uint8Array) bytes.up += body.byteLength;
  else if (body instanceof Blob) bytes.up += body.size;
  else if (typeof body === 'string') bytes.up += body.length;
  const response = await fetch(input, init);
  const copy = await response.arrayBuffer();
  bytes.down += copy.byteLength;
  return new Response(copy, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
};

function startDevices(scenario: Scenario): FlotillaDevice[] {
  const domains = scenarioDomains(scenario);
  const pool = domains.shifted.train;
  const root = createRng(scenario.seed);
  return setup.devices.map((device) => {
    let train = subsetDataset(pool, device.trainIndices);
    const holdout = subsetDataset(pool, device.holdoutIndices);
    if (device.byzantine && scenario.behaviour.attack === 'label-flip') {
      train = { ...train, ys: labelFlipAttack(train.ys, { numClasses: train.numClasses }) };
    }
    const inner = new TfjsTrainer({
      data: { train: toLocalDataset(train), holdout: toLocalDataset(holdout) },
      seed: device.seed,
    });
    const trainer = new SimulatedTrainer(inner, {
      dropsOut: () => round?.dropouts.has(device.deviceId) ?? false,
      delayMs: device.straggler ? scenario.behaviour.stragglerDelayMs : 0,
      attack: device.byzantine ? scenario.behaviour.attack : 'none',
      attackScale: scenario.behaviour.attackScale,
      rng: root.fork(`device/${device.deviceId}`),
      ...(scenario.behaviour.attack === 'little-is-enough'
        ? { collusion: collusionFor(device.deviceId) }
        : {}),
    });
    const instance = new FlotillaDevice({
      url: setup.url,
      deviceId: device.deviceId,
      keys: keyPairFromSeed(fromBase64(device.seedKey)),
      taskId: setup.taskId,
      coordinatorKey: setup.coordinatorKey,
      trainer,
      // Only the devices the schedule picked for the current round are eligible, once per round.
      eligibility: () => {
        const current = round;
        const ok =
          current !== null &&
          current.participants.has(device.deviceId) &&
          (joinedIndex.get(device.deviceId) ?? -1) < current.index;
        return ok ? ELIGIBLE : RESTING;
      },
      fetch: countingFetch,
      onRound: (plan: RoundPlan) => {
        joinedIndex.set(device.deviceId, round?.index ?? -1);
        post({ type: 'selected', deviceId: device.deviceId, roundId: plan.roundId });
      },
      onUpdateAccepted: ({ plan }) =>
        post({ type: 'accepted', deviceId: device.deviceId, roundId: plan.roundId }),
      onUpdateRefused: ({ plan, code }) =>
        post({ type: 'refused', deviceId: device.deviceId, roundId: plan.roundId, code }),
      onSkip: ({ plan, reason, detail }) =>
        post({
          type: 'skipped',
          deviceId: device.deviceId,
          roundId: plan.roundId,
          reason: detail === 'simulated dropout' ? 'dropped' : reason,
        }),
      onAdapterChanged: ({ version }) => post({ type: 'adapter', deviceId: device.deviceId, version }),
      onError: (error, fatal) =>
        post({ type: 'error', deviceId: device.deviceId, message: error.message, fatal }),
    });
    return instance;
  });
}

const devices = startDevices(setup.scenario);
port.on('message', (message: HostMessage) => {
  if (message.type === 'round') {
    round = {
      index: message.index,
      participants: new Set(message.participants),
      dropouts: new Set(message.dropouts),
    };
  } else if (message.type === 'crafted') {
    craftedFor(message.index).resolve(message.delta);
    // Older rounds' vectors are no longer awaited.
    for (const index of crafted.keys()) if (index < message.index) crafted.delete(index);
  } else if (message.type === 'bytes') {
    post({ type: 'bytes', up: bytes.up, down: bytes.down });
    bytes.up = 0;
    bytes.down = 0;
  } else {
    for (const device of devices) device.stop();
    post({ type: 'stopped' });
  }
});
for (const device of devices) {
  device
    .start()
    .catch((error: unknown) => post({ type: 'error', deviceId: '?', message: String(error), fatal: true }));
}
post({ type: 'ready', devices: devices.length });
