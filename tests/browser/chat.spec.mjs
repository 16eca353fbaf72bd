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
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import {
  ARTIFACTS, bounded, http, launchBrowser, session, sleep, startHark, stopHark, until,
} from './harness.mjs';

const QUIET_MS = 1_500; // how long the bot must stay silent while a supervisor holds the chat

const ADMIN_TOKEN = 'hark_e2e_' + randomBytes(16).toString('hex');
const QUESTION = 'What are your opening hours?';
const BOT_HOURS = 'We are open Monday to Friday';
const REPLY = 'Hi, Dana here. Let me check that for you.';
const WHILE_HELD = 'Are you open on Saturday too?'; // the bot would answer this (FAQ "opening" pattern)
const HEBREW = 'שלום, איפה ההזמנה שלי?';

let hark = null; // { proc, base, dataDir, logPath }
let browser = null;
const { pages, errors: pageErrors, newPage, screenshot, step } = session(() => browser, 'chat');

after(async () => {
  if (browser) await bounded('closing the browser', browser.close(), 10_000).catch((e) => console.error(e.message));
  await stopHark(hark);
});

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
    hark = await startHark({ token: ADMIN_TOKEN });
    base = hark.base;
    const r = await http('POST', base + '/v1/tokens', { token: ADMIN_TOKEN, body: { name: 'Eva', tenant: 'default', admin: false } });
    assert.ok(r.status >= 200 && r.status < 300, `POST /v1/tokens: ${r.status} ${r.text}`);
    assert.ok(r.json && typeof r.json.token === 'string' && r.json.token, `POST /v1/tokens returned no token: ${r.text}`);
    evaToken = r.json.token;
  });

  await step('launch Chromium, open a console and a visitor page', async () => {
    // launch() gives the browser a fresh temporary user-data-dir and removes it on close.
    browser = await launchBrowser();
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
