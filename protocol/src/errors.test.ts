import { describe, expect, it } from 'vitest';
import { FlotillaError, toWireError } from './errors.js';

describe('FlotillaError', () => {
  it('keeps the error it explains as its cause, and details, for logs only', () => {
    const cause = new SyntaxError('Unexpected token } in JSON at position 7');
    const error = new FlotillaError('CORRUPT_FILE', 'model.json: not JSON', {
      cause,
      details: { path: 'model.json' },
    });
    expect(error.cause).toBe(cause);
    expect(error.details).toEqual({ path: 'model.json' });
    // The wire shape is the code and message alone: no cause, no details, no stack.
    expect(toWireError(error)).toEqual({ code: 'CORRUPT_FILE', message: 'model.json: not JSON' });
    expect(JSON.stringify(toWireError(error))).not.toContain('position 7');
  });

  it('has no cause unless given one', () => {
    const error = new FlotillaError('BAD_REQUEST', 'no');
    expect('cause' in error).toBe(false);
    expect(error.details).toBeUndefined();
  });

  it('hides anything that is not a FlotillaError behind INTERNAL', () => {
    expect(toWireError(new Error('ECONNRESET at 10.0.0.7'))).toEqual({
      code: 'INTERNAL',
      message: 'internal error',
    });
  });
});
