// Real-browser end-to-end test of the supervisor console's alerts, SLA clocks, history and call
// pages (/console), against a real hark with rules, speech models and a SIP listener.
//
// Why this file exists: the Rust tests prove the APIs; this one proves a supervisor can use
// them. A visitor asks for a refund in the widget → the console's Alerts tab shows the phrase
// alert live with its badge, and acknowledging it updates it in place; the chat's card counts
// down its first-response SLA and turns to breached. A recorded call is uploaded → it is found
// in History by a word of its transcript (with load-more and the CSV export), its call page
// shows the analysis' scores, clicking a transcript line seeks the audio there and plays it, and
// notes are added, edited (right-to-left text) and deleted. A call streamed by sipp shows its
// live transcript in the watch panel.
//
// Run through scripts/browser-tests.sh, or `node tests/browser/console.spec.mjs` after `npm ci`
// in tests/browser. Environment: HARK_BIN, CHROMIUM_PATH (as chat.spec.mjs), HARK_FIXTURES
// (default ../shared/fixtures from the repo root), HARK_SPEECH_MODELS_DIR (default ./models).
// Needs sipp (Debian: sip-tester). Screenshots console-NN-*.png and hark-console.log go to
// artifacts/browser/.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ARTIFACTS, FIXTURES, WAIT_MS, bounded, freeUdpTcpPort, http, launchBrowser, session, sleep, startHark, stopHark, until,
} from './harness.mjs';

const ADMIN_TOKEN = 'hark_e2e_' + randomBytes(16).toString('hex');
const SLA_SECS = 40; // over the console's 30 s amber threshold, short enough to see the breach
const RULES = `
default_sla = { chat = "fast" }

[[sla_policies]]
id = "fast"
name = "Fast chat"
first_response_secs = ${SLA_SECS}

[[alerts]]
id = "refund"
name = "Customer asks for a refund"
severity = "warning"
condition = { kind = "phrase", speaker = "customer", phrases = ["refund"] }
`;
const REFUND = 'I want a refund';
const CLIP = 'jfk_ask_not.wav'; // "And so my fellow Americans, ask not what your country can do for you, …"
const HEBREW_NOTE = 'הלקוח ביקש החזר כספי';
const CALL_WAIT_MS = 120_000; // an upload transcribed by Whisper on a shared CI machine

let hark = null, browser = null, rulesDir = null, sippDir = null;

after(async () => {
  if (browser) await bounded('closing the browser', browser.close(), 10_000).catch((e) => console.error(e.message));
  await stopHark(hark);
  for (const d of [rulesDir, sippDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

const widgetState = (page) => page.evaluate(() => window.harkWidget && window.harkWidget.state());

async function visitorSend(page, text) {
  await page.getByTestId('hark-input').fill(text);
  await page.getByTestId('hark-send').click();
  await until(`visitor message "${text}" acknowledged`, async () => {
    const li = page.getByTestId('hark-messages').locator('li.msg[data-role="visitor"]').filter({ hasText: text }).last();
    return (await li.getAttribute('data-status', { timeout: 1000 })) === 'sent';
  });
}

/** Runs sipp as the calling trunk, like tests/common `sipp()`; resolves its exit code. */
function runSipp(dir, sipPort, mediaPort, localPort) {
  const args = [`127.0.0.1:${sipPort}`, '-sf', 'uac_speech.xml', '-i', '127.0.0.1', '-p', String(localPort),
    '-mi', '127.0.0.1', '-mp', String(mediaPort), '-s', 'speech', '-m', '1', '-timeout', '30', '-timeout_error', '-nostdin'];
  const proc = spawn('sipp', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const done = new Promise((resolve, reject) => {
    proc.on('error', (e) => reject(new Error(`sipp could not start (${e.message}); install it: apt-get install sip-tester`)));
    proc.on('exit', (code) => resolve({ code, stderr }));
  });
  return { proc, done };
}

test('console: alerts, SLA clock, history, call page and a live SIP call in a real browser', { timeout: 400_000 }, async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const f of fs.readdirSync(ARTIFACTS)) if (f.startsWith('console-')) fs.rmSync(path.join(ARTIFACTS, f));
  const t = session(() => browser, 'console');
  let base, sup, visitor, chatId, alertId, callId, sipPort;

  await t.step('start hark with rules, speech models and a SIP listener', async () => {
    rulesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hark-e2e-rules-'));
    const rules = path.join(rulesDir, 'rules.toml');
    fs.writeFileSync(rules, RULES);
    assert.ok(fs.existsSync(path.join(FIXTURES, 'audio', CLIP)), `fixture ${CLIP} missing under ${FIXTURES} (set HARK_FIXTURES)`);
    hark = await startHark({
      token: ADMIN_TOKEN,
      logName: 'hark-console.log',
      env: async () => {
        sipPort = await freeUdpTcpPort();
        const rtpMin = 30000 + (sipPort % 250) * 100; // its own RTP block, as tests/common sip_server does
        return {
          HARK_RULES_FILE: rules,
          HARK_SIP_ADDR: `127.0.0.1:${sipPort}`,
          HARK_SIP_RTP_PORT_MIN: String(rtpMin),
          HARK_SIP_RTP_PORT_MAX: String(rtpMin + 98),
        };
      },
    });
    base = hark.base;
  });

  await t.step('launch Chromium; the supervisor signs in and asks for a beep on every message', async () => {
    browser = await launchBrowser();
    sup = await bounded('console page', t.newPage('console', { width: 1360, height: 860 }, { acceptDownloads: true }));
    visitor = await bounded('visitor page', t.newPage('visitor', { width: 1000, height: 760 }));
    await sup.goto(base + '/console');
    await sup.getByTestId('token-input').fill(ADMIN_TOKEN);
    await sup.getByTestId('sign-in-button').click();
    await sup.getByTestId('board').waitFor({ state: 'visible' });
    await until('console socket live', async () => (await sup.getByTestId('conn-status').getAttribute('data-state')) === 'live');
    await sup.getByTestId('sound-select').selectOption('all'); // a real click: the page may now play sound
    assert.equal(await sup.evaluate(() => localStorage.getItem('hark.console.sound')), 'all');
    assert.equal(await sup.getByTestId('alerts-badge').isVisible(), false, 'alert badge before any alert');
    await sup.evaluate(() => { window.__harkNoReload = true; });
  });

  await t.step('a visitor asks for a refund; the card shows the first-response SLA clock counting down', async () => {
    await visitor.goto(base + '/demo');
    await until('widget connected', async () => (await widgetState(visitor))?.connected);
    await visitor.getByTestId('hark-launcher').click();
    await visitor.getByTestId('hark-panel').waitFor({ state: 'visible' });
    await visitorSend(visitor, REFUND);
    chatId = (await widgetState(visitor)).sessionId;
    assert.ok(chatId, 'widget has a session id');
    const card = sup.locator(`article[data-testid="card"][data-session-id="${chatId}"]`);
    await card.waitFor({ state: 'visible' });
    const sla = card.locator('[data-field="sla"]');
    await sla.waitFor();
    await until('the SLA clock counts down the first response', async () => /^First response due in \d+:\d\d$/.test(await sla.textContent()));
    const secs = (text) => { const m = /(\d+):(\d\d)$/.exec(text); return Number(m[1]) * 60 + Number(m[2]); };
    const first = secs(await sla.textContent());
    assert.ok(first > 0 && first <= SLA_SECS, `countdown ${first} s of ${SLA_SECS}`);
    assert.equal(await sla.getAttribute('data-sla-state'), 'active');
    assert.equal(await sla.getAttribute('data-tone'), 'ok');
    await until('the countdown ticks', async () => secs(await sla.textContent()) < first, 3_000);
    assert.equal(await card.getAttribute('data-holder'), 'bot');
    await t.screenshot(sup, 'card-sla-clock');
  });

  await t.step('the refund alert arrives live: badge on the tab, severity, rule, message and session link', async () => {
    const badge = sup.getByTestId('alerts-badge');
    await until('badge shows 1', async () => (await badge.isVisible()) && (await badge.textContent()) === '1');
    assert.equal(await sup.evaluate(() => window.__harkNoReload), true, 'the console page was reloaded');
    await sup.getByTestId('tab-alerts').click();
    await sup.getByTestId('alerts-view').waitFor({ state: 'visible' });
    assert.equal(await sup.getByTestId('board').isVisible(), false, 'the live board hides behind the alerts tab');
    const item = sup.getByTestId('alert').filter({ hasText: 'Customer asks for a refund' });
    await item.waitFor();
    alertId = await item.getAttribute('data-alert-id');
    assert.equal(await item.getAttribute('data-session-id'), chatId);
    assert.equal(await item.getAttribute('data-severity'), 'warning');
    assert.equal(await item.getAttribute('data-acknowledged'), 'false');
    assert.match(await item.locator('[data-field="message"]').textContent(), /refund/i);
    assert.equal(await item.getByTestId('alert-session').getAttribute('href'), `#/live/${chatId}`);
    // The alert beeped: the AudioContext was unlocked by the click on the sound select.
    const sounds = await sup.evaluate(() => window.harkConsole.sounds);
    assert.ok(sounds.played >= 1, `a beep was played (${JSON.stringify(sounds)})`);
    await t.screenshot(sup, 'alerts-live');
  });

  await t.step('acknowledging the alert updates it in place, on the server too', async () => {
    const item = sup.locator(`[data-testid="alert"][data-alert-id="${alertId}"]`);
    await item.getByTestId('ack-button').click();
    await until('alert shows acknowledged', async () => (await item.getAttribute('data-acknowledged')) === 'true');
    await item.getByTestId('alert-acked').waitFor();
    assert.equal(await item.getByTestId('ack-button').count(), 0, 'the acknowledge button is gone');
    await until('badge hidden', async () => !(await sup.getByTestId('alerts-badge').isVisible()));
    assert.equal(await sup.getByTestId('alert').count(), 1, 'the acknowledgement updated the alert, not added one');
    const r = await http('GET', `${base}/v1/alerts?acknowledged=true`, { token: ADMIN_TOKEN });
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json.some((a) => a.id === alertId && a.acknowledged_at), `alert acknowledged on the server: ${r.text}`);
    await t.screenshot(sup, 'alert-acknowledged');
    // The session link leads to the live board, watching the chat.
    await item.getByTestId('alert-session').click();
    await sup.getByTestId('watch-panel').waitFor({ state: 'visible' });
    assert.equal(await sup.getByTestId('watch-panel').getAttribute('data-session-id'), chatId);
    await sup.getByTestId('message-list').locator('li[data-role="visitor"]').filter({ hasText: REFUND }).waitFor();
  });

  await t.step(`upload a recorded call (${CLIP}) and wait until it is transcribed and finalized`, async () => {
    const form = new FormData();
    form.append('file', new Blob([fs.readFileSync(path.join(FIXTURES, 'audio', CLIP))], { type: 'audio/wav' }), CLIP);
    const r = await http('POST', base + '/v1/uploads', { token: ADMIN_TOKEN, form });
    assert.equal(r.status, 202, r.text);
    callId = r.json.files[0].session_id;
    assert.ok(callId, r.text);
    await until('the upload is finished and finalized (history row with duration_ms)', async () => {
      const h = await http('GET', `${base}/v1/sessions?state=ended&channel=voice`, { token: ADMIN_TOKEN });
      return h.status === 200 && h.json.some((row) => row.session_id === callId && row.duration_ms != null);
    }, CALL_WAIT_MS, 500);
  });

  await t.step('end the chat so history has two sessions: load more pages through the Link header', async () => {
    // The chat's SLA clock: by now (or soon) past its deadline it shows as breached, plainly, in red.
    await sup.getByTestId('tab-live').click();
    const sla = sup.locator(`article[data-testid="card"][data-session-id="${chatId}"] [data-field="sla"]`);
    await until('the chat card shows the breach', async () => (await sla.getAttribute('data-tone')) === 'bad'
      && /breached|missed/i.test(await sla.textContent()), SLA_SECS * 1000 + WAIT_MS, 250);
    await t.screenshot(sup, 'card-sla-breached');
    await visitor.getByTestId('hark-leave').click();
    await visitor.context().close();
    delete t.pages.visitor;
    await until('the chat is in the history', async () => {
      const h = await http('GET', `${base}/v1/sessions?state=ended`, { token: ADMIN_TOKEN });
      return h.status === 200 && h.json.some((row) => row.session_id === chatId);
    }, 20_000, 250);
    await sup.getByTestId('tab-history').click();
    await sup.getByTestId('history-view').waitFor({ state: 'visible' });
    await sup.evaluate(() => { window.harkConsole.historyPageSize = 1; });
    await sup.getByTestId('history-search').click();
    const rows = sup.getByTestId('history-row');
    await until('one row per page', async () => (await rows.count()) === 1 && (await sup.getByTestId('history-more').isVisible()));
    await sup.getByTestId('history-more').click();
    await until('the second page appended', async () => (await rows.count()) === 2);
    const ids = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.sessionId));
    assert.deepEqual([...ids].sort(), [callId, chatId].sort(), 'both sessions, newest first, once each');
    assert.equal(ids[0], callId, 'newest first');
    await until('no more pages', async () => !(await sup.getByTestId('history-more').isVisible()));
    await sup.evaluate(() => { window.harkConsole.historyPageSize = 50; });
  });

  await t.step('History finds the call by a word of its transcript; the filters narrow it; Export CSV saves it', async () => {
    const rows = sup.getByTestId('history-row');
    await sup.getByTestId('f-q').fill('country');
    await sup.getByTestId('history-search').click();
    await until('only the call matches "country"', async () => {
      const ids = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.sessionId));
      return ids.length === 1 && ids[0] === callId;
    });
    // The agent/desk/department selects come from the organization (empty here: "Any" only).
    assert.equal(await sup.getByTestId('f-agent').locator('option').count(), 1);
    await sup.getByTestId('f-channel').selectOption('chat');
    await sup.getByTestId('history-search').click();
    await sup.getByTestId('history-empty').waitFor({ state: 'visible' });
    await sup.getByTestId('f-channel').selectOption('voice');
    await sup.getByTestId('history-search').click();
    await until('voice + "country" finds the call', async () => (await rows.count()) === 1);
    await t.screenshot(sup, 'history');
    const [download] = await Promise.all([sup.waitForEvent('download', { timeout: WAIT_MS }), sup.getByTestId('export-csv').click()]);
    const file = await bounded('download saved', download.path());
    const csv = fs.readFileSync(file, 'utf8');
    assert.ok(csv.startsWith('\uFEFFsession_id,'), `CSV header: ${csv.slice(0, 80)}`);
    const lines = csv.trim().split(/\r?\n/);
    assert.equal(lines.length, 2, `the export has the same filters (one row): ${csv.slice(0, 300)}`);
    assert.ok(lines[1].startsWith(callId), lines[1]);
    assert.match(download.suggestedFilename(), /^hark-sessions-\d+\.csv$/);
  });

  await t.step('the call page (opened by keyboard): Analysis shows scores with explanations and the checklist', async () => {
    await sup.getByTestId('history-row').first().getByTestId('history-open').focus();
    await sup.keyboard.press('Enter');
    await sup.getByTestId('call-view').waitFor({ state: 'visible' });
    assert.equal(new URL(sup.url()).hash, `#/session/${callId}`);
    await until('call page loaded', async () => (await sup.getByTestId('call-view').getAttribute('data-loaded')) === 'true');
    await sup.getByTestId('ctab-analysis').click();
    const scores = sup.getByTestId('score');
    await scores.first().waitFor();
    const labels = await scores.evaluateAll((els) => els.map((e) => e.dataset.label));
    assert.ok(labels.includes('customer_sentiment'), `scores shown: ${labels}`);
    for (const el of await scores.all()) {
      const n = Number(await el.getAttribute('data-score'));
      assert.ok(n >= 1 && n <= 10, `score ${n}`);
      assert.ok((await el.locator('.explanation').textContent()).length > 10, 'each score explains itself');
    }
    assert.ok((await sup.getByTestId('checklist-item').count()) >= 1, 'the checklist is shown');
    await sup.getByTestId('player').waitFor({ state: 'visible' });
    await t.screenshot(sup, 'call-analysis');
  });

  await t.step('the Transcript tab: clicking a line seeks the audio to its start and plays', async () => {
    await sup.getByTestId('ctab-analysis').focus();
    await sup.keyboard.press('ArrowRight'); // the tabs follow the arrow keys
    await sup.getByTestId('transcript-panel').waitFor({ state: 'visible' });
    assert.equal(await sup.getByTestId('ctab-transcript').getAttribute('aria-selected'), 'true');
    const lines = sup.locator('[data-testid="transcript-line"][data-start-ms]');
    await lines.first().waitFor();
    const text = (await sup.getByTestId('transcript').textContent()).toLowerCase();
    assert.match(text, /country/, 'the transcript has the clip');
    const audio = sup.getByTestId('audio');
    await until('audio metadata loaded', async () => audio.evaluate((a) => a.readyState >= 1 && a.duration > 5));
    assert.match(await audio.getAttribute('src'), new RegExp(`/v1/sessions/${callId}/recordings/0\\?access_token=`));
    assert.match(await sup.getByTestId('p-note').textContent(), /Customer recording \(stream 0\)/);
    // Start somewhere else (+10 s), so the click must really move the position.
    await sup.getByTestId('p-fwd').click();
    await until('+10 s moved the position', async () => (await audio.evaluate((a) => a.currentTime)) >= 9);
    const target = lines.last();
    const startMs = Number(await target.getAttribute('data-start-ms'));
    await audio.evaluate((a) => { window.__seeks = []; a.addEventListener('seeked', () => window.__seeks.push(a.currentTime)); });
    await target.click();
    const seeked = await until('the audio seeked', async () => (await sup.evaluate(() => window.__seeks)).at(-1));
    assert.ok(Math.abs(seeked - startMs / 1000) <= 0.3, `seeked to ${seeked} s, the line starts at ${startMs / 1000} s`);
    await until('the audio plays from there', async () => audio.evaluate((a, s) => !a.paused && a.currentTime > s, seeked));
    assert.equal(await sup.getByTestId('p-play').getAttribute('data-state'), 'playing');
    await sup.getByTestId('p-speed').selectOption('1.5');
    assert.equal(await audio.evaluate((a) => a.playbackRate), 1.5);
    await t.screenshot(sup, 'call-transcript-playing');
    await sup.getByTestId('p-play').click();
    await until('paused', async () => audio.evaluate((a) => a.paused));
  });

  await t.step('the Notes tab: add, edit (right-to-left) and delete a note', async () => {
    await sup.getByTestId('ctab-notes').click();
    await sup.getByTestId('note-input').fill('Customer quoted JFK.');
    await sup.getByTestId('note-add').click();
    const note = sup.getByTestId('note');
    await note.filter({ hasText: 'Customer quoted JFK.' }).waitFor();
    await note.getByTestId('note-edit').click();
    await sup.getByTestId('note-edit-input').fill(HEBREW_NOTE);
    await sup.getByTestId('note-save').click();
    const text = note.filter({ hasText: HEBREW_NOTE }).locator('[data-field="text"]');
    await text.waitFor();
    assert.equal(await text.evaluate((el) => getComputedStyle(el).direction), 'rtl', 'a Hebrew note renders right-to-left');
    const r = await http('GET', `${base}/v1/sessions/${callId}/notes`, { token: ADMIN_TOKEN });
    assert.deepEqual(r.json.map((n) => n.text), [HEBREW_NOTE]);
    await t.screenshot(sup, 'call-notes');
    await note.getByTestId('note-delete').click(); // asks to confirm
    await note.getByTestId('note-delete').click();
    await sup.getByTestId('no-notes').waitFor();
    const after = await http('GET', `${base}/v1/sessions/${callId}/notes`, { token: ADMIN_TOKEN });
    assert.deepEqual(after.json, []);
  });

  await t.step('a call streamed by sipp shows its live transcript in the watch panel', async () => {
    await sup.getByTestId('tab-live').click();
    await sup.getByTestId('board').waitFor({ state: 'visible' });
    sippDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hark-e2e-sipp-'));
    for (const f of fs.readdirSync(path.join(FIXTURES, 'sip'))) fs.copyFileSync(path.join(FIXTURES, 'sip', f), path.join(sippDir, f));
    const mediaPort = (await freeUdpTcpPort()) & ~1;
    const sipp = runSipp(sippDir, sipPort, mediaPort, await freeUdpTcpPort());
    try {
      const card = sup.locator('article[data-testid="card"]').filter({ has: sup.locator('[data-field="channel"]', { hasText: 'voice' }) });
      await card.first().waitFor({ state: 'visible', timeout: 15_000 });
      // Nobody's extension was called: a phone call, never "Bot".
      assert.equal(await card.first().locator('[data-field="holder"]').textContent(), 'Phone call');
      await card.first().click();
      await sup.getByTestId('watch-panel').waitFor({ state: 'visible' });
      const line = sup.getByTestId('message-list').locator('li[data-role="customer"]').filter({ hasText: /country/i });
      await line.first().waitFor({ timeout: 30_000 });
      await t.screenshot(sup, 'sip-live-transcript');
    } finally {
      const { code, stderr } = await bounded('sipp ends', sipp.done, 45_000).catch((e) => { sipp.proc.kill('SIGKILL'); throw e; });
      assert.equal(code, 0, `sipp exit code (stderr: ${stderr.slice(-500)})`);
    }
  });

  await t.step('no script errors on any page', async () => {
    assert.deepEqual(t.errors, []);
  });
});
