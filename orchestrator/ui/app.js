// The orchestrator's web page: plain JavaScript, no dependencies, served from the
// binary. Data comes from the public HTTP API; live changes come from one
// Server-Sent Events stream (/ui/api/events), read with fetch() so that the bearer
// token travels in the Authorization header (EventSource cannot send headers).
'use strict';

const $ = (sel) => document.querySelector(sel);
const state = {
  token: sessionStorage.getItem('dspy-token') || '',
  view: '',
  lastSeq: 0,
  stream: null,          // AbortController of the open event stream
  tasks: new Map(),      // id -> task shown in the table
  taskDetail: '',        // id of the task in the detail panel
  workflows: new Map(),  // id -> workflow document
  run: null,             // the run shown, as /workflow-runs/{id} returns it
  events: [],            // newest last, at most MAX_EVENTS
  pending: new Map(),    // debounce timers by key
};
const MAX_EVENTS = 300;

// ------------------------------------------------------------------ HTTP and auth

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  if (options.body && !headers['Content-Type']) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, Object.assign({}, options, { headers }));
  if (res.status === 401) {
    askToken(state.token ? 'the token was refused' : '');
    throw new Unauthorized('unauthorized');
  }
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = { error: text }; }
  if (!res.ok) throw new Error((body && body.error) || ('HTTP ' + res.status));
  return body;
}

function askToken(why) {
  $('#token-form').hidden = false;
  $('#token-error').textContent = why || '';
  document.body.classList.add('locked');
  setLive('off', 'token needed');
}

$('#token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  state.token = $('#token-input').value.trim();
  sessionStorage.setItem('dspy-token', state.token);
  $('#token-form').hidden = true;
  document.body.classList.remove('locked');
  boot();
});

function showError(where, err) {
  if (err instanceof Unauthorized) return;
  const el = $(where);
  if (el) el.textContent = err ? String(err.message || err) : '';
}

// Runs fn once after `ms` however often it is asked for within that time.
function soon(key, ms, fn) {
  if (state.pending.has(key)) return;
  state.pending.set(key, setTimeout(() => { state.pending.delete(key); fn(); }, ms));
}

// ------------------------------------------------------------------ small helpers

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function fmtTime(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}
function fmtDuration(ms) {
  if (ms === null || ms === undefined || ms < 0) return '';
  if (ms < 1000) return Math.round(ms) + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s';
  return Math.floor(ms / 60000) + ' min ' + Math.round((ms % 60000) / 1000) + ' s';
}
function fmtBytes(n) {
  if (!n) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + ' ' + units[i];
}
function isoMs(s) { return s ? Date.parse(s) : 0; }

function setLive(cls, text) {
  const l = $('#live');
  l.className = 'live ' + cls;
  l.textContent = text;
}

// ------------------------------------------------------------------ views

const views = {
  services: loadServices,
  tasks: loadTasks,
  workflows: loadWorkflows,
  timeline: loadTimeline,
  events: renderEvents,
};

function route() {
  const [name, arg] = (location.hash.slice(1) || 'services').split('/');
  const view = views[name] ? name : 'services';
  state.view = view;
  for (const s of document.querySelectorAll('.view')) s.hidden = s.id !== 'view-' + view;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === view);
  views[view](arg ? decodeURIComponent(arg) : '');
}
window.addEventListener('hashchange', route);

// ---- services

async function loadServices() {
  try {
    const body = await api('/ui/api/services');
    showError('#services-error', null);
    const tbody = $('#services-table tbody');
    tbody.replaceChildren();
    for (const s of body.items) tbody.append(serviceRow(s));
  } catch (e) { showError('#services-error', e); }
}

function serviceRow(s) {
  return el('tr', { 'data-service': s.name },
    el('td', { text: s.name + (s.required ? '' : ' (optional)') }),
    el('td', { class: 'svc-state state-' + s.state, text: s.state }),
    el('td', { class: 'svc-message', text: s.message || (s.health && s.health.message) || '' }),
    el('td', { class: 'num', text: s.restarts }),
    el('td', { text: (s.ports || []).join(', ') }),
    el('td', { text: s.container_id }),
    el('td', { class: 'num', text: fmtBytes(s.memory_bytes) }));
}

function onServiceEvent(ev) {
  const name = ev.data.service_name;
  const row = document.querySelector(`#services-table tr[data-service="${CSS.escape(name)}"]`);
  if (row) {
    const cell = row.querySelector('.svc-state');
    cell.textContent = ev.data.status;
    cell.className = 'svc-state state-' + ev.data.status;
    row.querySelector('.svc-message').textContent = ev.data.message || '';
  }
  // The finer state (restarting, waiting, ...) and the timeline come from env-manager.
  if (state.view === 'services') soon('services', 300, loadServices);
  if (state.view === 'timeline') soon('timeline', 300, loadTimeline);
}

// ---- tasks

function taskFilterQuery() {
  const q = new URLSearchParams({ limit: '200' });
  if ($('#task-status').value) q.set('status', $('#task-status').value);
  if ($('#task-class').value.trim()) q.set('class', $('#task-class').value.trim());
  return q;
}

async function loadTasks(id) {
  loadQueue();
  try {
    const body = await api('/tasks?' + taskFilterQuery());
    showError('#tasks-error', null);
    state.tasks.clear();
    const tbody = $('#tasks-table tbody');
    tbody.replaceChildren();
    // Newest first.
    for (const t of body.items.slice().reverse()) {
      state.tasks.set(t.id, t);
      tbody.append(taskRow(t));
    }
  } catch (e) { showError('#tasks-error', e); }
  if (id) showTask(id);
}

async function loadQueue() {
  try {
    const q = await api('/queue/status');
    $('#queue-summary').textContent =
      `pending ${q.pending} · running ${Object.values(q.classes || {}).reduce((n, c) => n + (c.inflight || 0), 0)}` +
      ` · completed ${q.completed} · failed ${q.failed} · cancelled ${q.cancelled}`;
  } catch (e) { /* the table shows the error */ }
}

function taskMatches(t) {
  const st = $('#task-status').value, cls = $('#task-class').value.trim();
  return (!st || t.status === st) && (!cls || t.class === cls);
}

function taskRow(t) {
  const dur = t.started_at_ms ? (t.finished_at_ms || Date.now()) - t.started_at_ms : null;
  return el('tr', { 'data-task': t.id, class: t.id === state.taskDetail ? 'selected' : '',
                    onclick: () => { location.hash = 'tasks/' + encodeURIComponent(t.id); } },
    el('td', { text: t.id }),
    el('td', { text: t.class }),
    el('td', { class: 'task-status state-' + t.status, text: t.status }),
    el('td', { class: 'num', text: t.attempts }),
    el('td', { text: fmtTime(t.submitted_at_ms) }),
    el('td', { class: 'num', text: t.finished_at_ms ? fmtDuration(dur) : '' }));
}

async function refreshTask(id) {
  let t;
  try { t = await api('/tasks/' + encodeURIComponent(id)); } catch (e) { return; }
  const tbody = $('#tasks-table tbody');
  const row = tbody.querySelector(`tr[data-task="${CSS.escape(id)}"]`);
  if (taskMatches(t)) {
    state.tasks.set(id, t);
    if (row) row.replaceWith(taskRow(t)); else tbody.prepend(taskRow(t));
  } else if (row) {
    row.remove();
    state.tasks.delete(id);
  }
  if (state.taskDetail === id) renderTaskDetail(t);
}

async function showTask(id) {
  state.taskDetail = id;
  for (const r of document.querySelectorAll('#tasks-table tr.selected')) r.classList.remove('selected');
  const row = document.querySelector(`#tasks-table tr[data-task="${CSS.escape(id)}"]`);
  if (row) row.classList.add('selected');
  try { renderTaskDetail(await api('/tasks/' + encodeURIComponent(id))); } catch (e) { showError('#tasks-error', e); }
}

function tail(text, n) { return text.length > n ? '…' + text.slice(-n) : text; }

function renderTaskDetail(t) {
  const d = $('#task-detail');
  d.hidden = false;
  const result = t.result || {};
  const output = result.stdout || result.output || result.log || '';
  const stderr = result.stderr || '';
  const rest = Object.fromEntries(Object.entries(result).filter(([k]) => !['stdout', 'stderr', 'output', 'log'].includes(k)));
  const dl = el('dl', {});
  const add = (k, v) => { if (v !== '' && v !== undefined && v !== null) dl.append(el('dt', { text: k }), el('dd', { text: String(v) })); };
  add('id', t.id); add('class', t.class); add('status', t.status); add('attempts', t.attempts);
  add('priority', t.priority); add('workflow', t.workflow_id);
  add('submitted', fmtTime(t.submitted_at_ms)); add('started', fmtTime(t.started_at_ms));
  add('finished', fmtTime(t.finished_at_ms)); add('took', t.finished_at_ms ? fmtDuration(t.duration_ms) : '');
  const actions = el('div', { class: 'actions' });
  if (t.status === 'pending' || t.status === 'running') {
    actions.append(el('button', { id: 'task-cancel', type: 'button', text: 'Cancel task', onclick: async () => {
      try { await api('/tasks/' + encodeURIComponent(t.id) + '/cancel', { method: 'POST' }); } catch (e) { showError('#tasks-error', e); }
    } }));
  }
  if (t.status === 'failed' || t.status === 'cancelled') {
    actions.append(el('button', { id: 'task-retry', type: 'button', text: 'Retry (new task, same payload)', onclick: async () => {
      try {
        const r = await api('/queue/submit', { method: 'POST', body: JSON.stringify({ class: t.class, payload: t.payload, priority: t.priority }) });
        location.hash = 'tasks/' + encodeURIComponent(r.id);
      } catch (e) { showError('#tasks-error', e); }
    } }));
  }
  d.replaceChildren(el('h3', { text: 'Task ' + t.id }), dl, actions);
  if (t.error) d.append(el('h4', { text: 'Error' }), el('pre', { id: 'task-error', class: 'error', text: t.error }));
  if (output) d.append(el('h4', { text: 'Output (tail)' }), el('pre', { id: 'task-output', text: tail(output, 4000) }));
  if (stderr) d.append(el('h4', { text: 'Standard error (tail)' }), el('pre', { id: 'task-stderr', text: tail(stderr, 4000) }));
  if (Object.keys(rest).length) d.append(el('h4', { text: 'Result' }), el('pre', { text: JSON.stringify(rest, null, 2) }));
  d.append(el('h4', { text: 'Payload' }), el('pre', { text: JSON.stringify(t.payload || {}, null, 2) }));
}

$('#task-status').addEventListener('change', () => loadTasks(''));
$('#task-class').addEventListener('change', () => loadTasks(''));

function onTaskEvent(ev) {
  if (state.view !== 'tasks') return;
  const id = ev.data.task_id;
  soon('task:' + id, 100, () => refreshTask(id));
  soon('queue', 500, loadQueue);
}

// ---- workflows and runs

async function loadWorkflows(runId) {
  try {
    const body = await api('/workflows');
    showError('#workflows-error', null);
    const list = $('#workflow-list');
    list.replaceChildren();
    for (const w of body.items) {
      const runs = el('ul', { class: 'runs', 'data-runs-of': w.id });
      list.append(el('div', { class: 'workflow', 'data-workflow': w.id },
        el('h3', { text: w.name || w.id }),
        el('p', { class: 'muted', text: `${w.id} · v${w.version} · ${w.node_count} steps` }), runs));
      loadRuns(w.id);
    }
  } catch (e) { showError('#workflows-error', e); }
  if (runId) showRun(runId);
}

async function loadRuns(workflowId) {
  try {
    const body = await api('/workflows/' + encodeURIComponent(workflowId) + '/runs?limit=10');
    const ul = document.querySelector(`ul[data-runs-of="${CSS.escape(workflowId)}"]`);
    if (!ul) return;
    ul.replaceChildren();
    for (const r of body.items) {
      ul.append(el('li', { 'data-run': r.id },
        el('a', { href: '#workflows/' + encodeURIComponent(r.id), text: r.id.slice(0, 8) }),
        ' ', el('span', { class: 'run-status badge state-' + r.status, text: r.status }),
        ' ', el('span', { class: 'muted', text: fmtTime(isoMs(r.created_at)) })));
    }
  } catch (e) { /* shown on the run itself */ }
}

async function workflowDoc(id) {
  if (!state.workflows.has(id)) state.workflows.set(id, await api('/workflows/' + encodeURIComponent(id)));
  return state.workflows.get(id);
}

async function showRun(runId) {
  try {
    const run = await api('/workflow-runs/' + encodeURIComponent(runId));
    const doc = await workflowDoc(run.workflow_id);
    if (!state.run || state.run.id !== run.id) drawDag(doc);
    state.run = run;
    renderRun(run);
  } catch (e) { showError('#run-error', e); $('#run-detail').hidden = false; }
}

function renderRun(run) {
  $('#run-detail').hidden = false;
  $('#run-id').textContent = run.id;
  $('#run-workflow').textContent = run.workflow_name || run.workflow_id;
  const st = $('#run-status');
  st.textContent = run.status;
  st.className = 'badge state-' + run.status;
  const active = run.status === 'pending' || run.status === 'running';
  $('#run-cancel').disabled = !active;
  $('#run-retry').disabled = active;
  showError('#run-error', run.error ? { message: run.error } : null);
  const tbody = $('#steps-table tbody');
  tbody.replaceChildren();
  for (const s of run.steps) {
    const started = isoMs(s.started_at), done = isoMs(s.completed_at);
    tbody.append(el('tr', { 'data-step': s.node_id },
      el('td', { text: s.name || s.node_id }),
      el('td', { text: s.action }),
      el('td', { class: 'step-status state-' + s.status, text: s.status }),
      el('td', { class: 'num', text: s.attempts }),
      el('td', { text: fmtTime(started) }),
      el('td', { class: 'num', text: started ? fmtDuration((done || Date.now()) - started) : '' }),
      el('td', { class: 'error', text: s.error || '' })));
    const node = document.querySelector(`#dag g[data-node="${CSS.escape(s.node_id)}"]`);
    if (node) {
      node.setAttribute('class', 'node state-' + s.status);
      node.querySelector('.node-status').textContent =
        s.status + (started ? ' · ' + fmtDuration((done || Date.now()) - started) : '');
    }
  }
  const li = document.querySelector(`li[data-run="${CSS.escape(run.id)}"] .run-status`);
  if (li) { li.textContent = run.status; li.className = 'run-status badge state-' + run.status; }
}

// Layered drawing: a step's column is its longest path from a root.
function drawDag(doc) {
  const svg = $('#dag');
  const ns = 'http://www.w3.org/2000/svg';
  const nodes = doc.nodes || [], edges = doc.edges || [];
  const level = new Map(nodes.map((n) => [n.id, 0]));
  for (let i = 0; i < nodes.length; i++) {
    for (const e of edges) level.set(e.target, Math.max(level.get(e.target) || 0, (level.get(e.source) || 0) + 1));
  }
  const rows = new Map();
  const pos = new Map();
  for (const n of nodes) {
    const l = level.get(n.id) || 0;
    const r = rows.get(l) || 0;
    rows.set(l, r + 1);
    pos.set(n.id, { x: 20 + l * 190, y: 20 + r * 80 });
  }
  const W = 150, H = 50;
  const width = 40 + (Math.max(0, ...level.values()) + 1) * 190;
  const height = 40 + Math.max(1, ...rows.values()) * 80;
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  svg.replaceChildren();
  const mk = (tag, attrs) => { const e = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; };
  const defs = mk('defs', {});
  const marker = mk('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto' });
  marker.append(mk('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow' }));
  defs.append(marker);
  svg.append(defs);
  for (const e of edges) {
    const a = pos.get(e.source), b = pos.get(e.target);
    if (!a || !b) continue;
    svg.append(mk('path', { class: 'edge', d: `M ${a.x + W} ${a.y + H / 2} C ${a.x + W + 20} ${a.y + H / 2}, ${b.x - 20} ${b.y + H / 2}, ${b.x} ${b.y + H / 2}`, 'marker-end': 'url(#arrow)' }));
  }
  for (const n of nodes) {
    const p = pos.get(n.id);
    const g = mk('g', { class: 'node state-pending', 'data-node': n.id, transform: `translate(${p.x},${p.y})` });
    g.append(mk('rect', { width: W, height: H, rx: 8 }));
    const name = mk('text', { x: 10, y: 20, class: 'node-name' });
    name.textContent = n.name || n.id;
    const st = mk('text', { x: 10, y: 38, class: 'node-status' });
    st.textContent = 'pending';
    g.append(name, st);
    svg.append(g);
  }
}

$('#run-cancel').addEventListener('click', async () => {
  if (!state.run) return;
  try { renderRun(await api('/workflow-runs/' + encodeURIComponent(state.run.id) + '/cancel', { method: 'POST' })); }
  catch (e) { showError('#run-error', e); }
});
$('#run-retry').addEventListener('click', async () => {
  if (!state.run) return;
  try {
    const r = await api('/workflows/' + encodeURIComponent(state.run.workflow_id) + '/runs',
      { method: 'POST', body: JSON.stringify({ input: state.run.input || {} }) });
    loadRuns(r.workflow_id);
    location.hash = 'workflows/' + encodeURIComponent(r.id);
  } catch (e) { showError('#run-error', e); }
});

function onWorkflowEvent(ev) {
  if (state.view !== 'workflows') return;
  const runId = ev.data.run_id;
  if (state.run && runId === state.run.id) soon('run:' + runId, 50, () => showRun(runId));
  if (ev.type === 'workflow_started' && ev.data.workflow_id) soon('runs:' + ev.data.workflow_id, 200, () => loadRuns(ev.data.workflow_id));
  const li = runId && document.querySelector(`li[data-run="${CSS.escape(runId)}"] .run-status`);
  const final = { workflow_completed: 'succeeded', workflow_failed: 'failed', workflow_cancelled: 'cancelled' }[ev.type];
  if (li && final) { li.textContent = final; li.className = 'run-status badge state-' + final; }
}

// ---- start-up timeline

async function loadTimeline() {
  let body;
  try { body = await api('/ui/api/services'); showError('#timeline-error', null); } catch (e) { showError('#timeline-error', e); return; }
  const items = body.items.filter((s) => s.last_start && s.last_start.requested_ms);
  const box = $('#timeline');
  box.replaceChildren();
  if (!items.length) { box.append(el('p', { class: 'muted', text: 'No start recorded since env-manager started.' })); return; }
  const t0 = Math.min(...items.map((s) => s.last_start.requested_ms));
  const ends = items.map((s) => { const l = s.last_start; return l.ready_ms || l.first_probe_ms || l.started_ms || l.created_ms || l.requested_ms; });
  const span = Math.max(1, Math.max(...ends) - t0);
  items.sort((a, b) => (a.last_start.started_ms || Infinity) - (b.last_start.started_ms || Infinity));
  box.append(el('p', { class: 'muted', text: `from ${fmtTime(t0)}; all ready after ${fmtDuration(span)}` }));
  const legend = el('p', { class: 'legend' });
  for (const [cls, text] of [['wait', 'waiting (dependencies, network, image)'], ['create', 'create'], ['start', 'start call → first probe answer'], ['probe', 'first probe → ready']]) {
    legend.append(el('span', { class: 'seg ' + cls, text: ' ' }), ' ' + text + '  ');
  }
  box.append(legend);
  const table = el('table', { id: 'timeline-table' });
  table.append(el('thead', {}, el('tr', {}, ...['Service', 'Outcome', 'Create', 'Start', 'First probe', 'Ready', ''].map((h) => el('th', { text: h })))));
  const tbody = el('tbody');
  for (const s of items) {
    const l = s.last_start;
    const rel = (ms) => (ms ? '+' + fmtDuration(ms - t0) : '');
    const bar = el('div', { class: 'bar' });
    const seg = (cls, from, to) => {
      if (!from || !to || to < from) return;
      bar.append(el('span', { class: 'seg ' + cls, title: `${cls}: ${fmtDuration(to - from)}`,
        style: `left:${(100 * (from - t0)) / span}%;width:${Math.max(0.4, (100 * (to - from)) / span)}%` }));
    };
    seg('wait', l.requested_ms, l.created_ms || l.started_ms);
    seg('create', l.created_ms, l.started_ms);
    seg('start', l.started_ms, l.first_probe_ms || l.ready_ms);
    seg('probe', l.first_probe_ms, l.ready_ms);
    tbody.append(el('tr', { 'data-service': s.name },
      el('td', { text: s.name }),
      el('td', { class: 'state-' + (l.outcome || 'starting'), text: l.outcome || 'starting' }),
      el('td', { class: 'num', text: rel(l.created_ms) }),
      el('td', { class: 'num', text: rel(l.started_ms) }),
      el('td', { class: 'num', text: rel(l.first_probe_ms) }),
      el('td', { class: 'num ready', text: rel(l.ready_ms) }),
      el('td', { class: 'bar-cell' }, bar)));
  }
  table.append(tbody);
  box.append(table);
}

// ---- events

function eventLine(ev) {
  const d = Object.assign({}, ev.data);
  delete d.resource_id;
  const detail = Object.entries(d).map(([k, v]) => `${k}=${v}`).join(' ');
  return el('li', { 'data-seq': ev.seq, 'data-type': ev.type },
    el('span', { class: 'muted', text: fmtTime(Date.parse(ev.timestamp)) + ' ' }),
    el('b', { text: ev.type }), ' ', el('code', { text: ev.data.resource_id || '' }), ' ',
    el('span', { class: 'muted', text: detail.length > 300 ? detail.slice(0, 300) + '…' : detail }));
}

function renderEvents() {
  const f = $('#events-filter').value.trim();
  const ol = $('#events-list');
  ol.replaceChildren();
  for (const ev of state.events.slice().reverse()) {
    if (!f || ev.type.includes(f)) ol.append(eventLine(ev));
  }
}
$('#events-filter').addEventListener('input', renderEvents);

function addEvent(ev) {
  state.events.push(ev);
  if (state.events.length > MAX_EVENTS) state.events.shift();
  if (state.view !== 'events') return;
  const f = $('#events-filter').value.trim();
  if (f && !ev.type.includes(f)) return;
  const ol = $('#events-list');
  ol.prepend(eventLine(ev));
  while (ol.children.length > MAX_EVENTS) ol.lastChild.remove();
}

// ------------------------------------------------------------------ live stream

function dispatch(ev) {
  if (ev.seq <= state.lastSeq) return;
  state.lastSeq = ev.seq;
  addEvent(ev);
  if (ev.type.startsWith('task_')) onTaskEvent(ev);
  else if (ev.type.startsWith('workflow_')) onWorkflowEvent(ev);
  else if (ev.type === 'service_status') onServiceEvent(ev);
}

async function connectEvents() {
  if (state.stream) state.stream.abort();
  const ctrl = new AbortController();
  state.stream = ctrl;
  const headers = state.token ? { Authorization: 'Bearer ' + state.token } : {};
  try {
    const res = await fetch('/ui/api/events?after=' + state.lastSeq, { headers, signal: ctrl.signal, cache: 'no-store' });
    if (res.status === 401) { askToken(state.token ? 'the token was refused' : ''); return; }
    if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
    setLive('on', 'live');
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        let type = 'message', data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) type = line.slice(6).trim();
          else if (line.startsWith('data:')) data += line.slice(5).trim();
        }
        if (type === 'message' && data) dispatch(JSON.parse(data));
      }
    }
  } catch (e) {
    if (ctrl.signal.aborted) return;
  }
  if (state.stream !== ctrl) return;
  // The stream ended (daemon restarted, overflow): reconnect and replay what was missed.
  setLive('off', 'reconnecting');
  setTimeout(connectEvents, 1000);
}

async function boot() {
  try {
    const recent = await api('/ui/api/events/recent?limit=100');
    state.events = recent.items;
    state.lastSeq = recent.last_seq;
  } catch (e) {
    if (e instanceof Unauthorized) return;
    setLive('off', 'no events: ' + e.message);
  }
  connectEvents();
  route();
}

boot();
