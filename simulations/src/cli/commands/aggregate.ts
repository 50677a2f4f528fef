import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { StrategyConfigSchema, decodeDeltaFile, encodeFloat32Tensors, sha256Hex } from '@flotilla/protocol';
import type { TensorLayout } from '@flotilla/coordinator/worker';
import { ConfigError, describeIssues } from '../config.js';
import { parseNumberOption, printData, runCommand } from '../output.js';
import { commandSummary } from '../top-commands.js';

interface AggregateFlags {
  strategy: string;
  byzantine?: string;
  beta?: string;
  keep?: string;
  normBound?: string;
  serverLr?: string;
  weights?: string;
  out: string;
  json?: boolean;
}

/**
 * `flotilla aggregate`: the worker's strategies on files, so a researcher or an auditor can
 * reproduce a round from retained deltas. Every file must hold the same tensor names and shapes.
 */
export function registerAggregate(program: Command): void {
  program
    .command('aggregate')
    .description(commandSummary('aggregate'))
    .argument('<files...>', 'delta files (safetensors; F32/F16/BF16, or I8 with scale:<name> metadata)')
    .requiredOption('--strategy <name>', `one of ${StrategyConfigSchema.shape.name.options.join(', ')}`)
    .option('--byzantine <f>', 'Byzantine updates tolerated (krum, multi-krum, bulyan)')
    .option('--beta <b>', 'fraction trimmed from each end (trimmed-mean)')
    .option('--keep <m>', 'updates kept by multi-krum')
    .option('--norm-bound <c>', 'L2 bound (norm-bounding)')
    .option('--server-lr <eta>', 'server learning rate (server optimizers)')
    .option('--weights <n1,n2,...>', 'one weight per file (examples); default all 1')
    .requiredOption('--out <file>', 'where to write the aggregate (F32 safetensors)')
    .option('--json', 'print JSON')
    .action((files: string[], flags: AggregateFlags) =>
      runCommand(async () => {
        const { aggregate, flattenTensors, unflattenTensors } = await import('@flotilla/coordinator/worker');
        const config = StrategyConfigSchema.safeParse({
          name: flags.strategy,
          ...(flags.byzantine !== undefined
            ? { byzantine: parseNumberOption('byzantine', flags.byzantine) }
            : {}),
          ...(flags.beta !== undefined ? { beta: parseNumberOption('beta', flags.beta) } : {}),
          ...(flags.keep !== undefined ? { keep: parseNumberOption('keep', flags.keep) } : {}),
          ...(flags.normBound !== undefined
            ? { normBound: parseNumberOption('norm-bound', flags.normBound) }
            : {}),
          ...(flags.serverLr !== undefined
            ? { serverLearningRate: parseNumberOption('server-lr', flags.serverLr) }
            : {}),
        });
        if (!config.success) throw new ConfigError(describeIssues('options', config.error));
        const weights = flags.weights
          ? flags.weights.split(',').map((w) => parseNumberOption('weights', w, (n) => n >= 0))
          : files.map(() => 1);
        if (weights.length !== files.length) {
          throw new ConfigError(`--weights: ${weights.length} weight(s) for ${files.length} file(s)`);
        }
        let layout: TensorLayout | undefined;
        const updates = files.map((file, i) => {
          let tensors;
          try {
            tensors = decodeDeltaFile(new Uint8Array(readFileSync(file))).tensors;
          } catch (error) {
            throw new ConfigError(`${file}: ${(error as Error).message}`);
          }
          const flat = flattenTensors(tensors, layout ? { expected: layout } : {});
          layout = flat.layout;
          return { values: flat.values, weight: weights[i] ?? 1 };
        });
        if (!layout) throw new ConfigError('no input files');
        const { result } = aggregate(config.data, updates);
        const bytes = encodeFloat32Tensors(
          unflattenTensors(result.values, layout),
          { 'flotilla.strategy': config.data.name },
          'F32',
        );
        writeFileSync(flags.out, bytes);
        printData(
          {
            out: flags.out,
            sha256: sha256Hex(bytes),
            strategy: config.data.name,
            inputs: files.length,
            selected: result.selected,
          },
          flags.json === true,
        );
      }),
    );
}
