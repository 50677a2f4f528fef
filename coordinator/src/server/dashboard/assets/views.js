// Rendering of the dashboard snapshot into DOM nodes (no innerHTML: every value is text).
import { epsilonLine, normDots, roundBars } from './charts.js';

/** Builds an element; children are nodes or text (never parsed as HTML). */
export function h(tag, attrs = {}, ...children) {
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

export const fmtTime = (ms) => (ms ? new Date(ms).toLocaleTimeString() : '—');
export const short = (hex) => (hex ? `${hex.slice(0, 10)}…` : '—');
export const num = (v, digits = 3) => (v === null || v === undefined ? '—' : Number(v).toFixed(digits));
export const pct = (v) => (v === null || v === undefined ? '—' : `${(100 * v).toFixed(1)}%`);
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

/** `now`: the server clock as this page estimates it (epoch ms). */
export function countdownText(round, now) {
  const target = countdownTarget(round);
  if (!target || !Number.isFinite(target.at)) return round ? `${round.state.toLowerCase()}` : 'no round';
  const left = Math.max(0, target.at - now);
  return `${target.label} ${(left / 1000).toFixed(1)} s`;
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
  if (chain.records === 0) return { text: 'empty', ok: true };
  // Records arrived after the only verification, which saw an empty log.
  if (v.through === null) return { text: 'pending', ok: true };
  return { text: 'verified', ok: true };
}

export function fleetCards(s) {
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
        `${chain.records} lines · signed head ${chain.head ? `#${chain.head.seq} (${chain.head.treeSize} records, root ${short(chain.head.rootHash)})` : '—'}`,
        v && v.through !== null ? ` · verified through #${v.through} at ${fmtTime(v.at)}` : '',
        v && v.through !== null && chain.head && chain.head.seq > v.through
          ? ` (${chain.head.seq - v.through} newer pending)`
          : '',
        v && v.firstBad !== null
          ? ` · first bad #${v.firstBad}: ${v.problems[0]?.code ?? ''} ${v.problems[0]?.message ?? ''}`
          : '',
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

function currentPanel(task, now) {
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
      countdownText(r, now),
    ),
    h('div', { class: 'progress' }, h('div', { style: `width:${pct}%` })),
    h(
      'div',
      { class: 'muted' },
      h('span', { 'data-testid': 'round-accepted' }, `${r.accepted}`),
      ` of ${r.goalCount} updates (quorum ${r.minReports}) · checked in ${r.checkedIn} · selected ${r.selected} · skipped ${r.skipped} · refused ${r.refused}`,
      r.resubmitted > 0 ? ` · ${r.resubmitted} ack(s) re-sent after a lost ack` : '',
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
            h(
              'td',
              { 'data-testid': 'history-norms' },
              r.normsWithheld ? 'withheld (DP)' : normSummary(r.norms),
              r.allAtClipBound ? h('span', { class: 'muted' }, ' all at the bound') : '',
            ),
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
        ...[
          'Version',
          'Parent',
          'Round',
          'Decision',
          'Participants',
          'ε',
          'Holdout accuracy',
          'Adapter',
          'Reasons',
        ].map((t) => h('th', {}, t)),
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
          h('td', { class: 'num' }, pct(a.holdoutAccuracy)),
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

function statusLine(task) {
  return h(
    'p',
    { class: 'status-line' },
    h('span', { class: `pill task-${task.status}`, 'data-testid': 'task-status' }, task.status),
    task.statusReason
      ? h('span', { class: 'muted', 'data-testid': 'task-status-reason' }, ` ${task.statusReason}`)
      : '',
    task.holdout
      ? h(
          'span',
          { class: 'quality' },
          ' · holdout accuracy of v',
          String(task.holdout.version),
          ': ',
          h('strong', { 'data-testid': 'holdout-accuracy' }, pct(task.holdout.accuracy)),
          task.holdout.loss !== null ? ` (loss ${num(task.holdout.loss)})` : '',
        )
      : h('span', { class: 'muted' }, ' · no server holdout: quality is measured on the devices only'),
  );
}

/** Says why a column of norms sits on the clip bound, for the rounds where every one does. */
function clipNote(task) {
  const atBound = task.history.filter((r) => r.allAtClipBound);
  if (atBound.length === 0) return null;
  const rounds = atBound.map((r) => `#${r.roundNumber}`).join(', ');
  return h(
    'p',
    { class: 'note', 'data-testid': 'clip-note' },
    `Round${atBound.length > 1 ? 's' : ''} ${rounds}: every update sits on the clip bound (${task.clipNorm}). ` +
      "Each device's delta was longer than the bound and was scaled down to it before it was sent, " +
      'so the bound, not the data, set the size of the updates. That is clipping doing its job (it bounds ' +
      "one device's influence); if it happens every round, training moves slower than the data would allow: " +
      'consider a larger policy.clipNorm or adaptive clipping.',
  );
}

export function taskSection(task, now) {
  const oldestFirst = [...task.history].reverse();
  return h(
    'section',
    { class: `task status-${task.status}`, 'data-task': task.taskId, 'data-status': task.status },
    h(
      'h2',
      {},
      task.taskId,
      h(
        'small',
        {},
        `${task.adapterMode} · ${task.strategy} · clip ${task.clipNorm} · goal ${task.goalCount} · adapter v${task.latestVersion}` +
          (task.maxRounds > 0 ? ` · ${task.maxRounds} rounds` : ''),
      ),
    ),
    statusLine(task),
    h(
      'div',
      { class: 'grid' },
      currentPanel(task, now),
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
        clipNote(task),
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

/** Archived tasks: one line each, apart from the running ones. */
export function archivedSection(tasks) {
  if (tasks.length === 0) return null;
  return h(
    'details',
    { class: 'task archived', 'data-testid': 'archived' },
    h('summary', {}, `Archived tasks (${tasks.length})`),
    h(
      'ul',
      {},
      tasks.map((t) =>
        h(
          'li',
          { 'data-task': t.taskId },
          h('strong', {}, t.taskId),
          ` · ${t.history.length > 0 ? `${t.history[0].roundNumber} rounds` : 'no round'} · adapter v${t.latestVersion}`,
          t.statusReason ? ` · ${t.statusReason}` : '',
        ),
      ),
    ),
  );
}

/** `onIssue(output)`: issues an enrollment token and writes it into `output`. */
export function operatorSection(s, onIssue) {
  if (s.role !== 'operator' || !s.devices) return null;
  const output = h('code', { 'data-testid': 'enrollment-token' });
  return h(
    'section',
    { class: 'task', 'data-testid': 'operator' },
    h('h2', {}, 'Devices', h('small', {}, 'operator view')),
    h(
      'p',
      {},
      h('button', { type: 'button', onclick: () => onIssue(output) }, 'Issue enrollment token'),
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
