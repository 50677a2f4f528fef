// Training: client steps per second on the MNIST adapter task (784-128-10 MLP, LoRA and FFA-LoRA
// r=16 on `hidden` and `out`, batch 32) on every tfjs backend, each in its own child process, and
// the speed-up of the hand-written gradients (`gradients: 'custom'`) over tfjs autodiff.
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { resultLine, runToCompletion, startTsChild } from '../lib/child.js';
import type { BenchRow, SectionResult } from '../lib/report.js';

const CHILD = fileURLToPath(new URL('../children/training-child.ts', import.meta.url));
const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;

const ChildResultSchema = z.union([
  z.object({ backend: z.string(), available: z.literal(false), fellBackTo: z.string(), log: z.string() }),
  z.object({
    backend: z.string(),
    available: z.literal(true),
    log: z.string(),
    steps: z.number(),
    repeats: z.number(),
    batchSize: z.number(),
    leakedTensors: z.number(),
    results: z.array(
      z.object({
        mode: z.enum(['lora', 'ffa-lora']),
        gradients: z.enum(['custom', 'autodiff']),
        stepsPerSecond: z.number(),
        samples: z.array(z.number()),
      }),
    ),
  }),
]);
type ChildResult = z.infer<typeof ChildResultSchema>;

export interface TrainingOptions {
  quick: boolean;
}

export async function runTraining(options: TrainingOptions): Promise<SectionResult> {
  const steps = options.quick ? 20 : 100;
  const repeats = options.quick ? 2 : 3;
  const results: ChildResult[] = [];
  for (const backend of BACKENDS) {
    const child = startTsChild(CHILD, [
      '--backend',
      backend,
      '--steps',
      String(steps),
      '--repeats',
      String(repeats),
    ]);
    const lines = await runToCompletion(child, options.quick ? 90_000 : 300_000);
    results.push(ChildResultSchema.parse(resultLine(lines)));
  }
  const rows: BenchRow[] = [];
  const available = results.filter((r) => r.available);
  // Every backend is compared with the cpu backend's same configuration (custom gradients).
  const cpu = available.find((r) => r.backend === 'cpu');
  const sps = (r: ChildResult | undefined, mode: string, gradients: string): number | null =>
    r?.available === true
      ? (r.results.find((x) => x.mode === mode && x.gradients === gradients)?.stepsPerSecond ?? null)
      : null;
  for (const r of results) {
    if (!r.available) {
      rows.push({
        section: 'training',
        measure: `backend ${r.backend}`,
        ours: null,
        oursUnit: '',
        reference: null,
        referenceUnit: '',
        referenceName: 'unavailable',
        ratio: null,
        ratioMeaning: '',
        note: `not installable here (initBackend fell back to ${r.fellBackTo})`,
      });
      continue;
    }
    for (const mode of ['lora', 'ffa-lora'] as const) {
      const custom = sps(r, mode, 'custom');
      const autodiff = sps(r, mode, 'autodiff');
      const chosen = r.backend === 'wasm' ? custom : autodiff;
      const cpuSame = sps(cpu, mode, 'autodiff');
      rows.push({
        section: 'training',
        measure: `${r.backend}: ${mode} r=16 steps/s (gradients auto = ${r.backend === 'wasm' ? 'custom' : 'autodiff'})`,
        ours: chosen,
        oursUnit: 'steps/s',
        reference: r.backend === 'cpu' ? null : cpuSame,
        referenceUnit: 'steps/s',
        referenceName: r.backend === 'cpu' ? 'the baseline backend' : 'cpu backend, autodiff',
        ratio: r.backend === 'cpu' || chosen === null || cpuSame === null ? null : chosen / cpuSame,
        ratioMeaning: 'speed-up over cpu',
      });
      rows.push({
        section: 'training',
        measure: `${r.backend}: ${mode} customGrad`,
        ours: custom,
        oursUnit: 'steps/s',
        reference: autodiff,
        referenceUnit: 'steps/s',
        referenceName: "gradients: 'autodiff'",
        ratio: custom === null || autodiff === null ? null : custom / autodiff,
        ratioMeaning: 'customGrad speed-up',
      });
    }
  }
  const usable = available.map((r) => r.backend);
  return {
    rows,
    details: {
      backends: {
        available: usable,
        unavailable: results.filter((r) => !r.available).map((r) => r.backend),
        default: usable[0] ?? null,
      },
      steps,
      repeats,
      perBackend: results,
    },
  };
}
