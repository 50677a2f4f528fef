import { describe, expect, it } from 'vitest';
import { StallClock, describeWait, type DeviceProgress, type RoundSnapshot } from './round-wait.js';

const snapshot = (over: Partial<RoundSnapshot>): RoundSnapshot => ({
  round: 2,
  roundId: 'task:2',
  state: 'SELECTING',
  scheduled: ['device-0001', 'device-0002', 'device-0003'],
  checkedIn: new Set(),
  selected: 0,
  accepted: 0,
  skipped: 0,
  devices: new Map(),
  ...over,
});

describe('what a round waits for', () => {
  it('names the scheduled devices that have not checked in, and why', () => {
    const devices = new Map<string, DeviceProgress>([
      ['device-0002', { stage: 'online' }],
      ['device-0003', { stage: 'failed', message: 'connection refused: REVOKED_DEVICE' }],
    ]);
    const text = describeWait(snapshot({ checkedIn: new Set(['device-0001']), devices }));
    expect(text).toBe(
      'round task:2 SELECTING: 1 of 3 scheduled devices checked in; waiting for device-0002 (connected), ' +
        'device-0003 (failed: connection refused: REVOKED_DEVICE)',
    );
  });

  it('counts the devices past the first eight instead of naming them', () => {
    const scheduled = Array.from({ length: 11 }, (_, i) => `d${i}`);
    const text = describeWait(snapshot({ scheduled }));
    expect(text).toContain('0 of 11 scheduled devices checked in');
    expect(text).toContain('d7 (not connected yet) and 3 more');
    expect(text).not.toContain('d8 ');
  });

  it('names the selected devices a reporting round waits on', () => {
    const devices = new Map<string, DeviceProgress>([
      ['device-0001', { stage: 'answered', outcome: 'accepted' }],
      ['device-0002', { stage: 'selected' }],
      ['device-0003', { stage: 'answered', outcome: 'skipped: dropped' }],
    ]);
    const text = describeWait(
      snapshot({ state: 'REPORTING', selected: 3, accepted: 1, skipped: 1, devices }),
    );
    expect(text).toBe(
      'round task:2 REPORTING: 2 of 3 selected devices answered (1 updates, 1 skips); ' +
        'waiting for 1: device-0002 (selected, training or uploading)',
    );
  });

  it('says when it waits for the coordinator or the worker', () => {
    expect(describeWait(snapshot({ roundId: null, state: null }))).toBe(
      'waiting for the coordinator to open round 2',
    );
    expect(describeWait(snapshot({ state: 'AGGREGATING' }))).toContain('job round:task:2:aggregate');
    expect(describeWait(snapshot({ scheduled: [] }))).toContain('offline round');
  });
});

describe('StallClock', () => {
  it('fails after the timeout without progress, and any progress restarts it', () => {
    let now = 0;
    const clock = new StallClock(1000, () => now);
    const waiting = snapshot({});
    expect(clock.observe(waiting)).toBeNull();
    now = 900;
    expect(clock.observe(waiting)).toBeNull();
    now = 950;
    // A check-in is progress.
    expect(clock.observe(snapshot({ checkedIn: new Set(['device-0001']) }))).toBeNull();
    now = 1900;
    expect(clock.observe(snapshot({ checkedIn: new Set(['device-0001']) }))).toBeNull();
    now = 1950;
    const stalled = clock.observe(snapshot({ checkedIn: new Set(['device-0001']) }));
    expect(stalled?.code).toBe('SIMULATION_STALLED');
    expect(stalled?.stalledMs).toBe(1000);
    expect(stalled?.message).toContain('no progress for 1 s');
    expect(stalled?.message).toContain('waiting for device-0002 (not connected yet)');
  });
});
