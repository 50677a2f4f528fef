// Small dense linear algebra in float64 for re-factoring averaged LoRA products. Matrices are
// row-major Float64Array with explicit [rows, cols]; sizes here are tiny (rank × devices).

export interface Matrix {
  rows: number;
  cols: number;
  /** Row-major values. */
  data: Float64Array;
}

export function matrix(rows: number, cols: number, data?: ArrayLike<number>): Matrix {
  const out = new Float64Array(rows * cols);
  if (data) {
    // An indexed copy: Array.from on a large typed array boxes every element (slow, GC-heavy).
    const n = Math.min(data.length, rows * cols);
    for (let i = 0; i < n; i++) out[i] = data[i] ?? 0;
  }
  return { rows, cols, data: out };
}

export function at(m: Matrix, i: number, j: number): number {
  return m.data[i * m.cols + j] ?? 0;
}

export function multiply(a: Matrix, b: Matrix): Matrix {
  if (a.cols !== b.rows)
    throw new RangeError(`cannot multiply [${a.rows},${a.cols}] by [${b.rows},${b.cols}]`);
  const out = matrix(a.rows, b.cols);
  for (let i = 0; i < a.rows; i++) {
    for (let k = 0; k < a.cols; k++) {
      const aik = a.data[i * a.cols + k] ?? 0;
      if (aik === 0) continue;
      const rowB = k * b.cols;
      const rowOut = i * b.cols;
      for (let j = 0; j < b.cols; j++)
        out.data[rowOut + j] = (out.data[rowOut + j] ?? 0) + aik * (b.data[rowB + j] ?? 0);
    }
  }
  return out;
}

export function transpose(a: Matrix): Matrix {
  const out = matrix(a.cols, a.rows);
  for (let i = 0; i < a.rows; i++)
    for (let j = 0; j < a.cols; j++) out.data[j * a.rows + i] = a.data[i * a.cols + j] ?? 0;
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
    for (let i = 0; i < m; i++) column[i] = a.data[i * n + j] ?? 0;
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        let dot = 0;
        for (let i = 0; i < m; i++) dot += (q.data[i * n + k] ?? 0) * (column[i] ?? 0);
        r.data[k * n + j] = (r.data[k * n + j] ?? 0) + dot;
        for (let i = 0; i < m; i++) column[i] = (column[i] ?? 0) - dot * (q.data[i * n + k] ?? 0);
      }
    }
    let norm = 0;
    for (let i = 0; i < m; i++) norm += (column[i] ?? 0) ** 2;
    norm = Math.sqrt(norm);
    if (norm <= 1e-13 * scale) continue;
    r.data[j * n + j] = norm;
    for (let i = 0; i < m; i++) q.data[i * n + j] = (column[i] ?? 0) / norm;
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
          const x = work.data[i * n + p] ?? 0;
          const y = work.data[i * n + q] ?? 0;
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
    for (let i = 0; i < m; i++) norm += (work.data[i * n + j] ?? 0) ** 2;
    singular[j] = Math.sqrt(norm);
  }
  const order = Array.from({ length: n }, (_, j) => j).sort(
    (x, y) => (singular[y] ?? 0) - (singular[x] ?? 0),
  );
  const u = matrix(m, n);
  const vSorted = matrix(n, n);
  const s = new Float64Array(n);
  order.forEach((from, to) => {
    const sigma = singular[from] ?? 0;
    s[to] = sigma;
    for (let i = 0; i < m; i++) u.data[i * n + to] = sigma > 0 ? (work.data[i * n + from] ?? 0) / sigma : 0;
    for (let i = 0; i < n; i++) vSorted.data[i * n + to] = v.data[i * n + from] ?? 0;
  });
  return { u, s, v: vSorted };
}

function rotateColumns(m: Matrix, p: number, q: number, c: number, s: number): void {
  for (let i = 0; i < m.rows; i++) {
    const x = m.data[i * m.cols + p] ?? 0;
    const y = m.data[i * m.cols + q] ?? 0;
    m.data[i * m.cols + p] = c * x - s * y;
    m.data[i * m.cols + q] = s * x + c * y;
  }
}
