// How fast `flotilla --help` answers, against starting Node itself, side by side: the CLI loads
// only the command it runs (simulations/src/cli/launch.ts), so help should cost little more than
// Node and the TypeScript loader. Goal: under a second on an idle machine.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { interleaved } from '../lib/measure.js';
import type { BenchRow, SectionResult } from '../lib/report.js';

const BIN = fileURLToPath(new URL('../../simulations/bin/flotilla.mjs', import.meta.url));

function run(args: string[]): () => void {
  return () => {
    const result = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    if (result.status !== 0)
      throw new Error(`${args.join(' ')} exited ${result.status}: ${String(result.stderr)}`);
  };
}

export function runCli(options: { quick: boolean }): SectionResult {
  const timed = interleaved(
    {
      node: run(['-e', '0']),
      help: run([BIN, '--help']),
      deviceHelp: run([BIN, 'device', '--help']),
      coordinatorHelp: run([BIN, 'coordinator', '--help']),
    },
    { warmup: 1, repeats: options.quick ? 3 : 7, budgetMs: options.quick ? 20_000 : 60_000 },
  );
  const { node, help, deviceHelp, coordinatorHelp } = timed.medianMs;
  const row = (measure: string, ms: number): BenchRow => ({
    section: 'cli',
    measure,
    ours: ms,
    oursUnit: 'ms',
    reference: node,
    referenceUnit: 'ms',
    referenceName: 'node -e 0',
    ratio: ms / node,
    ratioMeaning: 'CLI time / bare Node start',
  });
  return {
    rows: [
      row('flotilla --help', help),
      row('flotilla device --help', deviceHelp),
      row('flotilla coordinator --help', coordinatorHelp),
    ],
    details: { medianMs: timed.medianMs, samplesMs: timed.samplesMs, rounds: timed.rounds },
    keys: { cliHelpMs: help, cliHelpVsNodeRatio: help / node },
  };
}
