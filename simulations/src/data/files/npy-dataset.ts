import { readFileSync } from 'node:fs';
import { FlotillaError } from '@flotilla/protocol';
import { encodeLabels, groupByUser, labeledData, type LabeledData } from './labeled.js';
import { readNpy } from './npy.js';

/** Options for {@link loadNpyDataset}. */
export interface NpyDatasetOptions {
  /** Features, shape [n, ...example shape] (any numeric dtype; read as float32). */
  features: string;
  /** Labels, shape [n], integer class indices. */
  labels: string;
  /** Optional user of each example, shape [n] (integers): gives a per-user split. */
  users?: string;
}

/** Reads features, labels and (optionally) users from `.npy` files into one dataset. */
export function loadNpyDataset(options: NpyDatasetOptions): LabeledData {
  const features = readNpy(readFileSync(options.features));
  const labels = readNpy(readFileSync(options.labels));
  const [n, ...shape] = features.shape;
  if (n === undefined || shape.length === 0)
    throw new FlotillaError(
      'BAD_REQUEST',
      `${options.features}: features need shape [n, ...], got [${features.shape.join(', ')}]`,
    );
  if (labels.shape.length !== 1 || labels.shape[0] !== n)
    throw new FlotillaError(
      'BAD_REQUEST',
      `${options.labels}: labels need shape [${n}], got [${labels.shape.join(', ')}]`,
    );
  const { ys, classNames } = encodeLabels(
    Array.from(labels.values, (v) => {
      if (!Number.isInteger(v))
        throw new FlotillaError('BAD_REQUEST', `${options.labels}: label ${v} is not an integer`);
      return v;
    }),
  );
  let users = null;
  if (options.users !== undefined) {
    const owners = readNpy(readFileSync(options.users));
    if (owners.shape.length !== 1 || owners.shape[0] !== n)
      throw new FlotillaError(
        'BAD_REQUEST',
        `${options.users}: users need shape [${n}], got [${owners.shape.join(', ')}]`,
      );
    users = groupByUser(Array.from(owners.values, (v) => String(v)));
  }
  return labeledData({ xs: Float32Array.from(features.values), ys, shape, classNames, users });
}
