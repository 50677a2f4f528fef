import { resolve } from 'node:path';
import type { Command } from 'commander';
import { EXIT, parseNumberOption, runCommand } from '../output.js';
import { reportStudy } from './simulate.js';

interface SweepFlags {
  out: string;
  redisUrl?: string;
  threads?: string;
  progress?: boolean;
  keepState?: boolean;
  stallTimeout?: string;
  dryRun?: boolean;
}

/** Runs (or resumes) a sweep file's grid × seeds and writes the comparison report. */
async function sweep(path: string, flags: SweepFlags): Promise<number> {
  const { loadSweep, sweepConfigurations, sweepSeeds } = await import('../../study/sweep.js');
  const loaded = loadSweep(path);
  const configurations = sweepConfigurations(loaded);
  const seeds = sweepSeeds(loaded.sweep, configurations);
  const { sweep } = loaded;
  process.stderr.write(
    `flotilla: sweep "${sweep.name}": ${configurations.length} configurations × ${seeds.length} seeds (${seeds.join(', ')}) = ${configurations.length * seeds.length} runs\n`,
  );
  if (flags.dryRun) {
    for (const c of configurations) process.stdout.write(`${c.slug}\t${c.label}\n`);
    return EXIT.ok;
  }
  // The runner pulls in tfjs: load it only when a run actually happens.
  const { runStudy } = await import('../../study/run-study.js');
  const study = await runStudy({
    outDir: resolve(flags.out),
    title: `Flotilla sweep: ${sweep.name}`,
    description: sweep.description,
    facts: {
      'sweep file': path,
      'base scenario': sweep.scenario,
      ...(Object.keys(sweep.set).length > 0 ? { 'set in every run': JSON.stringify(sweep.set) } : {}),
      varied: sweep.axes.map((a) => ('field' in a ? a.field : a.name)).join(' × '),
      seeds: seeds.join(', '),
      command: `flotilla sweep ${path} --out ${flags.out}`,
    },
    configurations,
    seeds,
    ...(sweep.target !== undefined ? { target: sweep.target } : {}),
    cacheDir: resolve('.flotilla'),
    ...(flags.redisUrl ? { redisUrl: flags.redisUrl } : {}),
    ...(flags.threads
      ? {
          threads: parseNumberOption(
            'threads',
            flags.threads,
            (n) => Number.isInteger(n) && n >= 1,
            'a whole number >= 1',
          ),
        }
      : {}),
    ...(flags.stallTimeout !== undefined
      ? {
          stallTimeoutMs:
            1000 * parseNumberOption('stall-timeout', flags.stallTimeout, (n) => n > 0, 'seconds > 0'),
        }
      : {}),
    progress: flags.progress !== false,
    keepState: flags.keepState === true,
  });
  return reportStudy(study);
}

export function registerSweep(program: Command): void {
  program
    .command('sweep')
    .description(
      'run a grid of scenario variants × seeds (resuming an interrupted sweep) and write one comparison report with 95% intervals',
    )
    .argument('<sweep>', 'a sweep file (YAML or JSON): base scenario, axes, repeats, target accuracy')
    .requiredOption(
      '--out <dir>',
      'where the runs (runs/<configuration>/seed-<s>/) and the comparison report go',
    )
    .option('--redis-url <url>', 'use this Redis instead of a private redis-server per run')
    .option('--threads <n>', 'device worker threads per run (default: cores - 1, at least 1)')
    .option(
      '--stall-timeout <seconds>',
      'fail a run whose round makes no progress for this long (default 120)',
    )
    .option(
      '--keep-state',
      "keep each run's retained deltas and Redis data (default: only its round log and keys)",
    )
    .option('--dry-run', 'list the configurations and exit')
    .option('--no-progress', 'no progress bars')
    .action((path: string, flags: SweepFlags) => runCommand(() => sweep(path, flags)));
}
