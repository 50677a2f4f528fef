/** One line of a chart: (x, y) points in data units; null y values are gaps. */
export interface ChartSeries {
  name: string;
  points: ReadonlyArray<readonly [number, number | null]>;
  /**
   * A shaded band around the line, e.g. a confidence interval: (x, low, high) in data units;
   * points with a null bound are gaps.
   */
  band?: ReadonlyArray<readonly [number, number | null, number | null]>;
}

/** The band split at its gaps into closed polygons (upper edge left to right, lower edge back). */
function bandPolygons(
  band: NonNullable<ChartSeries['band']>,
  sx: (x: number) => number,
  sy: (y: number) => number,
): string[] {
  const polygons: string[] = [];
  let run: Array<readonly [number, number, number]> = [];
  const flush = () => {
    if (run.length > 1) {
      const upper = run.map(([x, , high]) => `${px(sx(x))},${px(sy(high))}`);
      const lower = [...run].reverse().map(([x, low]) => `${px(sx(x))},${px(sy(low))}`);
      polygons.push([...upper, ...lower].join(' '));
    }
    run = [];
  };
  for (const [x, low, high] of band) {
    if (low === null || high === null || !Number.isFinite(low) || !Number.isFinite(high)) flush();
    else run.push([x, low, high]);
  }
  flush();
  return polygons;
}

/** Options for {@link lineChart}. */
export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly ChartSeries[];
  /** Horizontal reference lines (e.g. a baseline accuracy). */
  references?: ReadonlyArray<{ name: string; y: number }>;
  /** Pixels. Default 640. */
  width?: number;
  /** Pixels. Default 360. */
  height?: number;
  /** Fixed y range; default: the data range widened to nice ticks. */
  yDomain?: readonly [number, number];
  /** Formats tick labels of the y axis. Default: up to 3 significant decimals. */
  formatY?: (value: number) => string;
}

/** Colour-blind-safe palette (Okabe & Ito 2008). */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000'];

/** Escapes text for XML element content and attribute values. */
export function escapeXml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

/** Coordinates rounded to 0.01 px so the output is short and byte-stable. */
function px(value: number): string {
  return (Math.round(value * 100) / 100).toString();
}

function defaultFormat(value: number): string {
  if (value !== 0 && (Math.abs(value) >= 1e6 || Math.abs(value) < 1e-3)) return value.toExponential(1);
  return (Math.round(value * 1000) / 1000).toString();
}

/**
 * "Nice" tick values covering [min, max] with about `count` steps of 1, 2 or 5 × 10^k
 * (Heckbert 1990, "Nice numbers for graph labels").
 */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    return niceTicks(min - pad, max + pad, count);
  }
  const rough = (max - min) / count;
  const magnitude = Math.pow(10, Math.floor(Math.log10(rough)));
  const residual = rough / magnitude;
  const step = (residual > 5 ? 10 : residual > 2 ? 5 : residual > 1 ? 2 : 1) * magnitude;
  const start = Math.floor(min / step) * step;
  const ticks: number[] = [];
  for (let tick = start; tick <= max + step * 0.5 && ticks.length < 50; tick += step) {
    // Snap float error (0.30000000000000004) to the step's decimals.
    ticks.push(Number(tick.toFixed(Math.max(0, -Math.floor(Math.log10(step))))));
  }
  if ((ticks[ticks.length - 1] ?? max) < max)
    ticks.push(Number(((ticks[ticks.length - 1] ?? max) + step).toPrecision(12)));
  return ticks;
}

/**
 * A self-contained SVG line chart: axes with ticks and labels, one polyline plus point markers
 * per series (each marker has a <title> tooltip with its values), dashed reference lines and a
 * legend. Same input, same bytes: no ids from counters, no timestamps.
 */
export function lineChart(options: LineChartOptions): string {
  const width = options.width ?? 640;
  const height = options.height ?? 360;
  const format = options.formatY ?? defaultFormat;
  const margin = { top: 36, right: 170, bottom: 48, left: 64 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const xs: number[] = [];
  const ys: number[] = [];
  for (const series of options.series) {
    for (const [x, y] of series.points) {
      xs.push(x);
      if (y !== null && Number.isFinite(y)) ys.push(y);
    }
    for (const [, low, high] of series.band ?? [])
      for (const y of [low, high]) if (y !== null && Number.isFinite(y)) ys.push(y);
  }
  for (const reference of options.references ?? []) ys.push(reference.y);
  const xTicks = niceTicks(xs.length > 0 ? Math.min(...xs) : 0, xs.length > 0 ? Math.max(...xs) : 1, 8);
  const yTicks = options.yDomain
    ? niceTicks(options.yDomain[0], options.yDomain[1], 5)
    : niceTicks(ys.length > 0 ? Math.min(...ys) : 0, ys.length > 0 ? Math.max(...ys) : 1, 5);
  const x0 = xTicks[0] ?? 0;
  const x1 = xTicks[xTicks.length - 1] ?? 1;
  const y0 = yTicks[0] ?? 0;
  const y1 = yTicks[yTicks.length - 1] ?? 1;
  const sx = (x: number) => margin.left + ((x - x0) / (x1 - x0 || 1)) * plotW;
  const sy = (y: number) => margin.top + plotH - ((y - y0) / (y1 - y0 || 1)) * plotH;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<title>${escapeXml(options.title)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    `<text x="${px(margin.left + plotW / 2)}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(options.title)}</text>`,
  );
  // Grid and ticks.
  out.push('<g class="axis-y">');
  for (const tick of yTicks) {
    const y = px(sy(tick));
    out.push(`<line x1="${margin.left}" y1="${y}" x2="${margin.left + plotW}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(
      `<text x="${margin.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeXml(format(tick))}</text>`,
    );
  }
  out.push('</g>');
  out.push('<g class="axis-x">');
  for (const tick of xTicks) {
    const x = px(sx(tick));
    out.push(
      `<line x1="${x}" y1="${margin.top + plotH}" x2="${x}" y2="${margin.top + plotH + 5}" stroke="#333333"/>`,
    );
    out.push(
      `<text x="${x}" y="${margin.top + plotH + 18}" text-anchor="middle">${escapeXml(defaultFormat(tick))}</text>`,
    );
  }
  out.push('</g>');
  out.push(
    `<path d="M${margin.left} ${margin.top}V${margin.top + plotH}H${margin.left + plotW}" fill="none" stroke="#333333"/>`,
  );
  out.push(
    `<text x="${px(margin.left + plotW / 2)}" y="${height - 10}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`,
  );
  out.push(
    `<text x="16" y="${px(margin.top + plotH / 2)}" text-anchor="middle" transform="rotate(-90 16 ${px(margin.top + plotH / 2)})">${escapeXml(options.yLabel)}</text>`,
  );
  // Series.
  const legend: Array<{ name: string; colour: string; dashed: boolean }> = [];
  options.series.forEach((series, index) => {
    const colour = PALETTE[index % PALETTE.length] ?? '#000000';
    legend.push({ name: series.name, colour, dashed: false });
    out.push(`<g class="series" data-name="${escapeXml(series.name)}">`);
    for (const polygon of bandPolygons(series.band ?? [], sx, sy))
      out.push(
        `<polygon class="band" points="${polygon}" fill="${colour}" fill-opacity="0.18" stroke="none"/>`,
      );
    // Gaps (null y) split the line into segments.
    let segment: string[] = [];
    const flush = () => {
      if (segment.length > 0) {
        out.push(`<polyline points="${segment.join(' ')}" fill="none" stroke="${colour}" stroke-width="2"/>`);
      }
      segment = [];
    };
    for (const [x, y] of series.points) {
      if (y === null || !Number.isFinite(y)) {
        flush();
        continue;
      }
      segment.push(`${px(sx(x))},${px(sy(y))}`);
    }
    flush();
    for (const [x, y] of series.points) {
      if (y === null || !Number.isFinite(y)) continue;
      out.push(
        `<circle cx="${px(sx(x))}" cy="${px(sy(y))}" r="3" fill="${colour}"><title>${escapeXml(`${series.name}: ${defaultFormat(x)}, ${format(y)}`)}</title></circle>`,
      );
    }
    out.push('</g>');
  });
  (options.references ?? []).forEach((reference, index) => {
    const colour = PALETTE[(options.series.length + index) % PALETTE.length] ?? '#000000';
    legend.push({ name: reference.name, colour, dashed: true });
    const y = px(sy(reference.y));
    out.push(
      `<line class="reference" x1="${margin.left}" y1="${y}" x2="${margin.left + plotW}" y2="${y}" stroke="${colour}" stroke-dasharray="6 4"><title>${escapeXml(`${reference.name}: ${format(reference.y)}`)}</title></line>`,
    );
  });
  out.push('<g class="legend">');
  legend.forEach((entry, index) => {
    const y = margin.top + 8 + index * 18;
    const x = margin.left + plotW + 12;
    out.push(
      `<line x1="${x}" y1="${y}" x2="${x + 20}" y2="${y}" stroke="${entry.colour}" stroke-width="2"${entry.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
    out.push(`<text x="${x + 26}" y="${y}" dominant-baseline="middle">${escapeXml(entry.name)}</text>`);
  });
  out.push('</g>');
  out.push('</svg>');
  return out.join('\n');
}
