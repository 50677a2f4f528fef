import { writeReport, type WrittenReport } from '../report/write.js';
import type { RunMetricsInput } from '../report/metrics.js';
import type { Scenario } from '../scenario/schema.js';
import { SEED_STREAMS } from '../scenario/seeds.js';
import type { SimulationResult } from './run-simulation.js';

/** `seed` and any stream pinned to another seed, e.g. `1 (model 5)`. */
function describeSeeds(scenario: Scenario): string {
  const pinned = SEED_STREAMS.filter((s) => {
    const seed = scenario.seeds[s];
    return seed !== undefined && seed !== scenario.seed;
  }).map((s) => `${s} ${String(scenario.seeds[s])}`);
  return pinned.length > 0 ? `${scenario.seed} (${pinned.join(', ')})` : String(scenario.seed);
}

/** The four safeguards as the run had them (docs/simulations.md#safeguards-each-one-a-scenario-field). */
function describeSafeguards(scenario: Scenario): string {
  const gate = scenario.training.validationTolerance;
  return [
    `validation gate ${gate === 'off' ? 'off' : `tolerance ${gate}`}`,
    `clip ${scenario.clipNorm === 'none' ? 'none' : `C = ${scenario.clipNorm}`}`,
    `drift audit ${scenario.audit.enforce === false ? 'off (records only)' : 'on'}`,
    `quorum ${scenario.minReports}`,
  ].join('; ');
}

/**
 * Adapter bytes the devices downloaded against the update bytes they uploaded, over the rounds
 * after the first (devices then follow versions by deltas of the tensors that changed: for
 * FFA-LoRA B alone, which is what they upload).
 */
export function adapterTraffic(result: Pick<SimulationResult, 'metrics'>): string {
  const later = result.metrics.filter((m) => m.round > 1);
  const down = later.reduce((sum, m) => sum + (m.adapterBytesDown ?? 0), 0);
  const up = later.reduce((sum, m) => sum + m.bytesUp, 0);
  const kb = (bytes: number) => `${(bytes / 1000).toFixed(1)} kB`;
  return `${kb(down)} down ${down <= up ? '≤' : '>'} ${kb(up)} up over rounds 2–${result.metrics.at(-1)?.round ?? 1}`;
}

/** Writes metrics (JSON, CSV) and the report (Markdown, HTML, SVG plots) of one run. */
export function reportRun(
  outDir: string,
  result: SimulationResult,
  /** More runs to draw beside this one (e.g. centralized baselines) and facts about them. */
  extra: { runs?: RunMetricsInput[]; facts?: Record<string, string> } = {},
): WrittenReport {
  const { scenario } = result;
  return writeReport(outDir, {
    title: `Flotilla simulation: ${scenario.name}`,
    backend: result.backend,
    description: scenario.description,
    runs: [
      {
        label: scenario.name,
        metrics: result.metrics,
        ...(result.attack !== null ? { attack: result.attack } : {}),
      },
      ...(extra.runs ?? []),
    ],
    ...(result.perDevice ? { perDevice: result.perDevice } : {}),
    baselines: [
      ...(result.base.cleanAccuracy !== null && result.base.referenceLabel !== null
        ? [{ label: `base model, ${result.base.referenceLabel}`, accuracy: result.base.cleanAccuracy }]
        : []),
      { label: `base model, ${result.base.testLabel}`, accuracy: result.base.shiftedAccuracy },
    ],
    facts: {
      seed: describeSeeds(scenario),
      dataset: scenario.dataset,
      devices: String(scenario.devices),
      'devices per round': String(scenario.devicesPerRound),
      partition:
        scenario.partition.scheme +
        (scenario.partition.alpha !== undefined ? ` (alpha ${scenario.partition.alpha})` : ''),
      // r means nothing without low-rank factors (bias offsets, full fine-tuning).
      adapter: `${scenario.adapter.mode}${
        scenario.adapter.mode === 'lora' || scenario.adapter.mode === 'ffa-lora'
          ? ` r=${scenario.adapter.r}`
          : ''
      } on ${scenario.adapter.targetModules.join(', ')}`,
      strategy: scenario.strategy.name,
      attack:
        scenario.behaviour.attack === 'none'
          ? 'none'
          : `${scenario.behaviour.attack}${scenario.behaviour.attackScale !== undefined ? ` (scale ${scenario.behaviour.attackScale})` : ''}`,
      'Byzantine fraction': String(scenario.behaviour.byzantineFraction),
      ...(scenario.behaviour.attack === 'backdoor'
        ? {
            backdoor: `target class ${scenario.behaviour.backdoor.targetClass}, ${100 * scenario.behaviour.backdoor.poisonFraction}% of each attacker's examples triggered (docs/simulations.md#attacks-and-their-ground-truth)`,
          }
        : {}),
      safeguards: describeSafeguards(scenario),
      'base model digest': result.base.digest,
      'round log': result.roundLogPath,
      ...(scenario.dp
        ? {
            privacy:
              `z ${scenario.dp.noiseMultiplier}, δ ${scenario.dp.delta}, budget ε ${scenario.dp.epsilonBudget}; ` +
              'ε counts every noised aggregate, promoted or rejected, without amplification by sampling (docs/privacy.md)',
          }
        : {}),
      ...(result.stopped !== null ? { 'task stopped': result.stopped } : {}),
      ...extra.facts,
      'adapter downloads': adapterTraffic(result),
    },
  });
}

/** A fixed-width summary table of the rounds for the terminal. */
export function summaryTable(result: SimulationResult): string {
  const rows = result.metrics.map((m) => [
    String(m.round),
    m.accuracy === null ? '-' : `${(100 * m.accuracy).toFixed(1)}%`,
    m.loss === null ? '-' : m.loss.toFixed(3),
    String(m.participants),
    Object.entries(m.refused ?? {})
      .map(([k, v]) => `${k}:${v}`)
      .join(' ') || '-',
    `${(m.bytesUp / 1024).toFixed(0)}/${(m.bytesDown / 1024).toFixed(0)}`,
    m.epsilon === null ? '-' : m.epsilon.toFixed(3),
    m.decision,
  ]);
  const header = [
    'round',
    'accuracy',
    'loss',
    'accepted',
    'refused/skipped',
    'KiB up/down',
    'epsilon',
    'decision',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
