// What `flotilla models export` can build a base model from. Kept apart from export-model.ts so
// the CLI can list the choices without loading tfjs.
import type { DatasetName } from '../data/domains.js';

/** Built-in datasets a base can be pre-trained on (their clean training split). */
export const PRETRAIN_DATASETS: readonly DatasetName[] = ['mnist-rotated', 'mnist-noisy', 'synthetic'];

/** Built-in architectures `flotilla models export` writes (the ones the simulations use). */
export const ARCHITECTURES = ['mlp', 'cnn', 'char-rnn'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

/** Where the base model comes from: a built-in architecture, or a tfjs model.json. */
export type ModelSource =
  | {
      kind: 'architecture';
      arch: Architecture;
      /**
       * One example: mlp [features] (default [784]); cnn [height, width, channels] (default
       * [28, 28, 1]); char-rnn [sequence length] (default [80]).
       */
      input?: number[];
      /** Output classes. Default 10 (char-rnn: the vocabulary). */
      classes?: number;
      /** Units of the dense layer 'hidden' (and of char-rnn's recurrent layer). Default per architecture. */
      hidden?: number;
      /** char-rnn: distinct input tokens. Default 80 (LEAF's Shakespeare alphabet). */
      vocabulary?: number;
      /** Seed of the initialisers (and of the pre-training). */
      seed: number;
      /**
       * mlp only: pre-train on the clean training split of this built-in dataset (deterministic,
       * cached under `stateDir`), which also fixes the input width and classes. Absent: the
       * seeded initial weights.
       */
      trainOn?: DatasetName;
      /** Where a pre-trained base is cached. */
      stateDir?: string;
    }
  | { kind: 'model-json'; path: string };
