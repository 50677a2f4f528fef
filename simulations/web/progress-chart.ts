// The page's chart: accuracy and loss on the person's held-back examples after each round, as
// inline SVG markup (numbers and fixed words only, so it is safe to set as innerHTML).

/** One round the device trained in, measured on its local holdout after training. */
export interface RoundPoint {
  round: number;
  accuracy: number;
  loss: number;
}

const WIDTH = 360;
const HEIGHT = 160;
const PAD = { left: 40, right: 40, top: 12, bottom: 28 };

function fixed(n: number): string {
  return n.toFixed(1);
}

/**
 * Accuracy (left axis, 0–100%) and loss (right axis, 0 to the largest loss seen) per round.
 * Each point carries `data-round` and a `<title>` in words for screen readers and tests.
 */
export function progressChartSvg(points: readonly RoundPoint[]): string {
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const maxLoss = Math.max(1e-9, ...points.map((p) => p.loss));
  const x = (i: number) => PAD.left + (points.length <= 1 ? plotW / 2 : (i * plotW) / (points.length - 1));
  const yAcc = (a: number) => PAD.top + plotH * (1 - Math.min(1, Math.max(0, a)));
  const yLoss = (l: number) => PAD.top + plotH * (1 - Math.max(0, l) / maxLoss);
  const line = (y: (p: RoundPoint) => number) =>
    points.map((p, i) => `${fixed(x(i))},${fixed(y(p))}`).join(' ');
  const dots = points
    .map((p, i) => {
      const words = `Round ${p.round}: accuracy ${(p.accuracy * 100).toFixed(0)}%, loss ${p.loss.toFixed(3)}`;
      return (
        `<g class="point" data-round="${p.round}"><title>${words}</title>` +
        `<circle class="acc" cx="${fixed(x(i))}" cy="${fixed(yAcc(p.accuracy))}" r="3.5"/>` +
        `<rect class="loss" x="${fixed(x(i) - 3)}" y="${fixed(yLoss(p.loss) - 3)}" width="6" height="6"/>` +
        `<text class="tick" x="${fixed(x(i))}" y="${HEIGHT - 10}" text-anchor="middle">${p.round}</text></g>`
      );
    })
    .join('');
  const axisY = PAD.top + plotH;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-labelledby="chart-title">` +
    `<title id="chart-title">Accuracy and loss on your held-back examples, ${points.length} round${points.length === 1 ? '' : 's'}</title>` +
    `<line class="axis" x1="${PAD.left}" y1="${axisY}" x2="${WIDTH - PAD.right}" y2="${axisY}"/>` +
    `<text class="tick" x="${PAD.left - 6}" y="${PAD.top + 4}" text-anchor="end">100%</text>` +
    `<text class="tick" x="${PAD.left - 6}" y="${axisY}" text-anchor="end">0%</text>` +
    `<text class="tick" x="${WIDTH - PAD.right + 6}" y="${PAD.top + 4}">${maxLoss.toFixed(2)}</text>` +
    `<text class="tick" x="${WIDTH - PAD.right + 6}" y="${axisY}">0</text>` +
    `<text class="tick" x="${WIDTH / 2}" y="${HEIGHT - 0.5}" text-anchor="middle">round</text>` +
    (points.length > 1
      ? `<polyline class="acc" points="${line((p) => yAcc(p.accuracy))}"/>` +
        `<polyline class="loss" points="${line((p) => yLoss(p.loss))}"/>`
      : '') +
    dots +
    `</svg>`
  );
}
