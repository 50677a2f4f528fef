import type { AdapterSpec } from '@flotilla/protocol';
import {
  AdapterConfigSchema,
  FlotillaAdapterConfigSchema,
  decodeSafetensors,
  biasTensorName,
  loraTensorNames,
  weightTensorName,
} from '@flotilla/protocol';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/backend.js';
import { createAdaptedModel } from './adapted-model.js';
import { exportAdapter, importAdapter } from './peft-io.js';

const DIGEST = 'ab'.repeat(32);
const spec: AdapterSpec = { mode: 'lora', targetModules: ['hidden'], r: 4, alpha: 8, seed: 9 };

function base(): tf.LayersModel {
  const model = tf.sequential();
  model.add(tf.layers.dense({ inputShape: [10], units: 6, activation: 'relu', name: 'hidden' }));
  model.add(tf.layers.dense({ units: 2, name: 'head' }));
  return model;
}

describe('PEFT export/import', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'cpu', logger: () => undefined });
  });

  it('round-trips identical tensors with PEFT names, layouts and a valid adapter_config.json', () => {
    const model = base();
    const source = createAdaptedModel({ base: model, spec });
    const names = loraTensorNames('hidden');
    const bValues = Float32Array.from({ length: 24 }, (_, i) => (i - 12) / 7);
    source.applyDelta(new Map([[names.b, { shape: [6, 4], values: bValues }]]));
    const exported = exportAdapter(source, { baseModelDigest: DIGEST });

    const file = decodeSafetensors(exported.safetensors);
    expect([...file.tensors.keys()].sort()).toEqual([
      'base_model.model.hidden.lora_A.weight',
      'base_model.model.hidden.lora_B.weight',
    ]);
    expect(file.tensors.get(names.a)?.shape).toEqual([4, 10]); // [r, in]
    expect(file.tensors.get(names.b)?.shape).toEqual([6, 4]); // [out, r]
    expect(file.tensors.get(names.a)?.dtype).toBe('F32');
    const json: unknown = JSON.parse(JSON.stringify(exported.config));
    expect(AdapterConfigSchema.safeParse(json).success).toBe(true);
    expect(FlotillaAdapterConfigSchema.parse(json)).toMatchObject({
      r: 4,
      lora_alpha: 8,
      target_modules: ['hidden'],
    });

    const target = createAdaptedModel({ base: model, spec });
    importAdapter(target, exported.safetensors, json);
    const a = source.adapterTensors();
    const b = target.adapterTensors();
    for (const [name, t] of a) expect(b.get(name)?.values).toEqual(t.values);
    expect(b.get(names.b)?.values).toEqual(bValues);

    const x = tf.randomNormal([3, 10], 0, 1, 'float32', 4);
    const y1 = source.predict(x);
    const y2 = target.predict(x);
    expect(Array.from(y2.dataSync())).toEqual(Array.from(y1.dataSync()));
    tf.dispose([x, y1, y2]);

    const other = createAdaptedModel({ base: model, spec: { ...spec, r: 2 } });
    expect(() => importAdapter(other, exported.safetensors, json)).toThrow(
      expect.objectContaining({ code: 'BAD_REQUEST' }),
    );
    [source, target, other].forEach((m) => m.dispose());
    model.dispose();
  });

  it('full mode: round-trips [out, in] kernel offsets and bias offsets under peft_type FLOTILLA_FULL', () => {
    const model = base();
    const fullSpec: AdapterSpec = {
      mode: 'full',
      targetModules: ['hidden', 'head'],
      r: 1,
      alpha: 1,
      seed: 0,
    };
    const source = createAdaptedModel({ base: model, spec: fullSpec });
    const w = Float32Array.from({ length: 60 }, (_, i) => (i % 7) / 10 - 0.3);
    const b = Float32Array.from({ length: 6 }, (_, i) => i / 10);
    source.applyDelta(
      new Map([
        [weightTensorName('hidden'), { shape: [6, 10], values: w }],
        [biasTensorName('hidden'), { shape: [6], values: b }],
      ]),
    );
    const exported = exportAdapter(source, { baseModelDigest: DIGEST });
    const file = decodeSafetensors(exported.safetensors);
    expect([...file.tensors.keys()].sort()).toEqual([
      'base_model.model.head.bias',
      'base_model.model.head.weight',
      'base_model.model.hidden.bias',
      'base_model.model.hidden.weight',
    ]);
    expect(file.tensors.get(weightTensorName('hidden'))?.shape).toEqual([6, 10]); // [out, in]
    expect(file.tensors.get(weightTensorName('head'))?.shape).toEqual([2, 6]);
    const json: unknown = JSON.parse(JSON.stringify(exported.config));
    expect(FlotillaAdapterConfigSchema.parse(json)).toMatchObject({
      peft_type: 'FLOTILLA_FULL',
      bias: 'none',
      flotilla: { mode: 'full', offsets: ['weight', 'bias'] },
    });

    const target = createAdaptedModel({ base: model, spec: fullSpec });
    const loaded = importAdapter(target, exported.safetensors, json);
    expect(loaded.get(weightTensorName('hidden'))?.values).toEqual(w);
    for (const [name, t] of source.adapterTensors())
      expect(target.adapterTensors().get(name)?.values).toEqual(t.values);
    const x = tf.randomNormal([3, 10], 0, 1, 'float32', 8);
    const y1 = source.predict(x);
    const y2 = target.predict(x);
    expect(Array.from(y2.dataSync())).toEqual(Array.from(y1.dataSync()));
    tf.dispose([x, y1, y2]);

    // A LoRA model must not take a full-mode file.
    const lora = createAdaptedModel({ base: model, spec });
    expect(() => importAdapter(lora, exported.safetensors, json)).toThrow(
      expect.objectContaining({ code: 'BAD_REQUEST' }),
    );
    [source, target, lora].forEach((m) => m.dispose());
    model.dispose();
  });
});
