import * as tf from '@tensorflow/tfjs';

/** Options for {@link createCnn}. */
export interface CnnOptions {
  /** One image: [height, width, channels]. Default [28, 28, 1]. */
  inputShape?: [number, number, number];
  /** Units of the ReLU layer named 'hidden'. Default 64. */
  hidden?: number;
  /** Units of the softmax layer named 'out'. Default 10. */
  numClasses?: number;
  /** Filters of 'conv1' and 'conv2'. Default [8, 16]. */
  filters?: [number, number];
  /** Seed of the Glorot-uniform kernel initialisers (biases start at 0). */
  seed: number;
}

/**
 * A small CNN after LEAF's FEMNIST model, narrowed for simulations: conv 'conv1' 5×5 (ReLU,
 * same padding) → 2×2 max-pool → conv 'conv2' 5×5 → 2×2 max-pool → flatten → dense 'hidden'
 * (ReLU) → dense 'out' (softmax). Adapters attach to the dense head ('hidden', 'out'); the
 * convolutions stay frozen with the rest of the base.
 */
export function createCnn(options: CnnOptions): tf.Sequential {
  const [f1, f2] = options.filters ?? [8, 16];
  const init = (offset: number) => tf.initializers.glorotUniform({ seed: options.seed + offset });
  const model = tf.sequential({ name: 'flotilla_cnn' });
  model.add(
    tf.layers.conv2d({
      name: 'conv1',
      inputShape: options.inputShape ?? [28, 28, 1],
      filters: f1,
      kernelSize: 5,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: init(0),
    }),
  );
  model.add(tf.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }));
  model.add(
    tf.layers.conv2d({
      name: 'conv2',
      filters: f2,
      kernelSize: 5,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: init(1),
    }),
  );
  model.add(tf.layers.maxPooling2d({ name: 'pool2', poolSize: 2 }));
  model.add(tf.layers.flatten({ name: 'flatten' }));
  model.add(
    tf.layers.dense({
      name: 'hidden',
      units: options.hidden ?? 64,
      activation: 'relu',
      kernelInitializer: init(2),
    }),
  );
  model.add(
    tf.layers.dense({
      name: 'out',
      units: options.numClasses ?? 10,
      activation: 'softmax',
      kernelInitializer: init(3),
    }),
  );
  return model;
}
