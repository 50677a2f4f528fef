import { UnrecoverableError } from 'bullmq';
import { FlotillaError } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import { isNeverRetried, unrecoverable } from './never-retry.js';

describe('the never-retry codes of worker jobs', () => {
  it('are the input errors; faults and bugs (INTERNAL) are retried', () => {
    for (const code of ['BAD_REQUEST', 'NOT_FOUND', 'CORRUPT_FILE', 'SHAPE_MISMATCH'] as const)
      expect(isNeverRetried(new FlotillaError(code, 'x')), code).toBe(true);
    for (const code of ['INTERNAL', 'BLOB_MISSING', 'NON_FINITE'] as const)
      expect(isNeverRetried(new FlotillaError(code, 'x')), code).toBe(false);
    expect(isNeverRetried(new Error('ECONNRESET'))).toBe(false);
  });

  it('fail the job with BullMQ’s UnrecoverableError naming the code', () => {
    const error = unrecoverable(new FlotillaError('CORRUPT_FILE', 'not a safetensors file'));
    expect(error).toBeInstanceOf(UnrecoverableError);
    expect(error.message).toBe('CORRUPT_FILE: not a safetensors file');
  });
});
