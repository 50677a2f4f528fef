import { AuditPolicySchema, TaskDefinitionSchema } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import type { BaseModel } from '../model/base-model.js';
import { loadScenario, parseScenario } from '../scenario/load.js';
import { NO_CLIP_NORM } from '../scenario/schema.js';
import { taskFromScenario } from './sim-environment.js';

// taskFromScenario reads only the bundle's digest and size.
const base = { bytes: new Uint8Array(10), digest: 'c'.repeat(64) } as BaseModel;
const shapes = { hidden: { in: 784, out: 128 }, out: { in: 128, out: 10 } };

describe('taskFromScenario', () => {
  it('turns the built-in full scenario into a valid full-mode task', () => {
    const task = TaskDefinitionSchema.parse(taskFromScenario(loadScenario('full'), base, shapes));
    expect(task.adapter.mode).toBe('full');
    expect(task.adapter.targetModules).toEqual(['hidden', 'out']);
    expect(task.policy.allowedModules).toEqual(['hidden', 'out']);
    expect(task.moduleShapes).toEqual(shapes);
  });

  it('keeps the shipped safeguards by default: gate 0.05, clip 1, the default audit (enforced)', () => {
    const task = TaskDefinitionSchema.parse(taskFromScenario(parseScenario('name: shipped'), base, shapes));
    expect(task.rounds.validationTolerance).toBe(0.05);
    expect(task.policy.clipNorm).toBe(1);
    // Byte for byte the policy tasks had before the audit could be switched off.
    expect(task.policy.audit).toEqual(AuditPolicySchema.parse({}));
    expect('enforce' in task.policy.audit).toBe(false);
  });

  it('switches every safeguard off for plain FedAvg: no gate, no clip, an audit that only records, quorum 1', () => {
    const scenario = parseScenario(`
name: plain
minReports: 1
clipNorm: none
training: { validationTolerance: off }
audit: { enforce: false }
`);
    const task = TaskDefinitionSchema.parse(taskFromScenario(scenario, base, shapes));
    expect(task.rounds.validationTolerance).toBeNull();
    expect(task.rounds.minReports).toBe(1);
    expect(task.policy.clipNorm).toBe(NO_CLIP_NORM);
    expect(task.policy.audit.enforce).toBe(false);
  });

  it("quorum 'auto' is the coordinator's default quorum for the round's goal", () => {
    for (const [perRound, quorum] of [
      [2, 1],
      [5, 3],
      [10, 6],
    ] as const)
      expect(parseScenario(`name: q\ndevicesPerRound: ${perRound}\nminReports: auto`).minReports).toBe(
        quorum,
      );
  });

  it('refuses a clip bound of none with differential privacy, and unknown audit fields', () => {
    expect(() => parseScenario('name: x\nclipNorm: none\ndp: { noiseMultiplier: 1 }')).toThrow(
      /clipNorm: differential privacy needs a clip bound/,
    );
    expect(() => parseScenario('name: x\naudit: { enforced: false }')).toThrow(/audit/);
  });
});
