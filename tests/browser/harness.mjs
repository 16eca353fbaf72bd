// Shared helpers of the browser specs (chat, console, reports): bounded waits, free ports, a
// hark process with a temporary data dir, Chromium pages that record script errors, named steps
// that photograph every page on failure.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const HARK_BIN = path.resolve(REPO, process.env.HARK_BIN || 'target/debug/hark');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const ARTIFACTS = path.join(REPO, 'artifacts', 'browser');
/** The shared fixtures beside the repository, as the Rust tests find them (common::fixtures()). */
export const FIXTURES = process.env.HARK_FIXTURES || path.resolve(REPO, '..', 'shared', 'fixtures');
export const WAIT_MS = 10_000; // the default bound of every wait

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value (returned), or throws after `ms` naming `what`. */
export async function until(what, fn, ms = WAIT_MS, every = 100) {
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
    await sleep(every);
  }
}

/** Promise.race with a timer, for calls that have no timeout of their own. */
export async function bounded(what, promise, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); });
  try { return await Promise.race([promise, timeout]); } finally { clearTimeout(timer); }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

/** A port free for both UDP and TCP on loopback (SIP listens on both). */
export async function freeUdpTcpPort() {
  for (let i = 0; i < 50; i++) {
    const udp = dgram.createSocket('udp4');
    const port = await new Promise((resolve, reject) => { udp.once('error', reject); udp.bind(0, '127.0.0.1', () => resolve(udp.address().port)); });
    const tcpOk = await new Promise((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    await new Promise((r) => udp.close(r));
    if (tcpOk) return port;
  }
  throw new Error('no port free for both UDP and TCP');
}

export async function http(method, url, { token, body, form } = {}) {
  const headers = {};
  if (token) headers.authorization = 'Bearer ' + token;
  if (body) headers['content-type'] = 'application/json';
  const r = await fetch(url, { method, headers, body: form || (body && JSON.stringify(body)), signal: AbortSignal.timeout(WAIT_MS) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
  return { status: r.status, json, text, headers: r.headers };
}

// ---- hark --------------------------------------------------------------------------------------

const harks = new Set();

/** Starts hark on a free port with a temporary data dir; `env` adds to (or overrides) the defaults. */
export async function startHark({ token, env = {}, logName = 'hark.log' }) {
  assert.ok(fs.existsSync(HARK_BIN), `hark binary not found at ${HARK_BIN} (build it with: cargo build --bin hark)`);
  const logPath = path.join(ARTIFACTS, logName);
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
        HARK_ADMIN_TOKEN: token,
        HARK_DATABASE_URL: '', // SQLite in the temp dir, whatever the caller's environment says
        HARK_SIP_ADDR: '',
        HARK_AUDIOSOCKET_ADDR: '',
        HARK_SPEECH_MODELS_DIR: process.env.HARK_SPEECH_MODELS_DIR || path.join(REPO, 'models'),
        NO_COLOR: '1',
        ...(typeof env === 'function' ? await env() : env),
      },
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    const hark = { proc, base: `http://127.0.0.1:${port}`, dataDir, logPath, exited: null };
    harks.add(hark);
    const exit = new Promise((_, reject) => proc.on('exit', (code, signal) => {
      hark.exited = { code, signal };
      reject(new Error(`hark exited early (${JSON.stringify(hark.exited)}), see ${logPath}`));
    }));
    exit.catch(() => {});
    try {
      await Promise.race([exit, until(`hark /readyz on port ${port}`, async () => {
        if (hark.exited) return true;
        const r = await fetch(hark.base + '/readyz', { signal: AbortSignal.timeout(1000) });
        return r.status === 200;
      }, 30_000)]);
      return hark;
    } catch (e) {
      const early = hark.exited;
      await stopHark(hark);
      if (!early || attempt >= 3) throw e; // a port taken between the probe and the bind: retry
    }
  }
}

export async function stopHark(hark) {
  if (!hark || !harks.has(hark)) return;
  harks.delete(hark);
  const { proc, dataDir } = hark;
  if (proc.exitCode === null && proc.signalCode === null) {
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
}

/** Last resort when we cannot wait (Ctrl-C, a killed make). */
function killAllNow() {
  for (const hark of harks) {
    try { hark.proc.kill('SIGKILL'); } catch (_) { /* gone */ }
    try { fs.rmSync(hark.dataDir, { recursive: true, force: true }); } catch (_) { /* best effort */ }
  }
  harks.clear();
}
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => { killAllNow(); process.exit(130); });
process.once('exit', killAllNow);

// ---- browser -----------------------------------------------------------------------------------

export async function launchBrowser() {
  assert.ok(fs.existsSync(CHROMIUM), `no browser at ${CHROMIUM} (apt-get install chromium)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Pages by name, their script errors, numbered screenshots and named steps; `getBrowser()`
 * answers the browser once it is launched. */
export function session(getBrowser, prefix) {
  const pages = {};
  const errors = [];
  let shot = 0, stepNo = 0;
  return {
    pages,
    errors,
    async newPage(name, viewport, options = {}) {
      const context = await getBrowser().newContext({ viewport, locale: 'en-US', ...options });
      context.setDefaultTimeout(WAIT_MS);
      context.setDefaultNavigationTimeout(WAIT_MS);
      const page = await context.newPage();
      page.on('pageerror', (e) => errors.push(`${name}: uncaught ${e.message}`));
      page.on('console', (m) => { if (m.type() === 'error') errors.push(`${name}: console.error ${m.text()}`); });
      pages[name] = page;
      return page;
    },
    async screenshot(page, name) {
      shot++;
      await page.screenshot({ path: path.join(ARTIFACTS, `${prefix}-${String(shot).padStart(2, '0')}-${name}.png`), timeout: WAIT_MS });
    },
    /** One named step; a failure says which, and every page is photographed. */
    async step(name, fn) {
      stepNo++;
      const t0 = Date.now();
      try {
        await fn();
      } catch (e) {
        for (const [pname, page] of Object.entries(pages)) {
          await page.screenshot({ path: path.join(ARTIFACTS, `${prefix}-FAILED-${pname}.png`), timeout: 5000 }).catch(() => {});
        }
        e.message = `step ${stepNo} "${name}": ${e.message}`;
        throw e;
      }
      console.log(`# step ${stepNo} ok: ${name} (${Date.now() - t0} ms)`);
    },
  };
}
