import type { Command } from 'commander';
import type { RdpConversion } from '@flotilla/coordinator/worker';
import { ConfigError } from '../config.js';
import { parseNumberOption, printData, runCommand } from '../output.js';
import { commandSummary } from '../top-commands.js';

interface PrivacyFlags {
  samplingRate: string;
  steps: string;
  delta: string;
  conversion: string;
  json?: boolean;
}

function common(flags: PrivacyFlags): { q: number; steps: number; delta: number; conversion: RdpConversion } {
  const q = parseNumberOption(
    'sampling-rate',
    flags.samplingRate,
    (n) => n >= 0 && n <= 1,
    'a number in [0, 1]',
  );
  const steps = parseNumberOption(
    'steps',
    flags.steps,
    (n) => Number.isInteger(n) && n >= 0,
    'a whole number >= 0',
  );
  const delta = parseNumberOption('delta', flags.delta, (n) => n > 0 && n < 1, 'a number in (0, 1)');
  if (flags.conversion !== 'improved' && flags.conversion !== 'classic') {
    throw new ConfigError(`--conversion: expected "improved" or "classic", got "${flags.conversion}"`);
  }
  return { q, steps, delta, conversion: flags.conversion };
}

/** The four options of the planning form, each required without --log. */
function required(
  flags: Partial<PrivacyFlags> & { noiseMultiplier?: string },
): PrivacyFlags & { noiseMultiplier: string } {
  const missing = (
    [
      ['samplingRate', '--sampling-rate'],
      ['noiseMultiplier', '--noise-multiplier'],
      ['steps', '--steps'],
      ['delta', '--delta'],
    ] as const
  ).filter(([key]) => flags[key] === undefined);
  if (missing.length > 0)
    throw new ConfigError(`missing ${missing.map(([, flag]) => flag).join(', ')} (or give --log <file>)`);
  return {
    samplingRate: flags.samplingRate ?? '',
    noiseMultiplier: flags.noiseMultiplier ?? '',
    steps: flags.steps ?? '',
    delta: flags.delta ?? '',
    conversion: flags.conversion ?? 'improved',
    ...(flags.json !== undefined ? { json: flags.json } : {}),
  };
}

export function registerPrivacy(program: Command): void {
  const privacy = program.command('privacy').description(commandSummary('privacy'));
  privacy
    .command('epsilon')
    .description(
      'ε after T rounds with sampling rate q and noise multiplier z, and the best Rényi order; ' +
        'or, with --log, the ε a task spent, recomputed from its round log alone',
    )
    .option('--sampling-rate <q>', 'Poisson sampling rate of a planned run, in [0, 1] (1: no amplification)')
    .option('--noise-multiplier <z>', 'Gaussian noise multiplier z (std z·C/m on the average)')
    .option('--steps <T>', 'number of rounds')
    .option('--delta <δ>', 'δ of the (ε, δ) guarantee')
    .option(
      '--conversion <rule>',
      'RDP→(ε,δ): improved (Balle et al. 2020) or classic (Mironov 2017)',
      'improved',
    )
    .option('--log <file>', 'round log (JSONL): recompute the ε the task spent, every charged round listed')
    .option('--task <id>', 'with --log: the task (needed when the log holds several DP tasks)')
    .option('--json', 'print JSON')
    .action((flags: Partial<PrivacyFlags> & { noiseMultiplier?: string; log?: string; task?: string }) =>
      runCommand(async () => {
        if (flags.log !== undefined) {
          const planning = ['samplingRate', 'noiseMultiplier', 'steps', 'delta'] as const;
          const given = planning.filter((key) => flags[key] !== undefined);
          if (given.length > 0)
            throw new ConfigError(
              '--log recomputes ε from the log: leave out --sampling-rate, --noise-multiplier, --steps and --delta',
            );
          const { epsilonFromLogCommand } = await import('@flotilla/coordinator/shared');
          const result = await epsilonFromLogCommand({
            file: flags.log,
            json: flags.json === true,
            ...(flags.task !== undefined ? { taskId: flags.task } : {}),
          });
          process.stdout.write(result.output);
          return result.exitCode;
        }
        if (flags.task !== undefined) throw new ConfigError('--task goes with --log');
        const { q, steps, delta, conversion } = common(required(flags));
        const z = parseNumberOption(
          'noise-multiplier',
          flags.noiseMultiplier ?? '',
          (n) => n >= 0,
          'a number >= 0',
        );
        const { DEFAULT_ORDERS, computeRdp, epsilonFromRdp } = await import('@flotilla/coordinator/worker');
        const rdp = computeRdp({ q, noiseMultiplier: z, steps, orders: DEFAULT_ORDERS });
        const bound = epsilonFromRdp({ orders: DEFAULT_ORDERS, rdp, delta, conversion });
        printData(
          {
            epsilon: bound.epsilon,
            delta,
            order: bound.order,
            samplingRate: q,
            noiseMultiplier: z,
            steps,
            conversion,
          },
          flags.json === true,
        );
      }),
    );
  privacy
    .command('noise')
    .description('smallest noise multiplier z that keeps ε at or under a target after T rounds')
    .requiredOption('--target-epsilon <ε>', 'ε budget')
    .requiredOption('--sampling-rate <q>', 'devices selected per round / population, in (0, 1]')
    .requiredOption('--steps <T>', 'number of rounds')
    .requiredOption('--delta <δ>', 'δ of the (ε, δ) guarantee')
    .option('--conversion <rule>', 'improved or classic', 'improved')
    .option('--json', 'print JSON')
    .action((flags: PrivacyFlags & { targetEpsilon: string }) =>
      runCommand(async () => {
        const { q, steps, delta, conversion } = common(flags);
        const targetEpsilon = parseNumberOption(
          'target-epsilon',
          flags.targetEpsilon,
          (n) => n > 0,
          'a number > 0',
        );
        const { DEFAULT_ORDERS, computeRdp, epsilonFromRdp, solveNoiseMultiplier } =
          await import('@flotilla/coordinator/worker');
        const z = solveNoiseMultiplier({ targetEpsilon, q, steps, delta, conversion });
        const rdp = computeRdp({ q, noiseMultiplier: z, steps, orders: DEFAULT_ORDERS });
        const bound = epsilonFromRdp({ orders: DEFAULT_ORDERS, rdp, delta, conversion });
        printData(
          {
            noiseMultiplier: z,
            epsilon: bound.epsilon,
            targetEpsilon,
            delta,
            order: bound.order,
            samplingRate: q,
            steps,
            conversion,
          },
          flags.json === true,
        );
      }),
    );
}
