// Small dense linear algebra in float64 for re-factoring averaged LoRA products. Matrices are
// row-major Float64Array with explicit [rows, cols]; sizes here are tiny (rank × devices).
import { FlotillaError, f64At } from '@flotilla/protocol';

export interface Matrix {
  rows: number;
  cols: number;
  /** Row-major values. */
  data: Float64Array;
}

export function matrix(rows: number, cols: number, data?: ArrayLike<number>): Matrix {
  const out = new Float64Array(rows * cols);
  if (data) {
    if (data.length !== out.length)
      throw new FlotillaError('INTERNAL', `${data.length} values do not fill a [${rows}, ${cols}] matrix`);
    out.set(data);
  }
  return { rows, cols, data: out };
}

export function multiply(a: Matrix, b: Matrix): Matrix {
  if (a.cols !== b.rows)
    throw new RangeError(`cannot multiply [${a.rows},${a.cols}] by [${b.rows},${b.cols}]`);
  const out = matrix(a.rows, b.cols);
  for (let i = 0; i < a.rows; i++) {
    for (let k = 0; k < a.cols; k++) {
      const aik = f64At(a.data, i * a.cols + k);
      if (aik === 0) continue;
      const rowB = k * b.cols;
      const rowOut = i * b.cols;
      for (let j = 0; j < b.cols; j++)
        out.data[rowOut + j] = f64At(out.data, rowOut + j) + aik * f64At(b.data, rowB + j);
    }
  }
  return out;
}

export function transpose(a: Matrix): Matrix {
  const out = matrix(a.cols, a.rows);
  for (let i = 0; i < a.rows; i++)
    for (let j = 0; j < a.cols; j++) out.data[j * a.rows + i] = f64At(a.data, i * a.cols + j);
  return out;
}

export function frobeniusNorm(a: Matrix): number {
  let sum = 0;
  for (const v of a.data) sum += v * v;
  return Math.sqrt(sum);
}

/**
 * Thin QR by modified Gram–Schmidt with one re-orthogonalisation pass: A [m, n] = Q [m, n] R [n, n].
 * Columns that are (numerically) dependent get a zero column in Q and a zero row in R, which is
 * what the rank-r re-factorisation wants.
 */
export function thinQr(a: Matrix): { q: Matrix; r: Matrix } {
  const { rows: m, cols: n } = a;
  const q = matrix(m, n);
  const r = matrix(n, n);
  const column = new Float64Array(m);
  const scale = Math.max(frobeniusNorm(a), Number.MIN_VALUE);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < m; i++) column[i] = f64At(a.data, i * n + j);
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        let dot = 0;
        for (let i = 0; i < m; i++) dot += f64At(q.data, i * n + k) * f64At(column, i);
        r.data[k * n + j] = f64At(r.data, k * n + j) + dot;
        for (let i = 0; i < m; i++) column[i] = f64At(column, i) - dot * f64At(q.data, i * n + k);
      }
    }
    let norm = 0;
    for (let i = 0; i < m; i++) norm += f64At(column, i) ** 2;
    norm = Math.sqrt(norm);
    if (norm <= 1e-13 * scale) continue;
    r.data[j * n + j] = norm;
    for (let i = 0; i < m; i++) q.data[i * n + j] = f64At(column, i) / norm;
  }
  return { q, r };
}

/**
 * Singular value decomposition of a small matrix A [m, n] by one-sided Jacobi rotations
 * (Hestenes 1958): A = U diag(s) Vᵀ with s sorted descending. Accurate to machine precision for
 * the small cores (≤ a few hundred) this module feeds it.
 */
export function jacobiSvd(a: Matrix): { u: Matrix; s: Float64Array; v: Matrix } {
  const { rows: m, cols: n } = a;
  const work = matrix(m, n, a.data);
  const v = matrix(n, n);
  for (let i = 0; i < n; i++) v.data[i * n + i] = 1;
  const tolerance = 1e-15;
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let i = 0; i < m; i++) {
          const x = f64At(work.data, i * n + p);
          const y = f64At(work.data, i * n + q);
          alpha += x * x;
          beta += y * y;
          gamma += x * y;
        }
        if (Math.abs(gamma) <= tolerance * Math.sqrt(alpha * beta) || gamma === 0) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        rotateColumns(work, p, q, c, s);
        rotateColumns(v, p, q, c, s);
      }
    }
    if (!rotated) break;
  }
  const singular = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let norm = 0;
    for (let i = 0; i < m; i++) norm += f64At(work.data, i * n + j) ** 2;
    singular[j] = Math.sqrt(norm);
  }
  const order = Array.from({ length: n }, (_, j) => j).sort(
    (x, y) => f64At(singular, y) - f64At(singular, x),
  );
  const u = matrix(m, n);
  const vSorted = matrix(n, n);
  const s = new Float64Array(n);
  order.forEach((from, to) => {
    const sigma = f64At(singular, from);
    s[to] = sigma;
    for (let i = 0; i < m; i++) u.data[i * n + to] = sigma > 0 ? f64At(work.data, i * n + from) / sigma : 0;
    for (let i = 0; i < n; i++) vSorted.data[i * n + to] = f64At(v.data, i * n + from);
  });
  return { u, s, v: vSorted };
}

function rotateColumns(m: Matrix, p: number, q: number, c: number, s: number): void {
  for (let i = 0; i < m.rows; i++) {
    const x = f64At(m.data, i * m.cols + p);
    const y = f64At(m.data, i * m.cols + q);
    m.data[i * m.cols + p] = c * x - s * y;
    m.data[i * m.cols + q] = s * x + c * y;
  }
}
