import { describe, expect, it } from 'vitest';
import { readCoordinatorConfig } from './config.js';

describe('readCoordinatorConfig', () => {
  it('defaults: port 8787, resume on restart, rounds kept 7 days after the next opens', () => {
    const config = readCoordinatorConfig([], {});
    expect(config).toMatchObject({ port: 8787, onRestart: 'resume', roundRetentionHours: 168 });
  });

  it('flags win over the environment', () => {
    const env = { FLOTILLA_ROUND_RETENTION_HOURS: '24', FLOTILLA_PORT: '9000' };
    expect(readCoordinatorConfig([], env)).toMatchObject({ roundRetentionHours: 24, port: 9000 });
    expect(readCoordinatorConfig(['--round-retention-hours', '0'], env).roundRetentionHours).toBe(0);
  });

  it('refuses a negative or non-numeric retention, naming the field', () => {
    expect(() => readCoordinatorConfig(['--round-retention-hours=-1'], {})).toThrow(/roundRetentionHours/);
    expect(() => readCoordinatorConfig([], { FLOTILLA_ROUND_RETENTION_HOURS: 'soon' })).toThrow(
      /roundRetentionHours/,
    );
  });

  it('connection-state recovery is off unless a window is given', () => {
    expect(readCoordinatorConfig([], {}).recoveryWindowMs).toBeUndefined();
    expect(readCoordinatorConfig([], { FLOTILLA_RECOVERY_WINDOW_MS: '30000' }).recoveryWindowMs).toBe(30_000);
    expect(readCoordinatorConfig(['--recovery-window-ms', '5000'], {}).recoveryWindowMs).toBe(5_000);
    expect(() => readCoordinatorConfig(['--recovery-window-ms=-1'], {})).toThrow(/recoveryWindowMs/);
  });
});
