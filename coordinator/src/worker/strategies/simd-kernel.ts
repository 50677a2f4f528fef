/**
 * A hand-assembled WebAssembly SIMD kernel for the FedAvg hot loop: `acc[i] += w * x[i]` with an
 * f64 accumulator and f32 input (WebAssembly core spec 2.0, fixed-width SIMD proposal). There is no
 * wat2wasm at build time, so the module bytes are written out below with the text format alongside.
 *
 * Why f64 accumulation: an f32 running sum over n updates loses ~sqrt(n)·2⁻²⁴ relative precision
 * per coordinate (and n·2⁻²⁴ in the worst case), which is already ~1e-6 at n = 100. Promoting each
 * f32x4 to two f64x2 keeps the sum exact to ~1e-16 and the final result within one f32 rounding of
 * the f64 reference; the loop stays memory-bound because the input is streamed once per update.
 */

/** Bytes of the module. Exports `memory` (1 page initially) and `axpy(accPtr, xPtr, count, w)`. */
function kernelBytes(): Uint8Array<ArrayBuffer> {
  const simd = (op: number): number[] => (op < 0x80 ? [0xfd, op] : [0xfd, (op & 0x7f) | 0x80, op >> 7]);
  const localGet = (i: number): number[] => [0x20, i];
  const v128Load = (offset: number): number[] => [...simd(0x00), 4, offset];
  const v128Store = (offset: number): number[] => [...simd(0x0b), 4, offset];
  const load64Zero = (offset: number): number[] => [...simd(0x5d), 3, offset];
  const promoteLow = simd(0x5f);
  const f64x2Mul = simd(0xf2);
  const f64x2Add = simd(0xf0);
  // One f64x2 lane pair: acc[off] = acc[off] + promote(x[xOff..xOff+2]) * w
  const lanePair = (accOffset: number, xOffset: number): number[] => [
    ...localGet(0),
    ...localGet(0),
    ...v128Load(accOffset),
    ...localGet(1),
    ...load64Zero(xOffset),
    ...promoteLow,
    ...localGet(4),
    ...f64x2Mul,
    ...f64x2Add,
    ...v128Store(accOffset),
  ];
  // (func $axpy (param $acc i32) (param $x i32) (param $count i32) (param $w f64)
  //   (local $wv v128) (local $end i32)
  //   $end = $x + $count * 4 ; $wv = f64x2.splat $w
  //   block  (br_if 0 (i32.ge_u $x $end))
  //     loop  <8 floats: four lane pairs>  $acc += 32*2 ; $x += 16*2 ; br_if 0 (i32.lt_u $x $end)
  // `count` must be a multiple of 8; the caller handles the tail.
  const body = [
    // locals: 1 x v128, 1 x i32
    2,
    1,
    0x7b,
    1,
    0x7f,
    ...localGet(1),
    ...localGet(2),
    0x41,
    2,
    0x74, // i32.shl
    0x6a, // i32.add
    0x21,
    5, // local.set $end
    ...localGet(3),
    ...simd(0x14), // f64x2.splat
    0x21,
    4,
    0x02,
    0x40, // block
    ...localGet(1),
    ...localGet(5),
    0x4f, // i32.ge_u
    0x0d,
    0, // br_if 0
    0x03,
    0x40, // loop
    ...lanePair(0, 0),
    ...lanePair(16, 8),
    ...lanePair(32, 16),
    ...lanePair(48, 24),
    ...localGet(0),
    0x41,
    0xc0,
    0x00, // i32.const 64
    0x6a,
    0x21,
    0,
    ...localGet(1),
    0x41,
    0x20, // i32.const 32
    0x6a,
    0x22,
    1, // local.tee $x
    ...localGet(5),
    0x49, // i32.lt_u
    0x0d,
    0, // br_if 0
    0x0b, // end loop
    0x0b, // end block
    0x0b, // end func
  ];
  const section = (id: number, content: number[]): number[] => [id, ...uleb(content.length), ...content];
  const name = (s: string): number[] => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [1, 0x60, 4, 0x7f, 0x7f, 0x7f, 0x7c, 0]), // type: (i32 i32 i32 f64) -> ()
    ...section(3, [1, 0]), // function 0 has type 0
    ...section(5, [1, 0x00, 1]), // memory: min 1 page, no max
    ...section(7, [2, ...name('axpy'), 0x00, 0, ...name('memory'), 0x02, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ];
  return Uint8Array.from(bytes);
}

function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

/** Floats the kernel consumes per loop iteration; counts passed to `axpy` must be multiples of it. */
export const KERNEL_LANES = 8;

export interface SimdKernel {
  memory: WebAssembly.Memory;
  /** `acc[i] += w * x[i]` for `count` elements; `accPtr` is 16-byte aligned f64, `xPtr` f32. */
  axpy(accPtr: number, xPtr: number, count: number, w: number): void;
}

let compiled: WebAssembly.Module | null | undefined;

/** The compiled module, or null when this runtime has no WebAssembly SIMD (then use the TS loop). */
export function simdModule(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  compiled = null;
  if (typeof WebAssembly === 'object') {
    const bytes = kernelBytes();
    if (WebAssembly.validate(bytes)) compiled = new WebAssembly.Module(bytes);
  }
  return compiled;
}

/** True when the SIMD kernel validates and compiles here. */
export function simdAvailable(): boolean {
  return simdModule() !== null;
}

/** A fresh instance with its own linear memory (so one accumulator's memory is freed with it). */
export function instantiateSimdKernel(): SimdKernel | null {
  const module = simdModule();
  if (module === null) return null;
  const instance = new WebAssembly.Instance(module, {});
  const { memory, axpy } = instance.exports as unknown as {
    memory: WebAssembly.Memory;
    axpy: (accPtr: number, xPtr: number, count: number, w: number) => void;
  };
  return { memory, axpy };
}
