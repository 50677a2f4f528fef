// Where a kernel's scratch goes: beside the updates when they already live in one kernel arena
// (the aggregation job flattens them there) and it has room, so the kernel reads them in place;
// otherwise in a private arena, into which the caller copies the updates block by block.
import { FlotillaError } from '@flotilla/protocol';
import { KernelArena } from './kernel-arena.js';

export interface Placement {
  arena: KernelArena;
  /** True when the updates live in `arena` and can be read in place. */
  inPlace: boolean;
  /** Gives the scratch back (to the shared arena; a private one is freed with the object). */
  release(): void;
}

/**
 * An arena with `bytes(inPlace)` of scratch: the updates' own when they all share one with that
 * much room, else a new one. Throws INTERNAL without WebAssembly SIMD or past the wasm32 limit.
 */
export function placeBeside(
  vectors: readonly Float32Array[],
  bytes: (inPlace: boolean) => number,
): Placement {
  const first = vectors[0];
  const shared = first === undefined ? null : KernelArena.of(first);
  if (
    shared !== null &&
    shared.available >= bytes(true) &&
    vectors.every((v) => KernelArena.of(v) === shared)
  ) {
    const mark = shared.mark();
    return { arena: shared, inPlace: true, release: () => shared.release(mark) };
  }
  const arena = KernelArena.create(bytes(false));
  if (arena === null) {
    throw new FlotillaError(
      'INTERNAL',
      'WebAssembly SIMD is not available in this runtime, or the scratch exceeds wasm32',
    );
  }
  return { arena, inPlace: false, release: () => undefined };
}

/** A zeroed Float32Array of `floats` in `arena`; INTERNAL if it does not fit (a sizing bug). */
export function region(arena: KernelArena, floats: number): Float32Array {
  const view = arena.float32(floats);
  if (view === null) throw new FlotillaError('INTERNAL', 'kernel scratch does not fit its arena');
  return view;
}

/** Bytes `floats` f32 take in an arena, alignment included. */
export function floatBytes(floats: number): number {
  return KernelArena.footprint(floats, 4);
}
