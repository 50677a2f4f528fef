import type { ErrorCode } from './errors.js';

/**
 * For each error code, whether an `update:submit` refused with it is the device's final answer
 * to the round: `true` when the signed update itself is invalid (resending it can never succeed;
 * the client library does not resend it), so the round counts the device as answered and need
 * not wait for it until its deadline. `false` for a refusal the device may get past by trying
 * again (a rate limit, a blob still to upload), for checks made before the device is known to be
 * selected for the round in REPORTING, and for codes `update:submit` never answers with.
 *
 * A device counted so may still send another update: if it is accepted before the round closes,
 * it counts once, as an accepted update.
 */
export const FINAL_UPDATE_REFUSALS = {
  BAD_REQUEST: false,
  PAYLOAD_TOO_LARGE: false,
  UNAUTHORIZED: false,
  // The update names another device: it says nothing of the sender's own answer.
  FORBIDDEN: false,
  NOT_FOUND: false,
  VERSION_MISMATCH: false,
  UNKNOWN_DEVICE: false,
  // A revocation takes the device out of the round its own way (an excluded update).
  REVOKED_DEVICE: false,
  KEY_IN_USE: false,
  BAD_SIGNATURE: true,
  RATE_LIMITED: false,
  NO_ACTIVE_ROUND: false,
  NOT_SELECTED: false,
  STALE_ROUND: false,
  NONCE_MISMATCH: false,
  ROUND_CLOSED: false,
  DUPLICATE_UPDATE: false,
  // Uploading again is the remedy (docs/protocol.md).
  BLOB_MISSING: false,
  // The stored blob is hash-checked: a size or digest that differs is the signed metadata's.
  DIGEST_MISMATCH: true,
  QUOTA_EXCEEDED: false,
  BLOB_TOO_LARGE: true,
  CORRUPT_FILE: true,
  SHAPE_MISMATCH: true,
  MODULE_NOT_ALLOWED: true,
  NON_FINITE: true,
  NORM_EXCEEDED: true,
  EXAMPLES_EXCEEDED: true,
  PRIVACY_BUDGET_EXHAUSTED: false,
  AUDIT_REJECTED: false,
  INTERNAL: false,
} as const satisfies Record<ErrorCode, boolean>;

/** True when an update refused with `code` counts its device as answered (FINAL_UPDATE_REFUSALS). */
export function isFinalUpdateRefusal(code: ErrorCode): boolean {
  return FINAL_UPDATE_REFUSALS[code];
}
