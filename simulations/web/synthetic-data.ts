import type { LocalDataset } from '@flotilla/client/browser';

/**
 * The demo page's local examples: Gaussian blobs, class c centred on 2·e_c, from a seeded LCG.
 * They are made in the browser and never leave it, like a real owner's data would not.
 */
export function syntheticData(features: number, classes: number, n: number, seed: number): LocalDataset {
  let s = seed >>> 0;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const xs = new Float32Array(n * features);
  const ys = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = Math.floor(rand() * classes);
    ys[i] = label;
    for (let f = 0; f < features; f++) xs[i * features + f] = (f === label ? 2 : 0) + (rand() - 0.5);
  }
  return { xs, ys, featureShape: [features] };
}
