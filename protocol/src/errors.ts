/**
 * One error type for all of Flotilla. `code` is stable and machine-readable; on the wire an error
 * is only `{ code, message }` (never a stack).
 */
export const ERROR_CODES = [
  // request shape and identity
  'BAD_REQUEST',
  'PAYLOAD_TOO_LARGE',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_FOUND',
  'VERSION_MISMATCH',
  'UNKNOWN_DEVICE',
  'REVOKED_DEVICE',
  'KEY_IN_USE',
  'BAD_SIGNATURE',
  'RATE_LIMITED',
  // rounds
  'NO_ACTIVE_ROUND',
  'NOT_SELECTED',
  'STALE_ROUND',
  'NONCE_MISMATCH',
  'ROUND_CLOSED',
  'DUPLICATE_UPDATE',
  // blobs and tensors
  'BLOB_MISSING',
  'DIGEST_MISMATCH',
  'BLOB_TOO_LARGE',
  'QUOTA_EXCEEDED',
  'CORRUPT_FILE',
  'SHAPE_MISMATCH',
  'MODULE_NOT_ALLOWED',
  'NON_FINITE',
  'NORM_EXCEEDED',
  // update weighting
  'EXAMPLES_EXCEEDED',
  // worker and policy
  'PRIVACY_BUDGET_EXHAUSTED',
  'AUDIT_REJECTED',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The wire shape of an error. */
export interface WireError {
  code: ErrorCode;
  message: string;
}

export interface FlotillaErrorOptions {
  /** Extra machine-readable facts (offsets, limits) for logs; never sent on the wire. */
  details?: Record<string, unknown>;
  /** The error this one explains (Error `cause`): kept for logs, never sent on the wire. */
  cause?: unknown;
}

export class FlotillaError extends Error {
  readonly code: ErrorCode;
  /** Extra machine-readable facts (offsets, limits) for logs; never sent on the wire. */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options: FlotillaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FlotillaError';
    this.code = code;
    this.details = options.details;
  }

  toWire(): WireError {
    return { code: this.code, message: this.message };
  }

  static is(value: unknown, code?: ErrorCode): value is FlotillaError {
    return value instanceof FlotillaError && (code === undefined || value.code === code);
  }
}

/** Maps anything thrown to its wire shape; unknown failures become INTERNAL without detail. */
export function toWireError(error: unknown): WireError {
  if (error instanceof FlotillaError) return error.toWire();
  return { code: 'INTERNAL', message: 'internal error' };
}
