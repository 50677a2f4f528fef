import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fieldPatch, loadSweep, mergePatch, sweepConfigurations, sweepSeeds } from './sweep.js';

const sweepFile = (name: string) => fileURLToPath(new URL(`../../sweeps/${name}`, import.meta.url));

describe('sweep grids', () => {
  it('merge objects field by field and replace everything else', () => {
    expect(mergePatch({ a: { b: 1, c: 2 }, d: [1] }, { a: { c: 3 }, d: [2, 3] })).toEqual({
      a: { b: 1, c: 3 },
      d: [2, 3],
    });
    expect(fieldPatch('training.epochs', 5)).toEqual({ training: { epochs: 5 } });
  });

  it('expand the McMahan et al. sweep into its 12 configurations, each with what it says', () => {
    const loaded = loadSweep(sweepFile('mcmahan-2017.yaml'));
    const configurations = sweepConfigurations(loaded);
    expect(configurations).toHaveLength(12);
    expect(sweepSeeds(loaded.sweep, configurations)).toEqual([1, 2, 3]);
    const at = (label: string) => {
      const found = configurations.find((c) => c.label === label);
      if (!found) throw new Error(`no configuration ${label}`);
      return found.scenario;
    };
    const fedsgd = at('IID, E=1, B=∞ (FedSGD), 10/round, off (paper)');
    expect([fedsgd.training.batchSize, fedsgd.training.epochs]).toEqual([300, 1]);
    expect(at('IID, E=5, B=10, 10/round, off (paper)').training.epochs).toBe(5);
    expect(at('non-IID (2 classes/device), E=1, B=10, 10/round, off (paper)').partition).toMatchObject({
      scheme: 'shards',
      shardsPerDevice: 2,
    });
    // Safeguards off as in the paper, on as shipped (the quorum the coordinator would choose).
    const off = at('IID, E=1, B=10, 2/round, off (paper)');
    expect([off.clipNorm, off.minReports, off.training.validationTolerance, off.audit.enforce]).toEqual([
      'none',
      1,
      'off',
      false,
    ]);
    const on = at('IID, E=1, B=10, 10/round, on (shipped)');
    expect([on.clipNorm, on.minReports, on.training.validationTolerance, on.audit.enforce]).toEqual([
      1,
      6,
      0.05,
      true,
    ]);
    expect(at('IID, E=1, B=10, 2/round, on (shipped)').minReports).toBe(1);
    expect(new Set(configurations.map((c) => c.slug)).size).toBe(12);
  });

  it('expand the safeguards sweep into each safeguard alone on the paper setting, and all of them', () => {
    const loaded = loadSweep(sweepFile('mcmahan-2017-safeguards.yaml'));
    const safeguards = sweepConfigurations(loaded).map(({ label, scenario }) => [
      label,
      scenario.clipNorm,
      scenario.minReports,
      scenario.training.validationTolerance,
      scenario.audit.enforce,
    ]);
    expect(safeguards).toEqual([
      ['none (paper)', 'none', 1, 'off', false],
      ['clip C = 1 only', 1, 1, 'off', false],
      ['validation gate only (quorum 1)', 'none', 1, 0.05, false],
      ['validation gate and default quorum', 'none', 6, 0.05, false],
      ['audit enforcing only', 'none', 1, 'off', true],
      ['all (shipped)', 1, 6, 0.05, true],
    ]);
  });
});
