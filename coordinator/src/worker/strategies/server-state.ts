import { FlotillaError, ServerOptimizerNameSchema } from '@flotilla/protocol';
import type { ServerOptimizerState } from './types.js';

/**
 * Returns the given state after checking it belongs to `strategy` and to models of `length`
 * values, or a fresh one whose buffers start at `initial[name]`.
 */
export function resumeState(
  strategy: ServerOptimizerState['strategy'],
  length: number,
  initial: Record<string, number>,
  state: ServerOptimizerState | undefined,
): ServerOptimizerState {
  if (state === undefined) {
    const buffers: Record<string, Float32Array> = {};
    for (const [name, value] of Object.entries(initial)) buffers[name] = new Float32Array(length).fill(value);
    return { strategy, step: 0, buffers };
  }
  if (state.strategy !== strategy) {
    throw new FlotillaError('BAD_REQUEST', `server state belongs to ${state.strategy}, not ${strategy}`);
  }
  if (!Number.isInteger(state.step) || state.step < 0) {
    throw new FlotillaError('BAD_REQUEST', `server state step must be an integer >= 0, got ${state.step}`);
  }
  for (const name of Object.keys(initial)) {
    const buffer = state.buffers[name];
    if (buffer === undefined) throw new FlotillaError('BAD_REQUEST', `server state lacks buffer '${name}'`);
    if (buffer.length !== length) {
      throw new FlotillaError(
        'SHAPE_MISMATCH',
        `server state '${name}' has ${buffer.length} values, expected ${length}`,
      );
    }
  }
  return state;
}

/** The buffer `name` of a state `resumeState` returned (it checked that every buffer is there). */
export function stateBuffer(state: ServerOptimizerState, name: string): Float32Array {
  const buffer = state.buffers[name];
  if (buffer === undefined) throw new FlotillaError('INTERNAL', `server state lacks buffer '${name}'`);
  return buffer;
}

/**
 * Server optimizer state as tensors + string metadata, ready for `encodeFloat32Tensors` from
 * `@flotilla/protocol` (the worker persists it between rounds as one safetensors blob).
 */
export function encodeServerOptimizerState(state: ServerOptimizerState): {
  tensors: Map<string, { shape: number[]; values: Float32Array }>;
  metadata: Record<string, string>;
} {
  const tensors = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const name of Object.keys(state.buffers).sort()) {
    const values = state.buffers[name];
    if (values !== undefined) tensors.set(name, { shape: [values.length], values });
  }
  return { tensors, metadata: { 'flotilla.strategy': state.strategy, 'flotilla.step': String(state.step) } };
}

/** Inverse of `encodeServerOptimizerState`; throws CORRUPT_FILE on unknown metadata. */
export function decodeServerOptimizerState(file: {
  tensors: Map<string, { shape: number[]; values: Float32Array }>;
  metadata: Record<string, string>;
}): ServerOptimizerState {
  const strategy = ServerOptimizerNameSchema.safeParse(file.metadata['flotilla.strategy']).data;
  const step = Number(file.metadata['flotilla.step']);
  if (strategy === undefined || !Number.isInteger(step) || step < 0) {
    throw new FlotillaError('CORRUPT_FILE', 'server optimizer state has no valid strategy/step metadata');
  }
  const buffers: Record<string, Float32Array> = {};
  for (const [name, tensor] of file.tensors) buffers[name] = tensor.values;
  return { strategy, step, buffers };
}
