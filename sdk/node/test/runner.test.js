// The Node runner driven over its pipes as docs/EXEC.md says the worker
// drives it. Run: node --test sdk/node/test/
'use strict';

const { test } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const path = require('node:path');

const RUNNER = path.join(__dirname, '..', 'rtq-runner.js');
const HANDLERS = path.join(__dirname, 'handlers.js');

function start() {
  const p = spawn(process.execPath, [RUNNER, HANDLERS], { stdio: ['pipe', 'pipe', 'pipe'] });
  let buf = '';
  const frames = [];
  const waiters = [];
  let stderr = '';
  p.stderr.on('data', (d) => { stderr += d; });
  p.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      frames.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
      waiters.splice(0).forEach((w) => w());
    }
  });
  return {
    p,
    stderr: () => stderr,
    send: (o) => p.stdin.write(JSON.stringify(o) + '\n'),
    // The next frame, within ms.
    async next(ms = 10000) {
      const deadline = Date.now() + ms;
      while (frames.length === 0) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no frame within ${ms} ms; stderr: ${stderr}`);
        await new Promise((r) => { const t = setTimeout(r, left); waiters.push(() => { clearTimeout(t); r(); }); });
      }
      return frames.shift();
    },
    async until(type) {
      const got = [];
      for (;;) { const f = await this.next(); got.push(f); if (f.type === type) return got; }
    },
  };
}

const task = (id, name, args = {}) => ({ type: 'task', v: 1, id, name, queue: 'default', attempt: 1, timeout_ms: 10000, deadline_ms: 0, args });

test('ready, results, errors, unknown names', async () => {
  const r = start();
  const ready = await r.next();
  assert.deepStrictEqual([ready.type, ready.v, ready.handlers], ['ready', 1, ['node.add', 'node.fail', 'node.slow']]);
  r.send(task('t1', 'node.add', { a: 2, b: 3 }));
  assert.deepStrictEqual(await r.until('result'), [
    { type: 'progress', id: 't1', percent: 50, message: 'adding' },
    { type: 'result', id: 't1', result: { sum: 5 } },
  ]);
  r.send(task('t2', 'node.fail', { how: 'quota' }));
  const e = (await r.until('error')).pop();
  assert.deepStrictEqual([e.code, e.message, e.details], ['E_QUOTA', 'over quota', { used: 11 }]);
  assert.match(e.traceback, /handlers\.js/);
  r.send(task('t3', 'node.fail', { how: 'syntax' }));
  assert.strictEqual((await r.until('error')).pop().code, 'SyntaxError');
  r.send(task('t4', 'nobody'));
  assert.strictEqual((await r.until('error')).pop().code, 'UNKNOWN_TASK');
  r.send({ type: 'shutdown' });
  assert.strictEqual(await new Promise((res) => r.p.on('exit', res)), 0);
});

test('cancel wakes a sleeping handler at once; its logs go to stderr', async () => {
  const r = start();
  await r.next();
  r.send(task('t1', 'node.slow'));
  assert.strictEqual((await r.next()).type, 'progress');
  const t0 = Date.now();
  r.send({ type: 'cancel', id: 't1', reason: 'timeout' });
  const end = (await r.until('result')).pop();
  assert.deepStrictEqual(end.result, { stopped: true, reason: 'timeout' });
  assert.ok(Date.now() - t0 < 900, `took ${Date.now() - t0} ms`);
  r.p.stdin.end();
  assert.strictEqual(await new Promise((res) => r.p.on('exit', res)), 0);
  assert.match(r.stderr(), /stopped by timeout/);
});
