import { FlotillaError } from '@flotilla/protocol';
import type { Dataset } from '../dataset.js';

/** Which examples belong to which user: the natural split of data that comes per user (LEAF). */
export interface UserSplit {
  /** User ids in the order devices take them (device i is user i). */
  ids: string[];
  /** Example indices of each user, aligned with `ids`. */
  indices: number[][];
}

/** Examples read from files: a dataset, the names of its classes and, when known, its users. */
export interface LabeledData extends Dataset {
  shape: readonly number[];
  /** Class index → name, when labels were names (CSV, image folders); else null. */
  classNames: string[] | null;
  /** Per-user split, when the files say who each example belongs to. */
  users: UserSplit | null;
}

/**
 * Class indices for raw labels: integer labels are kept as they are; anything else (names) gets
 * indices in sorted order of the distinct names, so the mapping does not depend on file order.
 */
export function encodeLabels(raw: readonly (string | number)[]): {
  ys: Int32Array;
  classNames: string[] | null;
} {
  const numeric = raw.every((v) => typeof v === 'number' || /^-?\d+$/.test(v.trim()));
  if (numeric) {
    const ys = Int32Array.from(raw, (v) => Number(v));
    const low = ys.reduce((m, v) => Math.min(m, v), 0);
    if (low < 0) throw new FlotillaError('BAD_REQUEST', `labels must be class indices >= 0, found ${low}`);
    return { ys, classNames: null };
  }
  const names = [...new Set(raw.map(String))].sort();
  const index = new Map(names.map((name, i) => [name, i]));
  return { ys: Int32Array.from(raw, (v) => index.get(String(v)) ?? -1), classNames: names };
}

/** Groups example indices by user id; users in order of first appearance unless `sort`. */
export function groupByUser(userOf: readonly string[], options: { sort?: boolean } = {}): UserSplit {
  const byUser = new Map<string, number[]>();
  userOf.forEach((user, i) => {
    const list = byUser.get(user);
    if (list) list.push(i);
    else byUser.set(user, [i]);
  });
  const ids = [...byUser.keys()];
  if (options.sort) ids.sort();
  return { ids, indices: ids.map((id) => byUser.get(id) ?? []) };
}

/** Assembles a LabeledData, checking that features, labels and shape agree. */
export function labeledData(input: {
  xs: Float32Array;
  ys: Int32Array;
  shape: readonly number[];
  classNames: string[] | null;
  users: UserSplit | null;
  /** Default: one more than the largest label (or the number of class names). */
  numClasses?: number;
}): LabeledData {
  const dim = input.shape.reduce((p, d) => p * d, 1);
  const n = input.ys.length;
  if (dim <= 0 || input.xs.length !== n * dim)
    throw new FlotillaError(
      'SHAPE_MISMATCH',
      `${input.xs.length} feature values for ${n} labels of shape [${input.shape.join(', ')}]`,
    );
  const numClasses =
    input.numClasses ?? input.classNames?.length ?? input.ys.reduce((m, v) => Math.max(m, v + 1), 0);
  const over = input.ys.find((y) => y >= numClasses);
  if (over !== undefined)
    throw new FlotillaError(
      'BAD_REQUEST',
      `label ${over} is not below the number of classes (${numClasses})`,
    );
  return {
    xs: input.xs,
    ys: input.ys,
    n,
    dim,
    numClasses,
    shape: [...input.shape],
    classNames: input.classNames,
    users: input.users,
  };
}
