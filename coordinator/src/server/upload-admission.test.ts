import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { FlotillaError, type RoundPlan } from '@flotilla/protocol';
import { testRedisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { testRoundPlan } from '../../test/support/test-round-plan.js';
import { redisKeys, type RedisKeys } from '../shared/keys.js';
import { redisOptionsFromUrl } from '../shared/redis-connection.js';
import { runScript } from '../shared/redis-script.js';
import { RESPONDING_STATE } from './round-machine.js';
import { SessionStore } from './sessions.js';
import { createUploadAdmission } from './upload-admission.js';

// upload-admit.lua against the admission it replaced (the session resolved, then the open
// rounds read with five commands, then the quota reserved), kept below as the reference: both
// run on the same Redis states, case by case, and must answer alike and leave the same quota.

const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
afterAll(() => redis.disconnect());

// The admission's clock (both sides take it as \`now\`). Redis expires quota sets by its own clock,
// so it must be today's: a fixed date made every quota set expire on arrival an hour after it.
const NOW = Date.now();
const LIMIT = 4;
const GLOBAL_CAP = 64 * 1024 ** 2;
const HOUR_MS = 3_600_000;
const [D0, D1, D2, D3, D4] = ['a', 'b', 'c', 'd', 'e'].map((c) => c.repeat(64)) as [
  string,
  string,
  string,
  string,
  string,
];
const DIGESTS = [D0, D1, D2, D3, D4];

interface RoundSeed {
  taskId: string;
  state?: string;
  maxUploadBytes?: number;
  deadline?: number;
  selected?: boolean;
}

interface Scenario {
  device?: 'active' | 'revoked' | 'none';
  rounds?: RoundSeed[];
  /** Digests this device already reserved in the first round. */
  reserved?: string[];
}

/** Writes a scenario under a fresh prefix; the device's session token. */
async function seed(scenario: Scenario): Promise<{ keys: RedisKeys; token: string; prefix: string }> {
  const prefix = uniquePrefix('admit');
  const keys = redisKeys(prefix);
  const record = (status: string) =>
    JSON.stringify({
      deviceId: 'dev-1',
      publicKey: 'A'.repeat(43) + '=',
      status,
      enrolledAt: 1,
      via: 'operator',
    });
  await redis.set(keys.device('dev-1'), record('active'));
  const { sessionToken } = await new SessionStore(redis, prefix, 60_000).create('dev-1');
  if (scenario.device === 'revoked') await redis.set(keys.device('dev-1'), record('revoked'));
  if (scenario.device === 'none') await redis.del(keys.device('dev-1'));
  for (const [i, round] of (scenario.rounds ?? []).entries()) {
    const roundId = `${round.taskId}:1`;
    await redis.zadd(keys.tasks(), i + 1, round.taskId);
    await redis.set(keys.currentRound(round.taskId), roundId);
    const deadline = round.deadline ?? NOW + 60_000;
    await redis.hset(keys.round(roundId), {
      state: round.state ?? RESPONDING_STATE,
      ...(round.state === 'SELECTING'
        ? {}
        : {
            plan: JSON.stringify(
              testRoundPlan(roundId, { maxUploadBytes: round.maxUploadBytes ?? 1000, deadline }),
            ),
          }),
      deadline,
    });
    if (round.selected !== false) await redis.sadd(keys.roundSelected(roundId), 'dev-1', 'dev-2');
    else await redis.sadd(keys.roundSelected(roundId), 'dev-2');
  }
  const first = scenario.rounds?.[0];
  if (first && scenario.reserved?.length)
    await redis.sadd(keys.blobQuota(`${first.taskId}:1`, 'dev-1'), ...scenario.reserved);
  return { keys, token: sessionToken, prefix };
}

type Outcome =
  | { kind: 'unauthorized' }
  | { kind: 'refused'; code: string; message: string }
  | { kind: 'admitted'; deviceId: string; maxBytes: number; quota: string[]; quotaExpiresAt: number | null };

// The admission as it was before upload-admit.lua (the previous upload-admission.ts and the
// session lookup of blob-routes.ts), for reference.
const RESERVE = `
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 2
`;

async function previousAdmission(prefix: string, keys: RedisKeys, token: string, digest: string) {
  const deviceId = await new SessionStore(redis, prefix, 60_000).resolve(token);
  if (deviceId === null) return null;
  const taskIds = await redis.zrange(keys.tasks(), 0, -1);
  const roundIds =
    taskIds.length === 0
      ? []
      : (await redis.mget(taskIds.map((id) => keys.currentRound(id)))).filter(
          (id): id is string => id !== null,
        );
  const open: { roundId: string; plan: RoundPlan }[] = [];
  for (const roundId of roundIds) {
    const [state, planJson] = await redis.hmget(keys.round(roundId), 'state', 'plan');
    const selected = await redis.sismember(keys.roundSelected(roundId), deviceId);
    if (state !== RESPONDING_STATE || planJson == null || selected !== 1) continue;
    const plan = JSON.parse(planJson) as RoundPlan;
    if (NOW <= plan.deadline) open.push({ roundId, plan });
  }
  const round = open.sort((a, b) => b.plan.budget.maxUploadBytes - a.plan.budget.maxUploadBytes)[0];
  if (!round)
    throw new FlotillaError(
      'NOT_SELECTED',
      'no round in REPORTING selected this device: uploads are deltas for a round the device was selected in',
    );
  const quotaKey = keys.blobQuota(round.roundId, deviceId);
  const reserved = await runScript(redis, RESERVE, 1, quotaKey, digest, LIMIT, round.plan.deadline + HOUR_MS);
  if (reserved === 0)
    throw new FlotillaError(
      'QUOTA_EXCEEDED',
      `this device already stored ${LIMIT} blobs in round ${round.roundId}`,
    );
  return {
    deviceId,
    admission: {
      maxBytes: Math.min(GLOBAL_CAP, round.plan.budget.maxUploadBytes),
      release: async () => {
        if (reserved === 2) await redis.srem(quotaKey, digest);
      },
    },
  };
}

type Admit = (
  prefix: string,
  keys: RedisKeys,
  token: string,
  digest: string,
) => ReturnType<typeof previousAdmission>;

const scriptAdmission: Admit = (prefix, keys, token, digest) =>
  createUploadAdmission({
    redis,
    keys,
    sessions: new SessionStore(redis, prefix, 60_000),
    maxDeviceBlobBytes: GLOBAL_CAP,
    maxUploadsPerRound: LIMIT,
    now: () => NOW,
  })(token, digest);

/** Runs one admission on a freshly seeded scenario; what it answered and left in Redis. */
async function outcomeOf(
  admit: Admit,
  scenario: Scenario,
  options: { digest?: string; token?: (real: string) => string; release?: boolean } = {},
): Promise<Outcome> {
  const { keys, token, prefix } = await seed(scenario);
  let admitted;
  try {
    admitted = await admit(prefix, keys, options.token ? options.token(token) : token, options.digest ?? D0);
  } catch (error) {
    if (!(error instanceof FlotillaError)) throw error;
    return { kind: 'refused', code: error.code, message: error.message };
  }
  if (admitted === null) return { kind: 'unauthorized' };
  if (options.release === true) await admitted.admission.release();
  // The quota of every round the scenario has: which one was charged shows in its members.
  const quotaKeys = (scenario.rounds ?? []).map((r) => keys.blobQuota(`${r.taskId}:1`, admitted.deviceId));
  const quota: string[] = [];
  let quotaExpiresAt: number | null = null;
  for (const key of quotaKeys) {
    for (const member of (await redis.smembers(key)).sort())
      quota.push(`${key.slice(prefix.length)} ${member}`);
    const at = await redis.pexpiretime(key);
    if (at > 0) quotaExpiresAt = at;
  }
  return {
    kind: 'admitted',
    deviceId: admitted.deviceId,
    maxBytes: admitted.admission.maxBytes,
    quota,
    quotaExpiresAt,
  };
}

const ONE_ROUND: RoundSeed[] = [{ taskId: 'task-a', maxUploadBytes: 5000 }];

const CASES: Array<{
  name: string;
  scenario: Scenario;
  options?: Parameters<typeof outcomeOf>[2];
  expected: Partial<Outcome>;
}> = [
  {
    name: 'a token too short for a session',
    scenario: { rounds: ONE_ROUND },
    options: { token: () => 'x'.repeat(31) },
    expected: { kind: 'unauthorized' },
  },
  {
    name: 'a token of no session',
    scenario: { rounds: ONE_ROUND },
    options: { token: () => '0'.repeat(64) },
    expected: { kind: 'unauthorized' },
  },
  {
    name: 'the session of a revoked device',
    scenario: { device: 'revoked', rounds: ONE_ROUND },
    expected: { kind: 'unauthorized' },
  },
  {
    name: 'the session of a device no longer enrolled',
    scenario: { device: 'none', rounds: ONE_ROUND },
    expected: { kind: 'unauthorized' },
  },
  { name: 'no task at all', scenario: {}, expected: { kind: 'refused', code: 'NOT_SELECTED' } },
  {
    name: 'a round still selecting',
    scenario: { rounds: [{ taskId: 'task-a', state: 'SELECTING' }] },
    expected: { kind: 'refused', code: 'NOT_SELECTED' },
  },
  {
    name: 'a round aggregating',
    scenario: { rounds: [{ taskId: 'task-a', state: 'AGGREGATING' }] },
    expected: { kind: 'refused', code: 'NOT_SELECTED' },
  },
  {
    name: 'a reporting round that did not select the device',
    scenario: { rounds: [{ taskId: 'task-a', selected: false }] },
    expected: { kind: 'refused', code: 'NOT_SELECTED' },
  },
  {
    name: 'a reporting round past its deadline',
    scenario: { rounds: [{ taskId: 'task-a', deadline: NOW - 1 }] },
    expected: { kind: 'refused', code: 'NOT_SELECTED' },
  },
  {
    name: 'a reporting round at its deadline',
    scenario: { rounds: [{ taskId: 'task-a', deadline: NOW, maxUploadBytes: 700 }] },
    expected: { kind: 'admitted', maxBytes: 700 },
  },
  {
    name: 'one open round',
    scenario: { rounds: ONE_ROUND },
    expected: { kind: 'admitted', maxBytes: 5000, quotaExpiresAt: NOW + 60_000 + HOUR_MS },
  },
  {
    name: 'two open rounds: the larger cap is charged',
    scenario: {
      rounds: [
        { taskId: 'task-a', maxUploadBytes: 1000 },
        { taskId: 'task-b', maxUploadBytes: 9000, deadline: NOW + 5000 },
      ],
    },
    expected: { kind: 'admitted', maxBytes: 9000, quotaExpiresAt: NOW + 5000 + HOUR_MS },
  },
  {
    name: 'two open rounds with equal caps: the first task is charged',
    scenario: {
      rounds: [
        { taskId: 'task-a', maxUploadBytes: 3000, deadline: NOW + 7000 },
        { taskId: 'task-b', maxUploadBytes: 3000 },
      ],
    },
    expected: { kind: 'admitted', maxBytes: 3000, quotaExpiresAt: NOW + 7000 + HOUR_MS },
  },
  {
    name: 'the larger cap in a round that did not select the device',
    scenario: {
      rounds: [
        { taskId: 'task-a', maxUploadBytes: 1000 },
        { taskId: 'task-b', maxUploadBytes: 9000, selected: false },
      ],
    },
    expected: { kind: 'admitted', maxBytes: 1000 },
  },
  {
    name: 'a round cap above the global cap',
    scenario: { rounds: [{ taskId: 'task-a', maxUploadBytes: 2 * GLOBAL_CAP }] },
    expected: { kind: 'admitted', maxBytes: GLOBAL_CAP },
  },
  {
    name: 'the last place of the quota',
    scenario: { rounds: ONE_ROUND, reserved: DIGESTS.slice(1, 4) },
    expected: { kind: 'admitted', maxBytes: 5000 },
  },
  {
    name: 'a full quota',
    scenario: { rounds: ONE_ROUND, reserved: DIGESTS.slice(1, 5) },
    expected: { kind: 'refused', code: 'QUOTA_EXCEEDED' },
  },
  {
    name: 'a retry of a reserved digest with a full quota',
    scenario: { rounds: ONE_ROUND, reserved: DIGESTS.slice(0, 4) },
    expected: { kind: 'admitted', maxBytes: 5000 },
  },
  {
    name: 'a new reservation given back',
    scenario: { rounds: ONE_ROUND, reserved: DIGESTS.slice(1, 2) },
    options: { release: true },
    expected: { kind: 'admitted', quota: [':blob-quota:task-a:1:dev-1 ' + D1] },
  },
  {
    name: "a retry's reservation kept when it is given back",
    scenario: { rounds: ONE_ROUND, reserved: DIGESTS.slice(0, 1) },
    options: { release: true },
    expected: { kind: 'admitted', quota: [':blob-quota:task-a:1:dev-1 ' + D0] },
  },
];

describe('upload-admit.lua: one round trip, answering as the admission it replaced', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, { scenario, options, expected }) => {
    const before = await outcomeOf(previousAdmission, scenario, options);
    const now = await outcomeOf(scriptAdmission, scenario, options);
    expect(now).toEqual(before);
    expect(now).toMatchObject(expected);
  });

  it('charges the quota of the round it names, up to the limit, through repeated uploads', async () => {
    const { keys, token, prefix } = await seed({ rounds: ONE_ROUND });
    const answers: string[] = [];
    for (const digest of [...DIGESTS, D0]) {
      const answer = await scriptAdmission(prefix, keys, token, digest).then(
        (admitted) => (admitted === null ? 'UNAUTHORIZED' : 'admitted'),
        (error: unknown) => (error instanceof FlotillaError ? error.code : 'not a FlotillaError'),
      );
      answers.push(answer);
    }
    expect(answers).toEqual(['admitted', 'admitted', 'admitted', 'admitted', 'QUOTA_EXCEEDED', 'admitted']);
    expect((await redis.smembers(keys.blobQuota('task-a:1', 'dev-1'))).sort()).toEqual(DIGESTS.slice(0, 4));
  });
});
