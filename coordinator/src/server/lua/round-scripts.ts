import { loadLuaScript } from '../../shared/lua-script.js';

// The round's Redis scripts, one file per move of the state machine (round-machine.ts) or per
// response it stores, each read once at startup. The code names match each file's header
// (round-scripts.test.ts checks it); a refusal's name is the FlotillaError code it becomes.

const HERE = new URL('./', import.meta.url);

/** -> SELECTING: a new round, made its task's current one. */
export const CREATE_ROUND = loadLuaScript(HERE, 'round-create', { FENCED: -1, EXISTS: 0, CREATED: 1 });

/** A plain move of the table: the state, and fields set with it. */
export const TRANSITION_ROUND = loadLuaScript(HERE, 'round-transition', {
  FENCED: -1,
  WRONG_STATE: 0,
  MOVED: 1,
});

/** In CONFIGURING: the selected devices. */
export const SELECT_DEVICES = loadLuaScript(HERE, 'round-select', { FENCED: -1, STORED: 1 });

/** REPORTING -> AGGREGATING with quorum, with the accepted count it closes with. */
export const CLOSE_REPORTING = loadLuaScript(HERE, 'round-close-reporting', {
  FENCED: -1,
  STATE: 0,
  OK: 1,
  QUORUM: 2,
});

/** In REPORTING: an accepted update, stored and counted. */
export const ACCEPT_UPDATE = loadLuaScript(HERE, 'round-accept-update', {
  OK: 1,
  ROUND_CLOSED: 2,
  NOT_SELECTED: 3,
  DUPLICATE_UPDATE: 4,
  REVOKED_DEVICE: 5,
});

/** In REPORTING: a selected device's skip, stored and counted. */
export const RECORD_SKIP = loadLuaScript(HERE, 'round-record-skip', {
  OK: 1,
  ROUND_CLOSED: 2,
  NOT_SELECTED: 3,
  DUPLICATE_UPDATE: 4,
});

/** In REPORTING: a selected device counted as answered after a final refusal of its update. */
export const RECORD_FINAL_REFUSAL = loadLuaScript(HERE, 'round-record-final-refusal', {
  COUNTED: 1,
  ROUND_CLOSED: 2,
  NOT_SELECTED: 3,
  ANSWERED: 4,
});

/** In REPORTING: a revoked device's accepted update taken out again. */
export const EXCLUDE_UPDATE = loadLuaScript(HERE, 'round-exclude-update', { KEPT: 0, EXCLUDED: 1 });

/** A refused update, counted; the first of its (device, reason) to be logged in full. */
export const RECORD_REFUSAL = loadLuaScript(HERE, 'round-record-refusal', { GONE: -1, REPEAT: 0, FIRST: 1 });

/** The leaf of a first refusal's record, kept to answer its repeats with. */
export const KEEP_REFUSAL_LEAF = loadLuaScript(HERE, 'round-keep-refusal-leaf', { GONE: -1, KEPT: 1 });

/** The round's refusal counts not yet logged, taken, with its totals. */
export const TAKE_REFUSALS = loadLuaScript(HERE, 'round-take-refusals', {});

/** In REPORTING: a device's upload admitted (session, selection, size cap) and reserved in its quota. */
export const ADMIT_UPLOAD = loadLuaScript(HERE, 'upload-admit', {
  RESERVED: 1,
  RETRY: 2,
  UNAUTHORIZED: 3,
  NOT_SELECTED: 4,
  QUOTA_EXCEEDED: 5,
});

/** What the checks of an update:submit read: the current round, the device, the task, its answers. */
export const READ_SUBMISSION = loadLuaScript(HERE, 'round-read-submission', {});

/** Every round script, for the header test. */
export const ROUND_SCRIPTS = [
  CREATE_ROUND,
  TRANSITION_ROUND,
  SELECT_DEVICES,
  CLOSE_REPORTING,
  ACCEPT_UPDATE,
  RECORD_SKIP,
  RECORD_FINAL_REFUSAL,
  EXCLUDE_UPDATE,
  RECORD_REFUSAL,
  KEEP_REFUSAL_LEAF,
  TAKE_REFUSALS,
  ADMIT_UPLOAD,
  READ_SUBMISSION,
];
