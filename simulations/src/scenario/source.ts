import { z } from 'zod';

/** Datasets read from files: the scenario's `source` says where and how. */
export const FILE_DATASETS = ['leaf', 'csv', 'npy', 'image-folder'] as const;
export type FileDataset = (typeof FILE_DATASETS)[number];

const column = z.union([z.string().min(1), z.number().int().nonnegative()]);

/**
 * Where a file dataset lives and how to read it (see docs/simulations.md). Relative paths are
 * relative to the scenario file's directory (or the working directory for inline scenarios).
 */
export const ScenarioSourceSchema = z
  .object({
    /**
     * leaf: a directory of LEAF JSON files, or one file (with a `train/` and a `test/` folder,
     * `train/` is read for the users and `test/` for evaluation); csv: the CSV file; npy: the
     * features `.npy`; image-folder: the root folder.
     */
    path: z.string().min(1),
    /** leaf: how to read x and y. */
    leafTask: z.enum(['femnist', 'shakespeare', 'sent140']).optional(),
    /** leaf: evaluation files (default `<path>/../test` when `path` is a `train` folder next to one). */
    testPath: z.string().min(1).optional(),
    /** npy: the labels `.npy` (shape [n], integers). */
    labels: z.string().min(1).optional(),
    /** npy: the users `.npy` (shape [n]): a per-user split. */
    users: z.string().min(1).optional(),
    /** csv: the label column, by name or 0-based index. Default: the last column. */
    label: column.optional(),
    /** csv: the column naming each example's user: a per-user split. */
    user: column.optional(),
    /** csv: the feature columns. Default: every other column. */
    features: z.array(column).min(1).optional(),
    /** csv: the field separator. Default ','. */
    delimiter: z.string().length(1).optional(),
    /** image-folder: `class` (`<class>/*.png`) or `user-class` (`<user>/<class>/*.png`). Default class. */
    layout: z.enum(['class', 'user-class']).optional(),
    /** image-folder: 1 grey or 3 RGB. Default 1. */
    channels: z.union([z.literal(1), z.literal(3)]).optional(),
    /** image-folder: [height, width] to resample every image to. */
    size: z.tuple([z.number().int().positive(), z.number().int().positive()]).optional(),
    /** Shape of one example (e.g. [28, 28, 1] for pixels in a CSV). Default: as the files say. */
    exampleShape: z.array(z.number().int().positive()).min(1).optional(),
    /** leaf sent140: words that get their own id (most frequent first). Default 10 000. */
    vocabularySize: z.number().int().min(1).optional(),
    /**
     * Share of the users (per-user data) or examples that pre-train the built-in base model and
     * never reach a device. Default 0.2, or 0 with a base from `model.path`.
     */
    pretrainFraction: z.number().min(0).lt(1).optional(),
    /** Share of users (or examples) held out for the reported test, when no test files are given. Default 0.2. */
    testFraction: z.number().min(0).lt(1).default(0.2),
    /** Share held out for the server's audit holdout, likewise. Default 0.1. */
    holdoutFraction: z.number().min(0).lt(1).default(0.1),
    /** Use at most this many device users (natural splits). Default: all. */
    maxUsers: z.number().int().min(1).optional(),
  })
  .strict();
export type ScenarioSource = z.infer<typeof ScenarioSourceSchema>;

/** What a file dataset's `source` must name, by format. */
export function sourceProblems(
  dataset: FileDataset,
  source: ScenarioSource | undefined,
): Array<{ path: string[]; message: string }> {
  if (source === undefined) return [{ path: ['source'], message: `is required for the ${dataset} dataset` }];
  const problems: Array<{ path: string[]; message: string }> = [];
  if (dataset === 'leaf' && source.leafTask === undefined)
    problems.push({
      path: ['source', 'leafTask'],
      message: 'is required for LEAF data (femnist, shakespeare or sent140)',
    });
  if (dataset === 'npy' && source.labels === undefined)
    problems.push({ path: ['source', 'labels'], message: 'is required for npy data (the labels .npy)' });
  if (source.testFraction + source.holdoutFraction + (source.pretrainFraction ?? 0) >= 1)
    problems.push({
      path: ['source'],
      message: 'pretrainFraction + testFraction + holdoutFraction must be < 1',
    });
  return problems;
}
