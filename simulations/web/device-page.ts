// The browser device page: a thin shell over @flotilla/client/browser. Bundled by build.ts.
// Query parameters: taskId (required), deviceId (default: one stored in IndexedDB or a fresh
// one), token (one-time enrollment token), features/classes/examples/seed (synthetic data),
// maxRounds (default 1; 0 = keep going), coordinator (default: this page's origin).
import { IndexedDbKeyStore, startBrowserDevice, type LocalDataset } from '@flotilla/client/browser';

interface PageEvent {
  at: number;
  kind: string;
  detail: Record<string, unknown>;
}
interface PageState {
  status: string;
  backend: string | null;
  deviceId: string | null;
  publicKey: string | null;
  enrolled: boolean | null;
  events: PageEvent[];
  error: string | null;
}

declare global {
  interface Window {
    flotilla: PageState;
  }
}

const state: PageState = {
  status: 'loading',
  backend: null,
  deviceId: null,
  publicKey: null,
  enrolled: null,
  events: [],
  error: null,
};
window.flotilla = state;

const el = (id: string) => document.getElementById(id);
function record(kind: string, detail: Record<string, unknown> = {}): void {
  state.events.push({ at: Date.now(), kind, detail });
  const log = el('log');
  if (log) log.textContent += `${new Date().toISOString()} ${kind} ${JSON.stringify(detail)}\n`;
}
function setStatus(status: string): void {
  state.status = status;
  const node = el('status');
  if (node) node.textContent = status;
}

/** Gaussian blobs: class c centred on 2·e_c (the device's own, seeded, never-uploaded data). */
function syntheticData(features: number, classes: number, n: number, seed: number): LocalDataset {
  let s = seed >>> 0;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const xs = new Float32Array(n * features);
  const ys = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = Math.floor(rand() * classes);
    ys[i] = label;
    for (let f = 0; f < features; f++) xs[i * features + f] = (f === label ? 2 : 0) + (rand() - 0.5);
  }
  return { xs, ys, featureShape: [features] };
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const taskId = params.get('taskId');
  if (!taskId) throw new Error('missing ?taskId=');
  const store = new IndexedDbKeyStore();
  let deviceId = params.get('deviceId') ?? (await store.readNote('device-id'));
  if (!deviceId) deviceId = `browser-${crypto.randomUUID().slice(0, 8)}`;
  await store.writeNote('device-id', deviceId);
  state.deviceId = deviceId;
  const deviceNode = el('device');
  if (deviceNode) deviceNode.textContent = deviceId;
  const int = (name: string, fallback: number) => Number(params.get(name) ?? fallback);
  const features = int('features', 4);
  const classes = int('classes', 3);
  const examples = int('examples', 48);
  const seed = int('seed', 1);
  const maxRounds = int('maxRounds', 1);
  const token = params.get('token');
  setStatus('starting');
  const started = await startBrowserDevice({
    url: params.get('coordinator') ?? location.origin,
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
    onRound: (plan) => {
      setStatus(`training ${plan.roundId}`);
      record('round', { roundId: plan.roundId });
    },
    onUpdateAccepted: ({ plan, receipt, duplicate }) => {
      setStatus(`accepted in ${plan.roundId}`);
      record('accepted', { roundId: plan.roundId, norm: receipt?.norm ?? null, duplicate });
    },
    onUpdateRefused: ({ plan, code, message }) => {
      setStatus(`refused in ${plan.roundId}: ${code}`);
      record('refused', { roundId: plan.roundId, code, message });
    },
    onSkip: ({ plan, reason, detail }) => record('skip', { roundId: plan.roundId, reason, detail }),
    onAdapterChanged: (event) => record('adapter', event),
    onError: (error, fatal) => record('error', { message: error.message, fatal }),
  });
  state.publicKey = started.publicKey;
  state.enrolled = started.enrolled;
  state.backend = started.backend.name;
  const backendNode = el('backend');
  if (backendNode) backendNode.textContent = started.backend.name;
  if (state.status === 'starting') setStatus('connected');
  record('connected', { backend: started.backend.name, enrolled: started.enrolled });
  const reason = await started.device.stopped;
  setStatus(`stopped (${reason})`);
  record('stopped', { reason });
}

main().catch((error: unknown) => {
  state.error = error instanceof Error ? error.message : String(error);
  setStatus(`failed: ${state.error}`);
  record('failed', { message: state.error });
});
