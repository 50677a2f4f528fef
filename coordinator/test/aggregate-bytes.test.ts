import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { initialAdapterTensors, type RoundLogEventOf } from '@flotilla/protocol';
import { processAggregateJob } from '../src/worker/job/process-aggregate-job.js';
import { workerRoundLog } from '../src/worker/job/worker-round-log.js';
import { deltaLike, jobData, PERMISSIVE_AUDIT, testRandom, workerTestEnvs } from './support/index.js';
import type { TensorMap } from './support/index.js';

// docs/auditing.md ("The aggregate, byte for byte") must be enough for an auditor to recompute an
// aggregate with their own code. This test is such an auditor: it reads only the aggregation
// record and the participants' deltas, computes the weighted FedAvg step itself (float64
// accumulation, one rounding to float32, lora_A left out under the ffa rule), writes the
// safetensors file from the documented layout with its own encoder, and must land on the
// record's aggregateDigest.

const openEnv = workerTestEnvs();

/** The documented file: 8-byte LE header length, compact JSON header padded with spaces, F32 LE data. */
function documentedFile(roundId: string, tensors: Map<string, { shape: number[]; values: Float32Array }>) {
  const names = [...tensors.keys()].sort();
  let offset = 0;
  const entries = names.map((name) => {
    const t = tensors.get(name);
    if (!t) throw new Error(name);
    const end = offset + 4 * t.values.length;
    const entry = `"${name}":{"dtype":"F32","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`;
    offset = end;
    return entry;
  });
  let header = `{"__metadata__":{"flotilla.round":"${roundId}"},${entries.join(',')}}`;
  while (Buffer.byteLength(header) % 8 !== 0) header += ' ';
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(header)));
  const data = Buffer.alloc(offset);
  let at = 0;
  for (const name of names)
    for (const v of tensors.get(name)?.values ?? []) {
      data.writeFloatLE(v, at);
      at += 4;
    }
  return Buffer.concat([length, Buffer.from(header, 'utf8'), data]);
}

async function round(label: string, mode: 'lora' | 'ffa-lora', sendZeroA: boolean) {
  const env = openEnv(label);
  const modules = { hidden: { in: 5, out: 4 } };
  const spec = { mode, targetModules: ['hidden'], r: 2, alpha: 4, seed: 3 };
  const { task } = await env.createTask({
    taskId: label,
    adapter: spec,
    modules,
    goalCount: 4,
    minReports: 2,
    audit: PERMISSIVE_AUDIT,
  });
  const initial = initialAdapterTensors(task.adapter, modules);
  const random = testRandom(5);
  const deltas: TensorMap[] = [];
  const refs = [];
  for (let i = 0; i < 4; i++) {
    const delta = deltaLike(initial, (name) =>
      mode === 'ffa-lora' && name.includes('lora_A') ? 0 : 0.05 * random(),
    );
    if (mode === 'ffa-lora' && !sendZeroA)
      for (const name of [...delta.keys()]) if (name.includes('lora_A')) delta.delete(name);
    deltas.push(delta);
    refs.push(await env.storeDelta(delta, { updateId: `u${i}`, numExamples: 7 + 3 * i }));
  }
  const deps = { ...env.deps, roundLog: workerRoundLog(env.log, { retainedUntil: () => 4_000_000_000_000 }) };
  await processAggregateJob(
    jobData({ taskId: label, roundNumber: 1, parentVersion: 0, updates: refs }),
    deps,
    1,
  );
  const [event] = env.log.ofType('aggregation');
  if (!event) throw new Error('no aggregation record');
  return { event, deltas, refs };
}

/** The auditor's own weighted FedAvg over the record's participants, from their deltas. */
function ownFedAvg(
  event: RoundLogEventOf<'aggregation'>,
  byDigest: Map<string, TensorMap>,
): Map<string, { shape: number[]; values: Float32Array }> {
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  const first = byDigest.get(event.participants[0]?.blobDigest ?? '');
  if (!first) throw new Error('participant delta');
  const total = event.participants.reduce((sum, p) => sum + p.weight, 0);
  for (const [name, tensor] of first) {
    if (event.loraRule === 'ffa' && name.includes('lora_A')) continue;
    const sum = new Float64Array(tensor.values.length);
    for (const p of event.participants) {
      const values = byDigest.get(p.blobDigest)?.get(name)?.values ?? [];
      values.forEach((v, i) => (sum[i] = (sum[i] ?? 0) + p.weight * v));
    }
    out.set(name, { shape: [...tensor.shape], values: Float32Array.from(sum, (s) => s / total) });
  }
  return out;
}

describe('an aggregate recomputed from the documentation alone', () => {
  it.each([
    ['lora (fedit: every tensor)', 'lora', false],
    ['ffa-lora, lora_A left out by the devices', 'ffa-lora', false],
    ['ffa-lora, lora_A sent as zeros', 'ffa-lora', true],
  ] as const)('%s', async (_, mode, sendZeroA) => {
    const { event, deltas, refs } = await round(`bytes-${mode}-${String(sendZeroA)}`, mode, sendZeroA);
    expect(event.strategy).toBe('fedavg');
    const byDigest = new Map<string, TensorMap>(
      refs.map((ref, i) => [ref.blobDigest, deltas[i] ?? new Map()]),
    );
    const file = documentedFile(event.roundId, ownFedAvg(event, byDigest));
    expect(createHash('sha256').update(file).digest('hex')).toBe(event.aggregateDigest);
  });
});
