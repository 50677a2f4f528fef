import { FlotillaError, type LogLeaf, type UpdateReceipt } from '@flotilla/protocol';
import { HttpStatusError, isRetryableHttpError } from './http-client.js';
import { sleep } from './retry.js';
import type { PendingUpdate } from './round.js';
import { AckError, AckLostError, callWithAck, type AckEmitter } from './socket-call.js';

export interface SubmitContext {
  /** Resolves with the socket once authenticated, or null when the deadline passed or the device stopped. */
  connection(deadline: number): Promise<AckEmitter | null>;
  isStopped(): boolean;
  /** Milliseconds to wait for the `update:submit` ack. */
  ackTimeoutMs: number;
  /** Milliseconds between attempts while the coordinator is unreachable. */
  retryDelayMs: number;
  signal: AbortSignal;
}

export type SubmitResult =
  | { kind: 'accepted'; receipt: UpdateReceipt | null; duplicate: boolean }
  /** `logLeaf`: the refusal's record in the round log, as the coordinator's answer named it. */
  | { kind: 'refused'; code: string; message: string; logLeaf: LogLeaf | null }
  /** The device was stopped before the coordinator answered: nothing more is sent. */
  | { kind: 'stopped' };

/**
 * Uploads the blob (once) and submits the signed update until the coordinator answers or the
 * round's deadline passes. A lost ack or connection keeps the update pending: after re-auth it
 * is submitted again (without re-uploading), and DUPLICATE_UPDATE then means the earlier
 * submission was accepted.
 */
export async function submitUntilAnswered(
  pending: PendingUpdate,
  context: SubmitContext,
): Promise<SubmitResult> {
  const { plan } = pending;
  while (!context.isStopped() && Date.now() < plan.deadline) {
    const socket = await context.connection(plan.deadline);
    if (!socket) break;
    try {
      if (!pending.uploaded) {
        await pending.upload();
        pending.uploaded = true;
      }
      pending.attempts++;
      const receipt = await callWithAck(socket, 'update:submit', pending.submission, context.ackTimeoutMs);
      return { kind: 'accepted', receipt, duplicate: false };
    } catch (error) {
      // Our own stop aborted the call: the coordinator refused nothing.
      if (context.isStopped()) return { kind: 'stopped' };
      if (error instanceof AckLostError) continue; // wait for re-auth, then submit again
      if (isRetryableHttpError(error) || (error instanceof HttpStatusError && error.status === 401)) {
        // The coordinator is unreachable, or the session token died with the connection.
        await sleep(context.retryDelayMs, context.signal).catch(() => undefined);
        continue;
      }
      if (error instanceof AckError && error.code === 'DUPLICATE_UPDATE' && pending.attempts > 1)
        return { kind: 'accepted', receipt: null, duplicate: true };
      if (error instanceof AckError && error.code === 'BLOB_MISSING' && pending.uploaded) {
        pending.uploaded = false;
        continue;
      }
      const code = FlotillaError.is(error) ? error.code : 'INTERNAL';
      let message = error instanceof Error ? error.message : String(error);
      if (pending.attempts > 1 && code === 'ROUND_CLOSED')
        message = `${message} (an earlier submission's ack was lost: it may have been accepted)`;
      const logLeaf = error instanceof AckError && 'logLeaf' in error.refusal ? error.refusal.logLeaf : null;
      return { kind: 'refused', code, message, logLeaf };
    }
  }
  if (context.isStopped()) return { kind: 'stopped' };
  return {
    kind: 'refused',
    code: 'ROUND_CLOSED',
    message: 'the round deadline passed before an answer',
    logLeaf: null,
  };
}
