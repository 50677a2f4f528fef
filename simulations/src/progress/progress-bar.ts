/** Where the bar writes: process.stderr by default; anything with write() and an optional isTTY. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  /** Terminal width in columns, when known. */
  columns?: number;
}

/** Options for {@link createProgressBar}. */
export interface ProgressBarOptions {
  /** Rounds (or other units) in total. */
  total: number;
  /** Text before the bar. Default 'rounds'. */
  label?: string;
  /** Default process.stderr. */
  stream?: ProgressStream;
  /** Characters of the bar itself. Default 24. */
  width?: number;
  /** Clock in ms (for tests). Default Date.now. */
  now?: () => number;
}

/** One progress update. */
export interface ProgressUpdate {
  /** Units finished so far. */
  done: number;
  /** Latest accuracy in [0, 1], shown as a percentage. */
  accuracy?: number | null;
  /** Short extra text (e.g. 'COMMITTED', 'ε=1.2'). */
  note?: string;
}

export interface ProgressBar {
  update(update: ProgressUpdate): void;
  /**
   * What the unit in progress is doing (e.g. which devices a round waits for): on a TTY shown
   * after the bar, elsewhere printed as its own line. Callers pace it.
   */
  status(text: string): void;
  /** Ends the bar (newline on a TTY). */
  finish(): void;
  /** The text of the latest update, without control characters. */
  readonly lastLine: string;
}

/** h:mm:ss or m:ss. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const mm = h > 0 ? String(m).padStart(2, '0') : String(m);
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(s).padStart(2, '0')}`;
}

/**
 * A progress bar: `rounds [#########---------] 4/10 acc 81.2% eta 0:42`. On a TTY it redraws
 * one line in place (carriage return + erase line); elsewhere (CI logs, pipes) it prints one
 * line per update so logs stay readable. ETA assumes the remaining units take the mean time of
 * the finished ones.
 */
export function createProgressBar(options: ProgressBarOptions): ProgressBar {
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? Date.now;
  const label = options.label ?? 'rounds';
  const width = options.width ?? 24;
  const total = Math.max(1, options.total);
  const started = now();
  const tty = stream.isTTY === true;
  let lastLine = '';
  let drawn = false;

  const render = (update: ProgressUpdate): string => {
    const done = Math.min(total, Math.max(0, update.done));
    const filled = Math.round((done / total) * width);
    const parts = [`${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}`];
    if (update.accuracy !== undefined && update.accuracy !== null) {
      parts.push(`acc ${(update.accuracy * 100).toFixed(1)}%`);
    }
    const elapsed = now() - started;
    if (done >= total) parts.push(`took ${formatDuration(elapsed)}`);
    else if (done > 0) parts.push(`eta ${formatDuration((elapsed / done) * (total - done))}`);
    if (update.note) parts.push(update.note);
    const line = parts.join(' ');
    const columns = stream.columns;
    return tty && columns !== undefined && line.length >= columns
      ? line.slice(0, Math.max(0, columns - 1))
      : line;
  };

  return {
    update(update) {
      lastLine = render(update);
      if (tty) stream.write(`\r\x1b[2K${lastLine}`);
      else stream.write(`${lastLine}\n`);
      drawn = true;
    },
    status(text) {
      if (!tty) {
        stream.write(`  ${text}\n`);
        return;
      }
      const line = `${lastLine || label} · ${text}`;
      const columns = stream.columns;
      stream.write(
        `\r\x1b[2K${columns !== undefined && line.length >= columns ? line.slice(0, Math.max(0, columns - 1)) : line}`,
      );
      drawn = true;
    },
    finish() {
      if (tty && drawn) stream.write('\n');
      drawn = false;
    },
    get lastLine() {
      return lastLine;
    },
  };
}
