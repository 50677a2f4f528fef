import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FlotillaError } from '@flotilla/protocol';
import type { FileDataset, ScenarioSource } from '../../scenario/source.js';
import { loadCsvDataset } from './csv.js';
import { loadImageFolder } from './image-folder.js';
import type { LabeledData } from './labeled.js';
import {
  LEAF_LETTERS,
  leafFiles,
  leafToDataset,
  readLeafFiles,
  sent140Vocabulary,
  type LeafFile,
} from './leaf.js';
import { loadNpyDataset } from './npy-dataset.js';

/** What a file source holds: the data users train on, evaluation data if the source has its own, and how to read it. */
export interface SourceData {
  train: LabeledData;
  test: LabeledData | null;
  description: string;
  /** Distinct input token ids for sequence data, else null. */
  vocabularySize: number | null;
  kind: 'image' | 'sequence' | 'vector';
}

/** Default words of a Sent140 vocabulary. */
const SENT140_VOCABULARY = 10_000;

/** The example shape a source asks for, checked against the number of features. */
function reshaped(data: LabeledData, shape: readonly number[] | undefined, where: string): LabeledData {
  if (shape === undefined) return data;
  const size = shape.reduce((p, d) => p * d, 1);
  if (size !== data.dim)
    throw new FlotillaError(
      'SHAPE_MISMATCH',
      `${where}: exampleShape [${shape.join(', ')}] holds ${size} values, the examples have ${data.dim}`,
    );
  return { ...data, shape: [...shape] };
}

/** LEAF's layout puts `train/` and `test/` side by side: the test folder next to a train folder. */
function leafTestPath(source: ScenarioSource): string | null {
  if (source.testPath !== undefined) return source.testPath;
  if (basename(source.path) !== 'train') return null;
  const sibling = join(dirname(source.path), 'test');
  return existsSync(sibling) && statSync(sibling).isDirectory() ? sibling : null;
}

function readLeaf(source: ScenarioSource): SourceData {
  const task = source.leafTask;
  if (task === undefined) throw new FlotillaError('BAD_REQUEST', 'source.leafTask is required for LEAF data');
  const trainFile = readLeafFiles(leafFiles(source.path));
  const testPath = leafTestPath(source);
  const testFile: LeafFile | null = testPath === null ? null : readLeafFiles(leafFiles(testPath));
  const vocabulary =
    task === 'sent140'
      ? sent140Vocabulary(
          trainFile.users.flatMap((u) =>
            (trainFile.user_data[u]?.x ?? []).map((x) =>
              Array.isArray(x) && typeof x[4] === 'string' ? x[4] : '',
            ),
          ),
          source.vocabularySize ?? SENT140_VOCABULARY,
        )
      : undefined;
  const options = {
    task,
    ...(source.exampleShape && task === 'femnist' ? { imageShape: source.exampleShape } : {}),
    ...(vocabulary ? { vocabulary } : {}),
  };
  const train = leafToDataset(trainFile, options);
  const users = train.users?.ids.length ?? 0;
  return {
    train,
    test: testFile ? leafToDataset(testFile, options) : null,
    description: `LEAF ${task} from ${source.path} (${users} users, ${train.n} examples${testPath ? `; evaluation from ${testPath}` : ''})`,
    vocabularySize: task === 'shakespeare' ? LEAF_LETTERS.length : vocabulary ? vocabulary.length + 2 : null,
    kind: task === 'femnist' ? 'image' : 'sequence',
  };
}

/** Reads the files of a file dataset. */
export function readSource(dataset: FileDataset, source: ScenarioSource): SourceData {
  switch (dataset) {
    case 'leaf':
      return readLeaf(source);
    case 'csv': {
      const data = loadCsvDataset({
        path: source.path,
        ...(source.label !== undefined ? { label: source.label } : {}),
        ...(source.user !== undefined ? { user: source.user } : {}),
        ...(source.features ? { features: source.features } : {}),
        ...(source.delimiter ? { delimiter: source.delimiter } : {}),
      });
      const train = reshaped(data, source.exampleShape, source.path);
      return {
        train,
        test: null,
        description: `CSV ${source.path} (${train.n} rows, ${train.dim} features)`,
        vocabularySize: null,
        kind: train.shape.length === 3 ? 'image' : 'vector',
      };
    }
    case 'npy': {
      if (source.labels === undefined)
        throw new FlotillaError('BAD_REQUEST', 'source.labels is required for npy data');
      const data = loadNpyDataset({
        features: source.path,
        labels: source.labels,
        ...(source.users !== undefined ? { users: source.users } : {}),
      });
      const train = reshaped(data, source.exampleShape, source.path);
      return {
        train,
        test: null,
        description: `NumPy ${source.path} (${train.n} examples of shape [${train.shape.join(', ')}])`,
        vocabularySize: null,
        kind: train.shape.length === 3 ? 'image' : 'vector',
      };
    }
    case 'image-folder': {
      const train = loadImageFolder({
        path: source.path,
        ...(source.layout ? { layout: source.layout } : {}),
        ...(source.channels ? { channels: source.channels } : {}),
        ...(source.size ? { size: source.size } : {}),
      });
      return {
        train,
        test: null,
        description: `PNG folder ${source.path} (${train.n} images of ${train.shape.join('x')}, ${train.numClasses} classes: ${(train.classNames ?? []).slice(0, 10).join(', ')})`,
        vocabularySize: null,
        kind: 'image',
      };
    }
  }
}
