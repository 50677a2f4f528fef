import { describe, expect, it } from 'vitest';
import type { RoundLogEventOf } from './events.js';
import { summarizeRoundLog } from './summary.js';
import { renderRoundLogSummary } from './render.js';
import {
  abandoned,
  accepted,
  opened,
  problemsOf,
  selected,
  signedLog,
  TASK,
  verifyEvents,
} from '../../test/support/index.js';

// An operator's pauses, resumes, stops and archivals are records of the log (`task.control`),
// replayed by the verifier against the moves the coordinator applies (TASK_CONTROL_MOVES).

const control = (
  action: RoundLogEventOf<'task.control'>['action'],
  taskId = TASK,
): RoundLogEventOf<'task.control'> => ({
  type: 'task.control',
  taskId,
  action,
  reason: `${action} by the operator`,
});

describe('task.control records', () => {
  it('a pause, a resume, a stop that abandons the round in flight, and an archive verify', () => {
    const result = verifyEvents([
      opened(1),
      control('pause'),
      selected(1, [1, 2]),
      accepted(1, 1),
      control('resume'),
      control('stop'),
      abandoned(1, 1, 'task stopped by the operator: stop by the operator'),
      control('archive'),
    ]);
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
  });

  it('a move the table does not allow fails where it stands, naming the status', () => {
    const result = verifyEvents([control('resume')]);
    expect(problemsOf(result)).toEqual([[0, 'TASK_CONTROL']]);
    expect(result.problems[0]?.message).toBe(
      `task ${TASK}: resume applies to a task that is paused; this one is active`,
    );
    expect(problemsOf(verifyEvents([control('stop'), control('resume')]))).toEqual([[1, 'TASK_CONTROL']]);
    expect(problemsOf(verifyEvents([control('archive'), control('stop')]))).toEqual([[1, 'TASK_CONTROL']]);
    expect(problemsOf(verifyEvents([control('pause'), control('pause')]))).toEqual([[1, 'TASK_CONTROL']]);
  });

  it('each task has its own status', () => {
    expect(verifyEvents([control('stop', 'other'), control('pause'), control('stop')]).ok).toBe(true);
  });

  it('audit show lists them', () => {
    const summary = summarizeRoundLog(signedLog([control('pause'), control('resume')]));
    expect(summary.taskControls.map((c) => [c.seq, c.taskId, c.action])).toEqual([
      [0, TASK, 'pause'],
      [1, TASK, 'resume'],
    ]);
    expect(renderRoundLogSummary(summary)).toContain(`task pause: ${TASK} at `);
  });
});
