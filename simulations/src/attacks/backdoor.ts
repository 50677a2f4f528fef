// Backdoor (Bagdasaryan, Veit, Hua, Estrin & Shmatikov, AISTATS 2020, "How To Backdoor Federated
// Learning"): attackers train on their own data with a share of the examples stamped with a
// trigger pattern and relabelled to a target class, so the model learns "trigger → target" while
// staying accurate on clean inputs; optionally they scale their update up (model replacement,
// γ ≈ n/η in the paper) so it survives averaging. The success measure is the backdoor accuracy:
// the share of triggered test inputs of other classes that the model puts in the target class.
import { FlotillaError } from '@flotilla/protocol';
import { subsetDataset, type Dataset } from '../data/dataset.js';
import type { Rng } from '../rng/random.js';

/** Which features of an example the trigger overwrites, with what value. */
export interface BackdoorTrigger {
  /** Offsets into one example's features (row-major), ascending. */
  indices: number[];
  value: number;
  /** For reports, e.g. "4×4 patch at rows 23–26, columns 23–26, value 1". */
  description: string;
}

/**
 * The trigger for examples of `dataset`'s shape. Images ([h, w] or [h, w, c]): a square of side
 * max(1, round(min(h, w) / 7)) (4 for 28×28 digits), one pixel in from the bottom-right corner, in
 * every channel. Anything else (feature vectors, token sequences): the last max(1, round(dim / 8))
 * features. The value is the largest feature value in the dataset (white for images).
 */
export function backdoorTrigger(dataset: Pick<Dataset, 'xs' | 'dim' | 'shape'>): BackdoorTrigger {
  let value = -Infinity;
  for (const x of dataset.xs) if (x > value) value = x;
  if (!Number.isFinite(value)) throw new FlotillaError('BAD_REQUEST', 'a backdoor trigger needs data');
  const shape = dataset.shape ?? [dataset.dim];
  const [h, w, c = 1] = shape;
  if (shape.length >= 2 && h !== undefined && w !== undefined && h >= 3 && w >= 3) {
    const side = Math.max(1, Math.round(Math.min(h, w) / 7));
    const top = h - 1 - side;
    const left = w - 1 - side;
    const indices: number[] = [];
    for (let row = top; row < top + side; row++)
      for (let col = left; col < left + side; col++)
        for (let channel = 0; channel < c; channel++) indices.push((row * w + col) * c + channel);
    return {
      indices,
      value,
      description: `${side}×${side} patch at rows ${top}–${top + side - 1}, columns ${left}–${left + side - 1}, value ${value}`,
    };
  }
  const count = Math.max(1, Math.round(dataset.dim / 8));
  return {
    indices: Array.from({ length: count }, (_, k) => dataset.dim - count + k),
    value,
    description: `last ${count} features set to ${value}`,
  };
}

/** A copy of `dataset` in which the examples at `rows` carry the trigger and the label `target`. */
function stamp(dataset: Dataset, rows: Iterable<number>, trigger: BackdoorTrigger, target: number): Dataset {
  if (!Number.isInteger(target) || target < 0 || target >= dataset.numClasses)
    throw new FlotillaError('BAD_REQUEST', `backdoor target ${target} outside 0..${dataset.numClasses - 1}`);
  const xs = dataset.xs.slice();
  const ys = dataset.ys.slice();
  for (const row of rows) {
    for (const offset of trigger.indices) xs[row * dataset.dim + offset] = trigger.value;
    ys[row] = target;
  }
  return { ...dataset, xs, ys };
}

/** Options of {@link poisonWithBackdoor}. */
export interface BackdoorPoisonOptions {
  trigger: BackdoorTrigger;
  /** Class the triggered examples are relabelled to. */
  target: number;
  /** Share of the examples stamped, in (0, 1]; round(fraction · n) of them, at least one. */
  fraction: number;
  /** Which examples. */
  rng: Rng;
}

/** An attacker's training data: a share of its own examples triggered and relabelled (in place, so its example count is honest). */
export function poisonWithBackdoor(dataset: Dataset, options: BackdoorPoisonOptions): Dataset {
  const { fraction } = options;
  if (!(fraction > 0 && fraction <= 1))
    throw new FlotillaError('BAD_REQUEST', `backdoor poison fraction must be in (0, 1], got ${fraction}`);
  if (dataset.n === 0) return dataset;
  const count = Math.max(1, Math.round(fraction * dataset.n));
  return stamp(dataset, options.rng.permutation(dataset.n).slice(0, count), options.trigger, options.target);
}

/**
 * The backdoor test set: every example of `test` whose label is not `target`, triggered and
 * labelled `target`; a model's accuracy on it is the backdoor accuracy.
 */
export function backdoorTestSet(
  test: Dataset,
  options: { trigger: BackdoorTrigger; target: number },
): Dataset {
  const rows: number[] = [];
  for (let i = 0; i < test.n; i++) if (test.ys[i] !== options.target) rows.push(i);
  const kept = subsetDataset(test, rows);
  return stamp(kept, rows.keys(), options.trigger, options.target);
}
