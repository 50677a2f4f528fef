import type { LocalDataset } from '@flotilla/client';
import type { Dataset } from '../data/dataset.js';
import { loadDomains, type Domains } from '../data/domains.js';
import type { Scenario } from '../scenario/schema.js';

/** The clean and shifted domains of a scenario (cached per process by `loadDomains`). */
export function scenarioDomains(scenario: Scenario): Domains {
  return loadDomains({
    dataset: scenario.dataset,
    seed: scenario.seed,
    rotationDeg: scenario.data.rotationDeg,
    noiseStd: scenario.data.noiseStd,
    drift: scenario.data.drift,
    syntheticExamples: scenario.data.syntheticExamples,
    syntheticDim: scenario.data.syntheticDim,
  });
}

/** A simulation dataset as the client library's training input ([n, dim] features). */
export function toLocalDataset(data: Dataset): LocalDataset {
  return { xs: data.xs, ys: data.ys, featureShape: [data.dim] };
}
