import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { generateSigningKeyPair, toBase64 } from '@flotilla/protocol';
import { readKeyFile, writeKeyFile } from '@flotilla/protocol/node';
import { ConfigError } from '../config.js';
import { printData, runCommand } from '../output.js';
import { commandSummary } from '../top-commands.js';

/** `flotilla keys generate|show`: ed25519 key files (tweetnacl format, mode 0600). */
export function registerKeys(program: Command): void {
  const keys = program.command('keys').description(commandSummary('keys'));
  keys
    .command('generate')
    .description('write a new key file (mode 0600) and print its public key')
    .argument('<path>')
    .option('--force', 'overwrite an existing file')
    .option('--json', 'print JSON')
    .action((path: string, flags: { force?: boolean; json?: boolean }) =>
      runCommand(() => {
        if (existsSync(path) && !flags.force)
          throw new ConfigError(`${path} exists; pass --force to overwrite it`);
        const pair = generateSigningKeyPair();
        writeKeyFile(path, pair);
        printData({ path, publicKey: toBase64(pair.publicKey) }, flags.json === true);
      }),
    );
  keys
    .command('show')
    .description('print the public key of a key file')
    .argument('<path>')
    .option('--json', 'print JSON')
    .action((path: string, flags: { json?: boolean }) =>
      runCommand(() => {
        printData({ path, publicKey: toBase64(readKeyFile(path).publicKey) }, flags.json === true);
      }),
    );
}
