import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { generateSigningKeyPair } from '@flotilla/protocol';
import { readKeyFile, writeKeyFile } from '@flotilla/protocol/node';
import type { Dataset } from '../../data/dataset.js';
import { ConfigError, loadConfig } from '../config.js';
import { parseNumberOption, runCommand } from '../output.js';
import { commandSummary } from '../top-commands.js';
import { describeEnvironmentAt } from '../settings.js';

interface DeviceFlags {
  task: string;
  deviceId: string;
  keyFile: string;
  enrollToken?: string;
  data: string;
  shard: string;
  seed: string;
  rounds?: string;
  cacheDir?: string;
  url: string[];
}

/** `--url a --url b,c` → [a, b, c]. */
function collectUrls(value: string, previous: string[]): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((u) => u.trim())
      .filter((u) => u !== ''),
  ];
}

async function localData(
  name: string,
  shard: string,
  seed: number,
): Promise<{ train: Dataset; holdout: Dataset }> {
  if (name !== 'mnist-rotated' && name !== 'mnist-noisy' && name !== 'synthetic') {
    throw new ConfigError(`--data: expected mnist-rotated, mnist-noisy or synthetic, got "${name}"`);
  }
  const match = /^(\d+)\/(\d+)$/.exec(shard);
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || !(count >= 1 && index >= 0 && index < count))
    throw new ConfigError(`--shard: expected i/n with 0 <= i < n, got "${shard}"`);
  // tfjs and the datasets load only for this command, so other commands start fast.
  const { loadDomains } = await import('../../data/domains.js');
  const { subsetDataset } = await import('../../data/dataset.js');
  const pool = loadDomains({ dataset: name, seed }).shifted.train;
  const mine = Array.from({ length: pool.n }, (_, i) => i).filter((i) => i % count === index);
  const holdout = Math.floor(mine.length * 0.2);
  return {
    train: subsetDataset(pool, mine.slice(holdout)),
    holdout: subsetDataset(pool, mine.slice(0, holdout)),
  };
}

/** `flotilla device`: one Node device training on a shard of a built-in dataset. */
export function registerDevice(program: Command): void {
  program
    .command('device')
    .description(commandSummary('device'))
    .requiredOption('--task <id>', 'task id')
    .requiredOption('--device-id <id>', 'this device id')
    .requiredOption('--key-file <path>', 'device key file (created, mode 0600, when missing)')
    .option('--enroll-token <token>', 'enroll with a one-time token from `flotilla devices token` first')
    .option(
      '--data <name>',
      'local data: a shard of mnist-rotated, mnist-noisy or synthetic',
      'mnist-rotated',
    )
    .option('--shard <i/n>', 'which shard of the training pool this device holds', '0/10')
    .option('--seed <n>', 'dataset seed', '1')
    .option('--rounds <n>', 'stop after this many rounds (default: run until interrupted)')
    .option('--cache-dir <dir>', 'content-addressed cache of base models and adapters')
    .option(
      '--url <url>',
      'a coordinator of the fleet; repeat it or give a comma list to fail over between them (default: FLOTILLA_URL)',
      collectUrls,
      [],
    )
    .action((flags: DeviceFlags) =>
      runCommand(async () => {
        const config = loadConfig(program.opts<{ config?: string }>());
        const urls = flags.url.length > 0 ? flags.url : [config.coordinatorUrl];
        for (const url of urls)
          if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol))
            throw new ConfigError(`--url: expected an http(s) URL, got "${url}"`);
        const { FlotillaDevice, TfjsTrainer, enrollDevice } = await import('@flotilla/client');
        if (!existsSync(flags.keyFile)) writeKeyFile(flags.keyFile, generateSigningKeyPair());
        const keys = readKeyFile(flags.keyFile);
        if (flags.enrollToken) {
          const enrolled = await enrollDevice({
            url: urls[0] ?? config.coordinatorUrl,
            token: flags.enrollToken,
            deviceId: flags.deviceId,
            keys,
          });
          process.stdout.write(`enrolled ${enrolled.deviceId}; coordinator key ${enrolled.coordinatorKey}\n`);
        }
        const seed = parseNumberOption('seed', flags.seed, Number.isInteger, 'a whole number');
        const { train, holdout } = await localData(flags.data, flags.shard, seed);
        const toLocal = (d: Dataset) => ({ xs: d.xs, ys: d.ys, featureShape: [d.dim] });
        const stopped = new AbortController();
        process.once('SIGINT', () => stopped.abort());
        process.once('SIGTERM', () => stopped.abort());
        let started = false;
        const device = new FlotillaDevice({
          url: urls,
          deviceId: flags.deviceId,
          keys,
          taskId: flags.task,
          trainer: new TfjsTrainer({ data: { train: toLocal(train), holdout: toLocal(holdout) }, seed }),
          signal: stopped.signal,
          ...(flags.cacheDir ? { cacheDir: flags.cacheDir } : {}),
          ...(flags.rounds
            ? {
                maxRounds: parseNumberOption(
                  'rounds',
                  flags.rounds,
                  (n) => Number.isInteger(n) && n > 0,
                  'a whole number > 0',
                ),
              }
            : {}),
          onRound: (plan) => process.stdout.write(`round ${plan.roundId}: training (${train.n} examples)\n`),
          onUpdateAccepted: ({ plan, receipt }) =>
            process.stdout.write(
              `round ${plan.roundId}: update accepted (norm ${receipt?.norm.toFixed(4) ?? '?'})\n`,
            ),
          onUpdateRefused: ({ plan, code, message }) =>
            process.stdout.write(`round ${plan.roundId}: update refused ${code}: ${message}\n`),
          onSkip: ({ plan, reason, detail }) =>
            process.stdout.write(`round ${plan.roundId}: skipped (${reason}): ${detail}\n`),
          onAdapterChanged: ({ version, route }) => process.stdout.write(`adapter v${version} (${route})\n`),
          onCoordinatorChanged: ({ url }) =>
            process.stdout.write(`coordinator unreachable; now using ${url}\n`),
          // A fatal error while starting (unknown task, data the model does not take) rejects
          // start() and is reported once, by runCommand, with its exit code.
          onError: (error, fatal) => {
            if (!fatal || started) process.stderr.write(`${fatal ? 'fatal' : 'error'}: ${error.message}\n`);
          },
        });
        await device.start();
        started = true;
        process.stdout.write(
          `device ${flags.deviceId} connected to ${device.coordinatorUrl ?? urls.join(', ')}\n`,
        );
        const reason = await device.stopped;
        process.stdout.write(`device stopped (${reason})\n`);
        return reason === 'fatal' ? 1 : 0;
      }),
    );
  describeEnvironmentAt(program, 'device', ['coordinatorUrl']);
}
