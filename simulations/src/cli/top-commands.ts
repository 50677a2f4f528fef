import type { Command } from 'commander';
import { preloadTfjs } from '../runner/preload-tfjs.js';

/**
 * The top-level `flotilla` commands: how `flotilla --help` lists them and which module defines
 * each. `flotilla <command>` loads only that module, so help and light commands do not pay for
 * the coordinator, BullMQ, tfjs or the schemas the others import (cli/launch.ts).
 */
export interface TopCommand {
  name: string;
  /** As the top-level help lists it: name, `[options]` when it has any, its arguments. */
  term: string;
  description: string;
  /** The module's register function (it may define other top-level commands too). */
  load(): Promise<(program: Command) => void>;
}

/** A command that runs a simulation: tfjs is preloaded (preload-tfjs.ts) before its module loads. */
function simulationCommand(load: () => Promise<(program: Command) => void>): TopCommand['load'] {
  return async () => {
    preloadTfjs();
    return load();
  };
}

export const TOP_COMMANDS: readonly TopCommand[] = [
  {
    name: 'demo',
    term: 'demo [options]',
    description:
      'the built-in demo: ~20 devices, 10 rounds, private Redis; prints a summary, writes a report, verifies the round log',
    load: simulationCommand(async () => (await import('./commands/simulate.js')).registerDemo),
  },
  {
    name: 'coordinator',
    term: 'coordinator [options]',
    description:
      'run the coordinator (socket.io + HTTP); a private redis-server is started when no REDIS_URL is set',
    load: async () => (await import('./commands/services.js')).registerServices,
  },
  {
    name: 'worker',
    term: 'worker [options]',
    description:
      "run an aggregation worker on the coordinator's Redis (REDIS_URL is required); it also runs the shard jobs of large rounds",
    load: async () => (await import('./commands/services.js')).registerServices,
  },
  {
    name: 'simulate',
    term: 'simulate [options] <scenario>',
    description:
      'run a scenario with real coordinator, worker and virtual devices; write metrics and a report',
    load: simulationCommand(async () => (await import('./commands/simulate.js')).registerSimulate),
  },
  {
    name: 'sweep',
    term: 'sweep [options] <sweep>',
    description:
      'run a grid of scenario variants × seeds (resuming an interrupted sweep) and write one comparison report with 95% intervals',
    load: simulationCommand(async () => (await import('./commands/sweep.js')).registerSweep),
  },
  {
    name: 'audit',
    term: 'audit',
    description: 'verify and read the signed, hash-chained round log',
    load: async () => (await import('./commands/audit.js')).registerAudit,
  },
  {
    name: 'audit-precision',
    term: 'audit-precision [options]',
    description:
      "measure the drift audit on the simulation suite: honest updates flagged, attackers' updates flagged, rejected rounds, accuracy under attack",
    load: async () => (await import('./commands/audit-precision.js')).registerAuditPrecision,
  },
  {
    name: 'adapters',
    term: 'adapters',
    description: "a task's promoted adapter versions (signed manifests)",
    load: async () => (await import('./commands/adapters.js')).registerAdapters,
  },
  {
    name: 'privacy',
    term: 'privacy',
    description: 'differential-privacy accounting for the sampled Gaussian mechanism (RDP accountant)',
    load: async () => (await import('./commands/privacy.js')).registerPrivacy,
  },
  {
    name: 'aggregate',
    term: 'aggregate [options] <files...>',
    description: 'aggregate safetensors deltas with a strategy, exactly as the worker does',
    load: async () => (await import('./commands/aggregate.js')).registerAggregate,
  },
  {
    name: 'keys',
    term: 'keys',
    description: 'ed25519 key files for devices and coordinators',
    load: async () => (await import('./commands/keys.js')).registerKeys,
  },
  {
    name: 'device',
    term: 'device [options]',
    description:
      'run a device: join rounds of a task, train the adapter locally with tfjs, upload clipped signed deltas',
    load: async () => (await import('./commands/device.js')).registerDevice,
  },
  {
    name: 'devices',
    term: 'devices',
    description: 'enroll, list and revoke devices (operator token required)',
    load: async () => (await import('./commands/devices.js')).registerDevices,
  },
  {
    name: 'tasks',
    term: 'tasks',
    description: 'register what the fleet trains (operator token required)',
    load: async () => (await import('./commands/tasks.js')).registerTasks,
  },
  {
    name: 'models',
    term: 'models',
    description: 'base models: write the bundle a task trains on',
    load: async () => (await import('./commands/models.js')).registerModels,
  },
  {
    name: 'init',
    term: 'init [options] <dir>',
    description:
      'write a runnable operator project: a commented task.yaml, a base model bundle, flotilla.yaml (with a fresh operator token) and a README with the commands to start a coordinator, enroll and run devices',
    load: async () => (await import('./commands/init.js')).registerInit,
  },
];

/** The one-line description of a top-level command, as its module and the top-level help show it. */
export function commandSummary(name: string): string {
  const command = TOP_COMMANDS.find((c) => c.name === name);
  if (!command) throw new Error(`no top-level command ${name} in TOP_COMMANDS`);
  return command.description;
}
