import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { FlotillaError } from '@flotilla/protocol';
import { readJsonFile } from './json-file.js';
import { labeledData, type LabeledData } from './labeled.js';

// LEAF (Caldas et al. 2018, github.com/TalwalkarLab/leaf) ships each benchmark as JSON files
// `{ users, num_samples, user_data: { <user>: { x: [...], y: [...] } } }`, usually under
// data/<task>/data/train and data/<task>/data/test after its preprocess.sh.

/** The JSON of one LEAF file. `hierarchies` (present for some tasks) is ignored. */
export const LeafFileSchema = z.object({
  users: z.array(z.string()),
  num_samples: z.array(z.number().int().nonnegative()),
  user_data: z.record(z.string(), z.object({ x: z.array(z.unknown()), y: z.array(z.unknown()) })),
});
export type LeafFile = z.infer<typeof LeafFileSchema>;

/** The benchmarks whose x and y this loader turns into tensors. */
export const LEAF_TASKS = ['femnist', 'shakespeare', 'sent140'] as const;
export type LeafTask = (typeof LEAF_TASKS)[number];

/**
 * LEAF's Shakespeare alphabet (models/utils/language_utils.py, ALL_LETTERS): 80 characters, a
 * character's class is its index here.
 */
export const LEAF_LETTERS =
  '\n !"&\'(),-.0123456789:;>?ABCDEFGHIJKLMNOPQRSTUVWXYZ[]abcdefghijklmnopqrstuvwxyz}';
/** Words per Sent140 tweet, as LEAF's `line_to_indices` (max_words=25). */
export const SENT140_WORDS = 25;
/** Sent140 token ids: 0 pads a short tweet, 1 is a word outside the vocabulary. */
export const SENT140_PAD = 0;
export const SENT140_UNKNOWN = 1;

/** LEAF's word split (`split_line`): runs of word characters or apostrophes, and . , ! ? ; alone. */
export const splitWords = (line: string): string[] => line.match(/[\w']+|[.,!?;]/g) ?? [];

/** The JSON files of a LEAF split: a file, or every `*.json` in a directory (sorted). */
export function leafFiles(path: string): string[] {
  if (!existsSync(path)) throw new FlotillaError('NOT_FOUND', `LEAF data: ${path} does not exist`);
  if (!statSync(path).isDirectory()) return [path];
  const files = readdirSync(path)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => join(path, name));
  if (files.length === 0) throw new FlotillaError('NOT_FOUND', `LEAF data: no .json files in ${path}`);
  return files;
}

/** Reads and merges LEAF files; a user present in several files keeps the examples of all. */
export function readLeafFiles(paths: readonly string[]): LeafFile {
  const merged: LeafFile = { users: [], num_samples: [], user_data: {} };
  for (const path of paths) {
    const parsed = LeafFileSchema.safeParse(readJsonFile(path));
    if (!parsed.success)
      throw new FlotillaError(
        'CORRUPT_FILE',
        `${path}: not a LEAF file: ${parsed.error.issues[0]?.path.join('.') ?? ''} ${parsed.error.issues[0]?.message ?? ''}`,
      );
    for (const user of parsed.data.users) {
      const data = parsed.data.user_data[user];
      if (!data || data.x.length !== data.y.length)
        throw new FlotillaError(
          'CORRUPT_FILE',
          `${path}: user ${user} has no data or x and y of different lengths`,
        );
      const existing = merged.user_data[user];
      if (existing) {
        existing.x.push(...data.x);
        existing.y.push(...data.y);
      } else {
        merged.users.push(user);
        merged.user_data[user] = { x: [...data.x], y: [...data.y] };
      }
    }
  }
  merged.num_samples = merged.users.map((u) => merged.user_data[u]?.x.length ?? 0);
  return merged;
}

/** The Sent140 vocabulary: words of `texts` by frequency (ties alphabetical), at most `size`. */
export function sent140Vocabulary(texts: readonly string[], size: number): string[] {
  const counts = new Map<string, number>();
  for (const text of texts)
    for (const word of splitWords(text)) counts.set(word, (counts.get(word) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, size)
    .map(([word]) => word);
}

/** Options for {@link leafToDataset}. */
export interface LeafDatasetOptions {
  task: LeafTask;
  /** FEMNIST: shape of one image. Default [28, 28, 1] (a CNN's input); [784] for an MLP. */
  imageShape?: number[];
  /** Sent140: the words that get their own id (build it from the training files). */
  vocabulary?: readonly string[];
}

const bad = (message: string) => new FlotillaError('BAD_REQUEST', `LEAF: ${message}`);

function tweetText(x: unknown): string {
  // LEAF's Sent140 x is [tweet id, date, query, user, text]; its models read the text (row[4]).
  if (Array.isArray(x) && typeof x[4] === 'string') return x[4];
  if (typeof x === 'string') return x;
  throw bad('a sent140 example must be [id, date, query, user, text]');
}

/** Turns merged LEAF data into a dataset with its natural per-user split (users in file order). */
export function leafToDataset(file: LeafFile, options: LeafDatasetOptions): LabeledData {
  const { task } = options;
  const users = file.users.filter((u) => (file.user_data[u]?.x.length ?? 0) > 0);
  const examples = users.reduce((sum, u) => sum + (file.user_data[u]?.x.length ?? 0), 0);
  const shape =
    task === 'femnist'
      ? (options.imageShape ?? [28, 28, 1])
      : task === 'shakespeare'
        ? [80]
        : [SENT140_WORDS];
  const dim = shape.reduce((p, d) => p * d, 1);
  const xs = new Float32Array(examples * dim);
  const ys = new Int32Array(examples);
  const indices: number[][] = [];
  const wordIds = new Map((options.vocabulary ?? []).map((word, i) => [word, i + 2]));
  let row = 0;
  for (const user of users) {
    const data = file.user_data[user];
    if (!data) continue;
    const mine: number[] = [];
    data.x.forEach((x, k) => {
      const y = data.y[k];
      const offset = row * dim;
      if (task === 'femnist') {
        if (!Array.isArray(x) || x.length !== dim || !x.every((v) => typeof v === 'number'))
          throw bad(`femnist user ${user}, example ${k}: x must be ${dim} numbers`);
        xs.set(x, offset);
        if (typeof y !== 'number' || !Number.isInteger(y) || y < 0)
          throw bad(`femnist user ${user}: y must be a class index`);
        ys[row] = y;
      } else if (task === 'shakespeare') {
        if (typeof x !== 'string' || x.length !== dim)
          throw bad(`shakespeare user ${user}, example ${k}: x must be ${dim} characters`);
        for (let c = 0; c < dim; c++) xs[offset + c] = letterIndex(x[c] ?? '', user);
        if (typeof y !== 'string' || y.length !== 1)
          throw bad(`shakespeare user ${user}: y must be one character`);
        ys[row] = letterIndex(y, user);
      } else {
        const words = splitWords(tweetText(x)).slice(0, dim);
        words.forEach((word, c) => (xs[offset + c] = wordIds.get(word) ?? SENT140_UNKNOWN));
        const label = typeof y === 'string' ? Number(y) : y;
        if (typeof label !== 'number' || !Number.isInteger(label) || label < 0)
          throw bad(`sent140 user ${user}: y must be 0 or 1`);
        ys[row] = label;
      }
      mine.push(row);
      row++;
    });
    indices.push(mine);
  }
  const numClasses = task === 'shakespeare' ? LEAF_LETTERS.length : task === 'sent140' ? 2 : 62;
  return labeledData({ xs, ys, shape, classNames: null, users: { ids: users, indices }, numClasses });
}

function letterIndex(ch: string, user: string): number {
  const index = LEAF_LETTERS.indexOf(ch);
  if (index < 0)
    throw bad(`shakespeare user ${user}: character ${JSON.stringify(ch)} is not in LEAF's alphabet`);
  return index;
}
