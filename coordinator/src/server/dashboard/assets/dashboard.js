// Flotilla dashboard page. Live data: GET /dashboard/api/stream (Server-Sent Events read with
// fetch, so the bearer token stays in a header); if the stream fails it polls /dashboard/api/state.
import {
  archivedSection,
  countdownText,
  fleetCards,
  fmtTime,
  h,
  operatorSection,
  taskSection,
} from './views.js';

const TOKEN_KEY = 'flotilla.dashboard.token';
const $ = (id) => document.getElementById(id);

let state = null;
let clockOffset = 0;
let controller = null;

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function setLive(mode) {
  const live = $('live');
  live.className = `live ${mode}`;
  live.textContent = mode === 'on' ? 'live' : mode === 'poll' ? 'polling' : 'offline';
}

async function fetchState() {
  const res = await fetch('/dashboard/api/state', { headers: { authorization: `Bearer ${token()}` } });
  if (res.status === 401) throw Object.assign(new Error('token refused'), { unauthorized: true });
  if (!res.ok) throw new Error(`state: HTTP ${res.status}`);
  return res.json();
}

/** Reads the SSE stream until it ends; resolves when it does (the caller reconnects). */
async function readStream(signal) {
  const res = await fetch('/dashboard/api/stream', {
    headers: { authorization: `Bearer ${token()}`, accept: 'text/event-stream' },
    signal,
  });
  if (!res.ok || !res.body) throw new Error(`stream: HTTP ${res.status}`);
  setLive('on');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const lines = block.split('\n');
      const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
      const data = lines
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      if (event === 'state' && data) apply(JSON.parse(data));
    }
  }
}

async function live() {
  controller?.abort();
  controller = new AbortController();
  const { signal } = controller;
  let failures = 0;
  while (!signal.aborted) {
    try {
      await readStream(signal);
      failures = 0;
    } catch (error) {
      if (signal.aborted) return;
      failures += 1;
      setLive('poll');
      // Polling keeps the page current while the stream is down.
      try {
        apply(await fetchState());
      } catch (pollError) {
        if (pollError.unauthorized) return logout('token refused');
        setLive('off');
      }
    }
    await new Promise((r) => setTimeout(r, Math.min(10_000, 1000 * 2 ** Math.min(failures, 4))));
  }
}

function apply(snapshot) {
  state = snapshot;
  clockOffset = snapshot.serverTime - Date.now();
  render();
}

function tickCountdowns() {
  if (!state) return;
  for (const task of state.tasks) {
    const node = document.querySelector(`[data-countdown="${CSS.escape(task.taskId)}"]`);
    if (node) node.textContent = countdownText(task.current, Date.now() + clockOffset);
  }
  $('clock').textContent = new Date(Date.now() + clockOffset).toLocaleTimeString();
}

async function issueEnrollmentToken(output) {
  output.textContent = '…';
  const res = await fetch('/api/admin/enrollment-tokens', {
    method: 'POST',
    headers: { authorization: `Bearer ${token()}`, 'content-type': 'application/json' },
    body: '{}',
  });
  const body = await res.json();
  output.textContent = res.ok
    ? `token ${body.token} (expires ${fmtTime(body.expiresAt)})`
    : (body.error?.message ?? `HTTP ${res.status}`);
}

function render() {
  const app = $('app');
  const s = state;
  const role = $('role');
  role.hidden = false;
  role.textContent = s.role === 'operator' ? 'operator' : 'auditor (read-only)';
  const shown = s.tasks.filter((task) => task.status !== 'archived');
  app.replaceChildren(
    fleetCards(s),
    ...(s.tasks.length === 0
      ? [h('p', { class: 'muted' }, 'no task registered yet')]
      : shown.map((task) => taskSection(task, Date.now() + clockOffset))),
    archivedSection(s.tasks.filter((task) => task.status === 'archived')) ?? '',
    operatorSection(s, (output) => void issueEnrollmentToken(output)) ?? '',
  );
  tickCountdowns();
}

function logout(message = '') {
  controller?.abort();
  sessionStorage.removeItem(TOKEN_KEY);
  state = null;
  $('app').hidden = true;
  $('app').replaceChildren();
  $('login').hidden = false;
  $('logout').hidden = true;
  $('role').hidden = true;
  $('login-error').textContent = message;
  setLive('off');
}

async function signIn() {
  try {
    apply(await fetchState());
  } catch (error) {
    return logout(error.unauthorized ? 'That token was refused.' : String(error.message ?? error));
  }
  $('login').hidden = true;
  $('app').hidden = false;
  $('logout').hidden = false;
  void live();
}

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
  $('token').value = '';
  void signIn();
});
$('logout').addEventListener('click', () => logout());
setInterval(tickCountdowns, 250);
if (token()) void signIn();
