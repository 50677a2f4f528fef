import type { ProgressStream } from './progress-bar.js';

/** Options for {@link createSetupLog}. */
export interface SetupLogOptions {
  /** Default process.stderr. */
  stream?: ProgressStream;
  /** Text before every line. Default 'setup'. */
  label?: string;
  /** Ms between two lines of the same counter (`count`). Default 2000. */
  countIntervalMs?: number;
  /** Clock in ms (for tests). Default Date.now. */
  now?: () => number;
}

/** Progress of the work before round 1: one line per finished step, counters in between. */
export interface SetupLog {
  /** Runs one step and prints `label: <summary> (<seconds> s)` when it finishes. */
  step<T>(label: string, run: () => Promise<T> | T, summary?: (result: T) => string): Promise<T>;
  /** A counter inside a long step: printed when finished and at most every `countIntervalMs`. */
  count(label: string, done: number, total: number): void;
  /** Ends the log with the total setup time. */
  finish(): void;
}

const seconds = (ms: number): string => (ms / 1000).toFixed(1);

/** A setup log that prints to a stream (stderr by default); `null` stream: silent. */
export function createSetupLog(options: SetupLogOptions = {}): SetupLog {
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? Date.now;
  const label = options.label ?? 'setup';
  const interval = options.countIntervalMs ?? 2000;
  const started = now();
  const lastCount = new Map<string, number>();
  const write = (text: string) => stream.write(`${label}: ${text}\n`);
  return {
    async step(name, run, summary) {
      const t0 = now();
      const result = await run();
      const detail = summary ? `: ${summary(result)}` : '';
      write(`${name}${detail} (${seconds(now() - t0)} s)`);
      return result;
    },
    count(name, done, total) {
      const t = now();
      const last = lastCount.get(name);
      // A counter's first line comes one interval after its first call (or at its end).
      if (last === undefined) lastCount.set(name, t);
      if (done < total && t - (last ?? t) < interval) return;
      lastCount.set(name, t);
      write(`${name}: ${done.toLocaleString('en-US')} of ${total.toLocaleString('en-US')}`);
    },
    finish() {
      write(`ready in ${seconds(now() - started)} s`);
    },
  };
}

/** A setup log that prints nothing. */
export const silentSetupLog: SetupLog = {
  step: async (_name, run) => run(),
  count: () => undefined,
  finish: () => undefined,
};
