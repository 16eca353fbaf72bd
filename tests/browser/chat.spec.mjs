// Real-browser end-to-end test of hark's chat widget (/demo) and supervisor console (/console).
//
// Why this file exists: the Rust tests drive the sockets directly; this one checks that the two
// pages a person actually uses work together in a real Chromium: a visitor asks the bot, a
// supervisor sees the chat live, takes over, replies, the visitor reloads and the widget resumes
// the same chat, a second supervisor is refused, the
// supervisor leaves and the bot answers again, and right-to-left text renders right-to-left.
//
// Run through scripts/browser-tests.sh (installs Chromium, Node and playwright-core when
// missing), or directly: `node tests/browser/chat.spec.mjs` after `npm ci` in tests/browser.
//   HARK_BIN        the hark binary (default target/debug/hark, relative to the repo root)
//   CHROMIUM_PATH   the browser (default /usr/bin/chromium; never downloaded)
// It starts its own hark on a free port with a temporary data dir and stops it afterwards.
// Screenshots and hark's log go to artifacts/browser/ at the repo root.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const HARK_BIN = path.resolve(REPO, process.env.HARK_BIN || 'target/debug/hark');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO, 'artifacts', 'browser');
const WAIT_MS = 10_000; // every single wait in this test is bounded by this
const QUIET_MS = 1_500; // how long the bot must stay silent while a supervisor holds the chat

const ADMIN_TOKEN = 'hark_e2e_' + randomBytes(16).toString('hex');
const QUESTION = 'What are your opening hours?';
const BOT_HOURS = 'We are open Monday to Friday';
const REPLY = 'Hi, Dana here. Let me check that for you.';
const WHILE_HELD = 'Are you open on Saturday too?'; // the bot would answer this (FAQ "opening" pattern)
const HEBREW = 'שלום, איפה ההזמנה שלי?';

// ---- helpers -----------------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value (returned), or throws after `ms` naming `what`. */
async function until(what, fn, ms = WAIT_MS) {
  const t0 = Date.now();
  let last, lastErr;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() - t0 > ms) {
      const detail = lastErr ? ` (last error: ${lastErr.message.split('\n')[0]})` : ` (last value: ${JSON.stringify(last)})`;
      throw new Error(`timed out after ${ms} ms waiting for: ${what}${detail}`);
    }
    await sleep(100);
  }
}

/** Promise.race with a timer, for calls that have no timeout of their own. */
async function bounded(what, promise, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); });
  try { return await Promise.race([promise, timeout]); } finally { clearTimeout(timer); }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

async function http(method, url, { token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = 'Bearer ' + token;
  if (body) headers['content-type'] = 'application/json';
  const r = await fetch(url, { method, headers, body: body && JSON.stringify(body), signal: AbortSignal.timeout(WAIT_MS) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
  return { status: r.status, json, text };
}

// ---- hark --------------------------------------------------------------------------------------

let hark = null; // { proc, base, dataDir, log }
let browser = null;
const pages = {}; // name -> page, for failure screenshots
const pageErrors = [];
let shot = 0;

async function startHark() {
  assert.ok(fs.existsSync(HARK_BIN), `hark binary not found at ${HARK_BIN} (build it with: cargo build --bin hark)`);
  const logPath = path.join(ARTIFACTS, 'hark.log');
  for (let attempt = 1; ; attempt++) {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hark-e2e-'));
    const port = await freePort();
    const log = fs.openSync(logPath, 'a');
    const proc = spawn(HARK_BIN, ['serve'], {
      cwd: dataDir,
      env: {
        ...process.env,
        HARK_HTTP_ADDR: `127.0.0.1:${port}`,
        HARK_DATA_DIR: dataDir,
        HARK_ADMIN_TOKEN: ADMIN_TOKEN,
        HARK_DATABASE_URL: '', // SQLite in the temp dir, whatever the caller's environment says
        HARK_SIP_ADDR: '', // no telephony listeners: this test is about chat
        HARK_AUDIOSOCKET_ADDR: '',
        // The speech models `make test` fetched into the repository (the server runs elsewhere).
        HARK_SPEECH_MODELS_DIR: process.env.HARK_SPEECH_MODELS_DIR || path.join(REPO, 'models'),
        NO_COLOR: '1',
      },
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    let exited = null;
    const exit = new Promise((_, reject) => proc.on('exit', (code, signal) => {
      exited = { code, signal };
      reject(new Error(`hark exited early (${JSON.stringify(exited)}), see ${logPath}`));
    }));
    exit.catch(() => {}); // handled by the race below, or irrelevant once hark is ready
    hark = { proc, base: `http://127.0.0.1:${port}`, dataDir, logPath };
    try {
      await Promise.race([exit, until(`hark /readyz on port ${port}`, async () => {
        if (exited) return true; // stop polling; the race already failed
        const r = await fetch(hark.base + '/readyz', { signal: AbortSignal.timeout(1000) });
        return r.status === 200;
      }, 20_000)]);
      return;
    } catch (e) {
      // Someone may have taken the free port between our probe and hark's bind: try another.
      const early = exited;
      await stopHark();
      if (!early || attempt >= 3) throw e;
    }
  }
}

async function stopHark() {
  if (!hark) return;
  const { proc, dataDir } = hark;
  hark = null;
  if (proc.exitCode === null && proc.signalCode === null) {
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
}

/** Last resort when we cannot wait (Ctrl-C, a killed make, an exit past the after hook). */
function killHarkNow() {
  if (!hark) return;
  try { hark.proc.kill('SIGKILL'); } catch (_) { /* gone */ }
  try { fs.rmSync(hark.dataDir, { recursive: true, force: true }); } catch (_) { /* best effort */ }
  hark = null;
}
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => { killHarkNow(); process.exit(130); });
process.once('exit', killHarkNow);

after(async () => {
  if (browser) await bounded('closing the browser', browser.close(), 10_000).catch((e) => console.error(e.message));
  await stopHark();
});

// ---- pages -------------------------------------------------------------------------------------

async function newPage(name, viewport) {
  const context = await browser.newContext({ viewport, locale: 'en-US' });
  context.setDefaultTimeout(WAIT_MS);
  context.setDefaultNavigationTimeout(WAIT_MS);
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${name}: uncaught ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`${name}: console.error ${m.text()}`); });
  pages[name] = page;
  return page;
}

async function screenshot(page, name) {
  shot++;
  const file = path.join(ARTIFACTS, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, timeout: WAIT_MS });
}

let stepNo = 0;
/** One named step of the flow; a failure says which step, and every page is photographed. */
async function step(name, fn) {
  stepNo++;
  const t0 = Date.now();
  try {
    await fn();
  } catch (e) {
    for (const [pname, page] of Object.entries(pages)) {
      await page.screenshot({ path: path.join(ARTIFACTS, `FAILED-${pname}.png`), timeout: 5000 }).catch(() => {});
    }
    e.message = `step ${stepNo} "${name}": ${e.message}`;
    throw e;
  }
  console.log(`# step ${stepNo} ok: ${name} (${Date.now() - t0} ms)`);
}

// Widget: Playwright's CSS locators pierce the open shadow root of <hark-widget>.
const widgetState = (page) => page.evaluate(() => window.harkWidget && window.harkWidget.state());
const widgetMsgs = (page, role) => page.getByTestId('hark-messages').locator(`li.msg[data-role="${role}"]`);
const texts = (loc) => loc.locator('.bubble').allTextContents();

async function visitorSend(page, text) {
  await page.getByTestId('hark-input').fill(text);
  await page.getByTestId('hark-send').click();
  await until(`visitor message "${text}" acknowledged`, async () => {
    const li = page.getByTestId('hark-messages').locator('li.msg[data-role="visitor"]').filter({ hasText: text }).last();
    return (await li.getAttribute('data-status', { timeout: 1000 })) === 'sent' && Number(await li.getAttribute('data-seq'));
  });
}

// ---- the flow ----------------------------------------------------------------------------------

test('chat widget and supervisor console in a real browser', { timeout: 180_000 }, async () => {
  fs.rmSync(ARTIFACTS, { recursive: true, force: true });
  fs.mkdirSync(ARTIFACTS, { recursive: true });

  let base, evaToken, sessionId, sup, visitor;

  await step('start hark and create a second supervisor token', async () => {
    await startHark();
    base = hark.base;
    const r = await http('POST', base + '/v1/tokens', { token: ADMIN_TOKEN, body: { name: 'Eva', tenant: 'default', admin: false } });
    assert.ok(r.status >= 200 && r.status < 300, `POST /v1/tokens: ${r.status} ${r.text}`);
    assert.ok(r.json && typeof r.json.token === 'string' && r.json.token, `POST /v1/tokens returned no token: ${r.text}`);
    evaToken = r.json.token;
  });

  await step('launch Chromium, open a console and a visitor page', async () => {
    assert.ok(fs.existsSync(CHROMIUM), `no browser at ${CHROMIUM} (apt-get install chromium)`);
    // launch() gives the browser a fresh temporary user-data-dir and removes it on close.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30_000,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    sup = await bounded('console page', newPage('console', { width: 1280, height: 800 }));
    visitor = await bounded('visitor page', newPage('visitor', { width: 1100, height: 760 }));
  });

  await step('supervisor signs in at /console with the admin token', async () => {
    await sup.goto(base + '/console');
    await sup.getByTestId('token-input').fill(ADMIN_TOKEN);
    await sup.getByTestId('sign-in-button').click();
    await sup.getByTestId('board').waitFor({ state: 'visible' });
    await sup.getByTestId('card-grid').waitFor({ state: 'attached' });
    await until('console socket live', async () => (await sup.getByTestId('conn-status').getAttribute('data-state')) === 'live');
    assert.equal(await sup.getByTestId('sign-in-error').isVisible(), false, 'sign-in error shown');
    assert.equal(await sup.locator('article[data-testid="card"]').count(), 0, 'cards before any visitor');
    await sup.evaluate(() => { window.__harkNoReload = true; }); // gone if the page reloads
    await screenshot(sup, 'console-signed-in');
  });

  await step('visitor opens /demo and the widget, asks the bot', async () => {
    await visitor.goto(base + '/demo');
    await until('widget connected', async () => (await widgetState(visitor))?.connected);
    await visitor.getByTestId('hark-launcher').click();
    await visitor.getByTestId('hark-panel').waitFor({ state: 'visible' });
    await visitorSend(visitor, QUESTION);
    await until('bot answers the opening hours', async () => (await texts(widgetMsgs(visitor, 'bot'))).some((t) => t.includes(BOT_HOURS)));
    const st = await widgetState(visitor);
    sessionId = st.sessionId;
    assert.ok(sessionId, 'widget has a session id');
    assert.equal(await visitor.getByTestId('hark-agent-name').getAttribute('data-holder'), 'bot');
    await screenshot(visitor, 'visitor-bot-answer');
  });

  const card = sup.locator(`article[data-testid="card"][data-session-id="${sessionId}"]`);

  await step('the card appears on the console live, without a reload', async () => {
    await card.waitFor({ state: 'visible' });
    await until('card shows the last message', async () => (await card.locator('[data-field="last-message"]').textContent()).includes(BOT_HOURS)
      || (await card.locator('[data-field="last-message"]').textContent()).includes(QUESTION));
    assert.equal(await card.getAttribute('data-holder'), 'bot');
    assert.equal(await sup.evaluate(() => window.__harkNoReload), true, 'the console page was reloaded');
    await screenshot(sup, 'console-card');
  });

  await step('supervisor watches the session and sees the visitor message', async () => {
    await card.click();
    await sup.getByTestId('watch-panel').waitFor({ state: 'visible' });
    const list = sup.getByTestId('message-list');
    await list.locator('li[data-role="visitor"]').filter({ hasText: QUESTION }).waitFor();
    await list.locator('li[data-role="bot"]').filter({ hasText: BOT_HOURS }).waitFor();
    assert.equal(await sup.getByTestId('reply-input').isDisabled(), true, 'reply enabled before take-over');
  });

  await step('supervisor takes over as Dana', async () => {
    await sup.getByTestId('agent-name-input').fill('Dana');
    await sup.getByTestId('take-over-button').click();
    await until('reply box enabled', async () => sup.getByTestId('reply-input').isEnabled());
    await until('card holder is the agent', async () => (await card.getAttribute('data-holder')) === 'agent');
    assert.equal(await sup.getByTestId('panel-error').isVisible(), false, 'panel error after take-over');
    const agent = visitor.getByTestId('hark-agent-name');
    await until('widget header names Dana', async () => (await agent.getAttribute('data-holder')) === 'agent' && (await agent.textContent()).includes('Dana'));
    await widgetMsgs(visitor, 'system').filter({ hasText: 'Dana' }).first().waitFor();
  });

  await step('supervisor replies; the visitor sees the reply', async () => {
    await sup.getByTestId('reply-input').fill(REPLY);
    await sup.getByTestId('send-button').click();
    const li = widgetMsgs(visitor, 'agent').filter({ hasText: REPLY });
    await li.waitFor();
    assert.ok((await li.textContent()).includes('Dana'), 'agent bubble names Dana');
    await sup.getByTestId('message-list').locator('li[data-role="agent"]').filter({ hasText: REPLY }).waitFor();
    await screenshot(visitor, 'visitor-agent-reply');
  });

  await step('while held, the bot does not answer the visitor', async () => {
    const botsBefore = await widgetMsgs(visitor, 'bot').count();
    const seq = await visitorSend(visitor, WHILE_HELD);
    await sup.getByTestId('message-list').locator('li[data-role="visitor"]').filter({ hasText: WHILE_HELD }).waitFor();
    await sleep(QUIET_MS);
    assert.equal(await widgetMsgs(visitor, 'bot').count(), botsBefore, 'the bot answered while a supervisor held the chat');
    // The server's log agrees: nothing from the bot after the visitor's message.
    const r = await http('GET', `${base}/v1/sessions/${sessionId}`, { token: ADMIN_TOKEN });
    assert.equal(r.status, 200, r.text);
    const late = (r.json.messages || []).filter((m) => m.seq > seq && m.author && m.author.role === 'bot');
    assert.deepEqual(late, [], 'bot entries in the stored log while held');
  });

  await step('a right-to-left message renders rtl in the widget bubble', async () => {
    await visitorSend(visitor, HEBREW);
    const bubble = widgetMsgs(visitor, 'visitor').filter({ hasText: HEBREW }).locator('.bubble');
    assert.equal(await bubble.evaluate((el) => getComputedStyle(el).direction), 'rtl', 'widget bubble direction');
    const input = visitor.getByTestId('hark-input');
    await input.fill(HEBREW);
    assert.equal(await input.evaluate((el) => getComputedStyle(el).direction), 'rtl', 'widget input direction while typing Hebrew');
    await input.fill('');
    const entry = sup.getByTestId('message-list').locator('li[data-role="visitor"]').filter({ hasText: HEBREW }).locator('.text');
    await entry.waitFor();
    assert.equal(await entry.evaluate((el) => getComputedStyle(el).direction), 'rtl', 'console entry direction');
    await screenshot(visitor, 'visitor-rtl');
    await screenshot(sup, 'console-holding');
  });

  await step('the visitor reloads the page: the widget resumes the same chat silently', async () => {
    await visitor.reload();
    await until('widget reconnected', async () => (await widgetState(visitor))?.connected);
    assert.equal((await widgetState(visitor)).sessionId, sessionId, 'a reload started a new session');
    if (!(await visitor.getByTestId('hark-panel').isVisible())) await visitor.getByTestId('hark-launcher').click();
    await until('the agent reply is shown again, once', async () => (await widgetMsgs(visitor, 'agent').filter({ hasText: REPLY }).count()) === 1);
    const agent = visitor.getByTestId('hark-agent-name');
    await until('the header still names Dana', async () => (await agent.getAttribute('data-holder')) === 'agent' && (await agent.textContent()).includes('Dana'));
    assert.equal(await sup.locator(`article[data-testid="card"][data-session-id="${sessionId}"]`).count(), 1, 'one card for the chat');
    await screenshot(visitor, 'visitor-resumed');
  });

  await step('a second supervisor is refused with "held"', async () => {
    const eva = await bounded('second console page', newPage('console-2', { width: 1280, height: 800 }));
    await eva.goto(base + '/console');
    await eva.getByTestId('token-input').fill(evaToken);
    await eva.getByTestId('sign-in-button').click();
    const card2 = eva.locator(`article[data-testid="card"][data-session-id="${sessionId}"]`);
    await card2.waitFor({ state: 'visible' });
    assert.equal(await card2.getAttribute('data-holder'), 'agent');
    await card2.click();
    await eva.getByTestId('watch-panel').waitFor({ state: 'visible' });
    await eva.getByTestId('agent-name-input').fill('Eva');
    await eva.getByTestId('take-over-button').click();
    const err = eva.getByTestId('panel-error');
    await err.waitFor({ state: 'visible' });
    await until('panel error has code held', async () => (await err.getAttribute('data-code')) === 'held');
    assert.match(await err.textContent(), /Dana/, 'the refusal names the holder');
    assert.equal(await eva.getByTestId('reply-input').isDisabled(), true, 'second supervisor may reply');
    await screenshot(eva, 'console-2-held');
    // Dana still holds it.
    assert.equal(await visitor.getByTestId('hark-agent-name').getAttribute('data-holder'), 'agent');
    await eva.context().close();
    delete pages['console-2'];
  });

  await step('supervisor leaves; the bot answers the visitor again', async () => {
    await sup.getByTestId('leave-button').click();
    await until('reply box disabled after leave', async () => sup.getByTestId('reply-input').isDisabled());
    const agent = visitor.getByTestId('hark-agent-name');
    await until('widget header back to the bot', async () => (await agent.getAttribute('data-holder')) === 'bot');
    await until('card holder back to the bot', async () => (await card.getAttribute('data-holder')) === 'bot');
    const botsBefore = (await texts(widgetMsgs(visitor, 'bot'))).filter((t) => t.includes(BOT_HOURS)).length;
    await visitorSend(visitor, QUESTION);
    await until('bot answers again', async () => (await texts(widgetMsgs(visitor, 'bot'))).filter((t) => t.includes(BOT_HOURS)).length > botsBefore);
    await sup.getByTestId('message-list').locator('li[data-role="bot"]').filter({ hasText: BOT_HOURS }).nth(botsBefore).waitFor();
    // The stored log, now that the bot has caught up: no bot entry between the join and the leave.
    const r = await http('GET', `${base}/v1/sessions/${sessionId}`, { token: ADMIN_TOKEN });
    assert.equal(r.status, 200, r.text);
    const log = r.json.messages || [];
    const seqOf = (kind) => log.find((m) => m.notice && m.notice.kind === kind)?.seq;
    const joined = seqOf('agent_joined'), left = seqOf('agent_left');
    assert.ok(joined && left && joined < left, `agent_joined/agent_left notices in the log: ${joined}, ${left}`);
    const held = log.filter((m) => m.seq > joined && m.seq < left);
    assert.deepEqual(held.filter((m) => m.author?.role === 'bot'), [], 'bot entries while held');
    assert.equal(held.filter((m) => m.author?.role === 'visitor').length, 2, 'visitor messages while held');
    await screenshot(visitor, 'visitor-bot-again');
    await screenshot(sup, 'console-after-leave');
  });

  await step('no script errors on any page', async () => {
    assert.deepEqual(pageErrors, []);
  });
});
