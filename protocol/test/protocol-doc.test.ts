// docs/protocol.md is the spec a device in another language is written from. These tests hold its
// field tables to the zod schemas, and its test vectors and byte layouts to the implementation.
// The vectors were computed by scripts/protocol-vectors.py, an independent Python implementation
// of the spec's prose, not by the TypeScript code they check.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { initialAdapterTensors, initialLoraA } from '../src/adapter-init.js';
import { bundleFloat32Weights, decodeBaseBundle, encodeBaseBundle } from '../src/base-bundle.js';
import { manifestDigest } from '../src/manifest-digest.js';
import { CheckInSchema } from '../src/messages/checkin.js';
import { AdapterManifestSchema, type AdapterManifest } from '../src/messages/manifest.js';
import { RoundPlanSchema } from '../src/messages/round-plan.js';
import { TaskDefinitionFieldsSchema, TaskDefinitionSchema } from '../src/messages/task.js';
import { UpdateMetadataSchema } from '../src/messages/update.js';
import { maxExamplesPerUpdate } from '../src/update-weight.js';
import { SeededRandom, fnv1a32 } from '../src/seeded-random.js';
import { codeSpans, docFields, fieldTableProblems, schemaFields, tablesUnder } from './support/index.js';

describe('docs/protocol.md field tables match the schemas', () => {
  it.each([
    ['Check-in fields', CheckInSchema, 'input'],
    ['Round plan fields', RoundPlanSchema, 'output'],
    ['Update metadata fields', UpdateMetadataSchema, 'input'],
    ['Task definition', TaskDefinitionFieldsSchema, 'input'],
    ['Signed manifest', AdapterManifestSchema, 'output'],
  ] as const)('%s', (heading, schema, io) => {
    expect(fieldTableProblems(heading, schema, io)).toEqual([]);
  });

  it('the checker sees a wrong default, a missing field and a missing enum value', () => {
    // The same comparison against a schema that disagrees with the table must complain.
    const drifted = TaskDefinitionFieldsSchema.extend({
      extraField: TaskDefinitionFieldsSchema.shape.description,
    });
    expect(fieldTableProblems('Task definition', drifted, 'input')).toContain(
      'extraField: in the schema but not documented',
    );
    const fields = schemaFields(TaskDefinitionFieldsSchema, 'input');
    expect(fields.get('rounds.overSelection')).toMatchObject({ hasDefault: true, defaultValue: 1.3 });
    expect(fields.get('moduleShapes.*.in')).toMatchObject({ required: true, leaf: true });
    expect(fields.get('adapter.mode')?.values).toEqual(['lora', 'ffa-lora', 'bias', 'full']);
  });

  it('task defaults marked computed are filled in, optional ones are left out, literals apply', () => {
    const minimal = {
      taskId: 'doc-task',
      baseModel: { digest: 'a'.repeat(64), format: 'tfjs-layers-bundle', bytes: 1000 },
      adapter: { mode: 'lora', targetModules: ['hidden'] },
      moduleShapes: { hidden: { in: 784, out: 16 } },
      rounds: { goalCount: 10, training: { learningRate: 0.1 } },
      policy: { clipNorm: 1 },
    };
    const parsed = TaskDefinitionSchema.parse(minimal);
    // The one default the coordinator writes at registration rather than at parse (task-registry.ts).
    const registered = {
      ...parsed,
      policy: { ...parsed.policy, maxExamplesPerUpdate: maxExamplesPerUpdate(parsed) },
    };
    const task = registered as unknown as Record<string, unknown>;
    const at = (path: string): unknown =>
      path
        .split('.')
        .reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], task);
    const parentPresent = (path: string) =>
      path.split('.').length === 1 || at(path.replace(/\.[^.]+$/, '')) !== undefined;
    let checked = 0;
    for (const field of docFields('Task definition')) {
      if (field.path.includes('*') || !parentPresent(field.path) || field.rule === 'required') continue;
      checked++;
      if (field.rule.startsWith('computed')) expect(at(field.path), field.path).toBeDefined();
      else if (field.rule === 'optional') expect(at(field.path), field.path).toBeUndefined();
      else expect(at(field.path), field.path).toEqual(JSON.parse(codeSpans(field.rule)[0] ?? ''));
    }
    expect(checked).toBeGreaterThan(30);
    // The computed rules as written: goal 10 with the defaults commits with 6; 4 bytes per LoRA value + 64 KiB.
    expect(at('rounds.minReports')).toBe(6);
    expect(at('policy.maxBlobBytes')).toBe(4 * 8 * (784 + 16) + 65_536);
    expect(at('policy.maxExamplesPerUpdate')).toBe(200 * 32);
  });
});

describe('docs/protocol.md Seeded LoRA A vectors', () => {
  const [seedRows = [], fnvRows = [], aRows = []] = tablesUnder('Seeded LoRA A');

  it('SeededRandom gives the documented first draws', () => {
    expect(seedRows.length).toBeGreaterThanOrEqual(3);
    for (const [seed = '', draws = ''] of seedRows) {
      const random = new SeededRandom(Number(seed));
      const expected = draws.split(',').map((d) => Number(d.trim()));
      expect(
        Array.from({ length: 4 }, () => random.nextUint32()),
        `seed ${seed}`,
      ).toEqual(expected);
    }
  });

  it('fnv1a32 hashes UTF-16 code units as documented', () => {
    expect(fnvRows.length).toBeGreaterThanOrEqual(3);
    for (const [text = '', hash = ''] of fnvRows)
      expect(fnv1a32(codeSpans(text)[0] ?? ''), text).toBe(Number(hash));
  });

  it('version 0 A (lora and ffa-lora) starts with the documented values, row-major', () => {
    expect(aRows.length).toBeGreaterThanOrEqual(3);
    for (const [seed = '', module = '', r = '', fanIn = '', moduleSeed = '', row0 = '', row1 = ''] of aRows) {
      const name = codeSpans(module)[0] ?? '';
      const width = Number(fanIn);
      const spec = {
        mode: 'lora' as const,
        targetModules: [name],
        r: Number(r),
        alpha: 8,
        seed: Number(seed),
      };
      expect(((Number(seed) % 2 ** 32) ^ fnv1a32(name)) >>> 0, `module seed of ${name}`).toBe(
        Number(moduleSeed),
      );
      const a = initialLoraA(spec, name, width);
      const expected = [...row0.split(','), row1].map((v) => Math.fround(Number(v.trim())));
      expect([a[0], a[1], a[2], a[3], a[width]], `seed ${seed}, ${name}`).toEqual(expected);
      const ffa = initialAdapterTensors({ ...spec, mode: 'ffa-lora' }, { [name]: { in: width, out: 3 } });
      expect(ffa.get(`base_model.model.${name}.lora_A.weight`)?.values).toEqual(a);
    }
  });
});

/** Canonical JSON of plain data (sorted keys, no whitespace), written from the spec for these tests. */
function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${sortedJson((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

describe('docs/protocol.md Base model bundle', () => {
  it('a bundle built byte by byte from the layout table is what the codec writes and reads', () => {
    const topology = { class_name: 'Sequential', config: { name: 'doc', layers: [] } };
    const weightSpecs = [
      { name: 'hidden/kernel', shape: [2, 3], dtype: 'float32' as const },
      { name: 'hidden/bias', shape: [3], dtype: 'float32' as const },
    ];
    const values = [0.5, -1, 2, 0.25, 3, -4, 1, 2, 3];
    const weights = Buffer.alloc(4 * values.length);
    values.forEach((v, i) => weights.writeFloatLE(v, 4 * i));
    const header = Buffer.from(
      sortedJson({
        format: 'tfjs-layers-bundle',
        modelTopology: topology,
        weightSpecs,
        weightBytes: weights.length,
      }),
      'utf8',
    );
    const length = Buffer.alloc(4);
    length.writeUInt32LE(header.length);
    const byHand = Buffer.concat([
      Buffer.from('FLTLB\0', 'latin1'),
      Buffer.from([1, 0]),
      length,
      header,
      weights,
    ]);

    const written = encodeBaseBundle({
      modelTopology: topology,
      weightSpecs,
      weightData: new Uint8Array(weights),
    });
    expect(Buffer.from(written).equals(byHand)).toBe(true);
    expect(decodeBaseBundle(new Uint8Array(byHand)).header.weightBytes).toBe(36);
    const kernel = bundleFloat32Weights(new Uint8Array(byHand)).get('hidden/kernel');
    expect(kernel).toEqual({ shape: [2, 3], values: Float32Array.from(values.slice(0, 6)) });
    // One byte more or less than 12 + H + N is not a bundle.
    expect(() => decodeBaseBundle(new Uint8Array(Buffer.concat([byHand, Buffer.from([0])])))).toThrow(
      /length/,
    );
  });
});

describe('docs/protocol.md Signed manifest', () => {
  it('manifestDigest is the SHA-256 of the canonical JSON of the manifest alone', () => {
    const digest = (c: string) => c.repeat(64);
    const manifest: AdapterManifest = AdapterManifestSchema.parse({
      taskId: 'doc-task',
      version: 2,
      parentVersion: 1,
      roundId: 'doc-task:2',
      baseModelDigest: digest('a'),
      spec: { mode: 'ffa-lora', targetModules: ['hidden'], r: 4, alpha: 8, seed: 7 },
      adapter: { f32: { digest: digest('b'), bytes: 900 }, f16: { digest: digest('c'), bytes: 500 } },
      delta: null,
      adapterConfigDigest: digest('d'),
      aggregation: { strategy: 'fedavg', loraRule: 'ffa', participants: 6 },
      metrics: { holdoutAccuracy: 0.875 },
      audit: { decision: 'promote', reasons: [] },
      policyDigest: digest('e'),
      privacy: null,
      expectedCost: { fullBytes: 900, deltaBytes: 0 },
      rollbackOf: null,
      createdAt: 1763780000000,
    });
    const expected = createHash('sha256').update(sortedJson(manifest), 'utf8').digest('hex');
    expect(manifestDigest(manifest)).toBe(expected);
  });
});
