// rtq dashboard. Plain JavaScript, no dependencies.
//
// Safety rule: text that comes from tasks (names, args, results, errors,
// messages) only ever reaches the page through textContent or form
// values; the page never assigns innerHTML and never builds a URL from
// task data except an id passed through encodeURIComponent into a
// fragment. The server's Content-Security-Policy forbids inline script
// on top of that.
'use strict';

const TOKEN_KEY = 'rtq-token';
const STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled', 'timeout'];
const PAGE = 25;

let info = null;
let view = null;        // the current view: {onEvent(ev), onReset()}
let liveConnected = false;

// ----- DOM helpers ---------------------------------------------------------

// el('td', {className: 'num'}, 'text', child, ...): strings become text nodes.
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'onclick' || k === 'onsubmit' || k === 'onchange') e[k] = v;
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function taskLink(id) {
  return el('a', {href: '#/task/' + encodeURIComponent(id), className: 'mono'}, id);
}

function statusBadge(s) {
  return el('span', {className: 'status ' + (STATUSES.includes(s) ? s : '')}, s);
}

function progressBar(pct, big) {
  const p = Math.max(0, Math.min(100, Number(pct) || 0));
  const fill = el('div', {style: 'width:' + p + '%'});
  const label = el('span', {}, (Math.round(p * 10) / 10) + '%');
  return el('div', {className: 'bar' + (big ? ' big' : ''), role: 'progressbar',
                    'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(p)},
            fill, label);
}

function setProgress(bar, pct) {
  const p = Math.max(0, Math.min(100, Number(pct) || 0));
  bar.firstChild.style.width = p + '%';
  bar.lastChild.textContent = (Math.round(p * 10) / 10) + '%';
  bar.setAttribute('aria-valuenow', String(p));
}

function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString();
}

function fmtAge(ms) {
  if (!ms) return '–';
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + ' s';
  if (s < 3600) return (s / 60).toFixed(1) + ' min';
  if (s < 86400) return (s / 3600).toFixed(1) + ' h';
  return (s / 86400).toFixed(1) + ' d';
}

function notice(text, isError) {
  const n = document.getElementById('notice');
  n.textContent = text || '';
  n.hidden = !text;
  n.className = isError ? 'error' : '';
}

// ----- API -----------------------------------------------------------------

function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

function headers() {
  const h = {};
  if (token()) h['Authorization'] = 'Bearer ' + token();
  return h;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, method) {
  const r = await fetch(path, {method: method || 'GET', headers: headers(), cache: 'no-store'});
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) {
    // With HTTP Basic the browser holds the login and asks for it itself.
    if ((r.status === 401 || r.status === 403) && !(info && info.auth === 'basic')) askToken();
    throw new ApiError(r.status, (body && body.error) || ('HTTP ' + r.status));
  }
  return body;
}

function askToken() {
  document.getElementById('token-form').hidden = false;
}

function throttle(fn, ms) {
  let timer = null, pending = false;
  return function () {
    if (timer) { pending = true; return; }
    fn();
    timer = setTimeout(function tick() {
      timer = null;
      if (pending) { pending = false; fn(); timer = setTimeout(tick, ms); }
    }, ms);
  };
}

// ----- live events (SSE read with fetch, so the token goes in a header) ----
//
// Each view says which stream it needs: one task's events (the task page)
// or at most one "tick" a second (the others re-read their figures on a
// tick), so a busy queue does not flood the browser. A view change that
// needs another stream reconnects at once.

let liveCtl = null, liveSpec = '';

function wantedSpec() { return (view && view.stream) || 'ticks=1'; }

async function liveLoop() {
  for (;;) {
    const ctl = new AbortController();
    liveCtl = ctl;
    liveSpec = wantedSpec();
    try {
      const r = await fetch('/api/events?' + liveSpec, {headers: headers(), cache: 'no-store', signal: ctl.signal});
      if (!r.ok || !r.body) throw new Error('HTTP ' + r.status);
      setLive(true);
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buf += dec.decode(value, {stream: true});
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          handleFrame(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
    } catch (e) { /* reconnect below */ }
    setLive(false);
    if (ctl.signal.aborted) continue;  // the view changed: its stream now
    await new Promise(res => setTimeout(res, 2000));
    if (view && view.onReset) view.onReset();
  }
}

function followView() {
  if (liveCtl && liveSpec !== wantedSpec()) liveCtl.abort();
}

function setLive(on) {
  liveConnected = on;
  const l = document.getElementById('live');
  l.textContent = on ? 'live' : 'offline';
  l.className = 'live ' + (on ? 'on' : 'off');
}

function handleFrame(frame) {
  let event = 'message', data = '';
  for (const line of frame.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data += line.slice(5).trim();
  }
  if (event === 'reset') { if (view && view.onReset) view.onReset(); return; }
  if (event === 'tick') { if (view && view.onTick) view.onTick(); return; }
  if (!data) return;
  let ev;
  try { ev = JSON.parse(data); } catch (e) { return; }
  if (ev && typeof ev === 'object' && view && view.onEvent) view.onEvent(ev);
}

// ----- overview --------------------------------------------------------------

let lastCounters = null;  // {t, byQueue: {q: completed+failed+...}} for rates

function rates(stats) {
  const now = Date.now(), cur = {};
  for (const q of stats.queues) {
    const c = q.counters || {};
    cur[q.name] = (c.completed || 0) + (c.failed || 0) + (c.cancelled || 0) + (c.timeout || 0);
  }
  const out = {};
  if (lastCounters && now - lastCounters.t > 500) {
    const mins = (now - lastCounters.t) / 60000;
    for (const q in cur) out[q] = lastCounters.by[q] === undefined ? null : (cur[q] - lastCounters.by[q]) / mins;
  }
  if (!lastCounters || now - lastCounters.t > 5000) lastCounters = {t: now, by: cur};
  return out;
}

function card(k, v, id) {
  return el('div', {className: 'card'}, el('div', {className: 'v', id: id || ''}, String(v)),
            el('div', {className: 'k'}, k));
}

// Completed (blue) and failed (red) tasks per minute, stacked; grey where
// the minute is unknown (no snapshot was recorded in it).
function drawThroughput(canvas, tp) {
  const ctx = canvas.getContext('2d');
  const w = canvas.width, h = canvas.height, pad = 22;
  ctx.clearRect(0, 0, w, h);
  const pts = tp.minutes;
  let max = 1;
  for (const p of pts) if (p.completed !== null) max = Math.max(max, p.completed + p.failed);
  const bw = (w - pad) / Math.max(1, pts.length);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = '#5b6577';
  ctx.fillText(String(max), 2, 10);
  ctx.fillText('0', 2, h - 2);
  pts.forEach((p, i) => {
    const x = pad + i * bw;
    if (p.completed === null) {
      ctx.fillStyle = '#e3e6ec';
      ctx.fillRect(x, h - 4, Math.max(1, bw - 1), 4);
      return;
    }
    const hc = (h - 14) * p.completed / max, hf = (h - 14) * p.failed / max;
    ctx.fillStyle = '#3b82c4';
    ctx.fillRect(x, h - hc, Math.max(1, bw - 1), hc);
    ctx.fillStyle = '#d05050';
    ctx.fillRect(x, h - hc - hf, Math.max(1, bw - 1), hf);
  });
  canvas.dataset.known = String(pts.filter(p => p.completed !== null).length);
  canvas.dataset.completed = String(pts.reduce((a, p) => a + (p.completed || 0), 0));
}

function overview(root) {
  async function draw() {
    let s, tp = null;
    try { s = await api('/api/stats'); } catch (e) { if (root.isConnected) notice(e.message, true); return; }
    try { tp = await api('/api/throughput?minutes=60'); } catch (e) { tp = null; }
    // A draw that outlived its view (the page moved on while it waited)
    // must not clear the notice the view now shown has put up.
    if (!root.isConnected) return;
    notice('');
    const r = rates(s);
    const queues = el('tbody');
    const can = info && info.actions;
    for (const q of s.queues) {
      const c = q.counters || {};
      const verb = q.paused ? 'resume' : 'pause';
      const toggle = can ? el('button', {type: 'button', className: 'queue-' + verb, onclick: async () => {
        try { await api('/api/queues/' + encodeURIComponent(q.name) + '/' + verb, 'POST'); notice('Queue ' + q.name + (q.paused ? ' resumed.' : ' paused: workers claim nothing from it.')); }
        catch (e) { notice(e.message, true); }
        draw();
      }}, q.paused ? 'Resume' : 'Pause') : '';
      queues.append(el('tr', {dataset: {queue: q.name, paused: String(!!q.paused)}},
        el('td', {}, el('a', {href: '#/tasks?queue=' + encodeURIComponent(q.name)}, q.name),
           q.paused ? el('span', {className: 'badge paused'}, ' paused') : ''),
        el('td', {className: 'num'}, q.backlog), el('td', {className: 'num'}, q.running),
        el('td', {className: 'num'}, q.delayed),
        el('td', {className: 'num'}, fmtAge(q.oldest_pending_age_ms)),
        el('td', {className: 'num'}, c.completed || 0), el('td', {className: 'num'}, c.failed || 0),
        el('td', {className: 'num'}, r[q.name] === undefined || r[q.name] === null ? '…' : r[q.name].toFixed(1)),
        el('td', {}, toggle)));
    }
    const st = el('tr');
    for (const k of STATUSES)
      st.append(el('td', {className: 'num'}, el('a', {href: '#/tasks?status=' + k}, String(s.statuses[k]))));
    root.replaceChildren(
      el('h1', {}, 'Overview'),
      el('div', {className: 'cards'},
         card('workers alive', s.workers_alive, 'workers-alive'),
         card('busy slots', s.busy_slots + ' / ' + s.slots, 'busy-slots'),
         card('running', s.running, 'running-count'), card('delayed', s.delayed),
         card('dead letters', s.dead, 'dead-letters')),
      el('h2', {}, 'Ended per minute, last hour'),
      tp ? (() => { const c = el('canvas', {id: 'throughput', width: 960, height: 140}); drawThroughput(c, tp); return c; })()
         : el('p', {className: 'muted'}, 'No history.'),
      el('p', {className: 'muted'}, 'completed (blue) and failed (red); grey: no record of that minute'),
      el('h2', {}, 'Tasks by status'),
      el('table', {id: 'statuses'}, el('thead', {}, el('tr', {}, ...STATUSES.map(k => el('th', {className: 'num'}, k)))),
         el('tbody', {}, st)),
      el('h2', {}, 'Queues'),
      // Queues left out for a key of the wrong type: text nodes only.
      (s.skipped || []).length ? el('ul', {id: 'skipped', className: 'skipped'},
         ...s.skipped.map(n => el('li', {}, String(n) + ': left out'))) : '',
      el('table', {id: 'queues'}, el('thead', {}, el('tr', {}, el('th', {}, 'queue'), el('th', {className: 'num'}, 'backlog'),
         el('th', {className: 'num'}, 'running'), el('th', {className: 'num'}, 'delayed'),
         el('th', {className: 'num'}, 'oldest pending'), el('th', {className: 'num'}, 'completed'),
         el('th', {className: 'num'}, 'failed'), el('th', {className: 'num'}, 'ended / min'), el('th', {}, ''))), queues));
  }
  const redraw = throttle(draw, 1000);
  const timer = setInterval(draw, 5000);
  draw();
  return {stream: 'ticks=1', onTick: redraw, onReset: draw, close: () => clearInterval(timer)};
}

// ----- task list ---------------------------------------------------------------

function taskRow(t) {
  const tr = el('tr', {dataset: {id: t.id}},
    el('td', {}, taskLink(t.id)), el('td', {className: 'name'}, t.name), el('td', {}, t.queue),
    el('td', {className: 'st'}, statusBadge(t.status)), el('td', {}, progressBar(t.progress)),
    el('td', {}, fmtTime(t.created_at)));
  return tr;
}

function tasks(root, params) {
  const f = {status: params.get('status') || '', queue: params.get('queue') || '',
             name: params.get('name') || '', after: params.get('after') || '', page: Number(params.get('page')) || 0};
  const body = el('tbody');
  const pagerText = el('span', {className: 'muted'});
  const prev = el('button', {type: 'button', id: 'prev'}, '‹ newer');
  const next = el('button', {type: 'button', id: 'next'}, 'older ›');
  const statusSel = el('select', {name: 'status', id: 'f-status'}, el('option', {value: ''}, 'any status'),
                       ...STATUSES.map(s => el('option', {value: s}, s)));
  statusSel.value = f.status;
  const queueIn = el('input', {name: 'queue', placeholder: 'queue', value: f.queue, id: 'f-queue'});
  const nameIn = el('input', {name: 'name', placeholder: 'task name', value: f.name, id: 'f-name'});
  // Pages go by cursor (the API's next_after), so any depth of a backlog
  // is reachable; "newer" goes back through the browser's history.
  let nextAfter = '';
  function go(after, page) {
    const q = new URLSearchParams();
    if (statusSel.value) q.set('status', statusSel.value);
    if (queueIn.value) q.set('queue', queueIn.value);
    if (nameIn.value) q.set('name', nameIn.value);
    if (after) { q.set('after', after); q.set('page', String(page)); }
    location.hash = '#/tasks' + (q.toString() ? '?' + q.toString() : '');
  }
  prev.onclick = () => history.back();
  next.onclick = () => go(nextAfter, f.page + 1);
  async function draw() {
    const q = new URLSearchParams({limit: String(PAGE)});
    if (f.after) q.set('after', f.after);
    if (f.status) q.set('status', f.status);
    if (f.queue) q.set('queue', f.queue);
    if (f.name) q.set('name', f.name);
    let r;
    try { r = await api('/api/tasks?' + q.toString()); } catch (e) { notice(e.message, true); return; }
    notice(r.truncated ? 'Only the newest ' + r.examined + ' index entries were examined; older tasks may match too.' : '');
    body.replaceChildren(...r.tasks.map(taskRow));
    if (!r.tasks.length) body.append(el('tr', {}, el('td', {colSpan: 6, className: 'muted'}, 'No tasks.')));
    nextAfter = r.next_after || '';
    prev.disabled = !f.after;
    next.disabled = !r.has_more || !nextAfter;
    pagerText.textContent = r.tasks.length ? (f.page * PAGE + 1) + '–' + (f.page * PAGE + r.tasks.length) : '';
  }
  const redraw = throttle(draw, 1000);
  root.replaceChildren(
    el('h1', {}, 'Tasks'),
    el('form', {className: 'filters', onsubmit: e => { e.preventDefault(); go('', 0); }},
       statusSel, queueIn, nameIn, el('button', {type: 'submit'}, 'Filter')),
    el('table', {id: 'tasks'}, el('thead', {}, el('tr', {}, el('th', {}, 'id'), el('th', {}, 'name'),
       el('th', {}, 'queue'), el('th', {}, 'status'), el('th', {}, 'progress'), el('th', {}, 'created'))), body),
    el('div', {className: 'pager'}, prev, pagerText, next));
  draw();
  // New tasks, progress and status changes: the page is re-read on each
  // tick, so at most once a second.
  return {stream: 'ticks=1', onTick: redraw, onReset: draw};
}

// ----- one task --------------------------------------------------------------------

function jsonText(v) { return v === null || v === undefined ? '–' : JSON.stringify(v, null, 2); }

function taskView(root, id) {
  let task = null, bar = null, eta = null, msg = null, statusEl = null;
  const seen = [];  // [ms, progress] samples for the ETA
  function updateEta(p) {
    if (!eta) return;
    const now = Date.now();
    seen.push([now, p]);
    while (seen.length > 20) seen.shift();
    let text = '–';
    if (task && task.status === 'running' && p > 0 && p < 100) {
      const start = task.started_at ? Date.parse(task.started_at) : seen[0][0];
      const elapsed = now - start;
      if (elapsed > 0) text = fmtAge(elapsed * (100 - p) / p) + ' left';
    }
    eta.textContent = text;
  }
  async function act(what) {
    try {
      const r = await api('/api/tasks/' + encodeURIComponent(id) + '/' + what, 'POST');
      notice(what === 'cancel' ? (r.outcome === 'requested' ? 'Cancel requested: the worker will stop it.' : 'Cancelled.')
                               : 'Enqueued again.');
      draw();
    } catch (e) { notice(what + ': ' + e.message, true); }
  }
  async function draw() {
    let t;
    try { t = await api('/api/tasks/' + encodeURIComponent(id)); } catch (e) {
      root.replaceChildren(el('h1', {}, 'Task'), el('p', {className: 'mono'}, id), el('p', {}, e.message));
      return;
    }
    task = t;
    bar = progressBar(t.progress, true);
    bar.id = 'task-progress';
    eta = el('span', {className: 'muted', id: 'task-eta'});
    msg = el('span', {id: 'task-message'}, t.progress_message || '');
    statusEl = el('span', {id: 'task-status'}, statusBadge(t.status));
    const can = info && info.actions;
    const cancel = el('button', {type: 'button', id: 'btn-cancel', className: 'danger',
                                 disabled: !can || !(t.status === 'pending' || t.status === 'running'),
                                 onclick: () => act('cancel')}, 'Cancel');
    const retry = el('button', {type: 'button', id: 'btn-retry',
                                disabled: !can || !['failed', 'timeout', 'cancelled'].includes(t.status),
                                onclick: () => act('retry')}, 'Retry');
    const dl = el('dl', {className: 'fields'});
    const field = (k, v) => dl.append(el('dt', {}, k), el('dd', {}, v));
    field('id', el('span', {className: 'mono'}, t.id));
    field('name', el('span', {id: 'task-name'}, t.name));
    field('queue', t.queue);
    field('status', statusEl);
    field('progress', el('div', {}, bar, msg, ' ', eta));
    field('attempts', t.attempts + ' (max retries ' + t.max_retries + ')');
    field('worker', t.worker || '–');
    field('created', fmtTime(t.created_at));
    field('started', fmtTime(t.started_at));
    field('completed', fmtTime(t.completed_at));
    if (t.run_at) field('run at', fmtTime(t.run_at));
    if (t.retry_at) field('retry at', fmtTime(t.retry_at));
    if (t.deadline) field('deadline', fmtTime(t.deadline));
    const parts = [el('h1', {}, 'Task'), el('div', {className: 'actions'}, cancel, retry,
                   can ? null : el('span', {className: 'muted'}, info && info.read_only ? 'read-only server' : 'actions need a token')),
                   dl, el('h2', {}, 'Arguments'), el('pre', {id: 'task-args'}, jsonText(t.args)),
                   el('h2', {}, 'Result'), el('pre', {id: 'task-result'}, jsonText(t.result))];
    if (t.error) {
      parts.push(el('h2', {}, 'Error'),
                 el('pre', {id: 'task-error'}, (t.error.code || '') + (t.error.message ? ': ' + t.error.message : '')),
                 el('h2', {}, 'Error details'), el('pre', {id: 'task-details'}, jsonText(t.error.details)));
      if (t.error.traceback) parts.push(el('h2', {}, 'Traceback'), el('pre', {id: 'task-traceback'}, t.error.traceback));
    }
    root.replaceChildren(...parts);
    updateEta(t.progress);
  }
  draw();
  return {
    stream: 'task=' + encodeURIComponent(id),
    onEvent(ev) {
      if (ev.id !== id || !task) return;
      if (ev.status === 'running' && ev.progress !== undefined && task.status === 'running') {
        setProgress(bar, ev.progress);
        if (ev.message !== undefined) msg.textContent = ev.message;
        updateEta(Number(ev.progress));
        return;
      }
      if (ev.status && ev.status !== task.status) draw();
    },
    onReset: draw,
  };
}

// ----- workers -------------------------------------------------------------------------

function workers(root) {
  async function draw() {
    let ws;
    try { ws = await api('/api/workers'); } catch (e) { notice(e.message, true); return; }
    const body = el('tbody');
    for (const w of ws) {
      body.append(el('tr', {}, el('td', {className: 'mono'}, w.id), el('td', {}, w.host),
        el('td', {className: 'num'}, w.pid), el('td', {}, w.queues),
        el('td', {className: 'num'}, w.busy + ' / ' + w.slots), el('td', {}, fmtTime(w.started_at)),
        el('td', {}, fmtAge(w.heartbeat_age_ms) + ' ago')));
      // Its handler commands (--exec) that keep failing, a row each, under it.
      for (const line of (w.exec_unavailable || '').split('\n').filter(Boolean))
        body.append(el('tr', {className: 'exec-unavailable'}, el('td', {colSpan: 7}, 'handler unavailable: ' + line)));
    }
    if (!ws.length) body.append(el('tr', {}, el('td', {colSpan: 7, className: 'muted'}, 'No worker alive.')));
    root.replaceChildren(el('h1', {}, 'Workers'),
      el('table', {id: 'workers'}, el('thead', {}, el('tr', {}, el('th', {}, 'id'), el('th', {}, 'host'),
        el('th', {className: 'num'}, 'pid'), el('th', {}, 'queues'), el('th', {className: 'num'}, 'busy'),
        el('th', {}, 'started'), el('th', {}, 'last heartbeat'))), body));
  }
  const timer = setInterval(draw, 5000);
  draw();
  return {stream: 'ticks=1', onReset: draw, close: () => clearInterval(timer)};
}

// ----- dead letters --------------------------------------------------------------------

// Whether a letter's payload decoded as a whole envelope: only those can go
// back on their queue (the server checks again).
function requeueable(d) { return !!(d.task && typeof d.task === 'object') && !d.truncated; }

// POST a dead-letter action; says what happened, then redraws.
async function deadAction(path, done, redraw) {
  try {
    const r = await api(path, 'POST');
    notice(done(r));
  } catch (e) { notice(e.message, true); }
  redraw();
}

function requeueOne(d, redraw) {
  return deadAction('/api/dead/' + encodeURIComponent(String(d.index)) + '/requeue?id=' + encodeURIComponent(d.id || ''),
                    r => 'Requeued: task ' + r.id + ' is pending again.', redraw);
}

function deadLetters(root, params) {
  const offset = Number(params.get('offset')) || 0;
  async function draw() {
    let r;
    try { r = await api('/api/dead?limit=' + PAGE + '&offset=' + offset); } catch (e) { notice(e.message, true); return; }
    const body = el('tbody');
    const can = info && info.actions;
    for (const d of r.letters) {
      const task = d.task && typeof d.task === 'object' ? d.task : null;
      const btn = can && requeueable(d)
        ? el('button', {type: 'button', className: 'requeue', onclick: () => requeueOne(d, draw)}, 'Requeue') : '';
      body.append(el('tr', {dataset: {index: String(d.index)}},
        el('td', {className: 'num'}, el('a', {href: '#/dead/' + encodeURIComponent(String(d.index))}, String(d.index))),
        el('td', {}, fmtTime(d.at)), el('td', {className: 'mono'}, d.code || ''), el('td', {}, d.queue || ''),
        el('td', {}, d.id ? taskLink(d.id) : '–'), el('td', {className: 'name'}, task ? String(task.name || '') : ''),
        el('td', {}, d.reason || ''), el('td', {className: 'num'}, d.size), el('td', {}, btn)));
    }
    if (!r.letters.length) body.append(el('tr', {}, el('td', {colSpan: 9, className: 'muted'}, 'No dead letters.')));
    const all = el('button', {type: 'button', id: 'btn-requeue-all', disabled: !can || !r.total, onclick: () => {
      if (confirm('Put every dead letter whose envelope decodes back on its queue? (' + r.total + ' letters; the others stay)'))
        deadAction('/api/dead/requeue', x => 'Requeued ' + x.requeued + '; ' + x.refused + ' cannot be requeued and stay.', draw);
    }}, 'Requeue all');
    const purge = el('button', {type: 'button', id: 'btn-purge', className: 'danger', disabled: !can || !r.total, onclick: () => {
      if (confirm('Delete all ' + r.total + ' dead letters? This cannot be undone.'))
        deadAction('/api/dead/purge', x => 'Purged ' + x.purged + ' dead letters.', draw);
    }}, 'Purge all');
    const prev = el('button', {type: 'button', disabled: offset === 0,
                               onclick: () => { location.hash = '#/dead?offset=' + Math.max(0, offset - PAGE); }}, '‹ newer');
    const next = el('button', {type: 'button', disabled: offset + r.letters.length >= r.total,
                               onclick: () => { location.hash = '#/dead?offset=' + (offset + PAGE); }}, 'older ›');
    root.replaceChildren(el('h1', {}, 'Dead letters'),
      el('p', {className: 'muted'}, r.total + ' in all, newest first. Payloads that could not run, with why.'),
      el('div', {className: 'actions'}, all, purge),
      el('table', {id: 'dead'}, el('thead', {}, el('tr', {}, el('th', {className: 'num'}, '#'), el('th', {}, 'when'),
        el('th', {}, 'code'), el('th', {}, 'queue'), el('th', {}, 'task'), el('th', {}, 'name'), el('th', {}, 'reason'),
        el('th', {className: 'num'}, 'bytes'), el('th', {}, ''))), body),
      el('div', {className: 'pager'}, prev, next));
  }
  const timer = setInterval(draw, 5000);
  draw();
  return {stream: 'ticks=1', onReset: draw, close: () => clearInterval(timer)};
}

function deadLetter(root, index) {
  async function draw() {
    let d;
    try { d = await api('/api/dead/' + encodeURIComponent(index)); } catch (e) {
      root.replaceChildren(el('h1', {}, 'Dead letter ' + index), el('p', {}, e.message));
      return;
    }
    const btn = info && info.actions && requeueable(d)
      ? el('button', {type: 'button', id: 'btn-requeue', onclick: () => requeueOne(d, () => { location.hash = '#/dead'; })}, 'Requeue') : null;
    root.replaceChildren(el('h1', {}, 'Dead letter ' + index),
      el('p', {className: 'muted'}, 'Indexes count from the newest: a letter added meanwhile shifts them.'),
      el('div', {className: 'actions'}, btn),
      el('pre', {id: 'dead-letter'}, JSON.stringify(d, null, 2)));
  }
  draw();
  return {stream: 'ticks=1', onReset: draw};
}

// ----- router ----------------------------------------------------------------------------

function route() {
  if (view && view.close) view.close();
  notice('');
  // Each view draws into a container of its own. A draw of the previous
  // view that was still waiting for its fetch then lands in a detached
  // container, never over the view now shown.
  const root = document.createElement('div');
  document.getElementById('view').replaceChildren(root);
  const hash = location.hash.replace(/^#/, '') || '/';
  const qi = hash.indexOf('?');
  const path = qi >= 0 ? hash.slice(0, qi) : hash;
  const params = new URLSearchParams(qi >= 0 ? hash.slice(qi + 1) : '');
  let nav = 'overview';
  if (path.startsWith('/task/')) {
    nav = 'tasks';
    view = taskView(root, decodeURIComponent(path.slice(6)));
  } else if (path === '/tasks') {
    nav = 'tasks';
    view = tasks(root, params);
  } else if (path === '/workers') {
    nav = 'workers';
    view = workers(root);
  } else if (path.startsWith('/dead/')) {
    nav = 'dead';
    view = deadLetter(root, decodeURIComponent(path.slice(6)));
  } else if (path === '/dead') {
    nav = 'dead';
    view = deadLetters(root, params);
  } else {
    view = overview(root);
  }
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.nav === nav);
  followView();
}

async function start() {
  document.getElementById('token-form').onsubmit = e => {
    e.preventDefault();
    const v = document.getElementById('token').value.trim();
    if (v) sessionStorage.setItem(TOKEN_KEY, v); else sessionStorage.removeItem(TOKEN_KEY);
    document.getElementById('token').value = '';
    document.getElementById('token-form').hidden = !!v;
    loadInfo().then(route);
  };
  await loadInfo();
  window.addEventListener('hashchange', route);
  route();
  liveLoop();
}

async function loadInfo() {
  try { info = await api('/api/info'); } catch (e) { info = null; }
  if (info) {
    document.getElementById('ns').textContent = 'namespace ' + info.namespace + (info.read_only ? ' · read-only' : '');
    if (info.auth_required && info.auth !== 'basic' && !token()) askToken();
    // Actions need the server to allow them and a credential: a token held
    // here, or the browser's Basic login.
    info.actions = info.actions && (info.auth === 'basic' || !!token());
  }
}

start();
