import { describe, expect, it } from 'vitest';
import { createProgressBar, formatDuration } from './progress-bar.js';

function fakeStream(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, stream: { isTTY, columns: 200, write: (chunk: string) => chunks.push(chunk) } };
}

describe('progress bar', () => {
  it('redraws one line in place on a TTY, with ETA from the mean round time', () => {
    let clock = 0;
    const { chunks, stream } = fakeStream(true);
    const bar = createProgressBar({ total: 10, stream, width: 10, now: () => clock });
    clock = 20_000; // 4 rounds in 20 s: 5 s each, 6 left -> 30 s
    bar.update({ done: 4, accuracy: 0.8123 });
    expect(chunks[0]).toBe('\r\x1b[2Krounds [####------] 4/10 acc 81.2% eta 0:30');
    clock = 50_000;
    bar.update({ done: 10, accuracy: 0.9, note: 'COMMITTED' });
    expect(bar.lastLine).toBe('rounds [##########] 10/10 acc 90.0% took 0:50 COMMITTED');
    bar.finish();
    expect(chunks).toHaveLength(3);
    expect(chunks[2]).toBe('\n');
  });

  it('prints one plain line per update when not a TTY', () => {
    const { chunks, stream } = fakeStream(false);
    const bar = createProgressBar({ total: 2, stream, width: 4, label: 'demo', now: () => 0 });
    bar.update({ done: 0 });
    bar.update({ done: 1, accuracy: null });
    bar.finish();
    expect(chunks).toEqual(['demo [----] 0/2\n', 'demo [##--] 1/2 eta 0:00\n']);
  });

  it('formats durations', () => {
    expect(formatDuration(0)).toBe('0:00');
    expect(formatDuration(61_000)).toBe('1:01');
    expect(formatDuration(3_725_000)).toBe('1:02:05');
  });
});
