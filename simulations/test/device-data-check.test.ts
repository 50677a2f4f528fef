// Data that cannot train the task's model is caught when the device starts (issue 18): a
// featureShape the base model does not take used to surface mid-round as `INTERNAL: Error in
// matMul`, after the device had been selected and had taken a slot of the round.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlotillaError, generateSigningKeyPair } from '@flotilla/protocol';
import {
  FlotillaDevice,
  TfjsTrainer,
  enrollDevice,
  type LocalDataset,
  type LocalData,
} from '@flotilla/client';
import type { Coordinator } from '@flotilla/coordinator/server';
import { mintEnrollmentToken, registerMlpTask, startTestCoordinator } from './support/index.js';
import type { TestCoordinator } from './support/index.js';

const TASK = 'data-check';
const OPERATOR = 'operator-token-for-data-check-0123456789';

function dataset(n: number, featureShape: number[], label = (i: number) => i % 3): LocalDataset {
  const size = featureShape.reduce((p, d) => p * d, 1);
  return {
    xs: Float32Array.from({ length: n * size }, (_, i) => (i % 7) / 7),
    ys: Int32Array.from({ length: n }, (_, i) => label(i)),
    featureShape,
  };
}

describe('the device checks its data against the task when it starts', () => {
  let started: TestCoordinator;
  let coordinator: Coordinator;
  const devices: FlotillaDevice[] = [];

  beforeAll(async () => {
    started = await startTestCoordinator({ operatorToken: OPERATOR });
    coordinator = started.coordinator;
    await registerMlpTask(coordinator, {
      taskId: TASK,
      rounds: { selectionTimeoutMs: 30_000, reportingDeadlineMs: 30_000, maxSteps: 5 },
    });
  });

  afterAll(async () => {
    for (const device of devices) device.stop();
    await started.stop();
  });

  async function device(deviceId: string, data: LocalData | (() => LocalData), taskId = TASK) {
    const keys = generateSigningKeyPair();
    const token = await mintEnrollmentToken(coordinator.url, OPERATOR);
    await enrollDevice({ url: coordinator.url, token, deviceId, keys });
    const skips: string[] = [];
    const errors: string[] = [];
    const made = new FlotillaDevice({
      url: coordinator.url,
      deviceId,
      keys,
      taskId,
      trainer: new TfjsTrainer({ data, preferBackend: 'cpu' }),
      reconnectDelayMs: 200,
      onSkip: ({ reason, detail }) => skips.push(`${reason}: ${detail}`),
      onError: (error) => errors.push(error.message),
    });
    devices.push(made);
    return { made, skips, errors };
  }

  const startFailure = async (made: FlotillaDevice): Promise<FlotillaError | null> =>
    made.start().then(
      () => null,
      (error: unknown) => (error instanceof FlotillaError ? error : null),
    );

  it('rejects start() with BAD_REQUEST naming the featureShape the model does not take, and stops', async () => {
    const { made } = await device('wrong-shape', { train: dataset(20, [5]), holdout: dataset(5, [4]) });
    const error = await startFailure(made);
    expect(error?.code).toBe('BAD_REQUEST');
    expect(error?.message).toBe(
      "data.train.featureShape is [5] but the task's base model takes examples of shape [4]",
    );
    expect(await made.stopped).toBe('fatal');
  });

  it('rejects labels that are not classes of the model', async () => {
    const { made } = await device('wrong-labels', {
      train: dataset(20, [4]),
      holdout: dataset(5, [4], () => 3),
    });
    const error = await startFailure(made);
    expect(error?.code).toBe('BAD_REQUEST');
    expect(error?.message).toContain(
      "data.holdout.ys[0] is 3, not a class index of the base model's 3 outputs",
    );
  });

  it('rejects an unknown task with NOT_FOUND', async () => {
    const { made } = await device('no-task', { train: dataset(20, [4]), holdout: dataset(5, [4]) }, 'nosuch');
    const error = await startFailure(made);
    expect(error?.code).toBe('NOT_FOUND');
    expect(error?.message).toBe('task "nosuch" is not registered on this coordinator');
  });

  it('data given per round is checked when the round starts: a skip naming the shape, not a matMul error', async () => {
    const { made, skips } = await device('per-round', () => ({
      train: dataset(20, [2, 2]),
      holdout: dataset(5, [2, 2]),
    }));
    expect(await startFailure(made)).toBeNull();
    for (let i = 0; i < 300 && skips.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    made.stop();
    expect(skips[0]).toBe(
      "error: BAD_REQUEST: data.train.featureShape is [2, 2] but the task's base model takes examples of shape [4]",
    );
  });

  it('data that fits starts, and its first round is accepted', async () => {
    const accepted: string[] = [];
    const keys = generateSigningKeyPair();
    const token = await mintEnrollmentToken(coordinator.url, OPERATOR);
    await enrollDevice({ url: coordinator.url, token, deviceId: 'fits', keys });
    const made = new FlotillaDevice({
      url: coordinator.url,
      deviceId: 'fits',
      keys,
      taskId: TASK,
      maxRounds: 1,
      trainer: new TfjsTrainer({
        data: { train: dataset(20, [4]), holdout: dataset(5, [4]) },
        preferBackend: 'cpu',
      }),
      onUpdateAccepted: ({ plan }) => accepted.push(plan.roundId),
    });
    devices.push(made);
    await made.start();
    expect(await made.stopped).toBe('max-rounds');
    expect(accepted).toHaveLength(1);
  });
});
