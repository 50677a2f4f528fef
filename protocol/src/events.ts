import type { AuthChallenge, AuthResponse, AuthResult } from './messages/handshake.js';
import type { CheckIn, CheckInResult, NotSelected } from './messages/checkin.js';
import type { RoundClosed, RoundPlan } from './messages/round-plan.js';
import type { UpdateReceipt, UpdateSkip, UpdateSubmission } from './messages/update.js';
import type { AdapterPromoted } from './messages/manifest.js';
import type { Ack } from './messages/primitives.js';
import type { WireError } from './errors.js';

/** Socket.io events a device sends. Every one carries an ack callback. Payloads are validated. */
export interface ClientToServerEvents {
  'auth:response': (payload: AuthResponse, ack: (result: Ack<AuthResult>) => void) => void;
  checkin: (payload: CheckIn, ack: (result: Ack<CheckInResult>) => void) => void;
  'update:submit': (payload: UpdateSubmission, ack: (result: Ack<UpdateReceipt>) => void) => void;
  'update:skip': (payload: UpdateSkip, ack: (result: Ack<{ recorded: true }>) => void) => void;
}

/** Socket.io events the coordinator sends. */
export interface ServerToClientEvents {
  'auth:challenge': (payload: AuthChallenge) => void;
  'round:plan': (payload: RoundPlan) => void;
  'round:not-selected': (payload: NotSelected) => void;
  'round:closed': (payload: RoundClosed) => void;
  'adapter:promoted': (payload: AdapterPromoted) => void;
  /** Sent before the server closes a connection, e.g. after a failed challenge. */
  error: (payload: WireError) => void;
}

export const CLIENT_EVENTS = ['auth:response', 'checkin', 'update:submit', 'update:skip'] as const;

/** HTTP routes served on the coordinator's port (see docs/protocol.md). */
export const HTTP_ROUTES = {
  blob: (sha256: string) => `/blobs/${sha256}`,
  task: (taskId: string) => `/api/tasks/${taskId}`,
  manifest: (taskId: string, version: number) => `/api/tasks/${taskId}/adapters/${version}/manifest`,
  latestManifest: (taskId: string) => `/api/tasks/${taskId}/adapters/latest/manifest`,
} as const;
