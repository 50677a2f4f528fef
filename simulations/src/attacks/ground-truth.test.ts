import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RoundLogEvent } from '@flotilla/protocol';
import { writeReport } from '../report/write.js';
import { detectionByRound } from './ground-truth.js';
import { aggregation, audit, dev, refused } from './round-log.fixture.js';

// Devices 4 and 5 attack. Round 1: 4 flagged and excluded, 3 (honest) excluded, 5 refused twice.
// Round 2: 4 flagged, 5 missed, 1 (honest) flagged. Round 3 was aggregated but never audited.
const events: RoundLogEvent[] = [
  refused(1, 5),
  refused(1, 5),
  aggregation(1, [
    [1, 10],
    [2, 10],
    [3, 0],
    [4, 0],
  ]),
  audit(1, [4]),
  aggregation(2, [
    [1, 10],
    [2, 10],
    [4, 10],
    [5, 10],
  ]),
  audit(2, [1, 4]),
  aggregation(3, [[4, 10]]),
];
const byzantine = new Set([dev(4), dev(5)]);

describe('attack ground truth from the round log', () => {
  it('counts flagged, excluded and refused updates per round, with precision and recall', () => {
    const { rounds, total } = detectionByRound({ events, byzantine });
    expect(rounds).toEqual([
      {
        round: 1,
        attackers: [dev(4)],
        attackerUpdates: 1,
        honestUpdates: 3,
        attackersFlagged: 1,
        honestFlagged: 0,
        attackersExcluded: 1,
        honestExcluded: 1,
        attackersCaught: 1,
        honestCaught: 1,
        attackersRefused: 1,
        honestRefused: 0,
        precision: 0.5,
        recall: 1,
      },
      {
        round: 2,
        attackers: [dev(4), dev(5)],
        attackerUpdates: 2,
        honestUpdates: 2,
        attackersFlagged: 1,
        honestFlagged: 1,
        attackersExcluded: 0,
        honestExcluded: 0,
        attackersCaught: 1,
        honestCaught: 1,
        attackersRefused: 0,
        honestRefused: 0,
        precision: 0.5,
        recall: 0.5,
      },
    ]);
    expect(total).toMatchObject({
      attackerUpdates: 3,
      attackersCaught: 2,
      honestCaught: 2,
      attackersRefused: 1,
    });
    expect(total.precision).toBe(0.5);
    expect(total.recall).toBeCloseTo(2 / 3, 12);
  });

  it('leaves precision and recall undefined (null) when nothing was caught or no attacker took part', () => {
    const { total } = detectionByRound({ events: events.slice(4, 6), byzantine: new Set() });
    expect(total).toMatchObject({ attackerUpdates: 0, honestCaught: 2, precision: 0, recall: null });
    const quiet = detectionByRound({ events: [aggregation(1, [[4, 1]]), audit(1, [])], byzantine });
    expect(quiet.total).toMatchObject({ precision: null, recall: 0 });
  });

  it('counts a round once when a retried job logs its audit again', () => {
    const { rounds } = detectionByRound({ events: [...events.slice(2, 4), audit(1, [])], byzantine });
    expect(rounds).toHaveLength(1);
    expect(rounds[0]).toMatchObject({ attackersFlagged: 0, attackersCaught: 1 });
  });
});

describe('attack ground truth in metrics.json and the report', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-attack-report-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names the attackers and tabulates what was caught', () => {
    const { rounds, total } = detectionByRound({ events, byzantine });
    const attack = {
      attack: 'sign-flip',
      attackers: [
        { deviceId: 'device-4', pseudonym: dev(4) },
        { deviceId: 'device-5', pseudonym: dev(5) },
      ],
      rounds,
      total,
    };
    const metric = {
      round: 1,
      accuracy: 0.5,
      loss: 1,
      participants: 4,
      bytesUp: 1,
      bytesDown: 1,
      epsilon: null,
    };
    const written = writeReport(dir, {
      title: 'attacked',
      backend: 'cpu',
      runs: [{ label: 'krum', metrics: [{ ...metric, decision: 'COMMITTED' }], attack }],
    });
    const json = JSON.parse(readFileSync(written.json, 'utf8')) as { runs: Array<{ attack: unknown }> };
    expect(json.runs[0]?.attack).toEqual(attack);
    const markdown = readFileSync(written.markdown, 'utf8');
    expect(markdown).toContain('## Attack ground truth: krum');
    expect(markdown).toContain('2 attacker(s): device-4, device-5');
    expect(markdown).toContain('| total | 3 | 5 | 2 | 1 | 2 | 1 | 50% | 67% |');
    expect(readFileSync(written.html, 'utf8')).toContain('<td>total</td><td>3</td><td>5</td>');
  });
});
