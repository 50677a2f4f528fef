// The browser device page, for the person whose browser (and data) it is: it explains what
// leaves the device, connects only after they agree, reports progress in words and a chart,
// and stops for good when they press Stop. Bundled by build.ts.
// Query parameters: taskId (required), deviceId (default: one stored in IndexedDB or a fresh
// one), token (one-time enrollment token), features/classes/examples/seed (synthetic data),
// maxRounds (default 0 = until stopped), coordinator (default: this page's origin).
import {
  IndexedDbKeyStore,
  startBrowserDevice,
  type DeviceStopReason,
  type FlotillaDeviceEvents,
} from '@flotilla/client/browser';
import { progressChartSvg, type RoundPoint } from './progress-chart.js';
import {
  acceptedWords,
  modelVersionWords,
  refusedWords,
  skippedWords,
  stoppedWords,
  trainedWords,
  trainingWords,
} from './round-words.js';
import { syntheticData } from './synthetic-data.js';

interface PageEvent {
  at: number;
  kind: string;
  detail: Record<string, unknown>;
}
/** What the page shows, also as `window.flotilla` for tests and the curious. */
interface PageState {
  phase: 'consent' | 'starting' | 'running' | 'stopped' | 'failed';
  status: string;
  backend: string | null;
  deviceId: string | null;
  publicKey: string | null;
  enrolled: boolean | null;
  rounds: RoundPoint[];
  events: PageEvent[];
  error: string | null;
}

declare global {
  interface Window {
    flotilla: PageState;
  }
}

const state: PageState = {
  phase: 'consent',
  status: 'Not connected. Nothing has been sent.',
  backend: null,
  deviceId: null,
  publicKey: null,
  enrolled: null,
  rounds: [],
  events: [],
  error: null,
};
window.flotilla = state;

function element<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node as T;
}

function record(kind: string, detail: Record<string, unknown> = {}): void {
  state.events.push({ at: Date.now(), kind, detail });
}

/** Sentences kept in the history list: a page left open for days stays small. */
const HISTORY_LIMIT = 200;

/** Shows a sentence as the current status (announced by screen readers) and in the history. */
function say(sentence: string): void {
  state.status = sentence;
  element('status').textContent = sentence;
  const item = document.createElement('li');
  item.textContent = sentence;
  const history = element('history');
  history.append(item);
  if (history.children.length > HISTORY_LIMIT) history.firstElementChild?.remove();
}

function drawChart(): void {
  element('chart').innerHTML = progressChartSvg(state.rounds);
}

const params = new URLSearchParams(location.search);
const int = (name: string, fallback: number) => Number(params.get(name) ?? fallback);
const settings = {
  taskId: params.get('taskId'),
  coordinator: params.get('coordinator') ?? location.origin,
  token: params.get('token'),
  features: int('features', 4),
  classes: int('classes', 3),
  examples: int('examples', 48),
  seed: int('seed', 1),
  maxRounds: int('maxRounds', 0),
};

/** Round events in words; the chart grows by one point per round the device trained in. */
function deviceEvents(): FlotillaDeviceEvents {
  return {
    onRound: (plan) => {
      record('round', { roundId: plan.roundId });
      say(trainingWords(plan.roundNumber, settings.examples));
    },
    onTrained: ({ plan, telemetry, update }) => {
      const holdout = telemetry?.holdout ?? null;
      record('trained', { roundId: plan.roundId, holdout, update });
      if (holdout)
        state.rounds.push({
          round: plan.roundNumber,
          accuracy: holdout.accuracyAfter,
          loss: holdout.lossAfter,
        });
      drawChart();
      say(trainedWords(plan.roundNumber, holdout, update, plan.clipNorm));
    },
    onUpdateAccepted: ({ plan, receipt, duplicate }) => {
      record('accepted', { roundId: plan.roundId, norm: receipt?.norm ?? null, duplicate });
      say(acceptedWords(plan.roundNumber));
    },
    onUpdateRefused: ({ plan, code, message }) => {
      record('refused', { roundId: plan.roundId, code, message });
      say(refusedWords(plan.roundNumber, code, message));
    },
    onSkip: ({ plan, reason, detail }) => {
      record('skip', { roundId: plan.roundId, reason, detail });
      say(skippedWords(plan.roundNumber, reason));
    },
    onAdapterChanged: (event) => {
      record('adapter', event);
      say(modelVersionWords(event.version));
    },
    onError: (error, fatal) => record('error', { message: error.message, fatal }),
  };
}

/** Runs the device until it stops; the Stop button aborts `stop`. */
async function join(taskId: string, stop: AbortSignal): Promise<DeviceStopReason> {
  const store = new IndexedDbKeyStore();
  const deviceId =
    params.get('deviceId') ??
    (await store.readNote('device-id')) ??
    `browser-${crypto.randomUUID().slice(0, 8)}`;
  await store.writeNote('device-id', deviceId);
  state.deviceId = deviceId;
  element('device').textContent = deviceId;
  const { features, classes, examples, seed, maxRounds, token } = settings;
  const started = await startBrowserDevice({
    url: settings.coordinator,
    deviceId,
    taskId,
    keyStore: store,
    ...(token ? { enrollmentToken: token } : {}),
    wasmPaths: new URL('./wasm/', location.href).href,
    data: {
      train: syntheticData(features, classes, examples, seed),
      holdout: syntheticData(features, classes, Math.max(8, examples >> 1), seed + 1),
    },
    ...(maxRounds > 0 ? { maxRounds } : {}),
    reconnectDelayMs: 500,
    signal: stop,
    ...deviceEvents(),
  });
  state.publicKey = started.publicKey;
  state.enrolled = started.enrolled;
  state.backend = started.backend.name;
  element('backend').textContent = started.backend.name;
  element('public-key').textContent = started.publicKey;
  state.phase = 'running';
  record('connected', { backend: started.backend.name, enrolled: started.enrolled });
  if (state.rounds.length === 0 && !state.events.some((e) => e.kind === 'round'))
    say('Connected. Waiting for the next round to choose this browser…');
  return started.device.stopped;
}

function main(): void {
  const taskId = settings.taskId;
  element('example-count').textContent = String(settings.examples);
  element('origin').textContent = settings.coordinator;
  drawChart();
  if (!taskId) {
    state.phase = 'failed';
    state.error = 'missing ?taskId=';
    say('This link names no training task (?taskId=), so there is nothing to join.');
    return;
  }
  element('task').textContent = taskId;
  const agree = element<HTMLInputElement>('agree');
  const joinButton = element<HTMLButtonElement>('join');
  const stopButton = element<HTMLButtonElement>('stop');
  const stop = new AbortController();
  agree.addEventListener('change', () => (joinButton.disabled = !agree.checked));
  stopButton.addEventListener('click', () => {
    stopButton.disabled = true;
    stop.abort();
  });
  joinButton.addEventListener('click', () => {
    if (!agree.checked) return;
    joinButton.disabled = true;
    agree.disabled = true;
    stopButton.disabled = false;
    state.phase = 'starting';
    record('consent');
    say('Connecting…');
    join(taskId, stop.signal).then(
      (reason) => {
        state.phase = 'stopped';
        stopButton.disabled = true;
        record('stopped', { reason });
        say(stoppedWords(reason));
      },
      (error: unknown) => {
        stopButton.disabled = true;
        if (stop.signal.aborted) {
          state.phase = 'stopped';
          record('stopped', { reason: 'stopped' });
          say(stoppedWords('stopped'));
          return;
        }
        state.phase = 'failed';
        state.error = error instanceof Error ? error.message : String(error);
        record('failed', { message: state.error });
        say(`Could not take part: ${state.error}`);
      },
    );
  });
}

main();
