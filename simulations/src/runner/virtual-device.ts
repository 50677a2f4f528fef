import { fromBase64, type Eligibility } from '@flotilla/protocol';
import { FlotillaDevice, TfjsTrainer, type BaseModelPool, type FetchFn } from '@flotilla/client';
import { labelFlipAttack } from '../attacks/attacks.js';
import { poisonWithBackdoor, type BackdoorTrigger } from '../attacks/backdoor.js';
import { subsetDataset, type Dataset } from '../data/dataset.js';
import type { Rng } from '../rng/random.js';
import type { Scenario } from '../scenario/schema.js';
import { publicKeyFromSeed } from './device-keys.js';
import type { HostEvent, VirtualDeviceSpec } from './host-messages.js';
import { toLocalDataset } from './scenario-data.js';
import { SimulatedTrainer, type Collusion } from './sim-trainer.js';
import { VirtualDeviceCache, type DormantCache, type SharedBlobStore } from './virtual-device-cache.js';

/** A scheduled device offers itself: charging, on an unmetered network, with room to spare. */
const ELIGIBLE: Eligibility = {
  charging: true,
  unmeteredNetwork: true,
  freeStorageBytes: 1 << 30,
  computeClass: 'high',
};

/** What every device of a host shares. */
export interface HostContext {
  url: string;
  taskId: string;
  coordinatorKey: string;
  scenario: Scenario;
  /** The device pool the shards index into. */
  pool: Dataset;
  /** One example as the base model takes it. */
  inputShape: number[];
  /** The trigger of a backdoor run, else null. */
  backdoorTrigger: BackdoorTrigger | null;
  root: Rng;
  blobs: SharedBlobStore;
  baseModels: BaseModelPool;
  fetch: FetchFn;
  post: (event: HostEvent) => void;
}

/** Per-round facts a device asks while it runs. */
export interface RoundView {
  dropsOut: (deviceId: string) => boolean;
  collusion: (deviceId: string) => Collusion | undefined;
}

/**
 * Brings a dormant device online for one round: its key from its seed, its data shard from the
 * pool, its own view of the host's blob cache (so its adapter state is restored and it fetches
 * only what it lacks), the real tfjs trainer and the real client over a WebSocket. It stops by
 * itself once its round is over (`maxRounds: 1`).
 */
export function materializeDevice(
  ctx: HostContext,
  spec: VirtualDeviceSpec,
  cache: DormantCache,
  round: RoundView,
): FlotillaDevice {
  const { scenario } = ctx;
  let train = subsetDataset(ctx.pool, spec.trainIndices);
  const holdout = subsetDataset(ctx.pool, spec.holdoutIndices);
  if (spec.byzantine && scenario.behaviour.attack === 'label-flip')
    train = { ...train, ys: labelFlipAttack(train.ys, { numClasses: train.numClasses }) };
  if (spec.byzantine && ctx.backdoorTrigger !== null)
    train = poisonWithBackdoor(train, {
      trigger: ctx.backdoorTrigger,
      target: scenario.behaviour.backdoor.targetClass,
      fraction: scenario.behaviour.backdoor.poisonFraction,
      rng: ctx.root.fork(`backdoor/${spec.deviceId}`),
    });
  const inner = new TfjsTrainer({
    data: { train: toLocalDataset(train, ctx.inputShape), holdout: toLocalDataset(holdout, ctx.inputShape) },
    seed: spec.seed,
    baseModels: ctx.baseModels,
  });
  const collusion = round.collusion(spec.deviceId);
  const trainer = new SimulatedTrainer(inner, {
    dropsOut: () => round.dropsOut(spec.deviceId),
    delayMs: spec.straggler ? scenario.behaviour.stragglerDelayMs : 0,
    attack: spec.byzantine ? scenario.behaviour.attack : 'none',
    attackScale: scenario.behaviour.attackScale,
    rng: ctx.root.fork(`device/${spec.deviceId}`),
    ...(collusion ? { collusion } : {}),
  });
  const seed = fromBase64(spec.seedKey);
  const publicKey = publicKeyFromSeed(seed);
  const secretKey = new Uint8Array(64);
  secretKey.set(seed, 0);
  secretKey.set(publicKey, 32);
  const { deviceId } = spec;
  const post = ctx.post;
  return new FlotillaDevice({
    url: ctx.url,
    deviceId,
    keys: { publicKey, secretKey },
    taskId: ctx.taskId,
    coordinatorKey: ctx.coordinatorKey,
    trainer,
    eligibility: ELIGIBLE,
    cache: new VirtualDeviceCache(ctx.blobs, cache),
    maxRounds: 1,
    ...(spec.byzantine && !scenario.behaviour.attackerClips ? { clipping: 'off' as const } : {}),
    // One round trip less than long-polling first; the socket is as real.
    transports: ['websocket'],
    fetch: ctx.fetch,
    onRound: (plan) => post({ type: 'selected', deviceId, roundId: plan.roundId }),
    onUpdateAccepted: ({ plan }) => post({ type: 'accepted', deviceId, roundId: plan.roundId }),
    onUpdateRefused: ({ plan, code }) => post({ type: 'refused', deviceId, roundId: plan.roundId, code }),
    onSkip: ({ plan, reason, detail }) =>
      post({
        type: 'skipped',
        deviceId,
        roundId: plan.roundId,
        reason: detail === 'simulated dropout' ? 'dropped' : reason,
      }),
    onError: (error, fatal) => post({ type: 'error', deviceId, message: error.message, fatal }),
  });
}
