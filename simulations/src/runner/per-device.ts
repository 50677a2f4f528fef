// Fairness across devices: the promoted model's accuracy on each device's own held-out examples
// (the local holdout its validation gate scores), and the distribution over devices (mean, worst
// 10%), as in the per-device evaluations of Li et al. 2020 (q-FFL).
import { evaluateModel, type AdaptedModel } from '@flotilla/client';
import { subsetDataset, type Dataset } from '../data/dataset.js';
import type { DeviceAccuracy, PerDeviceSummary } from '../report/metrics.js';
import type { VirtualDeviceSpec } from './host-messages.js';
import { toLocalDataset } from './scenario-data.js';

/**
 * Each device's accuracy on its own holdout, from one pass over the union of the holdouts.
 * Devices without holdout examples are left out.
 */
export function evaluatePerDevice(options: {
  model: AdaptedModel;
  specs: readonly Pick<VirtualDeviceSpec, 'deviceId' | 'holdoutIndices' | 'byzantine'>[];
  pool: Dataset;
  inputShape: readonly number[];
}): DeviceAccuracy[] {
  const withHoldout = options.specs.filter((s) => s.holdoutIndices.length > 0);
  const union = subsetDataset(
    options.pool,
    withHoldout.flatMap((s) => s.holdoutIndices),
  );
  const { correct } = evaluateModel(options.model, toLocalDataset(union, options.inputShape));
  let offset = 0;
  return withHoldout.map((spec) => {
    const examples = spec.holdoutIndices.length;
    let right = 0;
    for (let i = offset; i < offset + examples; i++) right += correct[i] ?? 0;
    offset += examples;
    return { deviceId: spec.deviceId, examples, accuracy: right / examples, byzantine: spec.byzantine };
  });
}

/**
 * The distribution over devices, each device counting once: mean, the mean of the worst 10%
 * (the ⌈k/10⌉ lowest of k devices) and the lowest. Null without devices.
 */
export function summarizeDeviceAccuracy(devices: readonly DeviceAccuracy[]): PerDeviceSummary | null {
  if (devices.length === 0) return null;
  const sorted = devices.map((d) => d.accuracy).sort((a, b) => a - b);
  const worst = sorted.slice(0, Math.ceil(sorted.length / 10));
  const mean = (values: readonly number[]) => values.reduce((s, v) => s + v, 0) / values.length;
  return { devices: sorted.length, mean: mean(sorted), worst10: mean(worst), min: sorted[0] ?? Number.NaN };
}
