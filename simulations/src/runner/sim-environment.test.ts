import { TaskDefinitionSchema } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import type { BaseModel } from '../model/base-model.js';
import { loadScenario } from '../scenario/load.js';
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
});
