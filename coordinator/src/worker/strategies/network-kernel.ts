/**
 * A WebAssembly function generated for one comparator network: `sortLanes(base, vectors, out)`
 * sorts, for each of `vectors` consecutive 16-byte groups of 4 lanes, the keys on rows
 * `base + w · stride` (w = 0 … n-1) with one i32x4 min and one max per comparator, then reduces
 * each sorted column (median, trimmed mean, Bulyan's mean around the median; lane-reductions.ts).
 *
 * Why generated code with its own register allocation: a comparator applied straight to memory
 * costs two loads and two stores, and the stores bound it. Keeping wires in registers removes most
 * of them, but left to itself the engine spills almost every value of a 100-wire straight-line
 * network. So the generator decides which wires live in its few v128 locals (Belady's rule: on a
 * miss, evict the wire used again farthest in the future) and loads and stores the rest itself;
 * with the depth-first comparator order of `oddEvenMergeSort` that is about 0.7 loads and 0.7
 * stores per comparator at n = 100 instead of 2 and 2, and the engine maps the locals to registers.
 */
import { FlotillaError, at } from '@flotilla/protocol';
import { reductionCode, SCRATCH_V128, type LaneReduction } from './lane-reductions.js';
import { assembleModule, I32, op, simdOp, uleb, V128 } from './wasm-encoding.js';

/** v128 locals the generated code keeps wires in (more makes the engine spill; measured 6–15). */
const REGISTERS = 8;

export interface NetworkKernel {
  /**
   * Sorts `vectors` (≥ 1) groups of 4 lanes starting at byte address `base`, then writes each
   * group's reduction (if any) to `out` + 16 · group and its flag to `flags` + 4 · group.
   */
  sortLanes(base: number, vectors: number, out: number, flags: number): void;
}

type Step =
  | { kind: 'load'; wire: number; slot: number }
  | { kind: 'store'; wire: number; slot: number }
  | { kind: 'compare'; low: number; high: number };

/** Loads, stores and comparators (on slots) that run `network` with `registers` slots. */
export function schedule(network: readonly (readonly [number, number])[], registers: number): Step[] {
  const uses = new Map<number, number[]>();
  network.forEach(([a, b], t) => {
    for (const wire of [a, b]) {
      const list = uses.get(wire);
      if (list === undefined) uses.set(wire, [t]);
      else list.push(t);
    }
  });
  const cursor = new Map<number, number>();
  /** The first use of `wire` after comparator t (uses are visited in increasing t). */
  const nextUse = (wire: number, t: number): number => {
    const list = uses.get(wire) ?? [];
    let k = cursor.get(wire) ?? 0;
    while (k < list.length && at(list, k) <= t) k++;
    cursor.set(wire, k);
    // Past its last use a wire is never read again.
    return k < list.length ? at(list, k) : Infinity;
  };
  const slotOf = new Map<number, number>();
  const slotFor = (wire: number): number => {
    const slot = slotOf.get(wire);
    if (slot === undefined) throw new FlotillaError('INTERNAL', `wire ${wire} holds no register`);
    return slot;
  };
  const free = Array.from({ length: registers }, (_, k) => registers - 1 - k);
  const steps: Step[] = [];
  network.forEach(([a, b], t) => {
    for (const wire of [a, b]) {
      if (slotOf.has(wire)) continue;
      let slot = free.pop();
      if (slot === undefined) {
        let victim = -1;
        let farthest = -1;
        for (const resident of slotOf.keys()) {
          if (resident === a || resident === b) continue;
          const next = nextUse(resident, t);
          if (next > farthest) [victim, farthest] = [resident, next];
        }
        slot = slotFor(victim);
        // Every resident wire has been through a comparator, so it is always written back.
        steps.push({ kind: 'store', wire: victim, slot });
        slotOf.delete(victim);
      }
      slotOf.set(wire, slot);
      steps.push({ kind: 'load', wire, slot });
    }
    steps.push({ kind: 'compare', low: slotFor(a), high: slotFor(b) });
  });
  for (const [wire, slot] of slotOf) steps.push({ kind: 'store', wire, slot });
  return steps;
}

/** Locals of `sortLanes`: its params, the loop end, the reductions' scratch, the wire slots. */
const L = { base: 0, count: 1, out: 2, flags: 3, end: 4, start: 5 };
const scratchLocal = (k: number): number => 6 + k;
const slotLocal = (k: number): number => 6 + SCRATCH_V128 + k;

/** The function body, written byte by byte where it is long (n = 100: ~40 kB of code). */
function sortLanesCode(
  steps: readonly Step[],
  strideBytes: number,
  reduction: LaneReduction,
  n: number,
): number[] {
  const code: number[] = [];
  const push = (bytes: readonly number[]): void => {
    for (const b of bytes) code.push(b);
  };
  // end = base + vectors * 16
  push([...op.localGet(L.base), ...op.localSet(L.start)]);
  push([...op.localGet(L.count), ...op.i32Const(4), ...op.i32Shl, ...op.localGet(L.base), ...op.i32Add]);
  push([...op.localSet(L.end), ...op.loop]);
  for (const step of steps) {
    if (step.kind === 'load') {
      code.push(0x20, L.base, 0xfd, 0x00, 4, ...uleb(step.wire * strideBytes), 0x21, slotLocal(step.slot));
    } else if (step.kind === 'store') {
      code.push(0x20, L.base, 0x20, slotLocal(step.slot), 0xfd, 0x0b, 4, ...uleb(step.wire * strideBytes));
    } else {
      const [lo, hi] = [slotLocal(step.low), slotLocal(step.high)];
      // lo, hi = min(lo, hi), max(lo, hi)
      push([...op.localGet(lo), ...op.localGet(hi), ...simdOp.i32x4MinS]);
      push([...op.localGet(lo), ...op.localGet(hi), ...simdOp.i32x4MaxS]);
      push([...op.localSet(hi), ...op.localSet(lo)]);
    }
  }
  const next = [...op.localGet(L.base), ...op.i32Const(16), ...op.i32Add, ...op.localTee(L.base)];
  const loopEnd = [...op.localGet(L.end), ...op.i32LtU, ...op.brIf(0), ...op.end];
  push([...next, ...loopEnd]);
  if (reduction.kind !== 'sorted') {
    // The reduction is a second loop over the groups (the rows are still in L2): appended to the
    // network's loop body, it made the engine allocate registers for the whole body worse
    // (Bulyan's second stage took 40% longer).
    push([...op.localGet(L.start), ...op.localSet(L.base), ...op.loop]);
    push(reductionCode(reduction, { ...L, v: scratchLocal, strideBytes, n }));
    push([...op.localGet(L.out), ...op.i32Const(16), ...op.i32Add, ...op.localSet(L.out)]);
    push([...op.localGet(L.flags), ...op.i32Const(4), ...op.i32Add, ...op.localSet(L.flags)]);
    push([...next, ...loopEnd]);
  }
  return code;
}

const modules = new Map<string, WebAssembly.Module>();
/** Compiled networks kept per process (one per update count and strategy in practice). */
const MAX_MODULES = 32;

/**
 * The kernel that runs `network` on rows `strideBytes` apart and then `reduction`, working on
 * `memory` (an arena's). Compiled once per (key, stride, reduction) and instantiated per memory.
 */
export function networkKernel(
  memory: WebAssembly.Memory,
  options: {
    /** Wires (values per column). */
    n: number;
    network: readonly (readonly [number, number])[];
    strideBytes: number;
    reduction: LaneReduction;
  },
): NetworkKernel {
  const { n, network, strideBytes, reduction } = options;
  const id = `${n}@${strideBytes}:${JSON.stringify(reduction)}`;
  let module = modules.get(id);
  if (module === undefined) {
    const code = sortLanesCode(schedule(network, REGISTERS), strideBytes, reduction, n);
    const locals: [number, number][] = [
      [2, I32],
      [SCRATCH_V128, V128],
      [REGISTERS, V128],
    ];
    const bytes = assembleModule([{ name: 'sortLanes', params: [I32, I32, I32, I32], locals, code }], {
      importMemory: true,
    });
    module = new WebAssembly.Module(bytes);
    if (modules.size >= MAX_MODULES) modules.clear();
    modules.set(id, module);
  }
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return instance.exports as unknown as NetworkKernel;
}
