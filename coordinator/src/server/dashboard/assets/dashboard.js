// Flotilla dashboard page. Live data: GET /dashboard/api/stream (Server-Sent Events read with
// fetch, so the bearer token stays in a header); if the stream fails it polls /dashboard/api/state.
import { epsilonLine, normDots, roundBars } from './charts.js';

const TOKEN_KEY = 'flotilla.dashboard.token';
const $ = (id) => document.getElementById(id);

/** Builds an element; children are nodes or text (never parsed as HTML). */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const child of children.flat())
    if (child !== null && child !== undefined && child !== false)
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

const fmtTime = (ms) => (ms ? new Date(ms).toLocaleTimeString() : '—');
const short = (hex) => (hex ? `${hex.slice(0, 10)}…` : '—');
const num = (v, digits = 3) => (v === null || v === undefined ? '—' : Number(v).toFixed(digits));

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

function countdownTarget(round) {
  if (!round) return null;
  if (round.state === 'SELECTING') return { label: 'selection closes in', at: round.selectionDeadline };
  if (round.state === 'REPORTING')
    return {
      label: 'reporting closes in',
      at: Math.min(round.deadline ?? Infinity, round.closeAt ?? Infinity),
    };
  return null;
}

function countdownText(round) {
  const target = countdownTarget(round);
  if (!target || !Number.isFinite(target.at)) return round ? `${round.state.toLowerCase()}` : 'no round';
  const left = Math.max(0, target.at - (Date.now() + clockOffset));
  return `${target.label} ${(left / 1000).toFixed(1)} s`;
}

function tickCountdowns() {
  if (!state) return;
  for (const task of state.tasks) {
    const node = document.querySelector(`[data-countdown="${CSS.escape(task.taskId)}"]`);
    if (node) node.textContent = countdownText(task.current);
  }
  $('clock').textContent = new Date(Date.now() + clockOffset).toLocaleTimeString();
}

function card(label, value, testid, extra) {
  return h(
    'div',
    { class: 'card' },
    h('div', { class: 'label' }, label),
    h('div', { class: 'value', 'data-testid': testid }, value),
    extra,
  );
}

function chainPill(chain) {
  const v = chain.verified;
  if (!v) return { text: 'pending', ok: true };
  if (!v.ok) return { text: 'BROKEN', ok: false };
  return { text: chain.records === 0 ? 'empty' : 'verified', ok: true };
}

function fleetCards(s) {
  const chain = s.chain;
  const pill = chainPill(chain);
  const v = chain.verified;
  return h(
    'section',
    { class: 'cards' },
    card('Enrolled devices', s.fleet.enrolled, 'fleet-enrolled'),
    card('Connected', s.fleet.connected, 'fleet-connected'),
    card('Eligible (checked in)', s.fleet.eligible, 'fleet-eligible'),
    card(
      'Audit chain',
      h('span', { class: `pill ${pill.ok ? 'ok' : 'bad'}`, 'data-testid': 'chain-status' }, pill.text),
      'chain',
      h(
        'div',
        { class: 'muted', 'data-testid': 'chain-detail' },
        `${chain.records} records · head ${chain.head ? `#${chain.head.seq} ${short(chain.head.hash)}` : '—'}`,
        v && v.through !== null ? ` · verified through #${v.through} at ${fmtTime(v.at)}` : '',
        v && v.firstBad !== null ? ` · first bad #${v.firstBad}: ${v.problems[0]?.code ?? ''} ${v.problems[0]?.message ?? ''}` : '',
      ),
    ),
  );
}

function reasons(map) {
  const entries = Object.entries(map ?? {});
  return entries.length === 0 ? '—' : entries.map(([k, v]) => `${k}×${v}`).join(', ');
}

function normSummary(norms) {
  if (norms.length === 0) return '—';
  const mid = norms[Math.floor(norms.length / 2)];
  return `${num(norms[0])} / ${num(mid)} / ${num(norms[norms.length - 1])}`;
}

function currentPanel(task) {
  const r = task.current;
  if (!r) return h('div', { class: 'panel' }, h('h3', {}, 'Current round'), 'no round open');
  const pct = Math.min(100, (100 * r.accepted) / Math.max(1, r.goalCount));
  return h(
    'div',
    { class: 'panel', 'data-testid': 'current-round' },
    h('h3', {}, 'Current round'),
    h(
      'div',
      {},
      h('strong', { 'data-testid': 'round-id' }, `#${r.roundNumber}`),
      ' ',
      h('span', { class: `pill ${r.state}`, 'data-testid': 'round-state' }, r.state),
    ),
    h(
      'div',
      { class: 'countdown', 'data-countdown': task.taskId, 'data-testid': 'countdown' },
      countdownText(r),
    ),
    h('div', { class: 'progress' }, h('div', { style: `width:${pct}%` })),
    h(
      'div',
      { class: 'muted' },
      h('span', { 'data-testid': 'round-accepted' }, `${r.accepted}`),
      ` of ${r.goalCount} updates (quorum ${r.minReports}) · checked in ${r.checkedIn} · selected ${r.selected} · skipped ${r.skipped} · refused ${r.refused}`,
    ),
    r.reason ? h('div', { class: 'muted' }, r.reason) : null,
  );
}

function historyTable(task) {
  return h(
    'div',
    { class: 'scroll' },
    h(
      'table',
      { 'data-testid': 'history' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...[
            'Round',
            'State',
            'Checked in',
            'Selected',
            'Accepted',
            'Refused (by reason)',
            'Norm min/median/max',
            'Opened',
            'Reason',
          ].map((t) => h('th', {}, t)),
        ),
      ),
      h(
        'tbody',
        {},
        task.history.map((r) =>
          h(
            'tr',
            { 'data-testid': 'history-row', 'data-round': r.roundNumber, 'data-state': r.state },
            h('td', {}, `#${r.roundNumber}`),
            h('td', {}, h('span', { class: `pill ${r.state}` }, r.state)),
            h('td', { class: 'num' }, r.checkedIn),
            h('td', { class: 'num' }, r.selected),
            h('td', { class: 'num' }, r.accepted),
            h('td', {}, `${r.refused}${r.refused > 0 ? ` (${reasons(r.refusedByReason)})` : ''}`),
            h('td', {}, normSummary(r.norms)),
            h('td', {}, fmtTime(r.openedAt)),
            h('td', { class: 'muted' }, r.reason ?? ''),
          ),
        ),
      ),
    ),
  );
}

function adaptersTable(task) {
  if (task.adapters.length === 0)
    return h('p', { class: 'muted' }, 'no adapter promoted yet (version 0 is the base model)');
  return h(
    'table',
    { 'data-testid': 'adapters' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...['Version', 'Parent', 'Round', 'Decision', 'Participants', 'ε', 'Adapter', 'Reasons'].map((t) =>
          h('th', {}, t),
        ),
      ),
    ),
    h(
      'tbody',
      {},
      task.adapters.map((a) =>
        h(
          'tr',
          {},
          h('td', {}, `v${a.version}`, a.version === task.latestVersion ? ' (live)' : ''),
          h('td', {}, `v${a.parentVersion}`),
          h('td', {}, a.roundId ?? (a.rollbackOf ? `rollback of v${a.rollbackOf}` : '—')),
          h('td', {}, h('span', { class: `pill ${a.decision}` }, a.decision)),
          h('td', { class: 'num' }, a.participants),
          h('td', { class: 'num' }, num(a.epsilon)),
          h('td', {}, h('code', {}, short(a.adapterDigest))),
          h('td', { class: 'muted' }, a.reasons.join('; ')),
        ),
      ),
    ),
  );
}

function decisionsList(task) {
  if (task.decisions.length === 0)
    return h('p', { class: 'muted' }, 'no promotion, rejection or rollback in the round log yet');
  return h(
    'ul',
    { 'data-testid': 'decisions' },
    task.decisions
      .slice(0, 12)
      .map((d) =>
        h(
          'li',
          {},
          h(
            'span',
            { class: `pill ${d.kind === 'promotion' ? 'ok' : d.kind === 'rejection' ? 'bad' : 'rollback'}` },
            d.kind,
          ),
          ` ${fmtTime(d.ts)} `,
          d.roundId ?? '',
          d.version ? ` → v${d.version}` : '',
          d.reasons.length ? ` — ${d.reasons.join('; ')}` : '',
        ),
      ),
  );
}

function taskSection(task) {
  const oldestFirst = [...task.history].reverse();
  return h(
    'section',
    { class: 'task', 'data-task': task.taskId },
    h(
      'h2',
      {},
      task.taskId,
      h(
        'small',
        {},
        `${task.adapterMode} · ${task.strategy} · clip ${task.clipNorm} · goal ${task.goalCount} · adapter v${task.latestVersion}`,
      ),
    ),
    h(
      'div',
      { class: 'grid' },
      currentPanel(task),
      h(
        'div',
        { class: 'panel' },
        h('h3', {}, 'Updates per round'),
        roundBars(oldestFirst),
        h(
          'div',
          { class: 'legend' },
          h('span', {}, h('i', { style: 'background:#16a34a' }), 'accepted'),
          h('span', {}, h('i', { style: 'background:#ea580c' }), 'refused'),
          h('span', {}, h('i', { style: 'background:#94a3b8' }), 'skipped'),
        ),
      ),
      h(
        'div',
        { class: 'panel' },
        h('h3', {}, 'Update norms (dashed: clip bound)'),
        normDots(oldestFirst, task.clipNorm),
      ),
      h(
        'div',
        { class: 'panel' },
        h(
          'h3',
          {},
          task.dp
            ? `Privacy spent: ε (budget ${task.dp.epsilonBudget} at δ=${task.dp.delta})`
            : 'Privacy spent',
        ),
        epsilonLine(task.epsilon, task.dp ? task.dp.epsilonBudget : null),
      ),
    ),
    h('div', { class: 'panel' }, h('h3', {}, 'Round history'), historyTable(task)),
    h(
      'div',
      { class: 'grid' },
      h('div', { class: 'panel' }, h('h3', {}, 'Adapter versions'), adaptersTable(task)),
      h('div', { class: 'panel' }, h('h3', {}, 'Promotions, rejections, rollbacks'), decisionsList(task)),
    ),
  );
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

function operatorSection(s) {
  if (s.role !== 'operator' || !s.devices) return null;
  const output = h('code', { 'data-testid': 'enrollment-token' });
  return h(
    'section',
    { class: 'task', 'data-testid': 'operator' },
    h('h2', {}, 'Devices', h('small', {}, 'operator view')),
    h(
      'p',
      {},
      h(
        'button',
        { type: 'button', onclick: () => void issueEnrollmentToken(output) },
        'Issue enrollment token',
      ),
      ' ',
      output,
    ),
    h(
      'div',
      { class: 'scroll' },
      h(
        'table',
        {},
        h('thead', {}, h('tr', {}, ...['Device', 'Status', 'Online', 'Enrolled'].map((t) => h('th', {}, t)))),
        h(
          'tbody',
          {},
          s.devices.map((d) =>
            h(
              'tr',
              {},
              h('td', {}, d.deviceId),
              h('td', {}, d.status),
              h('td', {}, d.online ? 'yes' : 'no'),
              h('td', {}, fmtTime(d.enrolledAt)),
            ),
          ),
        ),
      ),
    ),
  );
}

function render() {
  const app = $('app');
  const s = state;
  const role = $('role');
  role.hidden = false;
  role.textContent = s.role === 'operator' ? 'operator' : 'auditor (read-only)';
  app.replaceChildren(
    fleetCards(s),
    ...(s.tasks.length === 0
      ? [h('p', { class: 'muted' }, 'no task registered yet')]
      : s.tasks.map(taskSection)),
    operatorSection(s) ?? '',
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
