import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../config.js';
import { EXIT, parseNumberOption, runCommand } from '../output.js';
import { commandSummary } from '../top-commands.js';

interface PrecisionFlags {
  size: string;
  seeds: string;
  cases?: string;
  out: string;
  redisUrl?: string;
  threads?: string;
  clipNorm?: string;
}

/**
 * `flotilla audit-precision`: runs the drift audit's precision suite (honest non-IID runs, attacked
 * runs with a robust strategy, the attack-free reference) and checks the targets; exit 1
 * when a target is missed.
 */
export function registerAuditPrecision(program: Command): void {
  program
    .command('audit-precision')
    .description(commandSummary('audit-precision'))
    .option('--size <size>', 'full (20 devices, 20 rounds) or reduced (10 devices, 3 rounds)', 'full')
    .option('--seeds <list>', 'comma-separated seeds', '1,2,3')
    .option('--cases <list>', 'comma-separated case names (default: all)')
    .option(
      '--clip-norm <C>',
      'clip bound of the attacked runs and their attack-free reference (default 100; the built-in scenarios use 1)',
    )
    .option('--out <dir>', 'where runs, precision.md and precision.json go', '.flotilla/audit-precision')
    .option('--redis-url <url>', 'use this Redis instead of a private redis-server per run')
    .option('--threads <n>', 'device worker threads per run (default: cores - 1, at least 1)')
    .action((flags: PrecisionFlags) =>
      runCommand(async () => {
        if (flags.size !== 'full' && flags.size !== 'reduced')
          throw new ConfigError(`--size: expected full or reduced, got "${flags.size}"`);
        const seeds = flags.seeds
          .split(',')
          .map((s) =>
            parseNumberOption('seeds', s, (n) => Number.isInteger(n) && n >= 0, 'non-negative integers'),
          );
        const threads =
          flags.threads === undefined
            ? undefined
            : parseNumberOption(
                'threads',
                flags.threads,
                (n) => Number.isInteger(n) && n >= 1,
                'a positive integer',
              );
        const clipNorm =
          flags.clipNorm === undefined
            ? undefined
            : parseNumberOption(
                'clip-norm',
                flags.clipNorm,
                (n) => n > 0 && Number.isFinite(n),
                'a positive number',
              );
        // The runner pulls in tfjs: load it only when the suite actually runs.
        const { runPrecisionSuite } = await import('../../precision/run-suite.js');
        const result = await runPrecisionSuite({
          size: flags.size,
          seeds,
          ...(clipNorm !== undefined ? { clipNorm } : {}),
          ...(flags.cases ? { cases: flags.cases.split(',').map((c) => c.trim()) } : {}),
          outDir: resolve(flags.out),
          cacheDir: resolve('.flotilla'),
          ...(flags.redisUrl ? { redisUrl: flags.redisUrl } : {}),
          ...(threads !== undefined ? { threads } : {}),
          log: (line) => process.stderr.write(`flotilla: ${line}\n`),
        });
        process.stdout.write(result.markdown);
        return result.targets.every((t) => t.pass) ? EXIT.ok : EXIT.failed;
      }),
    );
}
