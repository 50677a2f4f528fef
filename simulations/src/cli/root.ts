import { Command } from 'commander';
import { EXIT } from './exit-codes.js';

/** The `flotilla` command itself, without its sub-commands: name, global options, error policy. */
export function createRootCommand(): Command {
  return (
    new Command('flotilla')
      .description(
        'Federated adapter fine-tuning with signed deltas, differential privacy and an auditable round log',
      )
      .option('--config <file>', 'configuration file (YAML or JSON); also FLOTILLA_CONFIG')
      .showHelpAfterError()
      // Usage errors (unknown command or option, missing argument or required option, a command
      // group without its sub-command) exit 2 like every other bad input; help and version exit 0.
      // Set before the commands are added, which inherit it.
      .exitOverride((error) => process.exit(error.exitCode === 0 ? EXIT.ok : EXIT.usage))
  );
}
