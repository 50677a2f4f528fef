import * as tf from '@tensorflow/tfjs';

/** Options for {@link createCharRnn}. */
export interface CharRnnOptions {
  /** Tokens per example (characters, or words for Sent140). */
  sequenceLength: number;
  /** Distinct input token ids (LEAF's alphabet: 80). */
  vocabularySize: number;
  /** Classes of the output (the next character: the vocabulary; a sentiment: 2). */
  numClasses: number;
  /** Embedding width. Default 8 (LEAF's Shakespeare model). */
  embedding?: number;
  /** Units of the recurrent layer 'rnn' and of the dense layer 'hidden'. Default 64. */
  hidden?: number;
  /** Recurrent cell. Default 'gru'. */
  cell?: 'gru' | 'lstm';
  /** Seed of every initialiser. */
  seed: number;
}

/**
 * A small character-level sequence model after LEAF's Shakespeare model, narrowed for
 * simulations: embedding 'embed' → one GRU or LSTM layer 'rnn' (its last state) → dense 'hidden'
 * (ReLU) → dense 'out' (softmax over the next token). Adapters attach to the dense head; the
 * embedding and the recurrent layer stay frozen with the rest of the base.
 */
export function createCharRnn(options: CharRnnOptions): tf.Sequential {
  const hidden = options.hidden ?? 64;
  const seed = options.seed;
  const model = tf.sequential({ name: 'flotilla_char_rnn' });
  model.add(
    tf.layers.embedding({
      name: 'embed',
      inputDim: options.vocabularySize,
      outputDim: options.embedding ?? 8,
      inputLength: options.sequenceLength,
      embeddingsInitializer: tf.initializers.randomUniform({ minval: -0.05, maxval: 0.05, seed }),
    }),
  );
  const recurrent = {
    name: 'rnn',
    units: hidden,
    kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
    // Glorot rather than Keras's orthogonal default: tfjs computes an orthogonal matrix by a QR
    // decomposition in JavaScript, slow (and warned about) past 2,000 elements.
    recurrentInitializer: tf.initializers.glorotUniform({ seed: seed + 2 }),
  };
  model.add(options.cell === 'lstm' ? tf.layers.lstm(recurrent) : tf.layers.gru(recurrent));
  model.add(
    tf.layers.dense({
      name: 'hidden',
      units: hidden,
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 3 }),
    }),
  );
  model.add(
    tf.layers.dense({
      name: 'out',
      units: options.numClasses,
      activation: 'softmax',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 4 }),
    }),
  );
  return model;
}
