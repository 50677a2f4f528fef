import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listBuiltinScenarios, loadScenario, loadScenarioFile, parseScenario } from './load.js';

const REQUIRED_BUILTINS = [
  'attack-fedavg',
  'attack-krum',
  'attack-trimmed-mean',
  'demo',
  'dirichlet-0.1',
  'dp-z0.5',
  'dp-z1.0',
  'dp-z2.0',
  'ffa-lora',
  'full',
  'iid',
  'lora',
  'text',
];

describe('built-in scenarios', () => {
  it('are all present and all parse', () => {
    const names = listBuiltinScenarios();
    for (const name of REQUIRED_BUILTINS) expect(names).toContain(name);
    for (const name of names) {
      const scenario = loadScenario(name);
      expect(scenario.name).toBe(name);
    }
  });

  it('demo is small: about 20 devices and 10 rounds', () => {
    const demo = loadScenario('demo');
    expect(demo.devices).toBe(20);
    expect(demo.rounds).toBe(10);
    expect(demo.partition.maxExamplesPerDevice).toBeLessThanOrEqual(200);
    expect(demo.training.maxSteps).toBeLessThanOrEqual(20);
  });

  it('the attack and dp scenarios say what they test', () => {
    const krum = loadScenario('attack-krum');
    expect(krum.strategy.name).toBe('krum');
    expect(krum.behaviour).toMatchObject({ byzantineFraction: 0.2, attack: 'sign-flip' });
    const innerProduct = loadScenario('attack-inner-product-krum');
    expect(innerProduct.strategy.name).toBe('krum');
    // Xie et al. 2020's ε against Krum.
    expect(innerProduct.behaviour).toMatchObject({ attack: 'inner-product', attackScale: 0.1 });
    const backdoor = loadScenario('attack-backdoor-trimmed-mean');
    expect(backdoor.strategy.name).toBe('trimmed-mean');
    expect(backdoor.behaviour).toMatchObject({ attack: 'backdoor', backdoor: { targetClass: 0 } });
    expect(loadScenario('dp-z2.0').dp?.noiseMultiplier).toBe(2);
    expect(loadScenario('full').adapter.mode).toBe('full');
  });
});

describe('parseScenario', () => {
  it('fills defaults from a minimal file, in YAML or JSON', () => {
    const fromYaml = parseScenario('name: tiny\n');
    const fromJson = parseScenario('{"name": "tiny"}');
    expect(fromJson).toEqual(fromYaml);
    expect(fromYaml).toMatchObject({
      seed: 1,
      dataset: 'mnist-rotated',
      devices: 20,
      partition: { scheme: 'iid', maxExamplesPerDevice: 200 },
      adapter: { mode: 'ffa-lora', r: 16, targetModules: ['hidden', 'out'] },
      strategy: { name: 'fedavg', beta: 0.1, loraRule: 'fedit' },
      behaviour: { attack: 'none', byzantineFraction: 0, offlineRounds: [] },
      clipNorm: 1,
    });
    expect(fromYaml.dp).toBeUndefined();
  });

  it('names the bad field in its errors', () => {
    expect(() => parseScenario('name: x\ntraining: { learningRate: -1 }')).toThrow(
      /training\.learningRate: /,
    );
    expect(() => parseScenario('name: x\npartition: { scheme: dirichlet }')).toThrow(
      /partition\.alpha: is required/,
    );
    expect(() => parseScenario('name: x\npartition: { scheme: shards }')).toThrow(
      /partition\.shardsPerDevice/,
    );
    expect(() => parseScenario('name: x\ndevices: 5\ndevicesPerRound: 6')).toThrow(
      /devicesPerRound: must be <= devices/,
    );
    expect(() => parseScenario('name: x\nstrategy: { name: nope }')).toThrow(/strategy\.name: /);
    expect(() => parseScenario('name: x\nbehaviour: { byzantineFraction: 0.2 }')).toThrow(
      /behaviour\.attack/,
    );
    expect(() => parseScenario('name: x\ntypo: 1')).toThrow(/typo/);
    // Inside the protocol's strategy schema too: a misspelt option must not fall back to its default.
    expect(() => parseScenario('name: x\nstrategy: { name: krum, byzantin: 1 }')).toThrow(
      /strategy: Unrecognized key: "byzantin"/,
    );
    expect(() => parseScenario('seed: 1')).toThrow(/name: /);
    expect(() => parseScenario('name: [unclosed')).toThrow(/not valid YAML/);
  });

  it('reads files and reports missing ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-scenario-'));
    const path = join(dir, 'mine.json');
    writeFileSync(path, JSON.stringify({ name: 'mine', rounds: 3, dp: { noiseMultiplier: 1 } }));
    const scenario = loadScenario(path);
    expect(scenario.rounds).toBe(3);
    expect(scenario.dp).toEqual({ noiseMultiplier: 1, delta: 1e-5, epsilonBudget: 10 });
    expect(() => loadScenarioFile(join(dir, 'missing.yaml'))).toThrow(/cannot be read/);
  });
});

describe('scenarios on files', () => {
  it('need a source that says how to read them, and only file datasets take one', () => {
    expect(() => parseScenario('name: x\ndataset: leaf')).toThrow(/source: is required for the leaf dataset/);
    expect(() => parseScenario('name: x\ndataset: leaf\nsource: { path: d }')).toThrow(
      /source\.leafTask: is required/,
    );
    expect(() => parseScenario('name: x\ndataset: npy\nsource: { path: x.npy }')).toThrow(
      /source\.labels: is required/,
    );
    expect(() => parseScenario('name: x\ndataset: text\nsource: { path: d }')).toThrow(
      /source: is for file datasets/,
    );
    expect(() =>
      parseScenario(
        'name: x\ndataset: csv\nsource: { path: t.csv, pretrainFraction: 0.5, testFraction: 0.3, holdoutFraction: 0.2 }',
      ),
    ).toThrow(/must be < 1/);
    expect(() => parseScenario('name: x\nmodel: { architecture: transformer }')).toThrow(
      /model\.architecture/,
    );
  });

  it('take relative data and model paths from the scenario file’s folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-scenario-paths-'));
    writeFileSync(
      join(dir, 'files.yaml'),
      'name: files\ndataset: npy\nsource: { path: data/x.npy, labels: data/y.npy, users: /abs/u.npy }\nmodel: { path: ../models/model.json }\n',
    );
    const scenario = loadScenarioFile(join(dir, 'files.yaml'));
    expect(scenario.source?.path).toBe(join(dir, 'data', 'x.npy'));
    expect(scenario.source?.labels).toBe(join(dir, 'data', 'y.npy'));
    expect(scenario.source?.users).toBe('/abs/u.npy');
    expect(scenario.model.path).toBe(join(dir, '..', 'models', 'model.json'));
  });
});
