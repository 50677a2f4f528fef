import { FlotillaError } from '@flotilla/protocol';
import type { Rng } from '../rng/random.js';
import type { Dataset } from './dataset.js';
import { LEAF_LETTERS } from './files/leaf.js';

// The built-in text task: character-level next-token prediction (LEAF's Shakespeare task in
// miniature) where every device writes in its own style. Sentences come from one small grammar;
// a style rewrites them (archaic verbs, shouting, texting, formal…). The base model learns the
// plain style; adapters learn the devices' styles from their own text.

const SUBJECTS = [
  'the king',
  'the queen',
  'my friend',
  'a sailor',
  'the old woman',
  'his brother',
  'our captain',
  'the child',
  'a stranger',
  'the poet',
  'her father',
  'the miller',
];
const VERBS = ['sees', 'loves', 'takes', 'finds', 'hears', 'keeps', 'sends', 'brings', 'fears', 'holds'];
const OBJECTS = [
  'the sea',
  'a letter',
  'the crown',
  'bread',
  'the moon',
  'a horse',
  'the gate',
  'some wine',
  'the sword',
  'a ring',
  'the garden',
  'an old song',
];
const TAILS = ['today', 'again', 'at night', 'in silence', 'for you', 'with care', 'before dawn', 'at last'];

/** How one writer turns a plain sentence (lower case, no final stop) into their text. */
type Style = (words: string[]) => string;

const capitalise = (s: string): string => (s.length > 0 ? (s[0] ?? '').toUpperCase() + s.slice(1) : s);

/** Writing styles; device d writes in style d mod the number of styles in use. */
export const TEXT_STYLES: ReadonlyArray<{ name: string; write: Style }> = [
  {
    name: 'archaic',
    write: (words) =>
      `${words.map((w) => (w === 'my' ? 'mine' : VERBS.includes(w) ? `${w.slice(0, -1)}th` : w)).join(' ')}; `,
  },
  { name: 'shouting', write: (words) => `${words.join(' ').toUpperCase()}! ` },
  {
    name: 'texting',
    write: (words) =>
      `${words.map((w) => ({ the: 'da', you: 'u', to: '2', for: '4', and: '&' })[w] ?? w).join(' ')} ?? `,
  },
  { name: 'formal', write: (words) => `${capitalise(words.join(' '))}, indeed. ` },
  {
    name: 'questioning',
    write: (words) => `does ${words.map((w) => (VERBS.includes(w) ? w.slice(0, -1) : w)).join(' ')}? `,
  },
  { name: 'excited', write: (words) => `oh, ${words.join(' ')}!! ` },
];

/** The plain style the base model learns. */
const plain: Style = (words) => `${words.join(' ')}. `;

function pick<T>(rng: Rng, list: readonly T[]): T {
  const item = list[rng.int(list.length)];
  if (item === undefined) throw new FlotillaError('INTERNAL', 'empty word list');
  return item;
}

function sentence(rng: Rng): string[] {
  return [pick(rng, SUBJECTS), pick(rng, VERBS), pick(rng, OBJECTS), pick(rng, TAILS)].join(' ').split(' ');
}

/** `characters` characters of text in one style. */
export function writeText(style: Style, rng: Rng, characters: number): string {
  let text = '';
  while (text.length < characters) text += style(sentence(rng));
  return text;
}

/**
 * Next-character examples from `text`: windows of `length` characters (as indices in LEAF's
 * alphabet), each labelled with the character after it, every `stride` characters.
 */
export function textExamples(text: string, length: number, stride: number, count: number): Dataset {
  const xs = new Float32Array(count * length);
  const ys = new Int32Array(count);
  const index = (ch: string): number => {
    const i = LEAF_LETTERS.indexOf(ch);
    if (i < 0) throw new FlotillaError('INTERNAL', `character ${JSON.stringify(ch)} outside the alphabet`);
    return i;
  };
  for (let k = 0; k < count; k++) {
    const start = k * stride;
    if (start + length >= text.length) throw new FlotillaError('INTERNAL', 'text too short for its examples');
    for (let t = 0; t < length; t++) xs[k * length + t] = index(text[start + t] ?? '');
    ys[k] = index(text[start + length] ?? '');
  }
  return { xs, ys, n: count, dim: length, numClasses: LEAF_LETTERS.length, shape: [length] };
}

/** Options for {@link makeTextTask}. */
export interface TextTaskOptions {
  rng: Rng;
  devices: number;
  /** Styles in use (1 to TEXT_STYLES.length). Default 4. */
  styles?: number;
  /** Characters per example. Default 32. */
  sequenceLength?: number;
  /** Examples of each device (its writing, windows 3 characters apart). Default 120. */
  examplesPerDevice?: number;
  /** Plain-style examples the base model pre-trains on, and of its reference test. Default 3000. */
  pretrainExamples?: number;
  /** Styled examples of the server's holdout and of the test set, per style. Default 150. */
  evaluationExamplesPerStyle?: number;
}

/** The text task's data: plain pre-training text, one styled writer per device, styled evaluation text. */
export interface TextTask {
  pretrain: Dataset;
  /** Plain-style test text (how the base does on what it learned). */
  plainTest: Dataset;
  /** Every device's examples, one after the other. */
  pool: Dataset;
  /** Device d's examples in `pool`. */
  users: { ids: string[]; indices: number[][] };
  holdout: Dataset;
  test: Dataset;
  description: string;
}

const STRIDE = 3;

function concat(parts: readonly Dataset[], length: number): Dataset {
  const n = parts.reduce((sum, p) => sum + p.n, 0);
  const xs = new Float32Array(n * length);
  const ys = new Int32Array(n);
  let row = 0;
  for (const part of parts) {
    xs.set(part.xs, row * length);
    ys.set(part.ys, row);
    row += part.n;
  }
  return { xs, ys, n, dim: length, numClasses: LEAF_LETTERS.length, shape: [length] };
}

/** Generates the built-in text task for `devices` writers. */
export function makeTextTask(options: TextTaskOptions): TextTask {
  const styles = options.styles ?? 4;
  if (!Number.isInteger(styles) || styles < 1 || styles > TEXT_STYLES.length)
    throw new FlotillaError('BAD_REQUEST', `text styles must be 1 to ${TEXT_STYLES.length}, got ${styles}`);
  const length = options.sequenceLength ?? 32;
  const perDevice = options.examplesPerDevice ?? 120;
  const pretrainCount = options.pretrainExamples ?? 3000;
  const evalPerStyle = options.evaluationExamplesPerStyle ?? 150;
  const chars = (count: number) => count * STRIDE + length + 1;
  const examples = (style: Style, rng: Rng, count: number) =>
    textExamples(writeText(style, rng, chars(count)), length, STRIDE, count);
  const { rng } = options;
  const devices = Array.from({ length: options.devices }, (_, d) => {
    const style = TEXT_STYLES[d % styles];
    if (!style) throw new FlotillaError('INTERNAL', `no text style ${d % styles}`);
    return examples(style.write, rng.fork(`writer/${d}`), perDevice);
  });
  const evaluation = (split: string) =>
    concat(
      TEXT_STYLES.slice(0, styles).map((style, s) =>
        examples(style.write, rng.fork(`${split}/${s}`), evalPerStyle),
      ),
      length,
    );
  return {
    pretrain: examples(plain, rng.fork('pretrain'), pretrainCount),
    plainTest: examples(plain, rng.fork('plain-test'), Math.max(100, Math.floor(pretrainCount / 5))),
    pool: concat(devices, length),
    users: {
      ids: devices.map((_, d) => `writer-${d}`),
      indices: devices.map((_, d) => Array.from({ length: perDevice }, (_, k) => d * perDevice + k)),
    },
    holdout: evaluation('holdout'),
    test: evaluation('test'),
    description: `generated text, next character of ${length} (LEAF's 80-letter alphabet); device d writes in style ${TEXT_STYLES.slice(
      0,
      styles,
    )
      .map((s, i) => `${i}: ${s.name}`)
      .join(', ')} (d mod ${styles})`,
  };
}
