import { Command } from 'commander';
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
import { EXIT } from './output.js';

/** The `flotilla` command line. Each sub-command lives in ./commands. */
export function buildProgram(): Command {
  const program = new Command('flotilla')
    .description(
      'Federated adapter fine-tuning with signed deltas, differential privacy and an auditable round log',
    )
    .option('--config <file>', 'configuration file (YAML or JSON); also FLOTILLA_CONFIG')
    .showHelpAfterError()
    // Usage errors (unknown command or option, missing argument or required option, a command
    // group without its sub-command) exit 2 like every other bad input; help and version exit 0.
    // Set before the commands are added, which inherit it.
    .exitOverride((error) => process.exit(error.exitCode === 0 ? EXIT.ok : EXIT.usage));
  registerDemo(program);
  registerServices(program);
  registerSimulate(program);
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
