// A sweep file: a base scenario, changes applied to every run, and axes whose product is the grid
// of configurations; each configuration runs with every seed. Read and expanded here; run by
// run-study.ts.
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { FlotillaError } from '@flotilla/protocol';
import {
  formatIssues,
  readYamlFile,
  resolveScenarioPaths,
  scenarioPath,
  validateScenario,
} from '../scenario/load.js';
import { BUILTIN_SCENARIO_DIR } from '../scenario/load.js';
import type { Scenario } from '../scenario/schema.js';
import { slugOf, type StudyConfiguration } from './run-study.js';

/** A partial scenario: fields to set, nested objects merged into the base's. */
const ScenarioPatchSchema = z.record(z.string(), z.json());
type ScenarioPatch = z.infer<typeof ScenarioPatchSchema>;

/** One axis: a scenario field (dotted path) and its values, or named variants (partial scenarios). */
export const SweepAxisSchema = z.union([
  z
    .object({
      /** Dotted path of a scenario field, e.g. `training.epochs`. */
      field: z.string().regex(/^[A-Za-z]\w*(\.[A-Za-z]\w*)*$/, 'a dotted field path, e.g. training.epochs'),
      values: z.array(z.json()).min(1).max(100),
      /** Names of the values in labels (default: `<field>=<value>`). */
      labels: z.array(z.string().min(1)).optional(),
    })
    .strict(),
  z
    .object({
      /** What the axis varies, for the report. */
      name: z.string().min(1),
      /** Name → changes to the scenario (several fields at once, e.g. every safeguard). */
      variants: z.record(z.string().min(1), ScenarioPatchSchema),
    })
    .strict(),
]);
export type SweepAxis = z.infer<typeof SweepAxisSchema>;

export const SweepSchema = z
  .object({
    name: z.string().min(1).max(64),
    description: z.string().max(2000).default(''),
    /** A built-in scenario name or a scenario file (relative to the sweep file). */
    scenario: z.string().min(1),
    /** Changes applied to every configuration before the axes'. */
    set: ScenarioPatchSchema.default({}),
    /** The grid is the product of the axes' values. */
    axes: z.array(SweepAxisSchema).min(1).max(8),
    /** Seeds per configuration: the base scenario's seed, seed + 1, … Default 3. */
    repeats: z.number().int().min(1).max(100).default(3),
    /** The seeds, instead of `repeats` consecutive ones. */
    seeds: z.array(z.number().int().nonnegative()).min(1).max(100).optional(),
    /** Test accuracy in (0, 1] whose first round the report gives (rounds to target). */
    target: z.number().gt(0).max(1).optional(),
  })
  .strict()
  .superRefine((sweep, ctx) => {
    sweep.axes.forEach((axis, i) => {
      if ('variants' in axis && Object.keys(axis.variants).length === 0)
        ctx.addIssue({
          code: 'custom',
          path: ['axes', i, 'variants'],
          message: 'needs at least one variant',
        });
      if ('labels' in axis && axis.labels !== undefined && axis.labels.length !== axis.values.length)
        ctx.addIssue({ code: 'custom', path: ['axes', i, 'labels'], message: 'needs one label per value' });
    });
  });
export type Sweep = z.infer<typeof SweepSchema>;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** `patch` merged into `base`: objects field by field, anything else replaced. */
export function mergePatch(base: unknown, patch: unknown): unknown {
  if (!isObject(base) || !isObject(patch)) return patch;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(patch)) merged[key] = mergePatch(base[key], value);
  return merged;
}

/** The patch that sets the dotted `field` to `value`. */
export function fieldPatch(field: string, value: unknown): ScenarioPatch {
  const keys = field.split('.');
  let patch: unknown = value;
  for (const key of [...keys].reverse()) patch = { [key]: patch };
  return patch as ScenarioPatch;
}

/** Each axis as (label, patch) choices. */
function axisChoices(axis: SweepAxis): Array<{ label: string; patch: ScenarioPatch }> {
  if ('variants' in axis) return Object.entries(axis.variants).map(([label, patch]) => ({ label, patch }));
  return axis.values.map((value, i) => ({
    label: axis.labels?.[i] ?? `${axis.field.split('.').at(-1) ?? axis.field}=${JSON.stringify(value)}`,
    patch: fieldPatch(axis.field, value),
  }));
}

/** A parsed sweep file with its base scenario's location. */
export interface LoadedSweep {
  sweep: Sweep;
  path: string;
  /** The base scenario document, before any change. */
  base: unknown;
  /** Folder its relative data and model paths are taken from. */
  baseDir: string;
}

export function loadSweep(path: string): LoadedSweep {
  const parsed = SweepSchema.safeParse(readYamlFile(path, 'sweep file'));
  if (!parsed.success)
    throw new FlotillaError('BAD_REQUEST', `${path} is invalid:\n${formatIssues(parsed.error.issues)}`);
  const sweep = parsed.data;
  const named = scenarioPath(sweep.scenario);
  const file =
    named.startsWith(BUILTIN_SCENARIO_DIR) || isAbsolute(named) ? named : resolve(dirname(path), named);
  return { sweep, path, base: readYamlFile(file), baseDir: dirname(file) };
}

/**
 * Every configuration of the grid, validated before anything runs (a bad value names its
 * configuration and field). Each keeps the base scenario's seed; the study sets each run's.
 */
export function sweepConfigurations(loaded: LoadedSweep): StudyConfiguration[] {
  const { sweep } = loaded;
  let combos: Array<Array<{ label: string; patch: ScenarioPatch }>> = [[]];
  for (const axis of sweep.axes)
    combos = combos.flatMap((combo) => axisChoices(axis).map((choice) => [...combo, choice]));
  const slugs = new Set<string>();
  return combos.map((combo) => {
    const label = combo.map((c) => c.label).join(', ');
    let slug = slugOf(label);
    for (let k = 2; slugs.has(slug); k++) slug = `${slugOf(label)}-${k}`;
    slugs.add(slug);
    const document = [sweep.set, ...combo.map((c) => c.patch)].reduce<unknown>(
      (value, patch) => mergePatch(value, patch),
      loaded.base,
    );
    const named = mergePatch(document, { name: `${sweep.name}-${slug}`.slice(0, 128) });
    const scenario: Scenario = resolveScenarioPaths(
      validateScenario(named, `${loaded.path}, configuration "${label}"`),
      loaded.baseDir,
    );
    return { label, slug, scenario };
  });
}

/** The seeds every configuration runs with. */
export function sweepSeeds(sweep: Sweep, configurations: readonly StudyConfiguration[]): number[] {
  if (sweep.seeds) return [...sweep.seeds];
  const first = configurations[0]?.scenario.seed ?? 1;
  return Array.from({ length: sweep.repeats }, (_, k) => first + k);
}
