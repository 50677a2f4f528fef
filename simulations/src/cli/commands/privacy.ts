import type { Command } from 'commander';
import {
  DEFAULT_ORDERS,
  computeRdp,
  epsilonFromRdp,
  solveNoiseMultiplier,
  type RdpConversion,
} from '@flotilla/coordinator/worker';
import { ConfigError } from '../config.js';
import { parseNumberOption, printData, runCommand } from '../output.js';

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

export function registerPrivacy(program: Command): void {
  const privacy = program
    .command('privacy')
    .description('differential-privacy accounting for the sampled Gaussian mechanism (RDP accountant)');
  privacy
    .command('epsilon')
    .description('ε after T rounds with sampling rate q and noise multiplier z, and the best Rényi order')
    .requiredOption('--sampling-rate <q>', 'devices selected per round / population, in [0, 1]')
    .requiredOption('--noise-multiplier <z>', 'Gaussian noise multiplier z (std z·C/m on the average)')
    .requiredOption('--steps <T>', 'number of rounds')
    .requiredOption('--delta <δ>', 'δ of the (ε, δ) guarantee')
    .option(
      '--conversion <rule>',
      'RDP→(ε,δ): improved (Balle et al. 2020) or classic (Mironov 2017)',
      'improved',
    )
    .option('--json', 'print JSON')
    .action((flags: PrivacyFlags & { noiseMultiplier: string }) =>
      runCommand(() => {
        const { q, steps, delta, conversion } = common(flags);
        const z = parseNumberOption(
          'noise-multiplier',
          flags.noiseMultiplier,
          (n) => n >= 0,
          'a number >= 0',
        );
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
      runCommand(() => {
        const { q, steps, delta, conversion } = common(flags);
        const targetEpsilon = parseNumberOption(
          'target-epsilon',
          flags.targetEpsilon,
          (n) => n > 0,
          'a number > 0',
        );
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
