#!/usr/bin/env node
// rtq-runner.js - a handler-process runner for Node.js, speaking the exec
// protocol of docs/EXEC.md on stdin/stdout. Node's standard library only.
//
//   node sdk/node/rtq-runner.js ./handlers.js [more modules...]
//
// Each module exports handlers by task name:
//
//   module.exports = {
//     'resize': async (task) => {
//       await task.progress(50, 'half way');
//       if (task.cancelled) return null;
//       await task.sleep(100);            // ms; resolves early on cancel
//       return { width: task.args.width / 2 };
//     },
//   };
//
// A handler returns (or resolves to) the result, any JSON value, or throws:
// the error's `code` (or its class name) becomes the task's error code,
// its message the message, its `details` the details and its stack the
// traceback. console.log and console.info go to stderr: stdout carries
// only the protocol.

'use strict';

const path = require('path');
const readline = require('readline');

const PROTOCOL = 1;
const MAX_LINE = 32 * 1024 * 1024;

const out = process.stdout;
console.log = console.info = console.debug = (...a) => console.error(...a);

function send(obj) {
  out.write(JSON.stringify(obj) + '\n');
}

function loadHandlers(mods) {
  const handlers = {};
  for (const m of mods) {
    const exp = require(path.resolve(m));
    for (const [name, fn] of Object.entries(exp)) {
      if (typeof fn !== 'function') continue;
      if (handlers[name]) throw new Error(`two handlers for ${name}`);
      handlers[name] = fn;
    }
  }
  return handlers;
}

function makeTask(frame) {
  const listeners = [];
  const task = {
    id: frame.id,
    name: frame.name,
    queue: frame.queue,
    attempt: frame.attempt,
    timeoutMs: frame.timeout_ms,
    deadlineMs: frame.deadline_ms,
    args: frame.args || {},
    cancelled: false,
    cancelReason: null,
    progress(percent, message) {
      let p = Number(percent);
      if (!Number.isFinite(p)) p = 0;
      const f = { type: 'progress', id: frame.id, percent: Math.min(100, Math.max(0, p)) };
      if (message !== undefined && message !== null) f.message = String(message).slice(0, 1024);
      send(f);
    },
    log(message, level = 'info') {
      send({ type: 'log', id: frame.id, level, message: String(message) });
    },
    sleep(ms) {
      return new Promise((resolve) => {
        if (task.cancelled) return resolve(false);
        const t = setTimeout(() => resolve(true), Math.max(0, ms));
        listeners.push(() => { clearTimeout(t); resolve(false); });
      });
    },
    _cancel(reason) {
      task.cancelled = true;
      task.cancelReason = reason;
      listeners.splice(0).forEach((f) => f());
    },
  };
  return task;
}

function errorFrame(id, e) {
  const code = (e && (e.code || (e.constructor && e.constructor.name))) || 'Error';
  const f = {
    type: 'error', id,
    code: String(code),
    message: e && e.message !== undefined ? String(e.message) : String(e),
    traceback: e && e.stack ? String(e.stack) : undefined,
  };
  if (e && e.details && typeof e.details === 'object' && !Array.isArray(e.details)) f.details = e.details;
  return f;
}

async function main(argv) {
  if (argv.length === 0) {
    console.error('usage: rtq-runner.js MODULE [MODULE...]');
    return 2;
  }
  const handlers = loadHandlers(argv);
  send({ type: 'ready', v: PROTOCOL, handlers: Object.keys(handlers).sort(), runner: `node ${process.version}` });

  const queue = [];
  let wake = null;
  let current = null;
  let eof = false;
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on('line', (line) => {
    if (line.length > MAX_LINE) { console.error('rtq-runner: a line over 32 MiB; stopping'); process.exit(1); }
    if (!line.trim()) return;
    let msg;
    try { msg = JSON.parse(line); } catch (e) { console.error(`rtq-runner: not JSON: ${line.slice(0, 80)}`); return; }
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'cancel') {
      if (current && current.id === msg.id) current._cancel(msg.reason || 'cancelled');
      return;
    }
    if (msg.type === 'task' || msg.type === 'shutdown') {
      queue.push(msg);
      if (wake) { const w = wake; wake = null; w(); }
    }
  });
  rl.on('close', () => { eof = true; if (wake) { const w = wake; wake = null; w(); } });

  for (;;) {
    while (queue.length === 0 && !eof) await new Promise((r) => { wake = r; });
    const msg = queue.shift();
    if (!msg || msg.type === 'shutdown') return 0;
    const fn = handlers[msg.name];
    if (!fn) {
      send({ type: 'error', id: msg.id, code: 'UNKNOWN_TASK', message: `no handler for ${JSON.stringify(msg.name)} in this process` });
      continue;
    }
    current = makeTask(msg);
    try {
      const result = await fn(current);
      let line;
      try { line = JSON.stringify({ type: 'result', id: msg.id, result: result === undefined ? null : result }); } catch (e) { line = null; }
      if (line === null) send({ type: 'error', id: msg.id, code: 'RESULT_NOT_JSON', message: "the handler's result is not JSON" });
      else out.write(line + '\n');
    } catch (e) {
      send(errorFrame(msg.id, e));
    }
    current = null;
  }
}

// Exits once stdout is flushed: stdin stays open while the worker lives,
// so the loop would not end by itself.
function finish(rc) {
  out.write('', () => process.exit(rc));
}

main(process.argv.slice(2)).then(finish, (e) => {
  console.error(e && e.stack ? e.stack : String(e));
  finish(1);
});
