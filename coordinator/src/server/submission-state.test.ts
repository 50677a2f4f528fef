import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { SignedTaskSchema, generateSigningKeyPair, type UpdateSubmission } from '@flotilla/protocol';
import { testRedisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { moduleDTask } from '../../test/support/module-d-task.js';
import { testRoundPlan } from '../../test/support/test-round-plan.js';
import { BlobAccess } from '../shared/blob-store/blob-access.js';
import { redisKeys, type RedisKeys } from '../shared/keys.js';
import { redisOptionsFromUrl } from '../shared/redis-connection.js';
import { TaskRegistry } from '../shared/task-registry.js';
import { DeviceRegistry } from './device-registry.js';
import { RESPONDING_STATE } from './round-machine.js';
import { RoundStore } from './round-store.js';
import { readSubmissionState } from './submission-state.js';

// round-read-submission.lua against the reads it replaced (nine commands through the stores,
// and a second read of the current round when the claimed one is not it), kept below as the
// reference: both read the same Redis states, case by case, and must return the same state.

const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
afterAll(() => redis.disconnect());

const DIGEST = 'c'.repeat(64);
const PUBLIC_KEY = 'A'.repeat(43) + '=';

function planJson(roundId: string): string {
  return JSON.stringify(testRoundPlan(roundId));
}

function roundFields(roundId: string, state: string): Record<string, string> {
  return {
    roundId,
    taskId: 'task-a',
    roundNumber: roundId.split(':')[1] ?? '0',
    state,
    nonce: 'ab'.repeat(32),
    goalCount: '2',
    minReports: '1',
    targetSelect: '2',
    minSelect: '1',
    selectionDeadline: '1',
    acceptWindowMs: '0',
    openedAt: '1',
    ...(state === 'SELECTING'
      ? {}
      : { plan: planJson(roundId), deadline: '2000000000000', acceptedCount: '1' }),
  };
}

function acceptedJson(deviceId: string): string {
  return JSON.stringify({
    updateId: `task-a:2:${DIGEST.slice(0, 16)}:x`,
    deviceId,
    devicePseudonym: 'p-1',
    blobDigest: DIGEST,
    blobBytes: 100,
    numExamples: 5,
    norm: 0.5,
    reportedNorm: 0.5,
    clipped: false,
    quantization: 'none',
    signature: 'sig',
    acceptedAt: 5,
  });
}

interface Scenario {
  /** The task's current round, with its state; none when absent. */
  current?: { roundId: string; state: string };
  /** Other rounds stored (a stale one the submission may name). */
  others?: Array<{ roundId: string; state: string }>;
  selected?: boolean;
  device?: 'active' | 'revoked' | 'none' | 'not a record';
  answered?: 'update' | 'skip' | 'corrupt update';
  task?: boolean;
  uploader?: boolean;
  /** The round the submission names; default the current one, else task-a:1. */
  claimed?: string;
  deviceId?: string;
}

async function seed(
  scenario: Scenario,
): Promise<{ keys: RedisKeys; prefix: string; submission: UpdateSubmission }> {
  const prefix = uniquePrefix('read-sub');
  const keys = redisKeys(prefix);
  const deviceId = scenario.deviceId ?? 'dev-1';
  const claimed = scenario.claimed ?? scenario.current?.roundId ?? 'task-a:1';
  for (const round of [...(scenario.current ? [scenario.current] : []), ...(scenario.others ?? [])])
    await redis.hset(keys.round(round.roundId), roundFields(round.roundId, round.state));
  if (scenario.current) await redis.set(keys.currentRound('task-a'), scenario.current.roundId);
  if (scenario.selected !== false) await redis.sadd(keys.roundSelected(claimed), deviceId);
  const record = (status: string) =>
    JSON.stringify({ deviceId, publicKey: PUBLIC_KEY, status, enrolledAt: 1, via: 'operator' });
  if (scenario.device === undefined || scenario.device === 'active')
    await redis.set(keys.device(deviceId), record('active'));
  if (scenario.device === 'revoked') await redis.set(keys.device(deviceId), record('revoked'));
  if (scenario.device === 'not a record') await redis.set(keys.device(deviceId), '{"status":"active"}');
  if (scenario.answered === 'update')
    await redis.hset(keys.roundUpdates(claimed), deviceId, acceptedJson(deviceId));
  if (scenario.answered === 'corrupt update')
    await redis.hset(keys.roundUpdates(claimed), deviceId, '{"deviceId":1}');
  if (scenario.answered === 'skip')
    await redis.hset(keys.roundSkips(claimed), deviceId, '{"reason":"battery"}');
  if (scenario.task !== false) await redis.set(keys.task('task-a'), TASK_TEXT);
  if (scenario.uploader !== false) await redis.sadd(keys.blobUploaders(DIGEST), deviceId);
  const submission = {
    metadata: { taskId: 'task-a', roundId: claimed, deviceId, blobDigest: DIGEST },
    signature: 'sig',
  } as unknown as UpdateSubmission;
  return { keys, prefix, submission };
}

/** A signed task as the registry stores it (the signature is not checked on reading). */
const TASK_TEXT = JSON.stringify(
  SignedTaskSchema.parse({
    task: {
      ...moduleDTask({
        adapter: { mode: 'lora', targetModules: ['d'], r: 2, alpha: 4, seed: 1 },
        shape: { in: 4, out: 3 },
      }),
      taskId: 'task-a',
    },
    coordinatorKey: PUBLIC_KEY,
    signature: 'A'.repeat(86) + '==',
  }),
);

/** The reads as they were before round-read-submission.lua (accept-update.ts), for reference. */
async function previousState(prefix: string, deviceId: string, submission: UpdateSubmission) {
  const keys = redisKeys(prefix);
  const rounds = new RoundStore(redis, keys);
  const devices = new DeviceRegistry({ redis, prefix });
  const tasks = new TaskRegistry({ redis, prefix, signingKey: generateSigningKeyPair() });
  const access = new BlobAccess({ redis, prefix });
  const { metadata } = submission;
  const [currentId, claimed, stored, selected, device, responded, signed, uploader] = await Promise.all([
    rounds.currentId(metadata.taskId),
    rounds.get(metadata.roundId),
    metadata.roundId.startsWith(`${metadata.taskId}:`)
      ? rounds.acceptedUpdate(metadata.roundId, deviceId)
      : null,
    rounds.isSelected(metadata.roundId, deviceId),
    devices.getDevice(deviceId),
    rounds.hasResponded(metadata.roundId, deviceId),
    tasks.getTask(metadata.taskId),
    access.isUploader(metadata.blobDigest, deviceId),
  ]);
  const round =
    currentId === null ? null : currentId === metadata.roundId ? claimed : await rounds.get(currentId);
  return { round, stored, selected, device, responded, signed, uploader };
}

const CURRENT = { roundId: 'task-a:2', state: RESPONDING_STATE };

const CASES: Array<{
  name: string;
  scenario: Scenario;
  check: (state: Awaited<ReturnType<typeof readSubmissionState>>) => void;
}> = [
  {
    name: 'an honest submission to the current round',
    scenario: { current: CURRENT },
    check: (s) => {
      expect(s.round?.roundId).toBe('task-a:2');
      expect(s.round?.plan?.budget.maxUploadBytes).toBe(4096);
      expect([
        s.stored,
        s.selected,
        s.device?.status,
        s.responded,
        s.signed?.task.taskId,
        s.uploader,
      ]).toEqual([null, true, 'active', false, 'task-a', true]);
    },
  },
  { name: 'a task with no round', scenario: {}, check: (s) => expect(s.round).toBeNull() },
  {
    name: 'a current round id whose hash is gone',
    scenario: { current: CURRENT, claimed: 'task-a:2' },
    check: (s) => expect(s.round?.roundId).toBe('task-a:2'),
  },
  {
    name: 'a stale round named while the next one reports',
    scenario: {
      current: CURRENT,
      others: [{ roundId: 'task-a:1', state: 'COMMITTED' }],
      claimed: 'task-a:1',
    },
    check: (s) => expect(s.round?.roundId).toBe('task-a:2'),
  },
  {
    name: "another task's round named (no stored update read)",
    scenario: { current: CURRENT, claimed: 'task-b:2', answered: 'update' },
    check: (s) => expect([s.stored, s.responded]).toEqual([null, true]),
  },
  {
    name: 'a round still selecting',
    scenario: { current: { roundId: 'task-a:2', state: 'SELECTING' } },
    check: (s) => expect(s.round?.plan).toBeUndefined(),
  },
  {
    name: 'a device not selected',
    scenario: { current: CURRENT, selected: false },
    check: (s) => expect(s.selected).toBe(false),
  },
  {
    name: 'a revoked device',
    scenario: { current: CURRENT, device: 'revoked' },
    check: (s) => expect(s.device?.status).toBe('revoked'),
  },
  {
    name: 'a device no longer enrolled',
    scenario: { current: CURRENT, device: 'none' },
    check: (s) => expect(s.device).toBeNull(),
  },
  {
    name: 'a device record that is not one',
    scenario: { current: CURRENT, device: 'not a record' },
    check: (s) => expect(s.device).toBeNull(),
  },
  {
    name: 'a device id no device may have',
    scenario: { current: CURRENT, deviceId: 'bad id with spaces' },
    check: (s) => expect(s.device).toBeNull(),
  },
  {
    name: 'an update already accepted',
    scenario: { current: CURRENT, answered: 'update' },
    check: (s) => expect([s.stored?.acceptedAt, s.responded]).toEqual([5, true]),
  },
  {
    name: 'a stored update record that is not one',
    scenario: { current: CURRENT, answered: 'corrupt update' },
    check: (s) => expect([s.stored, s.responded]).toEqual([null, true]),
  },
  {
    name: 'a skip already stored',
    scenario: { current: CURRENT, answered: 'skip' },
    check: (s) => expect([s.stored, s.responded]).toEqual([null, true]),
  },
  {
    name: 'a task not registered',
    scenario: { current: CURRENT, task: false },
    check: (s) => expect(s.signed).toBeNull(),
  },
  {
    name: 'a blob the device did not upload',
    scenario: { current: CURRENT, uploader: false },
    check: (s) => expect(s.uploader).toBe(false),
  },
];

describe('round-read-submission.lua: one call, reading what the nine reads it replaced read', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (name, { scenario, check }) => {
    const { keys, prefix, submission } = await seed(scenario);
    if (name === 'a current round id whose hash is gone') await redis.del(keys.round('task-a:2'));
    const deviceId = submission.metadata.deviceId;
    const before = await previousState(prefix, deviceId, submission);
    const now = await readSubmissionState({ redis, keys }, deviceId, submission);
    expect(now).toEqual(before);
    if (name === 'a current round id whose hash is gone') expect(now.round).toBeNull();
    else check(now);
  });
});
