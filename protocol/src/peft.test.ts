import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlotillaError } from './errors.js';
import {
  adapterConfigFromSpec,
  AdapterConfigSchema,
  biasTensorName,
  FlotillaAdapterConfigSchema,
  FLOTILLA_FULL_PEFT_TYPE,
  loraTensorNames,
  parseAdapterConfig,
  parseAdapterTensorName,
  PEFT_PREFIX,
  weightTensorName,
} from './peft.js';

const DIGEST = 'ab'.repeat(32);

describe('PEFT tensor names', () => {
  it('follows the PEFT layout', () => {
    expect(PEFT_PREFIX).toBe('base_model.model.');
    expect(loraTensorNames('dense_1')).toEqual({
      a: 'base_model.model.dense_1.lora_A.weight',
      b: 'base_model.model.dense_1.lora_B.weight',
    });
    expect(biasTensorName('dense_1')).toBe('base_model.model.dense_1.bias');
    expect(weightTensorName('dense_1')).toBe('base_model.model.dense_1.weight');
    expect(parseAdapterTensorName('base_model.model.dense_1.weight')).toEqual({
      module: 'dense_1',
      kind: 'weight',
    });
    // A name as PEFT writes it for a Llama attention projection.
    expect(parseAdapterTensorName('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')).toEqual({
      module: 'model.layers.0.self_attn.q_proj',
      kind: 'lora_A',
    });
  });

  it.each([
    'dense_1.lora_A.weight',
    'base_model.model.lora_A.weight',
    'base_model.model.weight',
    'base_model.model.dense.lora_A.weight.extra',
    'base_model.model.dense.weight.extra',
    '',
  ])('returns null for a non-adapter name %j', (name) => {
    expect(parseAdapterTensorName(name)).toBeNull();
  });

  it('refuses an empty module', () => {
    expect(() => loraTensorNames('')).toThrow(FlotillaError);
    expect(() => biasTensorName('')).toThrow(FlotillaError);
    expect(() => weightTensorName('')).toThrow(FlotillaError);
  });

  it('refuses a weight name that would read back as a LoRA factor', () => {
    expect(() => weightTensorName('dense.lora_A')).toThrow(FlotillaError);
    expect(() => weightTensorName('dense.lora_B')).toThrow(FlotillaError);
    expect(() => weightTensorName('lora_A')).toThrow(FlotillaError);
    // Any other module name is fine, even one that looks like a misspelt factor.
    expect(parseAdapterTensorName('base_model.model.dense.lora_C.weight')).toEqual({
      module: 'dense.lora_C',
      kind: 'weight',
    });
    // Not a suffix: allowed, and it reads back.
    expect(parseAdapterTensorName(weightTensorName('dense.lora_A.x'))).toEqual({
      module: 'dense.lora_A.x',
      kind: 'weight',
    });
  });

  it('parse inverts every name builder, for any module (dots, newlines, suffix look-alikes)', () => {
    const moduleArb = fc.oneof(
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
      fc.constantFrom('x.lora_A.weight', 'a.bias', 'a.weight', 'a.bias.weight', 'a\nb', 'layers.0.mlp'),
    );
    fc.assert(
      fc.property(moduleArb, (module) => {
        const { a, b } = loraTensorNames(module);
        expect(parseAdapterTensorName(a)).toEqual({ module, kind: 'lora_A' });
        expect(parseAdapterTensorName(b)).toEqual({ module, kind: 'lora_B' });
        expect(parseAdapterTensorName(biasTensorName(module))).toEqual({ module, kind: 'bias' });
        if (!/(?:^|\.)lora_[AB]$/s.test(module))
          expect(parseAdapterTensorName(weightTensorName(module))).toEqual({ module, kind: 'weight' });
      }),
      { numRuns: 300 },
    );
  });
});

describe('adapter_config.json', () => {
  // Shaped like the adapter_config.json PEFT's LoraConfig.save_pretrained writes (keys in its order).
  const peftFile = JSON.stringify({
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: 'meta-llama/Llama-2-7b-hf',
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: 16,
    lora_dropout: 0.05,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: 8,
    rank_pattern: {},
    revision: null,
    target_modules: ['q_proj', 'v_proj'],
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: false,
  });

  it('parses a real PEFT file and keeps its extra keys', () => {
    const config = parseAdapterConfig(peftFile);
    expect(config.r).toBe(8);
    expect(config.lora_alpha).toBe(16);
    expect(config.target_modules).toEqual(['q_proj', 'v_proj']);
    expect(config.flotilla).toBeUndefined();
    expect(config['use_rslora']).toBe(false);
    expect(JSON.parse(JSON.stringify(config))).toEqual(JSON.parse(peftFile));
  });

  it('accepts PEFT variants: a regex target, a named init scheme, bias lora_only', () => {
    const base = JSON.parse(peftFile) as Record<string, unknown>;
    const config = AdapterConfigSchema.parse({
      ...base,
      target_modules: '.*proj',
      init_lora_weights: 'gaussian',
      bias: 'lora_only',
    });
    expect(config.target_modules).toBe('.*proj');
  });

  it.each([
    ['not JSON', '{'],
    ['not an object', '[]'],
    ['another PEFT type', { peft_type: 'IA3', r: 8, lora_alpha: 16, target_modules: ['q'] }],
    ['rank 0', { peft_type: 'LORA', r: 0, lora_alpha: 16, target_modules: ['q'] }],
    ['fractional rank', { peft_type: 'LORA', r: 1.5, lora_alpha: 16, target_modules: ['q'] }],
    ['negative alpha', { peft_type: 'LORA', r: 8, lora_alpha: -1, target_modules: ['q'] }],
    ['dropout 1', { peft_type: 'LORA', r: 8, lora_alpha: 16, lora_dropout: 1, target_modules: ['q'] }],
    ['no target modules', { peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: [] }],
    ['missing target modules', { peft_type: 'LORA', r: 8, lora_alpha: 16 }],
    ['unknown bias', { peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: ['q'], bias: 'some' }],
    [
      'string fan_in_fan_out',
      { peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: ['q'], fan_in_fan_out: 'no' },
    ],
    [
      'bad flotilla digest',
      {
        peft_type: 'LORA',
        r: 8,
        lora_alpha: 16,
        target_modules: ['q'],
        flotilla: { mode: 'lora', seed: 1, baseModelDigest: 'x' },
      },
    ],
    [
      'unknown flotilla mode',
      {
        peft_type: 'LORA',
        r: 8,
        lora_alpha: 16,
        target_modules: ['q'],
        flotilla: { mode: 'dora', seed: 1, baseModelDigest: DIGEST },
      },
    ],
    [
      'a full-mode section under peft_type LORA',
      {
        peft_type: 'LORA',
        r: 8,
        lora_alpha: 16,
        target_modules: ['q'],
        flotilla: { mode: 'full', seed: 1, baseModelDigest: DIGEST },
      },
    ],
    [
      'peft_type FLOTILLA_FULL without a full-mode section',
      { peft_type: 'FLOTILLA_FULL', r: 8, lora_alpha: 16, target_modules: ['q'] },
    ],
    [
      'an unknown offset kind',
      {
        peft_type: 'LORA',
        r: 8,
        lora_alpha: 16,
        target_modules: ['q'],
        flotilla: { mode: 'bias', seed: 1, baseModelDigest: DIGEST, offsets: ['lora_A'] },
      },
    ],
  ])('refuses %s with CORRUPT_FILE', (_name, input) => {
    const text = typeof input === 'string' ? input : JSON.stringify(input);
    try {
      parseAdapterConfig(text);
      expect.fail('expected CORRUPT_FILE');
    } catch (error) {
      expect(FlotillaError.is(error, 'CORRUPT_FILE')).toBe(true);
    }
  });

  it('adapterConfigFromSpec fills the PEFT fields and the flotilla section', () => {
    const spec = {
      mode: 'ffa-lora',
      targetModules: ['dense_1', 'dense_2'],
      r: 4,
      alpha: 8,
      seed: 7,
    } as const;
    const config = adapterConfigFromSpec({ ...spec, targetModules: [...spec.targetModules] }, DIGEST);
    expect(config).toEqual({
      peft_type: 'LORA',
      task_type: null,
      r: 4,
      lora_alpha: 8,
      lora_dropout: 0,
      target_modules: ['dense_1', 'dense_2'],
      bias: 'none',
      fan_in_fan_out: false,
      init_lora_weights: true,
      inference_mode: true,
      base_model_name_or_path: `sha256:${DIGEST}`,
      flotilla: { mode: 'ffa-lora', seed: 7, baseModelDigest: DIGEST, offsets: [] },
    });
    // It survives its own file format.
    expect(FlotillaAdapterConfigSchema.parse(parseAdapterConfig(JSON.stringify(config)))).toEqual(config);
  });

  it('adapterConfigFromSpec: bias offsets are not PEFT biases; a bad digest is refused', () => {
    const spec = { mode: 'bias' as const, targetModules: ['dense_1'], r: 1, alpha: 1, seed: 0 };
    const config = adapterConfigFromSpec(spec, DIGEST);
    // PEFT's 'all' would load the offsets as absolute biases.
    expect(config.bias).toBe('none');
    expect(config.peft_type).toBe('LORA');
    expect(config.flotilla.offsets).toEqual(['bias']);
    expect(() => adapterConfigFromSpec(spec, 'AB'.repeat(32))).toThrow(FlotillaError);
  });

  it('adapterConfigFromSpec: a full-mode adapter is marked as not a PEFT LoRA file', () => {
    const spec = { mode: 'full' as const, targetModules: ['hidden', 'out'], r: 16, alpha: 32, seed: 3 };
    const config = adapterConfigFromSpec(spec, DIGEST);
    expect(FLOTILLA_FULL_PEFT_TYPE).toBe('FLOTILLA_FULL');
    expect(config.peft_type).toBe('FLOTILLA_FULL');
    expect(config.bias).toBe('none');
    expect(config.flotilla).toEqual({
      mode: 'full',
      seed: 3,
      baseModelDigest: DIGEST,
      offsets: ['weight', 'bias'],
    });
    expect(FlotillaAdapterConfigSchema.parse(parseAdapterConfig(JSON.stringify(config)))).toEqual(config);
  });
});
