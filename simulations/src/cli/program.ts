import type { Command } from 'commander';
import { registerAdapters } from './commands/adapters.js';
import { registerAggregate } from './commands/aggregate.js';
import { registerAudit } from './commands/audit.js';
import { registerAuditPrecision } from './commands/audit-precision.js';
import { registerServices } from './commands/services.js';
import { registerDevice } from './commands/device.js';
import { registerDevices } from './commands/devices.js';
import { registerInit } from './commands/init.js';
import { registerKeys } from './commands/keys.js';
import { registerModels } from './commands/models.js';
import { registerPrivacy } from './commands/privacy.js';
import { registerTasks } from './commands/tasks.js';
import { registerDemo, registerSimulate } from './commands/simulate.js';
import { registerSweep } from './commands/sweep.js';
import { createRootCommand } from './root.js';

/**
 * The whole `flotilla` command line, every command defined (tests and tools that inspect it).
 * `flotilla` itself builds only the command it runs (launch.ts). Each command lives in ./commands.
 */
export function buildProgram(): Command {
  const program = createRootCommand();
  registerDemo(program);
  registerServices(program);
  registerSimulate(program);
  registerSweep(program);
  registerAudit(program);
  registerAuditPrecision(program);
  registerAdapters(program);
  registerPrivacy(program);
  registerAggregate(program);
  registerKeys(program);
  registerDevice(program);
  registerDevices(program);
  registerTasks(program);
  registerModels(program);
  registerInit(program);
  return program;
}
