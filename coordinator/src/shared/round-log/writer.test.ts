import { mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fromHex,
  keyPairFromSeed,
  roundLogLeafHash,
  toBase64,
  verifyInclusion,
  verifyRoundLog,
  verifyTreeHeadSignature,
  type TreeHeadLine,
} from '@flotilla/protocol';
import { uniquePrefix } from '../../../../test-support/redis.js';
import { leaveUnsignedTail, roundOpened, testRedisConnections } from '../../../test/support/index.js';
import { auditExportCommand, auditShowCommand, auditVerifyCommand } from './cli.js';
import { readRoundLog, readRoundLogEntries } from './stream.js';
import { openRoundLog } from './writer.js';
import { retainedDeltaDigests } from './retention.js';

const key1 = keyPairFromSeed(new Uint8Array(32).fill(3));
const key2 = keyPairFromSeed(new Uint8Array(32).fill(4));
const secret = new Uint8Array(32).fill(5);
const digest = (n: number) => n.toString(16).padStart(64, '0');

let dir: string;
const connect = testRedisConnections();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-round-log-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Options of a writer on its own connection, signing with key1. */
const writerAt = (prefix: string, filePath: string) => ({
  redis: connect(),
  prefix,
  filePath,
  signingKey: key1,
  pseudonymSecret: secret,
});

describe('RoundLogWriter', () => {
  it('two writers on two connections appending 200 records interleaved make one valid log and an identical mirror', async () => {
    const prefix = uniquePrefix('rlog-concurrent');
    const filePath = join(dir, `${prefix}.jsonl`);
    const writers = [connect(), connect()].map((redis) =>
      openRoundLog({ redis, prefix, filePath, signingKey: key1, pseudonymSecret: secret }),
    );
    const appended = await Promise.all(
      Array.from(
        { length: 200 },
        // One task per record: the two writers interleave, so no per-task order is promised here.
        (_, i) => writers[i % 2]?.append(roundOpened(1, `t${i}`)) ?? Promise.reject(new Error('writer')),
      ),
    );
    expect(new Set(appended.map((r) => r.seq)).size).toBe(200);

    const stream = await readRoundLog(connect(), prefix);
    expect(stream.map((r) => r.leafIndex)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    // Every round.opened is a round boundary: each gets its own signed tree head.
    const lines = await readRoundLogEntries(connect(), prefix);
    expect(lines.map((line) => line.seq)).toEqual(Array.from({ length: 400 }, (_, i) => i));
    const verdict = await verifyRoundLog(lines, { trustedKey: toBase64(key1.publicKey) });
    expect(verdict).toMatchObject({ ok: true, records: 400, firstBad: null });
    const roundsInLog = stream.map((r) => (r.event.type === 'round.opened' ? r.event.roundId : '')).sort();
    expect(roundsInLog).toEqual(Array.from({ length: 200 }, (_, i) => `t${i}:1`).sort());

    const fileLines = readFileSync(filePath, 'utf8').trimEnd().split('\n');
    expect(fileLines).toEqual(lines.map((r) => JSON.stringify(r)));
    const cli = await auditVerifyCommand({
      file: filePath,
      json: true,
      trustedKey: toBase64(key1.publicKey),
    });
    expect(cli.exitCode).toBe(0);
    expect(JSON.parse(cli.output)).toMatchObject({ ok: true, records: 400, firstBad: null, problems: [] });
  });

  it('signs one head for many queued update records, and proves each of them against it', async () => {
    const prefix = uniquePrefix('rlog-batch');
    const filePath = join(dir, `${prefix}.jsonl`);
    // A long interval: only the queue running dry signs a head here.
    const writer = openRoundLog({ ...writerAt(prefix, filePath), treeHeadIntervalMs: 3_600_000 });
    await writer.append(roundOpened(1));
    const devices = Array.from({ length: 120 }, (_, i) => writer.pseudonymize(`device-${i}`));
    await writer.append({
      type: 'round.selected',
      taskId: 'demo',
      roundId: 'demo:1',
      devices,
      eligible: 120,
    });
    const records = await Promise.all(
      devices.map((device, i) =>
        writer.append({
          type: 'update.refused',
          taskId: 'demo',
          roundId: 'demo:1',
          device,
          reason: 'NORM_EXCEEDED',
          message: `norm ${2 + i} > 1`,
          blobDigest: digest(i + 1),
          norm: null,
          clipBound: 1,
          clipped: null,
          bytes: null,
        }),
      ),
    );
    const lines = await readRoundLogEntries(connect(), prefix);
    const heads = lines.filter((line): line is TreeHeadLine => 'treeHead' in line);
    // The opened and selected records, and the last queued update, each end in a head.
    expect(heads.length).toBe(3);
    expect(await verifyRoundLog(lines, { trustedKey: toBase64(key1.publicKey) })).toMatchObject({ ok: true });
    const head = await writer.head();
    if (!head) throw new Error('no signed head');
    expect(head.treeHead.treeSize).toBe(122);
    expect(verifyTreeHeadSignature(head, toBase64(key1.publicKey))).toBe(true);
    for (const record of records) {
      const answer = await writer.proveInclusion(record.leafIndex);
      if (!answer) throw new Error(`no proof for leaf ${record.leafIndex}`);
      expect(answer.head).toEqual(head);
      expect(
        verifyInclusion({
          index: record.leafIndex,
          size: head.treeHead.treeSize,
          leafHash: roundLogLeafHash(record),
          proof: answer.proof.map(fromHex),
          root: fromHex(head.treeHead.rootHash),
        }),
      ).toEqual({ ok: true });
    }
    expect(await writer.proveInclusion(122)).toBeNull();
  });

  it('follows a key rotation, and refuses a writer still holding the old key', async () => {
    const prefix = uniquePrefix('rlog-rotate');
    const filePath = join(dir, `${prefix}.jsonl`);
    const redis = connect();
    const writer = openRoundLog({ redis, prefix, filePath, signingKey: key1, pseudonymSecret: secret });
    const stale = openRoundLog({
      redis: connect(),
      prefix,
      filePath,
      signingKey: key1,
      pseudonymSecret: secret,
    });
    await writer.append(roundOpened(1));
    const rotation = await writer.rotateKey(key2, 'annual rotation');
    expect(rotation.event).toEqual({
      type: 'key.rotated',
      previousKeyId: toBase64(key1.publicKey),
      newKeyId: toBase64(key2.publicKey),
      reason: 'annual rotation',
    });
    const after = await writer.append(roundOpened(1, 'demo-b'));
    // The head covering the rotation is signed by the old key, the next one by the new key.
    const heads = (await readRoundLogEntries(connect(), prefix)).filter(
      (line): line is TreeHeadLine => 'treeHead' in line,
    );
    expect(heads.map((line) => [line.seq, line.treeHead.keyId])).toEqual([
      [1, toBase64(key1.publicKey)],
      [rotation.seq + 1, toBase64(key1.publicKey)],
      [after.seq + 1, toBase64(key2.publicKey)],
    ]);
    await expect(stale.append(roundOpened(1, 'demo-c'))).rejects.toMatchObject({ code: 'BAD_SIGNATURE' });
    await expect(writer.append(rotation.event)).rejects.toMatchObject({ code: 'BAD_REQUEST' });

    const result = await auditVerifyCommand({
      file: filePath,
      json: false,
      trustedKey: toBase64(key1.publicKey),
    });
    expect(result.exitCode).toBe(0);
    expect(result.output).toMatch(/^PASS: 6 lines verified/);
    expect(result.output).toContain('(pinned)');
  });

  it('pseudonymizes, pins retained deltas, and catches a torn mirror line up from the stream', async () => {
    const prefix = uniquePrefix('rlog-retain');
    const filePath = join(dir, `${prefix}.jsonl`);
    let clock = 1_000_000;
    const writer = openRoundLog({
      redis: connect(),
      prefix,
      filePath,
      signingKey: key1,
      pseudonymSecret: secret,
      retainDeltas: { ttlMs: 60_000 },
      now: () => clock,
    });
    const device = writer.pseudonymize('pixel-7-lab-0042');
    expect(device).toMatch(/^dev_[0-9a-f]{32}$/);
    await writer.append(roundOpened(1, 'demo'));
    await writer.append({
      type: 'round.selected',
      taskId: 'demo',
      roundId: 'demo:1',
      devices: [device],
      eligible: 1,
    });
    await writer.append({
      type: 'update.accepted',
      taskId: 'demo',
      roundId: 'demo:1',
      device,
      blobDigest: digest(1),
      norm: 0.9,
      clipBound: 1,
      clipped: false,
      bytes: 10,
      numExamples: 5,
    });
    await writer.append({
      type: 'round.closed',
      taskId: 'demo',
      roundId: 'demo:1',
      accepted: 1,
      refused: 0,
      minReports: 1,
      reason: 'all-answered',
    });
    // A crash mid-write leaves a torn line; the next sync truncates it and re-mirrors.
    appendFileSync(filePath, '{"seq":4,"ts":');
    clock += 1000;
    const aggregation = await writer.append({
      type: 'aggregation',
      taskId: 'demo',
      roundId: 'demo:1',
      strategy: 'fedavg',
      strategyOptions: {},
      loraRule: 'ffa-lora',
      participants: [{ device, blobDigest: digest(1), weight: 5 }],
      clipNorm: 1,
      noiseMultiplier: 0,
      epsilon: null,
      delta: null,
      aggregateDigest: digest(99),
      deltasRetainedUntil: null,
    });
    expect(aggregation.event).toMatchObject({ deltasRetainedUntil: 1_001_000 + 60_000 });
    expect(await retainedDeltaDigests(connect(), prefix, 1_001_000)).toEqual([digest(1)]);
    expect(await retainedDeltaDigests(connect(), prefix, 1_061_001)).toEqual([]);
    expect(readFileSync(filePath, 'utf8')).not.toContain('pixel-7-lab-0042');

    const recomputed = await auditVerifyCommand({ file: filePath, json: true, recompute: () => digest(99) });
    expect(JSON.parse(recomputed.output)).toMatchObject({
      ok: true,
      records: 10,
      recomputed: 1,
      trustedKeySource: 'first-record',
    });
    const shown = await auditShowCommand({ file: filePath, json: false, round: 1 });
    expect(shown.output).toContain('round demo:1 (closed)');
    expect(shown.output).toContain('aggregation fedavg (ffa-lora), 1 participants');

    const exported = join(dir, `${prefix}-export.jsonl`);
    expect(await auditExportCommand({ redis: connect(), prefix, toFile: exported })).toEqual({
      exitCode: 0,
      output: `exported 10 round-log lines (records and tree heads) to ${exported}\n`,
    });
    expect(readFileSync(exported, 'utf8')).toBe(readFileSync(filePath, 'utf8'));

    // The wrong prefix exports nothing: it fails, naming the prefixes that do hold a log.
    const wrong = await auditExportCommand({ redis: connect(), prefix: `${prefix}-typo`, toFile: exported });
    expect(wrong.exitCode).toBe(1);
    expect(wrong.output).toMatch(
      new RegExp(
        `^no round log under prefix "${prefix}-typo" in this Redis; round logs exist under --prefix .*${prefix}`,
      ),
    );
    expect(readFileSync(exported, 'utf8')).toBe(readFileSync(filePath, 'utf8'));
  });
});

describe('signTail', () => {
  it('signs the tail a writer killed before its head left, consistent with the head before, and only once', async () => {
    const prefix = uniquePrefix('rlog-tail');
    const filePath = join(dir, `${prefix}.jsonl`);
    const crashed = openRoundLog({ ...writerAt(prefix, filePath), treeHeadIntervalMs: 3_600_000 });
    const tail = await leaveUnsignedTail(crashed, 3);
    const trustedKey = toBase64(key1.publicKey);
    const before = await readRoundLogEntries(connect(), prefix);
    // round.opened and its head, then three records no head covers.
    expect(before.map((line) => ('treeHead' in line ? 'head' : line.event.type))).toEqual([
      'round.opened',
      'head',
      'update.refused',
      'update.refused',
      'update.refused',
    ]);
    const verdict = await verifyRoundLog(before, { trustedKey });
    expect(verdict).toMatchObject({ ok: false, firstBad: 2 });
    expect(verdict.problems.map((p) => p.code)).toEqual(['UNSIGNED']);

    const restarted = openRoundLog(writerAt(prefix, filePath));
    const head = await restarted.signTail();
    expect(head?.treeHead.treeSize).toBe(4);
    const after = await readRoundLogEntries(connect(), prefix);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after).toHaveLength(before.length + 1);
    // verify checks the new head's signature and its consistency proof from the head of 1 record.
    expect(await verifyRoundLog(after, { trustedKey })).toMatchObject({ ok: true, problems: [] });
    expect(readFileSync(filePath, 'utf8').trimEnd().split('\n')).toEqual(
      after.map((line) => JSON.stringify(line)),
    );
    for (const record of tail) {
      const answer = await restarted.proveInclusion(record.leafIndex);
      expect(answer?.head).toEqual(head);
    }
    // Signed now: a second start writes nothing, nor does a start on an empty log.
    expect(await restarted.signTail()).toBeNull();
    expect(await readRoundLogEntries(connect(), prefix)).toHaveLength(after.length);
    expect(await openRoundLog(writerAt(uniquePrefix('rlog-empty'), filePath)).signTail()).toBeNull();
  });

  it('refuses to sign with a key that is no longer the log signer', async () => {
    const prefix = uniquePrefix('rlog-tail-key');
    const filePath = join(dir, `${prefix}.jsonl`);
    await leaveUnsignedTail(
      openRoundLog({ ...writerAt(prefix, filePath), treeHeadIntervalMs: 3_600_000 }),
      1,
    );
    const stranger = openRoundLog({ ...writerAt(prefix, filePath), signingKey: key2 });
    await expect(stranger.signTail()).rejects.toThrow(/the round log is now signed by/);
  });
});

describe('auditVerifyCommand on a damaged file', () => {
  it('names a corrupt line instead of crashing, and fails on a missing file', async () => {
    const prefix = uniquePrefix('rlog-corrupt');
    const filePath = join(dir, `${prefix}.jsonl`);
    const writer = openRoundLog(writerAt(prefix, filePath));
    for (let i = 1; i <= 3; i++) await writer.append(roundOpened(1, `demo-${i}`));
    const lines = readFileSync(filePath, 'utf8').split('\n');
    lines[2] = '{"seq":2, this is not json';
    const damaged = join(dir, `${prefix}-damaged.jsonl`);
    writeFileSync(damaged, lines.join('\n'));
    const text = await auditVerifyCommand({ file: damaged, json: false });
    expect(text.exitCode).toBe(1);
    expect(text.output).toMatch(/^FAIL: first bad position 2 \(line 3\): PARSE: line 3 is not valid JSON/);
    expect(text.output).toContain('taken from the first tree head');
    const json = JSON.parse((await auditVerifyCommand({ file: damaged, json: true })).output) as {
      ok: boolean;
      firstBad: number;
    };
    expect(json).toMatchObject({ ok: false, firstBad: 2 });
    const missing = await auditVerifyCommand({ file: join(dir, 'nope.jsonl'), json: false });
    expect(missing.exitCode).toBe(1);
    expect(missing.output).toMatch(/^FAIL/);
  });
});
