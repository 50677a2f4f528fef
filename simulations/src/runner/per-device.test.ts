import { describe, expect, it } from 'vitest';
import { summarizeDeviceAccuracy } from './per-device.js';

const devices = (accuracies: number[]) =>
  accuracies.map((accuracy, i) => ({ deviceId: `d${i}`, examples: 10, accuracy, byzantine: false }));

describe('summarizeDeviceAccuracy', () => {
  it('weighs every device once; the worst 10% is the mean of the ⌈k/10⌉ lowest', () => {
    // 11 devices: ⌈1.1⌉ = 2 worst, 0.1 and 0.3.
    const summary = summarizeDeviceAccuracy(devices([0.9, 0.3, 1, 0.8, 0.1, 0.7, 0.9, 0.6, 1, 0.5, 0.4]));
    expect(summary?.devices).toBe(11);
    expect(summary?.mean).toBeCloseTo(7.2 / 11, 12);
    expect(summary?.worst10).toBeCloseTo(0.2, 12);
    expect(summary?.min).toBe(0.1);
    // Ten devices: the worst 10% is the single lowest one.
    expect(summarizeDeviceAccuracy(devices([0.5, 0.6, 0.7, 0.8, 0.9, 1, 1, 1, 1, 0.2]))?.worst10).toBe(0.2);
    expect(summarizeDeviceAccuracy([])).toBeNull();
  });
});
