import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { generateSigningKeyPair, toBase64 } from '@flotilla/protocol';
import { readKeyFile, writeKeyFile } from '@flotilla/protocol/node';
import { ConfigError, loadConfig } from '../config.js';
import { OperatorClient } from '../operator-client.js';
import { printData, runCommand } from '../output.js';
import { commandSummary } from '../top-commands.js';
import { describeEnvironmentAt } from '../settings.js';

interface GlobalFlags {
  config?: string;
}

function client(program: Command): OperatorClient {
  return new OperatorClient(loadConfig(program.opts<GlobalFlags>()));
}

/** `flotilla devices token|enroll|list|revoke`: manage the fleet through the operator API. */
export function registerDevices(program: Command): void {
  const devices = program.command('devices').description(commandSummary('devices'));
  devices
    .command('token')
    .description('issue a one-time enrollment token a device presents to enroll itself')
    .option('--ttl-ms <ms>', 'token lifetime in milliseconds')
    .option('--json', 'print JSON')
    .action((flags: { ttlMs?: string; json?: boolean }) =>
      runCommand(async () => {
        const body = flags.ttlMs !== undefined ? { ttlMs: Number(flags.ttlMs) } : {};
        printData(
          await client(program).request('POST', '/api/admin/enrollment-tokens', body),
          flags.json === true,
        );
      }),
    );
  devices
    .command('enroll')
    .description("register a device's public key (from --public-key or a key file, created if missing)")
    .requiredOption('--device-id <id>', 'device id (1-64 of A-Z a-z 0-9 . _ -)')
    .option('--public-key <base64>', 'the device ed25519 public key')
    .option('--key-file <path>', 'device key file; generated (mode 0600) when it does not exist')
    .option('--json', 'print JSON')
    .action((flags: { deviceId: string; publicKey?: string; keyFile?: string; json?: boolean }) =>
      runCommand(async () => {
        let publicKey = flags.publicKey;
        if (!publicKey) {
          if (!flags.keyFile) throw new ConfigError('devices enroll: give --public-key or --key-file');
          if (!existsSync(flags.keyFile)) writeKeyFile(flags.keyFile, generateSigningKeyPair());
          publicKey = toBase64(readKeyFile(flags.keyFile).publicKey);
        }
        const record = await client(program).request('POST', '/api/admin/devices', {
          deviceId: flags.deviceId,
          publicKey,
        });
        printData(record as Record<string, unknown>, flags.json === true);
      }),
    );
  devices
    .command('list')
    .description('list enrolled devices')
    .option('--json', 'print JSON')
    .action((flags: { json?: boolean }) =>
      runCommand(async () => {
        const result = await client(program).request<{ devices: Array<Record<string, unknown>> }>(
          'GET',
          '/api/admin/devices',
        );
        if (flags.json) return printData(result, true);
        for (const device of result.devices)
          process.stdout.write(`${String(device.deviceId)}  ${String(device.status)}\n`);
        process.stdout.write(`${result.devices.length} device(s)\n`);
      }),
    );
  devices
    .command('revoke')
    .description(
      'revoke a device: its sockets close and its sessions end on every coordinator, its update in an open round is excluded',
    )
    .argument('<device-id>')
    .option('--json', 'print JSON')
    .action((deviceId: string, flags: { json?: boolean }) =>
      runCommand(async () => {
        const record = await client(program).request(
          'DELETE',
          `/api/admin/devices/${encodeURIComponent(deviceId)}`,
        );
        printData(record as Record<string, unknown>, flags.json === true);
      }),
    );
  describeEnvironmentAt(program, 'devices', ['coordinatorUrl', 'operatorToken']);
}
