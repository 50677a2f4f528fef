// Small inline-SVG charts for the dashboard: no chart library, no network.
// Every function returns an <svg> element sized by its viewBox (it scales to its container).

const NS = 'http://www.w3.org/2000/svg';
const W = 420;
const H = 170;
const PAD = { left: 40, right: 10, top: 10, bottom: 24 };

/** @param {string} tag @param {Record<string, string | number>} attrs */
function el(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function frame(label) {
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': label });
  svg.append(
    el('line', {
      x1: PAD.left,
      y1: H - PAD.bottom,
      x2: W - PAD.right,
      y2: H - PAD.bottom,
      stroke: '#94a3b8',
    }),
  );
  svg.append(el('line', { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom, stroke: '#94a3b8' }));
  return svg;
}

/** Rounds a maximum up to 1, 2 or 5 times a power of ten so axis ticks read well. */
function niceMax(value) {
  if (!(value > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 5, 10]) if (value <= m * p) return m * p;
  return 10 * p;
}

function yAxis(svg, max, format = (v) => String(v)) {
  for (const f of [0, 0.5, 1]) {
    const y = H - PAD.bottom - f * (H - PAD.top - PAD.bottom);
    svg.append(el('line', { x1: PAD.left, y1: y, x2: W - PAD.right, y2: y, stroke: '#eef0f3' }));
    svg.append(el('text', { x: PAD.left - 4, y: y + 3, 'text-anchor': 'end' }, format(max * f)));
  }
}

function empty(svg, message) {
  svg.append(el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, message));
  return svg;
}

/**
 * Stacked bars per round: accepted (green), refused (orange), skipped (grey).
 * @param {Array<{ roundNumber: number, accepted: number, refused: number, skipped: number }>} rounds oldest first
 */
export function roundBars(rounds) {
  const svg = frame('updates per round');
  if (rounds.length === 0) return empty(svg, 'no rounds yet');
  const max = niceMax(Math.max(...rounds.map((r) => r.accepted + r.refused + r.skipped)));
  yAxis(svg, max, (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)));
  const plotW = W - PAD.left - PAD.right;
  const slot = plotW / rounds.length;
  const bar = Math.max(2, Math.min(28, slot * 0.7));
  const scale = (H - PAD.top - PAD.bottom) / max;
  rounds.forEach((r, i) => {
    const x = PAD.left + i * slot + (slot - bar) / 2;
    let y = H - PAD.bottom;
    for (const [value, color, name] of [
      [r.accepted, '#16a34a', 'accepted'],
      [r.refused, '#ea580c', 'refused'],
      [r.skipped, '#94a3b8', 'skipped'],
    ]) {
      if (value <= 0) continue;
      const h = value * scale;
      y -= h;
      const rect = el('rect', { x, y, width: bar, height: h, fill: color });
      rect.append(el('title', {}, `round ${r.roundNumber}: ${value} ${name}`));
      svg.append(rect);
    }
    if (rounds.length <= 20 || i % Math.ceil(rounds.length / 20) === 0)
      svg.append(
        el(
          'text',
          { x: x + bar / 2, y: H - PAD.bottom + 12, 'text-anchor': 'middle' },
          String(r.roundNumber),
        ),
      );
  });
  return svg;
}

/**
 * ε spent after each aggregation, with the budget as a dashed line.
 * @param {Array<{ epsilon: number, roundId: string }>} points oldest first
 * @param {number | null} budget
 */
export function epsilonLine(points, budget) {
  const svg = frame('privacy spent');
  if (points.length === 0)
    return empty(svg, budget === null ? 'no differential privacy on this task' : 'no ε spent yet');
  const max = niceMax(Math.max(budget ?? 0, ...points.map((p) => p.epsilon)));
  yAxis(svg, max, (v) => v.toFixed(max < 3 ? 2 : 1));
  const plotW = W - PAD.left - PAD.right;
  const x = (i) => PAD.left + (points.length === 1 ? plotW / 2 : (i / (points.length - 1)) * plotW);
  const y = (v) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  if (budget !== null)
    svg.append(
      el('line', {
        x1: PAD.left,
        y1: y(budget),
        x2: W - PAD.right,
        y2: y(budget),
        stroke: '#dc2626',
        'stroke-dasharray': '4 3',
      }),
    );
  const d = points
    .map((p, i) => `${i === 0 ? 'M' : 'L'}${x(i).toFixed(1)},${y(p.epsilon).toFixed(1)}`)
    .join(' ');
  svg.append(el('path', { d, fill: 'none', stroke: '#2563eb', 'stroke-width': 2 }));
  points.forEach((p, i) => {
    const dot = el('circle', { cx: x(i), cy: y(p.epsilon), r: 3, fill: '#2563eb' });
    dot.append(el('title', {}, `${p.roundId}: ε = ${p.epsilon.toFixed(3)}`));
    svg.append(dot);
  });
  return svg;
}

/**
 * Accepted update norms per round (one dot each), with the clip bound as a dashed line.
 * @param {Array<{ roundNumber: number, norms: number[], clipNorm: number | null }>} rounds oldest first
 * @param {number} clipNorm task clip bound
 */
export function normDots(rounds, clipNorm) {
  const svg = frame('update norms');
  const all = rounds.flatMap((r) => r.norms);
  if (all.length === 0) return empty(svg, 'no accepted updates yet');
  const max = niceMax(Math.max(clipNorm, ...all) * 1.05);
  yAxis(svg, max, (v) => v.toFixed(2));
  const plotW = W - PAD.left - PAD.right;
  const slot = plotW / rounds.length;
  const y = (v) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  svg.append(
    el('line', {
      x1: PAD.left,
      y1: y(clipNorm),
      x2: W - PAD.right,
      y2: y(clipNorm),
      stroke: '#dc2626',
      'stroke-dasharray': '4 3',
    }),
  );
  rounds.forEach((r, i) => {
    const cx = PAD.left + i * slot + slot / 2;
    r.norms.forEach((n, j) => {
      const jitter = r.norms.length > 1 ? (j / (r.norms.length - 1) - 0.5) * Math.min(slot * 0.6, 16) : 0;
      const dot = el('circle', { cx: cx + jitter, cy: y(n), r: 2.5, fill: '#7c3aed', 'fill-opacity': 0.75 });
      dot.append(el('title', {}, `round ${r.roundNumber}: ‖Δ‖ = ${n.toFixed(4)}`));
      svg.append(dot);
    });
    if (rounds.length <= 20 || i % Math.ceil(rounds.length / 20) === 0)
      svg.append(
        el('text', { x: cx, y: H - PAD.bottom + 12, 'text-anchor': 'middle' }, String(r.roundNumber)),
      );
  });
  return svg;
}
