import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { ConfigError, loadConfig } from '../config.js';
import { parseNumberOption, printData, runCommand } from '../output.js';
import { ARCHITECTURES, PRETRAIN_DATASETS, type ModelSource } from '../../model/model-source.js';
import { commandSummary } from '../top-commands.js';
import { describeEnvironmentAt } from '../settings.js';

interface ExportFlags {
  out: string;
  arch?: string;
  modelJson?: string;
  input?: string;
  classes?: string;
  hidden?: string;
  vocabulary?: string;
  seed: string;
  trainOn?: string;
  force?: boolean;
  json?: boolean;
}

function isOneOf<T extends string>(options: readonly T[], value: string): value is T {
  return (options as readonly string[]).includes(value);
}

const whole = (name: string, raw: string | undefined): number | undefined =>
  raw === undefined
    ? undefined
    : parseNumberOption(name, raw, (n) => Number.isInteger(n) && n >= 1, 'a whole number >= 1');

/** `--input 784` or `--input 28x28x1`. */
function parseShape(raw: string | undefined): number[] | undefined {
  if (raw === undefined) return undefined;
  const dims = raw.split(/[x,]/).map((d) => Number(d));
  if (dims.length === 0 || dims.some((d) => !Number.isInteger(d) || d < 1))
    throw new ConfigError(`--input: expected whole numbers joined by x (e.g. 784 or 28x28x1), got "${raw}"`);
  return dims;
}

/** The model source the flags describe; exactly one of --arch and --model-json. */
export function modelSourceFromFlags(flags: Omit<ExportFlags, 'out'>, stateDir: string): ModelSource {
  if (flags.modelJson !== undefined) {
    if (flags.arch !== undefined || flags.trainOn !== undefined)
      throw new ConfigError('--model-json: give either a model.json or --arch (with --train-on), not both');
    return { kind: 'model-json', path: flags.modelJson };
  }
  const arch = flags.arch ?? 'mlp';
  if (!isOneOf(ARCHITECTURES, arch))
    throw new ConfigError(`--arch: expected one of ${ARCHITECTURES.join(', ')}, got "${arch}"`);
  const trainOn = flags.trainOn;
  if (trainOn !== undefined && !isOneOf(PRETRAIN_DATASETS, trainOn))
    throw new ConfigError(`--train-on: expected one of ${PRETRAIN_DATASETS.join(', ')}, got "${trainOn}"`);
  const input = parseShape(flags.input);
  const classes = whole('classes', flags.classes);
  const hidden = whole('hidden', flags.hidden);
  const vocabulary = whole('vocabulary', flags.vocabulary);
  return {
    kind: 'architecture',
    arch,
    seed: parseNumberOption('seed', flags.seed, (n) => Number.isInteger(n) && n >= 0, 'a whole number >= 0'),
    stateDir,
    ...(input ? { input } : {}),
    ...(classes !== undefined ? { classes } : {}),
    ...(hidden !== undefined ? { hidden } : {}),
    ...(vocabulary !== undefined ? { vocabulary } : {}),
    ...(flags.trainOn !== undefined
      ? { trainOn: flags.trainOn as 'mnist-rotated' | 'mnist-noisy' | 'synthetic' }
      : {}),
  };
}

/** Writes the bundle of `source` to `out` (refusing to overwrite unless `force`); returns what it wrote. */
export async function writeBaseModel(source: ModelSource, out: string, force = false) {
  if (existsSync(out) && !force) throw new ConfigError(`--out: ${out} exists (--force overwrites it)`);
  // tfjs loads only for this command, so other commands start fast.
  const { exportBaseModel } = await import('../../model/export-model.js');
  const model = await exportBaseModel(source);
  mkdirSync(dirname(resolve(out)), { recursive: true });
  writeFileSync(out, model.bytes);
  return model;
}

/** `flotilla models export`: a base model bundle for `tasks create --base`. */
export function registerModels(program: Command): void {
  const models = program.command('models').description(commandSummary('models'));
  models
    .command('export')
    .description(
      'write a base model bundle (tfjs-layers-bundle) from a built-in architecture or a tfjs model.json, and list its dense layers (the adapter targetModules)',
    )
    .requiredOption('--out <file>', 'bundle to write, e.g. base.bundle')
    .option('--arch <name>', `built-in architecture: ${ARCHITECTURES.join(', ')} (default mlp)`)
    .option('--model-json <path>', 'a tfjs layers model.json, with its weight files beside it')
    .option('--input <shape>', 'one example: mlp 784, cnn 28x28x1, char-rnn 80 (its sequence length)')
    .option('--classes <n>', 'output classes (default 10; char-rnn: the vocabulary)')
    .option('--hidden <n>', "units of the dense layer 'hidden' (default mlp 128, cnn and char-rnn 64)")
    .option('--vocabulary <n>', 'char-rnn: distinct input tokens (default 80)')
    .option('--seed <n>', 'seed of the initial weights (and of --train-on)', '1')
    .option(
      '--train-on <dataset>',
      `mlp only: pre-train on the clean split of ${PRETRAIN_DATASETS.join(', ')} (deterministic; cached under the state directory)`,
    )
    .option('--force', 'overwrite --out')
    .option('--json', 'print JSON')
    .action((flags: ExportFlags) =>
      runCommand(async () => {
        const config = loadConfig(program.opts<{ config?: string }>());
        const source = modelSourceFromFlags(flags, config.stateDir);
        const model = await writeBaseModel(source, flags.out, flags.force === true);
        printData(
          {
            path: flags.out,
            digest: model.digest,
            bytes: model.bytes.byteLength,
            inputShape: model.inputShape,
            classes: model.classes,
            denseLayers: model.denseLayers,
            trained: model.trained,
          },
          flags.json === true,
        );
      }),
    );
  describeEnvironmentAt(program, 'models export', ['stateDir']);
}
