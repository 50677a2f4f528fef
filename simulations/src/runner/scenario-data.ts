import type { LocalDataset } from '@flotilla/client';
import type { Dataset } from '../data/dataset.js';
import { loadDomains } from '../data/domains.js';
import { LEAF_LETTERS } from '../data/files/leaf.js';
import { readSource } from '../data/files/read-source.js';
import { taskFromDomains, taskFromFiles, taskFromText, type TaskData } from '../data/task-data.js';
import { makeTextTask } from '../data/text-task.js';
import { createRng } from '../rng/random.js';
import type { Scenario } from '../scenario/schema.js';
import { scenarioSeeds } from '../scenario/seeds.js';

const tasks = new Map<string, TaskData>();

/** The scenario fields that decide its data (the cache key of `scenarioTask`). */
const dataKey = (scenario: Scenario): string =>
  JSON.stringify([
    scenario.dataset,
    scenarioSeeds(scenario).data,
    scenario.data,
    scenario.source,
    scenario.devices,
    scenario.model.path,
  ]);

/**
 * The data of a scenario — built-in domains, the generated text task or files on disk — as a
 * TaskData; cached per process, so every device host of a run builds it once.
 */
export function scenarioTask(scenario: Scenario): TaskData {
  const key = dataKey(scenario);
  const hit = tasks.get(key);
  if (hit) return hit;
  let task: TaskData;
  const { dataset, data } = scenario;
  const seed = scenarioSeeds(scenario).data;
  if (dataset === 'mnist-rotated' || dataset === 'mnist-noisy' || dataset === 'synthetic') {
    const domains = loadDomains({
      dataset,
      seed,
      rotationDeg: data.rotationDeg,
      noiseStd: data.noiseStd,
      drift: data.drift,
      syntheticExamples: data.syntheticExamples,
      syntheticDim: data.syntheticDim,
    });
    task = taskFromDomains(domains, dataset === 'synthetic' ? 'vector' : 'image');
  } else if (dataset === 'text') {
    const text = makeTextTask({
      rng: createRng(seed).fork('data/text'),
      devices: scenario.devices,
      styles: data.textStyles,
      sequenceLength: data.textSequenceLength,
      examplesPerDevice: data.textExamplesPerDevice,
      pretrainExamples: data.textPretrainExamples,
    });
    task = taskFromText(text, LEAF_LETTERS.length);
  } else {
    const { source } = scenario;
    if (!source) throw new Error(`scenario ${scenario.name}: the ${dataset} dataset needs a source`);
    const files = readSource(dataset, source);
    task = taskFromFiles(files.train, files.test, {
      rng: createRng(seed).fork(`data/${dataset}`),
      pretrainFraction: source.pretrainFraction ?? (scenario.model.path !== undefined ? 0 : 0.2),
      testFraction: source.testFraction,
      holdoutFraction: source.holdoutFraction,
      ...(source.maxUsers !== undefined ? { maxUsers: source.maxUsers } : {}),
      description: files.description,
      vocabularySize: files.vocabularySize,
      kind: files.kind,
    });
  }
  tasks.set(key, task);
  return task;
}

/** A simulation dataset as the client library's training input, shaped as the model takes it. */
export function toLocalDataset(data: Dataset, featureShape: readonly number[] = [data.dim]): LocalDataset {
  return { xs: data.xs, ys: data.ys, featureShape: [...featureShape] };
}
