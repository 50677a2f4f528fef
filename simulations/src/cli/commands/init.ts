import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { TaskIdSchema } from '@flotilla/protocol';
import { ConfigError } from '../config.js';
import { parseNumberOption, printData, runCommand } from '../output.js';
import { writeBaseModel } from './models.js';
import { GITIGNORE, flotillaYaml, readme, taskYaml } from '../../operator/starter-files.js';
import { commandSummary } from '../top-commands.js';

const BIN = fileURLToPath(new URL('../../../bin/flotilla.mjs', import.meta.url));

interface InitFlags {
  task: string;
  port: string;
  devices: string;
  train: boolean;
  force?: boolean;
  json?: boolean;
}

/**
 * `flotilla init <dir>`: a runnable operator project. The base model is the simulations' MLP
 * (784-128-10) pre-trained on upright MNIST digits (cached under `<dir>/.flotilla`), or with
 * `--no-train` its seeded initial weights; the devices fine-tune on rotated digits.
 */
export function registerInit(program: Command): void {
  program
    .command('init')
    .description(commandSummary('init'))
    .argument('<dir>', 'project directory (created; must be empty or absent)')
    .option('--task <id>', 'task id', 'digits')
    .option('--port <port>', 'coordinator port written into flotilla.yaml', '8787')
    .option('--devices <n>', 'devices the README runs, each on a shard of rotated MNIST', '3')
    .option(
      '--no-train',
      'keep the base model at its seeded initial weights instead of pre-training it (faster)',
    )
    .option('--force', 'write into a directory that is not empty (existing files are replaced)')
    .option('--json', 'print JSON')
    .action((dir: string, flags: InitFlags) =>
      runCommand(async () => {
        const taskId = TaskIdSchema.safeParse(flags.task);
        if (!taskId.success)
          throw new ConfigError(`--task: "${flags.task}" is not a task id (1-64 of A-Z a-z 0-9 . _ -)`);
        const port = parseNumberOption(
          'port',
          flags.port,
          (n) => Number.isInteger(n) && n >= 1 && n <= 65535,
          'a port 1-65535',
        );
        const devices = parseNumberOption(
          'devices',
          flags.devices,
          (n) => Number.isInteger(n) && n >= 1 && n <= 100,
          'a whole number 1-100',
        );
        if (existsSync(dir) && readdirSync(dir).length > 0 && flags.force !== true)
          throw new ConfigError(`${dir} is not empty (--force writes into it anyway)`);
        mkdirSync(dir, { recursive: true });
        const stateDir = join(dir, '.flotilla');
        const exportCommand = `flotilla models export --arch mlp${flags.train ? ' --train-on mnist-rotated' : ''} --seed 1 --out base.bundle`;
        process.stderr.write(
          flags.train ? 'flotilla init: pre-training the base model on upright MNIST digits (cached)…\n' : '',
        );
        const model = await writeBaseModel(
          {
            kind: 'architecture',
            arch: 'mlp',
            seed: 1,
            stateDir,
            ...(flags.train ? { trainOn: 'mnist-rotated' as const } : {}),
          },
          join(dir, 'base.bundle'),
          true,
        );
        const options = {
          taskId: taskId.data,
          port,
          devices,
          // With n devices over-selection (1.3x) must be able to pick the whole goal: goal = floor(n / 1.3).
          goalCount: Math.max(1, Math.floor(devices / 1.3)),
          operatorToken: randomBytes(24).toString('base64url'),
          flotillaCommand: `node ${BIN}`,
          base: {
            digest: model.digest,
            bytes: model.bytes.byteLength,
            denseLayers: model.denseLayers,
            trained: model.trained,
            exportCommand,
          },
        };
        writeFileSync(join(dir, 'task.yaml'), taskYaml(options));
        const config = join(dir, 'flotilla.yaml');
        writeFileSync(config, flotillaYaml(options), { mode: 0o600 });
        chmodSync(config, 0o600);
        writeFileSync(join(dir, 'README.md'), readme(options));
        writeFileSync(join(dir, '.gitignore'), GITIGNORE);
        printData(
          {
            project: resolve(dir),
            files: ['task.yaml', 'base.bundle', 'flotilla.yaml', 'README.md', '.gitignore'],
            baseModel: model.digest,
            next: `cd ${dir} and follow README.md`,
          },
          flags.json === true,
        );
      }),
    );
}
