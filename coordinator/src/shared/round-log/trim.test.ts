import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fromHex,
  keyPairFromSeed,
  roundLogLeafHash,
  verifyInclusion,
  type RoundLogEventOf,
  type RoundLogRecord,
} from '@flotilla/protocol';
import { uniquePrefix } from '../../../../test-support/redis.js';
import { leaveUnsignedTail, roundOpened, testRedisConnections } from '../../../test/support/index.js';
import { handleAuditRequest } from '../audit-api.js';
import { auditExportCommand, auditVerifyCommand } from './cli.js';
import { roundLogKeys } from './keys.js';
import { auditMirrorsCommand } from './mirrors-command.js';
import { mirrorIdOf, syncMirror } from './mirror.js';
import { readRoundLogEntries, readRoundLogLines } from './stream.js';
import { listRoundLogMirrors, removeRoundLogMirror, trimRoundLog, type LaggingMirror } from './trim.js';
import { openRoundLog, type OpenRoundLogOptions } from './writer.js';

const key = keyPairFromSeed(new Uint8Array(32).fill(8));
const secret = new Uint8Array(32).fill(9);
const connect = testRedisConnections();
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-trim-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function writerAt(prefix: string, filePath: string, extra: Partial<OpenRoundLogOptions> = {}) {
  return openRoundLog({
    redis: connect(),
    prefix,
    filePath,
    signingKey: key,
    pseudonymSecret: secret,
    ...extra,
  });
}

function accepted(pseudonym: string, n: number): RoundLogEventOf<'update.accepted'> {
  return {
    type: 'update.accepted',
    taskId: 'demo',
    roundId: 'demo:1',
    device: pseudonym,
    blobDigest: (n + 1).toString(16).padStart(64, '0'),
    norm: 0.5,
    clipBound: 1,
    clipped: false,
    bytes: 64,
    numExamples: 10,
  };
}

/** Round 1 opened, with devices d0…d199 selected (an accepted update needs both). */
async function openRound(writer: ReturnType<typeof openRoundLog>, devices = 200): Promise<void> {
  await writer.append(roundOpened(1));
  await writer.append({
    type: 'round.selected',
    taskId: 'demo',
    roundId: 'demo:1',
    devices: Array.from({ length: devices }, (_, i) => writer.pseudonymize(`d${i}`)),
    eligible: devices,
  });
}

/** Opens round 1 and appends `count` accepted updates (devices `from`…), in flight together. */
async function appendAccepted(
  writer: ReturnType<typeof openRoundLog>,
  count: number,
  from = 0,
): Promise<RoundLogRecord[]> {
  if (from === 0) await openRound(writer);
  const records = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      writer.append(accepted(writer.pseudonymize(`d${from + i}`), from + i)),
    ),
  );
  await writer.flush();
  return records;
}

const xlen = (prefix: string) => connect().xlen(roundLogKeys(prefix).stream);
const writeLines = (path: string, lines: string[]) =>
  writeFileSync(path, lines.map((l) => `${l}\n`).join(''));
const fileLines = (path: string) => readFileSync(path, 'utf8').split('\n').filter(Boolean);

describe('round-log trimming', () => {
  it('keeps the stream bounded while two writers sharing one mirror file keep every line in it', async () => {
    const prefix = uniquePrefix('trim-bounded');
    const filePath = join(dir, `${prefix}.jsonl`);
    const writers = [
      writerAt(prefix, filePath, { keepLines: 40 }),
      writerAt(prefix, filePath, { keepLines: 40 }),
    ];
    if (writers[0]) await openRound(writers[0], 400);
    await Promise.all(
      Array.from({ length: 400 }, (_, i) => {
        const writer = writers[i % 2];
        return writer
          ? writer.append(accepted(writer.pseudonymize(`d${i}`), i))
          : Promise.reject(new Error('writer'));
      }),
    );
    await Promise.all(writers.map((w) => w.flush()));
    // 401 records plus their tree heads; one mirror entry for the shared file.
    const lines = fileLines(filePath);
    expect(lines.length).toBeGreaterThan(401);
    expect(await listRoundLogMirrors(connect(), prefix)).toEqual([
      { mirrorId: mirrorIdOf(filePath), seq: lines.length - 1, at: expect.any(Number) as number },
    ]);
    expect(await xlen(prefix)).toBeLessThanOrEqual(40);
    const verified = await auditVerifyCommand({ file: filePath, json: true });
    expect(JSON.parse(verified.output)).toMatchObject({ problems: [], ok: true, records: lines.length });
    // Every line, trimmed or not, read back through the mirror equals the file byte for byte.
    const read = await readRoundLogLines(connect(), prefix, -1, { mirrorPath: filePath });
    expect(read.map((l) => l.line)).toEqual(lines);
    // Pages from the middle of a mirror larger than one read chunk (found by bisection).
    expect(readFileSync(filePath).length).toBeGreaterThan(2 * 64 * 1024);
    for (const from of [1, 150, 333]) {
      const page = await readRoundLogLines(connect(), prefix, from - 1, { limit: 20, mirrorPath: filePath });
      expect(page.map((l) => l.line)).toEqual(lines.slice(from, from + 20));
    }
    // Without the mirror, a read of trimmed lines fails and says where they are.
    await expect(readRoundLogEntries(connect(), prefix)).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringContaining(mirrorIdOf(filePath)) as string,
    });
  });

  it('serves old audit pages and the full export from the mirror, and proves early leaves', async () => {
    const prefix = uniquePrefix('trim-readers');
    const filePath = join(dir, `${prefix}.jsonl`);
    const writer = writerAt(prefix, filePath, { keepLines: 25 });
    const records = await appendAccepted(writer, 150);
    const lines = fileLines(filePath);
    const first =
      Number((await connect().xrange(roundLogKeys(prefix).stream, '-', '+', 'COUNT', 1))[0]?.[0].slice(2)) -
      1;
    expect(first).toBeGreaterThan(100);

    const server = createServer((req, res) => {
      void handleAuditRequest(req, res, {
        redis: connect(),
        prefix,
        auditorTokens: ['t0ken'],
        mirrorPath: filePath,
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/audit`;
      const headers = { authorization: 'Bearer t0ken' };
      // Pages straddling the trim boundary and entirely below it.
      for (const from of [0, 37, first - 10]) {
        const page = (await (await fetch(`${base}/records?from=${from}&limit=30`, { headers })).json()) as {
          records: unknown[];
          next: number;
        };
        expect(page.records).toEqual(lines.slice(from, from + 30).map((l) => JSON.parse(l) as unknown));
        expect(page.next).toBe(from + 30);
      }
      const verify = (await (await fetch(`${base}/verify`, { headers })).json()) as {
        ok: boolean;
        records: number;
      };
      expect(verify).toMatchObject({ ok: true, records: lines.length });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }

    const out = join(dir, `${prefix}-export.jsonl`);
    const exported = await auditExportCommand({
      redis: connect(),
      prefix,
      toFile: out,
      mirrorPath: filePath,
    });
    expect(exported.exitCode).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(filePath, 'utf8'));
    const withoutMirror = await auditExportCommand({ redis: connect(), prefix, toFile: out });
    expect(withoutMirror).toMatchObject({
      exitCode: 1,
      output: expect.stringContaining('trimmed') as string,
    });

    // Tree nodes stay in Redis: the first leaves still prove against the last signed head.
    const head = await writer.head();
    if (!head) throw new Error('no signed head');
    for (const record of records.slice(0, 5)) {
      const answer = await writer.proveInclusion(record.leafIndex);
      expect(answer?.head).toEqual(head);
      expect(
        verifyInclusion({
          index: record.leafIndex,
          size: head.treeHead.treeSize,
          leafHash: roundLogLeafHash(record),
          proof: (answer?.proof ?? []).map(fromHex),
          root: fromHex(head.treeHead.rootHash),
        }),
      ).toEqual({ ok: true });
    }
    // The writer's own look-up of an old record (a repeated acceptance) comes from the mirror.
    const again = await writer.append(accepted(writer.pseudonymize('d0'), 0));
    expect(again.seq).toBeLessThan(first);
    expect(again).toEqual(JSON.parse(lines[again.seq] ?? 'null'));
  });

  it('holds lines for a registered mirror that stopped, reports it, and trims once it is removed', async () => {
    const prefix = uniquePrefix('trim-lagging');
    const filePath = join(dir, `${prefix}.jsonl`);
    const stalled = join(dir, `${prefix}-stalled.jsonl`);
    const lagging: LaggingMirror[] = [];
    const writer = writerAt(prefix, filePath, { keepLines: 20, onLaggingMirror: (l) => lagging.push(l) });
    await appendAccepted(writer, 5);
    // A second host mirrored up to here, then went away.
    await syncMirror({ redis: connect(), prefix, filePath: stalled });
    const stalledAt = fileLines(stalled).length - 1;
    // …ten minutes ago.
    await connect().hset(
      roundLogKeys(prefix).mirrors,
      mirrorIdOf(stalled),
      JSON.stringify({ seq: stalledAt, at: Date.now() - 600_000 }),
    );
    await appendAccepted(writer, 150, 5);
    const [firstEntry] = await connect().xrange(roundLogKeys(prefix).stream, '-', '+', 'COUNT', 1);
    expect(Number(firstEntry?.[0].slice(2)) - 1).toBeLessThanOrEqual(stalledAt + 1);
    expect(lagging[0]).toMatchObject({ mirrorId: mirrorIdOf(stalled), seq: stalledAt });
    expect(await xlen(prefix)).toBeGreaterThan(150);

    // What the operator sees, then the dead mirror removed.
    const listed = await auditMirrorsCommand({ redis: connect(), prefix });
    expect(listed.output).toContain(`${mirrorIdOf(stalled)}  through line ${stalledAt} (`);
    expect(listed.output).toContain(`${mirrorIdOf(filePath)}  through line`);
    const removed = await auditMirrorsCommand({ redis: connect(), prefix, remove: mirrorIdOf(stalled) });
    expect(removed.exitCode).toBe(0);
    expect(await removeRoundLogMirror(connect(), prefix, mirrorIdOf(stalled))).toBe(false);
    await trimRoundLog(connect(), prefix, 20);
    expect(await xlen(prefix)).toBe(20);
  });

  it('refuses old reads from a truncated, missing or foreign mirror, and a cut mirror stops trimming', async () => {
    const prefix = uniquePrefix('trim-broken');
    const filePath = join(dir, `${prefix}.jsonl`);
    const writer = writerAt(prefix, filePath, { keepLines: 10 });
    await appendAccepted(writer, 60);
    const lines = fileLines(filePath);
    const read = () => readRoundLogEntries(connect(), prefix, { mirrorPath: filePath });

    // A record edited well below the stream: it is not the leaf the Merkle tree holds.
    writeLines(
      filePath,
      lines.map((l, seq) => (seq === 5 ? l.replace('"bytes":64', '"bytes":65') : l)),
    );
    await expect(read()).rejects.toMatchObject({
      code: 'CORRUPT_FILE',
      message: expect.stringContaining('line 5 is not the record') as string,
    });
    // Another log's mirror, or an edited one: the line where the file meets the stream differs.
    const [firstEntry] = await connect().xrange(roundLogKeys(prefix).stream, '-', '+', 'COUNT', 1);
    const first = Number(firstEntry?.[0].slice(2)) - 1;
    const edited = lines.map((l, seq) => (seq === first ? l.replace(`"seq":${seq},`, `"seq": ${seq},`) : l));
    writeLines(filePath, edited);
    await expect(read()).rejects.toMatchObject({ code: 'CORRUPT_FILE' });
    writeLines(filePath, lines.slice(0, 12));
    await expect(read()).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringContaining('only up to 11') as string,
    });
    rmSync(filePath);
    await expect(read()).rejects.toMatchObject({ code: 'NOT_FOUND' });

    // The writer cannot refill a cut file from Redis: it says so and records what the file holds,
    // which keeps every later line in the stream.
    writeLines(filePath, lines.slice(0, 12));
    const errors: unknown[] = [];
    const restarted = writerAt(prefix, filePath, { keepLines: 10, onMirrorError: (e) => errors.push(e) });
    await appendAccepted(restarted, 20, 60);
    expect(errors[0]).toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringContaining('copy a complete mirror') as string,
    });
    expect((await listRoundLogMirrors(connect(), prefix))[0]?.seq).toBe(11);
    const lengthBefore = await xlen(prefix);
    await trimRoundLog(connect(), prefix, 10);
    expect(await xlen(prefix)).toBe(lengthBefore);
  });

  it('never trims a line that no signed tree head covers', async () => {
    const prefix = uniquePrefix('trim-unsigned');
    const filePath = join(dir, `${prefix}.jsonl`);
    const writer = writerAt(prefix, filePath, { keepLines: 0 });
    const tail = await leaveUnsignedTail(writer, 6);
    await writer.flush();
    const lines = fileLines(filePath);
    const lastHead = lines
      .map((l) => JSON.parse(l) as { seq: number; treeHead?: unknown })
      .filter((l) => l.treeHead)
      .at(-1);
    // Mirrored through the end, keep 1: only the lines up to the last head may go.
    const result = await trimRoundLog(connect(), prefix, 1);
    expect(result.through).toBe(lastHead?.seq);
    const left = await readRoundLogLines(connect(), prefix, -1, { mirrorPath: filePath });
    expect(left.map((l) => l.line)).toEqual(lines);
    const inStream = await connect().xrange(roundLogKeys(prefix).stream, '-', '+');
    const unsignedSeqs = tail.filter((r) => r.seq > (lastHead?.seq ?? -1)).map((r) => r.seq);
    expect(unsignedSeqs.length).toBeGreaterThan(0);
    for (const seq of unsignedSeqs) expect(inStream.some(([id]) => id === `0-${seq + 1}`)).toBe(true);
  });
});
