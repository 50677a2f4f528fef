import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseScenario } from '../scenario/load.js';
import { reportRun } from './report-run.js';
import type { SimulationResult } from './run-simulation.js';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-report-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function result(yaml: string): SimulationResult {
  return {
    scenario: parseScenario(yaml),
    backend: 'cpu',
    metrics: [
      {
        round: 0,
        accuracy: 0.5,
        loss: 1,
        participants: 0,
        bytesUp: 0,
        bytesDown: 0,
        epsilon: null,
        decision: 'COMMITTED',
      },
    ],
    base: {
      digest: 'a'.repeat(64),
      cleanAccuracy: null,
      shiftedAccuracy: 0.5,
      referenceLabel: null,
      testLabel: 'test',
    },
    taskId: 't',
    coordinatorKey: 'k',
    prefix: 'p',
    roundLogPath: '/tmp/log.jsonl',
    stopped: null,
    devices: [],
    attack: null,
    setupMs: 1,
    perDevice: {
      summary: { devices: 2, mean: 0.75, worst10: 0.5, min: 0.5 },
      devices: [
        { deviceId: 'device-0000', examples: 4, accuracy: 1, byzantine: false },
        { deviceId: 'device-0001', examples: 2, accuracy: 0.5, byzantine: true },
      ],
    },
  };
}

const factsOf = (markdown: string): Map<string, string> =>
  new Map(
    markdown
      .split('\n')
      .filter((line) => line.startsWith('| ') && !line.startsWith('| fact'))
      .map((line) => line.split(' | ').map((cell) => cell.replace(/^\| | \|$/g, '')))
      .map(([key, value]) => [key ?? '', value ?? '']),
  );

/** Reports a run of the scenario `name` with these other `fields`; returns its files and facts. */
function reportOf(name: string, fields: string) {
  const written = reportRun(join(dir, name), result(`name: ${name}\n${fields}`));
  const markdown = readFileSync(written.markdown, 'utf8');
  return { written, markdown, facts: factsOf(markdown) };
}

describe('reportRun facts', () => {
  it('name the dataset, partition, attack, Byzantine fraction, seeds and safeguards', () => {
    const { written, markdown, facts } = reportOf(
      'attacked',
      `
seed: 4
seeds: { model: 1 }
dataset: mnist-noisy
partition: { scheme: dirichlet, alpha: 0.3 }
behaviour: { byzantineFraction: 0.2, attack: scaling, attackScale: 5 }
`,
    );
    expect(facts.get('dataset')).toBe('mnist-noisy');
    expect(facts.get('partition')).toBe('dirichlet (alpha 0.3)');
    expect(facts.get('attack')).toBe('scaling (scale 5)');
    expect(facts.get('Byzantine fraction')).toBe('0.2');
    expect(facts.get('seed')).toBe('4 (model 1)');
    expect(facts.get('safeguards')).toBe(
      'validation gate tolerance 0.05; clip C = 1; drift audit on; quorum 5',
    );
    // The per-device distribution is in the report, every device (attackers flagged) in metrics.json.
    expect(markdown).toContain('| 2 | 75.0% | 50.0% | 50.0% |');
    const json = JSON.parse(readFileSync(written.json, 'utf8')) as { perDevice: { devices: unknown[] } };
    expect(json.perDevice.devices).toHaveLength(2);
  });

  it('say when the safeguards are off', () => {
    const { facts } = reportOf(
      'plain',
      `
minReports: 1
clipNorm: none
training: { validationTolerance: off }
audit: { enforce: false }
`,
    );
    expect(facts.get('attack')).toBe('none');
    expect(facts.get('Byzantine fraction')).toBe('0');
    expect(facts.get('safeguards')).toBe(
      'validation gate off; clip none; drift audit off (records only); quorum 1',
    );
  });
});
