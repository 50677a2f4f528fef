/**
 * Krum's decisions from a Gram matrix, certified to be the decisions of the definition.
 *
 * Krum, Multi-Krum and Bulyan are defined (and were first implemented) on the pairwise squared
 * distances `squaredDistance(x_i, x_j)`: Σ_k (x_ik − x_jk)², each term in f64, added in coordinate
 * order. Computing those takes n²/2 sequential passes over the updates; the Gram matrix takes one,
 * blocked and vectorised (gram-matrix.ts), and gives D̃_ij = G_ii + G_jj − 2·G_ij, which differs
 * from the sequential sum in its last bits and, for nearly equal updates, loses relative accuracy
 * to cancellation. So every decision (which update has the lower score, which are kept, in what
 * order) is taken on intervals that certainly contain the definition's value, and where two
 * intervals overlap the distances involved are computed by the definition itself.
 *
 * Error bound. With u = 2⁻⁵³, the Gram matrix's entry error e and absolute error a (gram-matrix.ts;
 * in f64, e = γ_k for a summation depth k, as products of f32 values are exact, and a = 0),
 * |G̃_ij − G_ij| ≤ e Σ|x_i x_j| + a ≤ e √(N_i N_j) + a, with γ_k = ku/(1−ku) (Higham, "Accuracy and
 * Stability of Numerical Algorithms", §3.1, §4.2); the two additions forming D̃ add at most
 * 2u(N_i + N_j + 2|G_ij|). Since 2√(N_i N_j) ≤ N_i + N_j, and N ≤ (Ñ + a)/(1 − e),
 *     |D̃_ij − D_ij| ≤ E_ij = (2e + 4u)/(1 − e) · (Ñ_i + Ñ_j + 2a)·(1 + 10⁻⁶) + 4a·(1 + 10⁻⁶)
 * (the last factors cover the rounding of the bound itself). The definition's own sum of L non-negative terms, each rounded
 * at most three times, is within ρ = γ_{L+3} of D relatively. Hence the definition's value lies in
 * [max(0, D̃ − E)(1 − ρ), (D̃ + E)(1 + ρ)], widened by a few more u for the rounding of the bounds.
 * A Krum score (the sum of the m smallest distances of a row, added in ascending order) lies in
 * the sums of the m smallest lower and upper bounds, widened by γ_m. For 100 updates of 10⁶ values
 * these intervals are about 2·10⁻¹⁰ of a score wide: near-ties that close are settled by computing
 * the definition's distances for the candidates involved.
 *
 * Updates equal bit for bit have a Gram distance of exactly 0 (same sums, gram-kernels.ts), and
 * the definition gives exactly 0 too: such pairs are exact without any computation, which keeps
 * the colluding-copies attack (many identical updates) as fast as any other round.
 */
import { at, f64At } from '@flotilla/protocol';
import { squaredDistance, squaredDistances } from './checks.js';
import { gamma, gramMatrix, type GramPrecision } from './gram-matrix.js';

const U = 2 ** -53;

/** Pairwise squared distances of a set of updates, as intervals refined on demand. */
export class PairDistances {
  readonly n: number;
  private readonly vectors: readonly Float32Array[];
  private readonly lo: Float64Array;
  private readonly hi: Float64Array;
  /** The Gram estimate D̃, for reporting scores. */
  private readonly estimate: Float64Array;
  /** 1 where lo = hi is the definition's value. */
  private readonly exact: Uint8Array;
  /** 1 where the two updates are equal bit for bit. */
  private readonly twins: Uint8Array;
  /** Definition distances computed so far (the cost of the certification). */
  computed = 0;
  /** True when an update holds a NaN or ±Inf: every distance is the definition's (no bound holds). */
  readonly definitionOnly: boolean;
  /** Per row, the other indices sorted by lower and by upper bound; null until asked, or stale. */
  private readonly byLower: (Int32Array | null)[];
  private readonly byUpper: (Int32Array | null)[];

  /**
   * `precision`: the Gram matrix's arithmetic (gram-matrix.ts). f32 bounds are about 10⁷ times
   * wider, so more pairs may need the definition. An f32 Gram matrix with any entry that is not
   * finite (a product or sum past f32's range, or NaN/±Inf in an update) is taken again in f64, so
   * every bound below holds for finite inputs whatever their size.
   */
  constructor(vectors: readonly Float32Array[], precision: GramPrecision = 'f64') {
    const n = vectors.length;
    this.n = n;
    this.vectors = vectors;
    this.lo = new Float64Array(n * n);
    this.hi = new Float64Array(n * n);
    this.estimate = new Float64Array(n * n);
    this.exact = new Uint8Array(n * n);
    this.twins = new Uint8Array(n * n);
    this.byLower = Array<Int32Array | null>(n).fill(null);
    this.byUpper = Array<Int32Array | null>(n).fill(null);
    for (let i = 0; i < n; i++) this.exact[i * n + i] = 1;
    const length = n === 0 ? 0 : at(vectors, 0).length;
    let gram = gramMatrix(vectors, length, precision);
    if (precision === 'f32' && !gram.values.every(Number.isFinite)) gram = gramMatrix(vectors, length, 'f64');
    const norm = (i: number): number => f64At(gram.values, i * n + i);
    this.definitionOnly = !Array.from({ length: n }, (_, i) => norm(i)).every(Number.isFinite);
    if (this.definitionOnly) {
      for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) this.computeExact(i, j);
      return;
    }
    const { entryError: e, absoluteError: a } = gram;
    const c = ((2 * e + 4 * U) / (1 - e)) * (1 + 1e-6);
    const absolute = 4 * a * (1 + 1e-6);
    const rho = gamma(length + 3) + 8 * U;
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const sum = norm(i) + norm(j);
        const d = sum - 2 * f64At(gram.values, i * n + j);
        this.set(i, j, 'estimate', d);
        if (d === 0 && sameBits(vectors[i], vectors[j])) {
          this.setExact(i, j, 0);
          this.twins[i * n + j] = 1;
          this.twins[j * n + i] = 1;
          continue;
        }
        const bound = c * (sum + 2 * a) + absolute;
        this.set(i, j, 'lo', Math.max(0, d - bound) * (1 - rho));
        this.set(i, j, 'hi', (d + bound) * (1 + rho));
      }
    }
  }

  /** True when updates i and j are equal bit for bit (then so are their distances to all others). */
  isTwin(i: number, j: number): boolean {
    return this.twins[i * this.n + j] === 1;
  }

  isExact(i: number, j: number): boolean {
    return this.exact[i * this.n + j] === 1;
  }

  lower(i: number, j: number): number {
    return f64At(this.lo, i * this.n + j);
  }

  upper(i: number, j: number): number {
    return f64At(this.hi, i * this.n + j);
  }

  /** The Gram estimate of the distance (the definition's value where it has been computed). */
  value(i: number, j: number): number {
    return this.isExact(i, j) ? this.lower(i, j) : f64At(this.estimate, i * this.n + j);
  }

  /** Row i's other indices by ascending lower bound (ties by index), sorted once until it changes. */
  rowByLower(i: number): Int32Array {
    return this.sortedRow(i, this.byLower, this.lo);
  }

  /** Row i's other indices by ascending upper bound (ties by index). */
  rowByUpper(i: number): Int32Array {
    return this.sortedRow(i, this.byUpper, this.hi);
  }

  private sortedRow(i: number, cache: (Int32Array | null)[], bound: Float64Array): Int32Array {
    const cached = cache[i];
    if (cached) return cached;
    const n = this.n;
    const row = Int32Array.from({ length: n - 1 }, (_, k) => (k < i ? k : k + 1));
    row.sort((a, b) => f64At(bound, i * n + a) - f64At(bound, i * n + b) || a - b);
    cache[i] = row;
    return row;
  }

  /** Replaces the interval of (i, j) by the definition's value, `squaredDistance` of the pair. */
  computeExact(i: number, j: number): void {
    if (this.isExact(i, j)) return;
    const [a, b] = i < j ? [i, j] : [j, i];
    const va = this.vectors[a];
    const vb = this.vectors[b];
    this.setExact(i, j, va === undefined || vb === undefined ? NaN : squaredDistance(va, vb));
    this.computed += 1;
  }

  /**
   * `computeExact(i, j)` for every pair [i, j] not exact yet, the same values, four pairs per
   * pass (`squaredDistances`).
   */
  computeExactPairs(pairs: ReadonlyArray<readonly [number, number]>): void {
    const todo = pairs.filter(([i, j]) => !this.isExact(i, j));
    const vectors = todo.map(([i, j]) => [this.vectors[i], this.vectors[j]] as const);
    const distances = vectors.every((p): p is readonly [Float32Array, Float32Array] => p.every(Boolean))
      ? squaredDistances(vectors)
      : null;
    todo.forEach(([i, j], k) => {
      if (distances === null) this.computeExact(i, j);
      else {
        this.setExact(i, j, at(distances, k));
        this.computed += 1;
      }
    });
  }

  private setExact(i: number, j: number, d: number): void {
    for (const row of [i, j]) {
      this.byLower[row] = null;
      this.byUpper[row] = null;
    }
    this.set(i, j, 'lo', d);
    this.set(i, j, 'hi', d);
    this.set(i, j, 'estimate', d);
    this.exact[i * this.n + j] = 1;
    this.exact[j * this.n + i] = 1;
  }

  private set(i: number, j: number, which: 'lo' | 'hi' | 'estimate', d: number): void {
    const target = which === 'lo' ? this.lo : which === 'hi' ? this.hi : this.estimate;
    target[i * this.n + j] = d;
    target[j * this.n + i] = d;
  }
}

function sameBits(a: Float32Array | undefined, b: Float32Array | undefined): boolean {
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  const x = new Int32Array(a.buffer, a.byteOffset, a.length);
  const y = new Int32Array(b.buffer, b.byteOffset, b.length);
  for (let k = 0; k < x.length; k++) if (x[k] !== y[k]) return false;
  return true;
}
