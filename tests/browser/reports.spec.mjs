// Real-browser end-to-end test of the supervisor console's Reports tab (/console#/reports),
// against a real hark (speech off: the reports are about finished chats).
//
// Why this file exists: the Rust tests prove GET /v1/reports and /v1/reports/agents add up; this
// one proves a manager sees those figures. The admin builds an organization over REST (a
// department, a desk, two agents); visitors chat over the widget socket, a supervisor takes each
// chat over as one of the agents (Dana three times, Eli once) and answers, the visitor leaves.
// Once hark has finalized and analysed them, the Reports tab must show: tiles whose calls equal
// the chats made, the agents table with both names and their counts (checked against the REST
// answer and against what this test produced), sortable by its headers; an hourly bar chart with
// one bar per bucket, a live-refreshing realtime view, a month line chart, the agent comparison
// naming both sides; the print layout (Export to PDF) renders to a PDF without the tabs and live
// board; a user without the reports permission gets a friendly message.
//
// Run through `scripts/browser-tests.sh reports`, or `node tests/browser/reports.spec.mjs` after
// `npm ci` in tests/browser. Environment: HARK_BIN, CHROMIUM_PATH. Screenshots reports-NN-*.png,
// report.pdf and hark-reports.log go to artifacts/browser/.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, WAIT_MS, bounded, http, launchBrowser, session, startHark, stopHark, until } from './harness.mjs';

const ADMIN_TOKEN = 'hark_e2e_' + randomBytes(16).toString('hex');
const AGENTS = [{ name: 'Dana Whitfield', chats: 3 }, { name: 'Eli Moreno', chats: 1 }];
const TOTAL = AGENTS.reduce((n, a) => n + a.chats, 0);
const FINALIZE_WAIT_MS = 30_000;

let hark = null, browser = null;

after(async () => {
  if (browser) await bounded('closing the browser', browser.close(), 10_000).catch((e) => console.error(e.message));
  await stopHark(hark);
});

/**
 * One finished chat, driven from a page of hark's origin with the browser's own WebSocket: the
 * visitor says hello and writes, a supervisor takes it over as `agent` and answers, the visitor
 * leaves. Every wait is bounded; resolves the session id.
 */
function chatInPage(page, { token, agent, text }) {
  return page.evaluate(async ({ token, agent, text }) => {
    const wsBase = location.origin.replace(/^http/, 'ws');
    const open = (url) => new Promise((resolve, reject) => {
      const s = { w: new WebSocket(url), frames: [], waiters: new Set(), closed: false };
      s.w.onmessage = (e) => { s.frames.push(JSON.parse(e.data)); for (const fn of [...s.waiters]) fn(); };
      s.w.onclose = () => { s.closed = true; for (const fn of [...s.waiters]) fn(); };
      s.w.onopen = () => resolve(s);
      s.w.onerror = () => reject(new Error('WebSocket error on ' + url.split('?')[0]));
    });
    const wait = (s, what, pred) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => { s.waiters.delete(check); reject(new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(s.frames).slice(0, 600)}`)); }, 8000);
      function check() {
        const f = s.frames.find(pred);
        if (f) { clearTimeout(timer); s.waiters.delete(check); resolve(f); }
      }
      s.waiters.add(check);
      check();
    });
    const okOf = async (s, ref, what) => {
      const f = await wait(s, what, (x) => x.ref === ref && (x.type === 'ok' || x.type === 'error'));
      if (f.type === 'error') throw new Error(`${what} refused: ${f.code} ${f.message}`);
    };
    const visitor = await open(wsBase + '/v1/chat');
    visitor.w.send(JSON.stringify({ type: 'hello', site_key: 'demo' }));
    const { session_id: id } = await wait(visitor, 'welcome', (f) => f.type === 'welcome');
    visitor.w.send(JSON.stringify({ type: 'message', client_id: 'v1', text }));
    await wait(visitor, 'ack', (f) => f.type === 'ack' && f.client_id === 'v1');
    const sup = await open(wsBase + '/v1/supervise?access_token=' + encodeURIComponent(token));
    await wait(sup, 'snapshot', (f) => f.type === 'snapshot');
    sup.w.send(JSON.stringify({ type: 'take_over', session_id: id, agent_name: agent, ref: 'take' }));
    await okOf(sup, 'take', 'take_over');
    const reply = `Hello, ${agent} here. Happy to help.`;
    sup.w.send(JSON.stringify({ type: 'send', session_id: id, text: reply, client_id: 'a1', ref: 'send' }));
    await okOf(sup, 'send', 'send');
    await wait(visitor, 'the agent reply', (f) => f.type === 'message' && JSON.stringify(f).includes(reply));
    visitor.w.send(JSON.stringify({ type: 'leave' }));
    await wait(sup, 'ended', (f) => f.type === 'ended' && f.session_id === id);
    sup.w.close();
    visitor.w.close();
    return id;
  }, { token, agent, text });
}

const intText = async (loc) => Number((await loc.textContent()).trim());

test('console reports: tiles, agents table, charts, comparison and PDF export in a real browser', { timeout: 240_000 }, async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const f of fs.readdirSync(ARTIFACTS)) if (f.startsWith('reports-') || f === 'report.pdf') fs.rmSync(path.join(ARTIFACTS, f));
  const t = session(() => browser, 'reports');
  const auth = { token: ADMIN_TOKEN };
  let base, sup, org = {}, chats = [], day, restDay;

  await t.step('start hark (speech off) and let every chat be analysed', async () => {
    hark = await startHark({ token: ADMIN_TOKEN, logName: 'hark-reports.log', env: { HARK_SPEECH_ENABLED: 'false' } });
    base = hark.base;
    const s = await http('GET', `${base}/v1/analysis/settings`, auth);
    assert.equal(s.status, 200, s.text);
    const put = await http('PUT', `${base}/v1/analysis/settings`, { ...auth, body: { ...s.json, min_duration_secs: 0 } });
    assert.equal(put.status, 200, put.text);
  });

  await t.step('the admin creates a department, a desk and two agents over REST', async () => {
    const dep = await http('POST', `${base}/v1/departments`, { ...auth, body: { name: 'Customer Care' } });
    assert.equal(dep.status, 201, dep.text);
    const desk = await http('POST', `${base}/v1/desks`, { ...auth, body: { name: 'Billing desk', department_id: dep.json.id } });
    assert.equal(desk.status, 201, desk.text);
    org = { department: dep.json, desk: desk.json, agents: [] };
    for (const [i, a] of AGENTS.entries()) {
      const r = await http('POST', `${base}/v1/agents`, { ...auth, body: { name: a.name, desk_id: desk.json.id, extension: String(2001 + i) } });
      assert.equal(r.status, 201, r.text);
      org.agents.push({ ...a, id: r.json.id });
    }
  });

  await t.step(`${TOTAL} chats: a visitor writes, a supervisor takes over as the agent and answers, the visitor leaves`, async () => {
    browser = await launchBrowser();
    const driver = await bounded('driver page', t.newPage('driver', { width: 800, height: 600 }));
    await driver.goto(base + '/console'); // hark's origin, signed out: nothing else talks
    for (const a of org.agents) {
      for (let i = 0; i < a.chats; i++) {
        const id = await bounded(`chat ${i + 1} of ${a.name}`, chatInPage(driver, { token: ADMIN_TOKEN, agent: a.name, text: `Hello, I have a question about invoice ${i + 1}.` }), 20_000);
        chats.push({ id, agent: a });
      }
    }
    await driver.context().close();
    delete t.pages.driver;
  });

  await t.step('hark finalizes every chat (history rows with duration_ms, placed on their agent, analysed)', async () => {
    await until(`${TOTAL} ended sessions with duration_ms`, async () => {
      const h = await http('GET', `${base}/v1/sessions?state=ended&limit=1000`, auth);
      return h.status === 200 && chats.every((c) => h.json.some((row) => row.session_id === c.id && row.duration_ms != null && row.placement && row.placement.agent_id === c.agent.id));
    }, FINALIZE_WAIT_MS, 250);
    for (const c of chats) {
      const r = await http('GET', `${base}/v1/sessions/${c.id}`, auth);
      assert.ok(r.json.analysis, `session ${c.id} not analysed: ${r.json.analysis_skipped || r.text.slice(0, 300)}`);
    }
    // The roll-ups are written by the same finalize stage; the REST report must agree before the UI is judged.
    restDay = await until('GET /v1/reports?period=day counts every chat', async () => {
      const r = await http('GET', `${base}/v1/reports?period=day`, auth);
      return r.status === 200 && r.json.tiles.calls.value === TOTAL && r.json;
    }, FINALIZE_WAIT_MS, 250);
    day = restDay.window.date;
    for (const a of org.agents) {
      const row = restDay.agents.find((x) => x.agent_id === a.id);
      assert.ok(row, `REST agents row of ${a.name}: ${JSON.stringify(restDay.agents)}`);
      assert.equal(row.calls, a.chats, `REST calls of ${a.name}`);
      assert.equal(row.agent_name, a.name);
    }
  });

  await t.step('the supervisor opens the Reports tab: the day view, today', async () => {
    sup = await bounded('console page', t.newPage('console', { width: 1360, height: 1000 }));
    await sup.goto(base + '/console');
    await sup.getByTestId('token-input').fill(ADMIN_TOKEN);
    await sup.getByTestId('sign-in-button').click();
    await sup.getByTestId('tab-reports').click();
    await sup.getByTestId('reports-view').waitFor({ state: 'visible' });
    assert.equal(await sup.getByTestId('r-period').inputValue(), 'day');
    await until('the day report is rendered', async () => (await sup.getByTestId('report-body').getAttribute('data-period')) === 'day');
    assert.equal(await sup.getByTestId('r-date').inputValue(), day, 'the date input shows the report\'s day');
    const heading = await sup.getByTestId('report-heading').textContent();
    assert.ok(heading.includes(day) && heading.includes(restDay.compared_with.date), heading);
  });

  await t.step('tiles: calls and analysed equal the chats made and the REST answer; change arrows', async () => {
    const calls = sup.getByTestId('tile-calls');
    assert.equal(await intText(calls.locator('[data-field="value"]')), TOTAL);
    assert.equal(await intText(calls.locator('[data-field="value"]')), restDay.tiles.calls.value);
    assert.equal(await intText(sup.getByTestId('tile-analyzed').locator('[data-field="value"]')), restDay.tiles.analyzed.value);
    assert.equal(restDay.tiles.analyzed.value, TOTAL);
    // A week ago there were no chats: no percent to show, a flat dash.
    assert.equal(await calls.locator('[data-field="change"]').getAttribute('data-arrow'), '–');
    const dur = await sup.getByTestId('tile-duration').locator('[data-field="value"]').textContent();
    assert.match(dur.trim(), /^\d+:\d\d$/, 'average duration as mm:ss');
    assert.equal(await intText(sup.getByTestId('tile-alerts').locator('[data-field="value"]')), restDay.tiles.alerts.value);
    const labels = Object.keys(restDay.tiles.scores);
    assert.ok(labels.length > 0, 'the analysis gave the chats scores');
    for (const l of labels) {
      const v = restDay.tiles.scores[l].value;
      const shown = await sup.getByTestId('tile-score-' + l).locator('[data-field="value"]').textContent();
      assert.equal(shown.trim(), Number.isInteger(v) ? String(v) : v.toFixed(1), `score tile ${l}`);
    }
  });

  await t.step('change arrows and colours: up is good for calls, bad for alerts (a doctored previous period)', async () => {
    // The previous period of a fresh hark is empty (change_pct null), so the arrows are checked
    // on the real answer with only its `previous` figures changed by the test, in flight.
    const route = '**/v1/reports?period=day*';
    await sup.route(route, async (r) => {
      const res = await r.fetch();
      const d = await res.json();
      d.tiles.calls = { ...d.tiles.calls, previous: TOTAL * 2, change_pct: -50 };
      d.tiles.alerts = { ...d.tiles.alerts, value: 3, previous: 1, change_pct: 200 };
      d.tiles.analyzed = { ...d.tiles.analyzed, previous: 2, change_pct: (TOTAL - 2) / 2 * 100 };
      await r.fulfill({ response: res, json: d });
    });
    await sup.getByTestId('r-refresh').click();
    const change = (key) => sup.getByTestId('tile-' + key).locator('[data-field="change"]');
    await until('the doctored answer is shown', async () => (await change('calls').getAttribute('data-arrow')) === '▼');
    assert.equal(await change('calls').getAttribute('data-tone'), 'bad');
    assert.equal((await change('calls').textContent()).trim(), '▼ 50.0 %');
    assert.equal(await change('alerts').getAttribute('data-arrow'), '▲');
    assert.equal(await change('alerts').getAttribute('data-tone'), 'bad', 'more alerts is bad');
    assert.equal(await change('analyzed').getAttribute('data-tone'), 'good');
    assert.equal(await sup.evaluate(() => getComputedStyle(document.querySelector('[data-testid="tile-calls"] .change')).color), 'rgb(220, 38, 38)');
    await t.screenshot(sup, 'arrows');
    await sup.unroute(route);
    await sup.getByTestId('r-refresh').click();
    await until('the real answer again', async () => (await change('calls').getAttribute('data-arrow')) === '–');
  });

  await t.step('agents table: both names with their call counts, as REST says and as the test made them', async () => {
    const rows = sup.getByTestId('report-agents-rows').locator('tr[data-agent-id]');
    await until('one row per REST agents row', async () => (await rows.count()) === restDay.agents.length);
    for (const a of org.agents) {
      const tr = sup.locator(`tr[data-agent-id="${a.id}"]`);
      assert.equal((await tr.locator('[data-field="name"]').textContent()).trim(), a.name);
      assert.equal(await tr.locator('[data-field="name"]').getAttribute('dir'), 'auto');
      assert.equal(await intText(tr.locator('[data-field="calls"]')), a.chats, `${a.name}: the chats this test made`);
      assert.equal(await intText(tr.locator('[data-field="calls"]')), restDay.agents.find((x) => x.agent_id === a.id).calls);
    }
    const firstName = async () => (await rows.first().locator('[data-field="name"]').textContent()).trim();
    assert.equal(await firstName(), AGENTS[0].name, 'most calls first');
    await sup.locator('#report-agents-head button[data-sort="calls"]').click();
    assert.equal(await firstName(), AGENTS[1].name, 'calls ascending after a click');
    assert.equal(await sup.locator('#report-agents-head th[aria-sort="ascending"] button').getAttribute('data-sort'), 'calls');
    await sup.locator('#report-agents-head button[data-sort="calls"]').click();
    assert.equal(await firstName(), AGENTS[0].name, 'calls descending after a second click');
    await sup.locator('#report-agents-head button[data-sort="name"]').click();
    assert.equal(await firstName(), [...AGENTS].map((a) => a.name).sort()[0], 'by name');
    await sup.locator('#report-agents-head button[data-sort="calls"]').click();
  });

  await t.step('day chart: one bar per hourly bucket, at least one not zero, titled', async () => {
    const svg = sup.getByTestId('report-chart').locator('svg');
    assert.equal(await svg.getAttribute('data-kind'), 'bar');
    const bars = svg.locator('rect.bar');
    assert.equal(restDay.series.length, 24);
    assert.equal(await bars.count(), restDay.series.length);
    const values = await bars.evaluateAll((rs) => rs.map((r) => Number(r.dataset.value)));
    assert.deepEqual(values, restDay.series.map((b) => b.calls));
    assert.ok(values.some((v) => v > 0), 'a non-zero bar');
    const tallest = await bars.evaluateAll((rs) => Math.max(...rs.map((r) => Number(r.getAttribute('height')))));
    assert.ok(tallest > 10, `the busy hour's bar is drawn (${tallest}px)`);
    assert.match(await svg.locator('> title').textContent(), /Calls per hour/);
    // The second line: a score's mean, on its own axis.
    const label = Object.keys(restDay.tiles.scores)[0];
    await sup.getByTestId('r-second').selectOption(label);
    assert.ok((await svg.locator('.s1 polyline.line').count()) === 1 || (await sup.getByTestId('report-chart').locator('.s1 polyline.line').count()) === 1);
    await t.screenshot(sup, 'day');
    await sup.getByTestId('r-second').selectOption('');
  });

  await t.step('realtime: today so far, live sessions, and it refreshes itself', async () => {
    const rt = await http('GET', `${base}/v1/reports?period=realtime`, auth);
    assert.equal(rt.status, 200, rt.text);
    await sup.evaluate(() => { window.harkConsole.reportRefreshMs = 400; });
    await sup.getByTestId('r-period').selectOption('realtime');
    await until('the realtime report is rendered', async () => (await sup.getByTestId('report-body').getAttribute('data-period')) === 'realtime');
    assert.ok(await sup.getByTestId('r-date').isDisabled());
    assert.equal(await intText(sup.getByTestId('tile-calls').locator('[data-field="value"]')), TOTAL);
    assert.match(await sup.getByTestId('report-live').textContent(), new RegExp(`Live now: ${rt.json.live} sessions`));
    const bars = sup.getByTestId('report-chart').locator('rect.bar');
    assert.equal(await bars.count(), rt.json.series.length);
    const loads = Number(await sup.getByTestId('report-body').getAttribute('data-loads'));
    await until('the realtime view reloads by itself', async () => Number(await sup.getByTestId('report-body').getAttribute('data-loads')) >= loads + 2, 5000);
    await sup.evaluate(() => { window.harkConsole.reportRefreshMs = 30000; });
    await t.screenshot(sup, 'realtime');
  });

  await t.step('month: a line of one point per day', async () => {
    const month = day.slice(0, 7);
    const rm = await http('GET', `${base}/v1/reports?period=month&date=${month}`, auth);
    assert.equal(rm.status, 200, rm.text);
    await sup.getByTestId('r-period').selectOption('month');
    await until('the month report is rendered', async () => (await sup.getByTestId('report-body').getAttribute('data-period')) === 'month');
    assert.equal(await sup.getByTestId('r-date').inputValue(), month);
    const svg = sup.getByTestId('report-chart').locator('svg');
    assert.equal(await svg.getAttribute('data-kind'), 'line');
    assert.equal(await svg.locator('rect.bar').count(), 0);
    const line = svg.locator('.s0 polyline.line');
    assert.equal(await line.count(), 1);
    assert.equal(Number(await line.getAttribute('data-points')), rm.json.series.length);
    assert.equal((await line.getAttribute('points')).split(' ').length, rm.json.series.length);
    assert.equal(await intText(sup.getByTestId('tile-calls').locator('[data-field="value"]')), rm.json.tiles.calls.value);
    assert.equal(rm.json.tiles.calls.value, TOTAL);
    await t.screenshot(sup, 'month');
  });

  await t.step('agent comparison: Dana against Eli, then against her desk', async () => {
    const [dana, eli] = org.agents;
    await sup.getByTestId('c-agent').selectOption(dana.id);
    await sup.getByTestId('c-against').selectOption(eli.id);
    await sup.getByTestId('c-run').click();
    await sup.getByTestId('compare-result').waitFor({ state: 'visible' });
    assert.match(await sup.getByTestId('compare-name-agent').textContent(), new RegExp(dana.name));
    assert.match(await sup.getByTestId('compare-name-against').textContent(), new RegExp(eli.name));
    const calls = sup.locator('#compare-rows tr[data-metric="calls"] td');
    assert.deepEqual((await calls.allTextContents()).map(Number), [dana.chats, eli.chats]);
    const lines = sup.getByTestId('compare-chart').locator('polyline.line');
    assert.equal(await lines.count(), 2);
    await sup.getByTestId('c-against').selectOption('desk');
    await sup.getByTestId('c-run').click();
    await until('the desk side', async () => (await sup.getByTestId('compare-name-against').textContent()).includes(org.desk.name));
    const rest = await http('GET', `${base}/v1/reports/agents?agent=${dana.id}&against=desk&month=${day.slice(0, 7)}`, auth);
    assert.equal(rest.status, 200, rest.text);
    assert.equal(rest.json.against.agents, 2);
    assert.equal((await calls.allTextContents())[1], String(rest.json.against.calls)); // (3 + 1) / 2 agents
    await sup.getByTestId('compare-box').scrollIntoViewIfNeeded();
    await t.screenshot(sup, 'compare');
  });

  await t.step('usage line from /v1/usage', async () => {
    const u = await http('GET', `${base}/v1/usage`, auth);
    assert.equal(u.status, 200, u.text);
    const text = await sup.getByTestId('report-usage').textContent();
    assert.ok(text.includes(String(u.json.analyzed)) && text.includes(u.json.month), text);
  });

  await t.step('Export to PDF: the button prints; the print layout shows only the report', async () => {
    await sup.getByTestId('r-period').selectOption('day');
    await until('the day report again', async () => (await sup.getByTestId('report-body').getAttribute('data-period')) === 'day');
    await sup.evaluate(() => { window.__printed = 0; window.print = () => { window.__printed++; }; });
    await sup.getByTestId('report-print').click();
    assert.equal(await sup.evaluate(() => window.__printed), 1, 'Export to PDF calls window.print()');
    await sup.emulateMedia({ media: 'print' });
    for (const id of ['nav', 'report-form', 'compare-box', 'report-print', 'report-usage']) {
      assert.equal(await sup.getByTestId(id).isVisible(), false, `${id} is hidden in print`);
    }
    assert.equal(await sup.locator('header.top').isVisible(), false, 'the top bar is hidden in print');
    assert.equal(await sup.getByTestId('board').isVisible(), false, 'the live board is hidden in print');
    for (const id of ['report-tiles', 'report-chart', 'report-agents']) assert.ok(await sup.getByTestId(id).isVisible(), `${id} prints`);
    await t.screenshot(sup, 'print-view');
    const pdfPath = path.join(ARTIFACTS, 'report.pdf');
    await bounded('page.pdf', sup.pdf({ path: pdfPath, format: 'A4', printBackground: true }), 30_000);
    const pdf = fs.readFileSync(pdfPath);
    assert.equal(pdf.subarray(0, 5).toString(), '%PDF-', 'a PDF file');
    assert.ok(pdf.length > 5000, `a PDF with content (${pdf.length} bytes)`);
    await sup.emulateMedia({ media: 'screen' });
  });

  await t.step('a user without the reports permission gets a friendly message, and no usage line', async () => {
    const u = await http('POST', `${base}/v1/users`, { ...auth, body: { name: 'Night shift', scope: { kind: 'all' }, permissions: ['alerts'] } });
    assert.equal(u.status, 201, u.text);
    const k = await http('POST', `${base}/v1/users/${u.json.id}/tokens`, auth);
    assert.equal(k.status, 201, k.text);
    const page = await bounded('second console', t.newPage('no-reports', { width: 1200, height: 700 }));
    await page.goto(base + '/console');
    await page.getByTestId('token-input').fill(k.json.token);
    await page.getByTestId('sign-in-button').click();
    await page.getByTestId('tab-reports').click();
    const err = page.getByTestId('reports-error');
    await err.waitFor({ state: 'visible' });
    assert.match(await err.textContent(), /need the reports permission/);
    assert.equal(await err.getAttribute('data-forbidden'), 'true');
    assert.equal(await page.getByTestId('report-body').isVisible(), false);
    assert.equal(await page.getByTestId('report-usage').isVisible(), false);
    await t.screenshot(page, 'forbidden');
  });

  // The refused user's console was answered 403 on purpose (reports, usage): the only errors allowed.
  const unexpected = t.errors.filter((e) => !/^no-reports: console\.error Failed to load resource: .* 403 /.test(e));
  assert.deepEqual(unexpected, [], 'no script errors in any page');
});
