import { FlotillaError } from '@flotilla/protocol';
import type { Rng } from '../rng/random.js';
import { subsetDataset, type Dataset } from './dataset.js';
import type { Domains } from './domains.js';
import type { LabeledData, UserSplit } from './files/labeled.js';
import type { TextTask } from './text-task.js';

/**
 * Everything a simulation needs from its data, whatever the source: what the built-in base model
 * pre-trains on, the pool devices hold (with its natural per-user split, if any), the server's
 * audit holdout and the reported test set.
 */
export interface TaskData {
  description: string;
  /** Pre-trains a built-in base model; never reaches a device. May be empty with a given base. */
  pretrain: Dataset;
  /** The devices' data. */
  pool: Dataset;
  /** Per-user split of `pool` (device i holds user i), or null: the scenario's partition scheme. */
  users: UserSplit | null;
  /** The server's holdout (drift audit: candidate against current adapter). */
  holdout: Dataset;
  /** The reported test set. */
  test: Dataset;
  /** A second test set the base model is reported on (e.g. the clean digits), or null. */
  reference: { label: string; data: Dataset } | null;
  /** Label of `test` in reports. */
  testLabel: string;
  /** Distinct input token ids (sequence data), else null. */
  vocabularySize: number | null;
  /** What the examples are, for the default architecture. */
  kind: 'image' | 'sequence' | 'vector';
}

/** The task of the built-in domain-shift datasets: pre-train on clean, adapt on shifted. */
export function taskFromDomains(domains: Domains, kind: 'image' | 'vector'): TaskData {
  // MNIST digits are 28×28 grey images (a CNN takes them so; an MLP flattens them).
  const shaped = (data: Dataset): Dataset => (kind === 'image' ? { ...data, shape: [28, 28, 1] } : data);
  return {
    description: domains.description,
    pretrain: shaped(domains.clean.train),
    pool: shaped(domains.shifted.train),
    users: null,
    holdout: shaped(domains.shifted.holdout),
    test: shaped(domains.shifted.test),
    reference: {
      label: kind === 'image' ? 'clean digits' : 'clean domain',
      data: shaped(domains.clean.test),
    },
    testLabel: kind === 'image' ? 'shifted digits' : 'shifted domain',
    vocabularySize: null,
    kind,
  };
}

/** The task of the built-in text data: pre-train on plain text, adapt to the writers' styles. */
export function taskFromText(text: TextTask, vocabularySize: number): TaskData {
  return {
    description: text.description,
    pretrain: text.pretrain,
    pool: text.pool,
    users: text.users,
    holdout: text.holdout,
    test: text.test,
    reference: { label: 'plain text', data: text.plainTest },
    testLabel: 'styled text',
    vocabularySize,
    kind: 'sequence',
  };
}

/** Options for {@link taskFromFiles}. */
export interface FileSplitOptions {
  rng: Rng;
  /** Share of users (or examples) for pre-training. */
  pretrainFraction: number;
  /** Shares for the test and the holdout, when `test` is null. */
  testFraction: number;
  holdoutFraction: number;
  /** At most this many device users. */
  maxUsers?: number;
  description: string;
  vocabularySize: number | null;
  kind: TaskData['kind'];
}

const take = <T>(list: readonly T[], from: number, count: number): T[] => list.slice(from, from + count);

/**
 * Splits file data into a task. Per-user data is split by user (seeded order): pre-training users,
 * then — without test files — users for the test and the holdout, then device users in file order.
 * Other data is split by example. Test files, when given, make the holdout (a third of their
 * examples, seeded) and the test (the rest).
 */
export function taskFromFiles(
  train: LabeledData,
  test: LabeledData | null,
  options: FileSplitOptions,
): TaskData {
  const { rng } = options;
  const evaluation = (data: Dataset) => {
    const order = rng.fork('evaluation').permutation(data.n);
    const third = Math.max(1, Math.floor(data.n / 3));
    return {
      holdout: subsetDataset(data, order.slice(0, third)),
      test: subsetDataset(data, order.slice(third)),
    };
  };
  const count = (total: number, fraction: number) =>
    fraction > 0 ? Math.max(1, Math.floor(total * fraction)) : 0;
  const base = {
    description: options.description,
    reference: null,
    testLabel: 'test',
    vocabularySize: options.vocabularySize,
    kind: options.kind,
  };
  if (train.users) {
    const { ids, indices } = train.users;
    const order = rng.fork('users').permutation(ids.length);
    const nPre = count(ids.length, options.pretrainFraction);
    const nTest = test ? 0 : count(ids.length, options.testFraction);
    const nHold = test ? 0 : count(ids.length, options.holdoutFraction);
    const examplesOf = (users: number[]) => users.flatMap((u) => indices[u] ?? []);
    const held = new Set(order.slice(0, nPre + nTest + nHold));
    // Device users keep the files' order, so device i is the i-th remaining user.
    const deviceUsers = ids
      .map((_, u) => u)
      .filter((u) => !held.has(u))
      .slice(0, options.maxUsers ?? ids.length);
    if (deviceUsers.length === 0)
      throw new FlotillaError(
        'BAD_REQUEST',
        `the data has ${ids.length} users: none is left for devices after pre-training and evaluation users`,
      );
    const pool = subsetDataset(train, examplesOf(deviceUsers));
    let row = 0;
    const users: UserSplit = {
      ids: deviceUsers.map((u) => ids[u] ?? ''),
      indices: deviceUsers.map((u) => (indices[u] ?? []).map(() => row++)),
    };
    const evaluated = test
      ? evaluation(test)
      : {
          test: subsetDataset(train, examplesOf(take(order, nPre, nTest))),
          holdout: subsetDataset(train, examplesOf(take(order, nPre + nTest, nHold))),
        };
    return {
      ...base,
      pretrain: subsetDataset(train, examplesOf(order.slice(0, nPre))),
      pool,
      users,
      ...evaluated,
    };
  }
  const order = rng.fork('examples').permutation(train.n);
  const nPre = count(train.n, options.pretrainFraction);
  const nTest = test ? 0 : count(train.n, options.testFraction);
  const nHold = test ? 0 : count(train.n, options.holdoutFraction);
  const evaluated = test
    ? evaluation(test)
    : {
        test: subsetDataset(train, take(order, nPre, nTest)),
        holdout: subsetDataset(train, take(order, nPre + nTest, nHold)),
      };
  return {
    ...base,
    pretrain: subsetDataset(train, order.slice(0, nPre)),
    pool: subsetDataset(train, order.slice(nPre + nTest + nHold)),
    users: null,
    ...evaluated,
  };
}
