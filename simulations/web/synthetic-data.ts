import { syntheticClusters, type LocalDataset } from '@flotilla/client/browser';

/**
 * The demo page's local examples: the client's seeded toy clusters (class c centred on 2·e_c).
 * They are made in the browser and never leave it, like a real owner's data would not.
 */
export function syntheticData(features: number, classes: number, n: number, seed: number): LocalDataset {
  return syntheticClusters({ n, features, classes, seed });
}
