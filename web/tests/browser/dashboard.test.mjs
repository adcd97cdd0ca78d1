// The dashboard in a real browser: Debian's chromium, headless, driven by
// puppeteer-core, against a real rtq-web, rtq-worker and redis-server that
// ../run.sh started. It loads the overview, sees a new task appear live,
// opens it, watches its progress bar move, cancels it, and proves that
// hostile strings in a task's name, args and error do not run as script.
//
// Environment (set by run.sh): RTQ_WEB_URL, RTQ_WEB_TOKEN, RTQ_REDIS_URL,
// RTQ_CLI (the rtq binary), RTQ_REDIS_CLI_SOCK (for the raw write),
// RTQ_SCREENSHOT_DIR.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {mkdtempSync, mkdirSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import puppeteer from 'puppeteer-core';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (run web/tests/run.sh)`);
  return v;
};
const URL_ = env('RTQ_WEB_URL');
const TOKEN = env('RTQ_WEB_TOKEN');
const SHOTS = env('RTQ_SCREENSHOT_DIR');
const XSS = ['<script>window.__xss=1;alert(1)</script>', '"><img src=x onerror="window.__xss=2;alert(2)">',
             'javascript:window.__xss=3;alert(3)'];

function rtq(...args) {
  return execFileSync(env('RTQ_CLI'), ['--redis', env('RTQ_REDIS_URL'), ...args], {encoding: 'utf8'}).trim();
}

async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'rtq-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
           `--user-data-dir=${profile}`],
    defaultViewport: {width: 1280, height: 860},
    timeout: 60000,
  });
  return {browser, profile};
}

// A page that records every dialog (alert) and page error.
async function newPage(browser) {
  const page = await browser.newPage();
  page.dialogs = [];
  page.errors = [];
  page.on('dialog', async d => { page.dialogs.push(d.message()); await d.dismiss(); });
  page.on('pageerror', e => page.errors.push(String(e)));
  return page;
}

async function signIn(page) {
  await page.goto(URL_ + '#/', {waitUntil: 'load'});
  await page.waitForSelector('#token-form:not([hidden])', {timeout: 10000});
  await page.type('#token', TOKEN);
  await page.click('#token-form button');
  await page.waitForSelector('#token-form[hidden]', {timeout: 10000});
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live', {timeout: 15000});
}

test('dashboard: overview, live task, progress, cancel, screenshots', async () => {
  const {browser, profile} = await launch();
  try {
    const page = await newPage(browser);
    await signIn(page);
    await page.waitForFunction(() => Number(document.getElementById('workers-alive')?.textContent) >= 1,
                               {timeout: 15000});
    // The throughput chart is drawn from the history kept in Redis.
    await page.waitForSelector('canvas#throughput', {timeout: 10000});
    mkdirSync(SHOTS, {recursive: true});
    const overview = join(SHOTS, 'overview.png');
    await page.screenshot({path: overview, fullPage: true});
    console.log(`screenshot: ${overview}`);

    // The task list, then a task enqueued elsewhere appears by itself.
    await page.goto(URL_ + '#/tasks', {waitUntil: 'load'});
    await page.waitForSelector('#tasks tbody');
    const id = rtq('enqueue', 'rtq.sleep', '{"seconds":8,"steps":40}');
    await page.waitForSelector(`#tasks tr[data-id="${id}"]`, {timeout: 10000});

    // Open it: the progress bar moves while it runs.
    await page.click(`#tasks tr[data-id="${id}"] a`);
    await page.waitForSelector('#task-progress', {timeout: 10000});
    const first = await page.waitForFunction(
        () => Number(document.getElementById('task-progress')?.getAttribute('aria-valuenow')) > 0,
        {timeout: 15000}).then(h => h.evaluate(() =>
        Number(document.getElementById('task-progress').getAttribute('aria-valuenow'))));
    await page.waitForFunction(
        (p) => Number(document.getElementById('task-progress')?.getAttribute('aria-valuenow')) > p,
        {timeout: 15000}, first);
    const task = join(SHOTS, 'task.png');
    await page.screenshot({path: task, fullPage: true});
    console.log(`screenshot: ${task}`);

    // Cancel: the page shows it cancelled (the worker stops it).
    await page.click('#btn-cancel');
    await page.waitForFunction(() => document.querySelector('#task-status .status')?.textContent === 'cancelled',
                               {timeout: 15000});
    assert.equal(JSON.parse(rtq('--json', 'status', id)).status, 'cancelled');
    assert.deepEqual(page.dialogs, []);
    assert.deepEqual(page.errors, []);
  } finally {
    await browser.close();
    rmSync(profile, {recursive: true, force: true});
  }
});

test('dashboard: hostile task strings are shown as text and never run', async () => {
  // The page's CSP would stop inline script by itself; bypass it so that
  // only the page's own escaping stands between the payloads and the DOM.
  // The message and details are the handler's free text (error codes are
  // kept to a safe alphabet by the worker).
  const args = JSON.stringify({a: XSS[0], b: XSS[1], link: XSS[2], message: XSS[0], details: {x: XSS[1]}});
  const taskId = rtq('enqueue', 'rtq.fail', args);
  const deadline = Date.now() + 20000;
  let failed;
  while ((failed = JSON.parse(rtq('--json', 'status', taskId))).status !== 'failed') {
    assert.ok(Date.now() < deadline, 'the failing task did not fail within 20 s');
    await new Promise(r => setTimeout(r, 100));
  }
  // A name no producer may give (names are validated): written raw, as a
  // hostile writer with Redis access could.
  // The task hash of queue default and its name field (n).
  execFileSync('redis-cli', ['-s', env('RTQ_REDIS_CLI_SOCK'), 'HSET', `{rtq:default}:t:${taskId}`, 'n', XSS[1]]);

  const {browser, profile} = await launch();
  try {
    const page = await newPage(browser);
    await page.setBypassCSP(true);
    await signIn(page);
    await page.goto(URL_ + '#/task/' + encodeURIComponent(taskId), {waitUntil: 'load'});
    await page.waitForSelector('#task-error', {timeout: 10000});
    const shown = await page.evaluate(() => ({
      name: document.getElementById('task-name').textContent,
      error: document.getElementById('task-error').textContent,
      args: document.getElementById('task-args').textContent,
      details: document.getElementById('task-details').textContent,
    }));
    assert.equal(shown.name, XSS[1]);
    assert.equal(shown.error, failed.error.code + ': ' + XSS[0]);
    assert.deepEqual(JSON.parse(shown.details), {x: XSS[1]});
    assert.deepEqual(JSON.parse(shown.args), JSON.parse(args));
    // The list shows the raw name too.
    await page.goto(URL_ + '#/tasks?status=failed', {waitUntil: 'load'});
    await page.waitForSelector(`#tasks tr[data-id="${taskId}"]`, {timeout: 10000});
    const listed = await page.$eval(`#tasks tr[data-id="${taskId}"] td.name`, td => td.textContent);
    assert.equal(listed, XSS[1]);
    // Nothing ran and nothing was parsed as markup.
    const dom = await page.evaluate(() => ({
      xss: window.__xss,
      imgs: document.querySelectorAll('img').length,
      scripts: [...document.scripts].map(s => s.src),
      handlers: document.querySelectorAll('[onerror], [onload], [onclick]').length,
      jsLinks: [...document.querySelectorAll('a')].filter(a => a.href.startsWith('javascript:')).length,
    }));
    assert.equal(dom.xss, undefined);
    assert.equal(dom.imgs, 0);
    assert.deepEqual(dom.scripts, [URL_.replace(/\/$/, '') + '/app.js']);
    assert.equal(dom.handlers, 0);
    assert.equal(dom.jsLinks, 0);
    assert.deepEqual(page.dialogs, []);
    // Control: the same payload put in as markup does run on this page, so
    // the checks above would have seen it.
    await page.evaluate(p => {
      const d = document.createElement('div');
      d.innerHTML = p;
      document.body.append(d);
    }, XSS[1]);
    await page.waitForFunction(() => window.__xss === 2, {timeout: 5000});
  } finally {
    await browser.close();
    rmSync(profile, {recursive: true, force: true});
  }
});

test('dashboard: a dead letter is requeued from its row', async () => {
  // A task no worker has a handler for is dead-lettered UNKNOWN_TASK.
  const taskId = rtq('enqueue', 'no.such.handler', '{}');
  const deadline = Date.now() + 20000;
  while (!JSON.parse(rtq('--json', 'dead', 'list')).letters.some(l => l.id === taskId)) {
    assert.ok(Date.now() < deadline, 'the task was not dead-lettered within 20 s');
    await new Promise(r => setTimeout(r, 100));
  }
  const {browser, profile} = await launch();
  try {
    const page = await newPage(browser);
    await signIn(page);
    await page.goto(URL_ + '#/dead', {waitUntil: 'load'});
    const row = await page.waitForFunction(id => [...document.querySelectorAll('#dead tbody tr')]
        .find(tr => tr.textContent.includes(id) && tr.querySelector('button.requeue')), {timeout: 10000}, taskId);
    await row.evaluate(tr => tr.querySelector('button.requeue').click());
    await page.waitForFunction(id => document.getElementById('notice').textContent ===
                               'Requeued: task ' + id + ' is pending again.', {timeout: 10000}, taskId);
    // Purge asks first; the dialog is dismissed here, so nothing is deleted.
    const before = JSON.parse(rtq('--json', 'dead', 'list')).total;
    await page.click('#btn-purge');
    // The dialog event reaches this process after the click returns.
    const shownBy = Date.now() + 5000;
    while (page.dialogs.length === 0 && Date.now() < shownBy) await new Promise(r => setTimeout(r, 20));
    assert.equal(page.dialogs.length, 1);
    assert.match(page.dialogs[0], /^Delete all \d+ dead letters\?/);
    assert.ok(JSON.parse(rtq('--json', 'dead', 'list')).total >= before);
    assert.deepEqual(page.errors, []);
  } finally {
    await browser.close();
    rmSync(profile, {recursive: true, force: true});
  }
});

test('dashboard: a queue whose key holds the wrong type is noted above the queues', async () => {
  // A queue list written by hand as a string: the overview leaves the queue
  // out and says why, as text.
  rtq('enqueue', 'rtq.echo', '{}', '--queue', 'spoiled');
  const cli = ['-s', env('RTQ_REDIS_CLI_SOCK')];
  execFileSync('redis-cli', [...cli, 'DEL', '{rtq:spoiled}:q']);
  execFileSync('redis-cli', [...cli, 'SET', '{rtq:spoiled}:q', '<b>by hand</b>']);
  const {browser, profile} = await launch();
  try {
    const page = await newPage(browser);
    await signIn(page);
    await page.waitForSelector('#skipped li', {timeout: 15000});
    const shown = await page.evaluate(() => ({
      notes: [...document.querySelectorAll('#skipped li')].map(li => li.textContent),
      markup: document.querySelectorAll('#skipped li *').length,
      rows: [...document.querySelectorAll('#queues tbody tr')].map(tr => tr.dataset.queue),
    }));
    assert.deepEqual(shown.notes, ['queue spoiled: key {rtq:spoiled}:q holds the wrong type of value: left out']);
    assert.equal(shown.markup, 0);
    assert.ok(!shown.rows.includes('spoiled'));
    assert.deepEqual(page.errors, []);
  } finally {
    execFileSync('redis-cli', ['-s', env('RTQ_REDIS_CLI_SOCK'), 'DEL', '{rtq:spoiled}:q']);
    await browser.close();
    rmSync(profile, {recursive: true, force: true});
  }
});
