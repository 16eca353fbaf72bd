/**
 * hark chat widget — the visitor side of hark's web chat.
 *
 * Why this file exists: a site owner adds hark's live chat with ONE tag,
 *
 *   <script src="https://HOST/widget.js" data-site-key="demo" async></script>
 *
 * and gets a launcher button and a chat panel that speak the widget protocol of
 * docs/PROTOCOLS.md over ws(s)://HOST/v1/chat. The UI lives in a Shadow DOM so the
 * host page's CSS cannot break it (and ours cannot leak out). The chat survives page
 * reloads and dropped connections: resume_token, session_id, last_seq and the visible
 * log sit in sessionStorage, the socket reconnects with backoff, and unacknowledged
 * messages are re-sent with the same client_id (hark dedupes them).
 *
 * Script tag options:  data-site-key   (required) the site key hark serves
 *                      data-connect    "load" (default): connect at once;
 *                                      "open": connect on the first open/send
 * Translation:  set window.HarkWidgetStrings = { ... } before this script runs.
 * Theming:      hark-widget { --hark-accent: #0a7; } on the host page.
 * Test hook:    window.harkWidget = { open(), close(), send(text), leave(), state() }.
 */
(function () {
  'use strict';

  /** Every user-visible string of the widget. Override any of them via window.HarkWidgetStrings. */
  const STRINGS = {
    dir: 'ltr', // direction of the widget chrome; set 'rtl' together with Hebrew/Arabic strings
    title: 'Chat with us',
    botName: 'Assistant',
    liveAgent: 'Live agent {name}',
    waiting: 'Waiting for an agent…',
    agent: 'Agent',
    openChat: 'Open chat',
    closeChat: 'Minimize chat',
    endChat: 'End chat',
    placeholder: 'Type your message…',
    send: 'Send',
    sending: 'Sending…',
    notDelivered: 'Not delivered',
    unread: '{n} new messages',
    connecting: 'Connecting…',
    reconnecting: 'Connection lost — reconnecting…',
    chatEnded: 'Chat ended',
    startNewChat: 'Start new chat',
    replaced: 'This chat continued in another window.',
    continueHere: 'Continue here',
    unavailable: 'Chat is not available on this site.',
    tooLong: 'That message is too long.',
    greeting: 'Hi! Ask us anything — we usually answer right away.',
  };

  const SCRIPT = document.currentScript || document.querySelector('script[data-site-key][src*="widget.js"]');
  if (!SCRIPT || window.harkWidget) return; // not loaded by a script tag, or loaded twice
  const OVERRIDES = Object(window.HarkWidgetStrings);
  Object.assign(STRINGS, OVERRIDES);

  const SITE_KEY = SCRIPT.dataset.siteKey || 'default';
  const LAZY = SCRIPT.dataset.connect === 'open';
  const WS_URL = (() => {
    const u = new URL('v1/chat', new URL(SCRIPT.src, location.href)); // keeps a path prefix, if any
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return u.href;
  })();
  const STORE_KEY = 'hark.widget.' + SITE_KEY;
  const MAX_STORED = 300; // messages kept in sessionStorage for a reload
  const MAX_CHARS = 2000; // chat.max_text_chars
  const MAX_FRAME_BYTES = 8192; // chat.max_frame_bytes
  const RATE = 4, BURST = 10; // stay under chat.rate_per_sec / chat.rate_burst (5 / 20)

  // ---- state -------------------------------------------------------------------------------

  /** @type {{seq:number|null, role:string, name:string|null, text:string, at:string, clientId?:string, status?:string, notice?:object}[]} */
  let messages = [];
  let sessionId = null, resumeToken = null, lastSeq = 0;
  let holder = { kind: 'bot' };
  let isOpen = false, unread = 0;
  let phase = 'idle'; // idle | connecting | live | ended | replaced | unavailable
  let connected = false; // a welcome arrived on the current socket
  let flash = ''; // a short-lived status line (e.g. "too long")

  let ws = null, attempt = 0, retryTimer = null, flushTimer = null, flashTimer = null;
  let welcomeSeq = 0; // entries up to this seq are replayed history: their notices are not news
  let sentHere = new Set(); // client_ids sent on the current socket
  let tokens = BURST, tokensAt = 0;

  function restore() {
    let s = null;
    try { s = JSON.parse(sessionStorage.getItem(STORE_KEY)); } catch (_) { /* unavailable or corrupt */ }
    if (!s || typeof s !== 'object') return;
    sessionId = s.session_id || null;
    resumeToken = s.resume_token || null;
    lastSeq = Number(s.last_seq) || 0;
    holder = s.holder || holder;
    isOpen = !!s.open;
    messages = Array.isArray(s.messages) ? s.messages : [];
  }

  function save() {
    try {
      sessionStorage.setItem(STORE_KEY, JSON.stringify({
        session_id: sessionId, resume_token: resumeToken, last_seq: lastSeq,
        holder, open: isOpen, messages: messages.slice(-MAX_STORED),
      }));
    } catch (_) { /* storage full or blocked: the chat still works, it just won't survive a reload */ }
  }

  function forgetSession() {
    sessionId = null; resumeToken = null; lastSeq = 0; welcomeSeq = 0;
    holder = { kind: 'bot' };
  }

  // ---- helpers -----------------------------------------------------------------------------

  const fmt = (s, vars) => String(s).replace(/\{(\w+)\}/g, (m, k) => (vars && k in vars ? vars[k] : m));

  function newClientId() {
    const c = window.crypto;
    if (c && typeof c.randomUUID === 'function') return c.randomUUID(); // secure contexts only
    const b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (let i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  const bySeq = (seq) => messages.find((m) => m.seq === seq);
  const byClientId = (id) => id && messages.find((m) => m.clientId === id);
  const bumpSeq = (seq) => { if (Number.isInteger(seq) && seq > lastSeq) lastSeq = seq; };

  /** Acknowledged/received entries in seq order; visitor messages still pending stay at the end. */
  function sortMessages() {
    messages.sort((a, b) => (a.seq == null ? Infinity : a.seq) - (b.seq == null ? Infinity : b.seq) || 0);
  }

  function holderLabel(h) {
    if (h && h.kind === 'agent') return fmt(STRINGS.liveAgent, { name: h.name || STRINGS.agent });
    if (h && h.kind === 'waiting') return fmt(STRINGS.waiting, { queue: h.queue || '' });
    return STRINGS.botName;
  }

  function showFlash(text) {
    flash = text;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => { flash = ''; render(); }, 4000);
    render();
  }

  // ---- connection --------------------------------------------------------------------------

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (ws) return;
    phase = 'connecting';
    let sock;
    try {
      sock = new WebSocket(WS_URL);
    } catch (_) {
      scheduleReconnect();
      return;
    }
    ws = sock;
    sock.onopen = () => {
      const hello = { type: 'hello', site_key: SITE_KEY };
      if (resumeToken) { hello.resume_token = resumeToken; hello.last_seq = lastSeq; }
      sock.send(JSON.stringify(hello));
    };
    sock.onmessage = (ev) => { if (ws === sock) onFrame(ev.data); };
    sock.onclose = (ev) => { if (ws === sock) { ws = null; onClose(ev.code); } };
    render();
  }

  /** Closes the current socket without reacting to its close. */
  function drop() {
    const sock = ws;
    ws = null;
    connected = false;
    if (sock) try { sock.close(1000); } catch (_) { /* already closing */ }
  }

  function scheduleReconnect() {
    phase = 'connecting';
    const base = Math.min(10000, 500 * 2 ** attempt);
    attempt++;
    const delay = Math.min(10000, base * (0.75 + Math.random() * 0.5)); // ±25 % jitter
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, delay);
    render();
  }

  /** Retry at once when the network or the tab comes back, instead of waiting out the backoff. */
  function retryNow() {
    if (retryTimer && !ws) connect();
  }

  function onClose(code) {
    const welcomed = connected;
    connected = false;
    clearTimeout(flushTimer);
    flushTimer = null;
    switch (code) {
      case 1000: // session ended (the visitor left, or the session ended on hark's side)
        endChat();
        break;
      case 4404: // unknown session: forget it and start a new one (pending messages go there)
        startOver();
        break;
      case 4401: // unknown site key: nothing to retry
        phase = 'unavailable';
        break;
      case 4409: // replaced by a newer connection (another tab): don't fight over the session
        phase = 'replaced';
        break;
      case 4400: // a frame hark cannot use…
      case 1009: { // …or one too big.
        if (!welcomed) { // the hello itself was refused (e.g. a last_seq hark no longer has)
          if (resumeToken) startOver();
          else scheduleReconnect();
          break;
        }
        // hark handles frames in order and acks each, so the culprit is the first message
        // sent on this socket and still unacknowledged.
        const bad = messages.find((m) => m.status === 'pending' && sentHere.has(m.clientId));
        if (bad) bad.status = 'failed';
        save();
        scheduleReconnect();
        break;
      }
      default: // network drop, 1001 shutdown, 4408, 4429, …
        scheduleReconnect();
    }
    render();
  }

  /** Forgets the session hark no longer has and starts a new one; pending messages go there. */
  function startOver() {
    forgetSession();
    messages = messages.filter((m) => m.status === 'pending');
    save();
    connect();
  }

  function onFrame(data) {
    let f;
    try { f = JSON.parse(data); } catch (_) { return; }
    if (!f || typeof f !== 'object') return;
    if (f.type === 'welcome') onWelcome(f);
    else if (f.type === 'ack') onAck(f);
    else if (f.type === 'message') onMessage(f);
    else if (f.type === 'holder' && f.holder) holder = f.holder;
    else return;
    save();
    render();
  }

  function onWelcome(f) {
    if (f.session_id !== sessionId) {
      // A different session than the one on screen: keep only what still has to be delivered.
      messages = messages.filter((m) => m.status === 'pending');
      lastSeq = 0;
    }
    sessionId = f.session_id;
    resumeToken = f.resume_token;
    welcomeSeq = Number(f.last_seq) || 0;
    if (f.holder) holder = f.holder;
    if (typeof f.bot_name === 'string' && f.bot_name && !('botName' in OVERRIDES)) STRINGS.botName = f.bot_name; // optional field
    connected = true;
    phase = 'live';
    attempt = 0;
    sentHere = new Set();
    tokens = BURST;
    tokensAt = Date.now();
    flush();
  }

  function onAck(f) {
    const m = byClientId(f.client_id);
    if (!m) return;
    if (m.seq == null && !bySeq(f.seq)) m.seq = f.seq;
    m.status = 'sent';
    bumpSeq(f.seq);
    sortMessages();
  }

  function onMessage(f) {
    const author = f.author || {};
    if (author.role === 'visitor' && f.client_id) {
      // The visitor's own entry, replayed after a resume: it acknowledges a local message.
      const mine = byClientId(f.client_id);
      if (mine) {
        if (mine.seq == null && !bySeq(f.seq)) mine.seq = f.seq;
        mine.status = 'sent';
        bumpSeq(f.seq);
        sortMessages();
        return;
      }
    }
    if (!Number.isInteger(f.seq) || f.seq <= lastSeq || bySeq(f.seq)) return; // seen already
    messages.push({
      seq: f.seq,
      role: author.role || 'system',
      name: author.name || null,
      text: String(f.text == null ? '' : f.text),
      at: f.at || new Date().toISOString(),
      clientId: f.client_id || undefined,
      status: author.role === 'visitor' ? 'sent' : undefined,
      notice: f.notice || undefined,
    });
    bumpSeq(f.seq);
    sortMessages();
    if (!isOpen && author.role !== 'visitor') unread++;
    if (f.notice && f.seq > welcomeSeq) applyNotice(f.notice); // replayed notices are old news
  }

  function applyNotice(n) {
    if (n.kind === 'agent_joined') holder = { kind: 'agent', name: n.agent };
    else if (n.kind === 'agent_left') holder = { kind: 'bot' };
    else if (n.kind === 'transferred') holder = { kind: 'waiting', queue: n.to };
  }

  /** Sends pending messages not yet sent on this socket, under a client-side rate limit. */
  function flush() {
    if (!connected || !ws) return;
    const now = Date.now();
    tokens = Math.min(BURST, tokens + ((now - tokensAt) / 1000) * RATE);
    tokensAt = now;
    for (const m of messages) {
      if (m.status !== 'pending' || sentHere.has(m.clientId)) continue;
      if (tokens < 1) {
        if (!flushTimer) flushTimer = setTimeout(() => { flushTimer = null; flush(); }, 1000 / RATE);
        return;
      }
      tokens -= 1;
      sentHere.add(m.clientId);
      ws.send(JSON.stringify({ type: 'message', client_id: m.clientId, text: m.text }));
    }
  }

  function endChat() {
    drop();
    clearTimeout(retryTimer);
    retryTimer = null;
    phase = 'ended';
    for (const m of messages) if (m.status === 'pending') m.status = 'failed';
    forgetSession();
    try { sessionStorage.removeItem(STORE_KEY); } catch (_) { /* ignore */ }
    render();
  }

  // ---- public actions ----------------------------------------------------------------------

  function open() {
    isOpen = true;
    unread = 0;
    if (phase === 'idle') connect();
    save();
    render({ scroll: true });
    if (ui.input) ui.input.focus();
  }

  function close() {
    isOpen = false;
    save();
    render();
  }

  /** Queues a visitor message; returns its client_id, or null if it cannot be sent. */
  function send(text) {
    text = String(text == null ? '' : text).trim();
    if (!text || phase === 'ended' || phase === 'unavailable') return null;
    const clientId = newClientId();
    const frame = JSON.stringify({ type: 'message', client_id: clientId, text });
    if ([...text].length > MAX_CHARS || new TextEncoder().encode(frame).length > MAX_FRAME_BYTES) {
      showFlash(STRINGS.tooLong);
      return null;
    }
    messages.push({ seq: null, role: 'visitor', name: null, text, at: new Date().toISOString(), clientId, status: 'pending' });
    save();
    if (phase === 'idle' || phase === 'replaced') { attempt = 0; connect(); }
    flush();
    render({ scroll: true });
    return clientId;
  }

  /** The visitor ends the chat; hark answers by closing with 1000. */
  function leave() {
    if (ws && connected) ws.send(JSON.stringify({ type: 'leave' }));
    else endChat();
  }

  function startNewChat() {
    drop();
    messages = [];
    forgetSession();
    attempt = 0;
    phase = 'idle';
    save();
    connect();
    render();
    if (ui.input) ui.input.focus();
  }

  function state() {
    return {
      sessionId, lastSeq, holder: { ...holder }, connected, phase, open: isOpen,
      messages: messages.map((m) => ({
        seq: m.seq, role: m.role, name: m.name, text: m.text, clientId: m.clientId || null, status: m.status || null,
      })),
    };
  }

  // ---- UI ----------------------------------------------------------------------------------

  const CSS = `
:host { all: initial; }
.root { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; color: #1f2328;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", Arial, sans-serif; }
.root[dir=rtl] { right: auto; left: 20px; }
button { font: inherit; cursor: pointer; }
.launcher { position: relative; width: 56px; height: 56px; border: 0; border-radius: 50%; padding: 0;
  display: grid; place-items: center; color: #fff; background: var(--hark-accent, #2563eb);
  box-shadow: 0 6px 18px rgba(0,0,0,.25); transition: transform .15s; }
.launcher:hover { transform: scale(1.06); }
.launcher:focus-visible, .panel button:focus-visible { outline: 3px solid #93c5fd; outline-offset: 2px; }
.badge { position: absolute; top: -2px; right: -2px; min-width: 20px; height: 20px; padding: 0 5px;
  box-sizing: border-box; border-radius: 10px; background: #dc2626; color: #fff; font-size: 12px;
  line-height: 20px; text-align: center; }
.badge[hidden], [hidden] { display: none !important; }
.panel { position: absolute; right: 0; bottom: 72px; width: 360px; height: 540px;
  max-height: calc(100vh - 110px); display: flex; flex-direction: column; overflow: hidden;
  background: #fff; border-radius: 14px; box-shadow: 0 12px 40px rgba(0,0,0,.28); }
.root[dir=rtl] .panel { right: auto; left: 0; }
header { display: flex; align-items: center; gap: 8px; padding: 12px 12px 12px 16px; color: #fff;
  background: var(--hark-accent, #2563eb); }
.who { flex: 1; min-width: 0; }
.title { font-weight: 600; font-size: 15px; }
.agent { font-size: 12px; opacity: .9; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.agent[data-holder=agent]::before { content: ""; display: inline-block; width: 8px; height: 8px;
  margin-inline-end: 6px; border-radius: 50%; background: #4ade80; }
header button { border: 0; background: rgba(255,255,255,.16); color: #fff; border-radius: 8px;
  padding: 5px 9px; font-size: 12px; }
header button:hover { background: rgba(255,255,255,.3); }
.status { padding: 6px 12px; font-size: 12px; background: #fef3c7; color: #713f12; display: flex;
  gap: 8px; align-items: center; justify-content: space-between; }
.status button { border: 1px solid #a16207; background: transparent; color: inherit; border-radius: 6px;
  padding: 2px 8px; font-size: 12px; }
.messages { flex: 1; overflow-y: auto; margin: 0; padding: 12px; list-style: none; display: flex;
  flex-direction: column; gap: 6px; background: #f6f8fa; }
.greeting { color: #57606a; text-align: center; font-size: 13px; margin: 24px 12px; }
.msg { display: flex; flex-direction: column; align-items: flex-start; max-width: 100%; }
.msg.visitor { align-items: flex-end; }
.msg.system { align-items: center; }
.name { font-size: 11px; color: #57606a; margin: 2px 8px; }
.bubble { max-width: 80%; padding: 8px 12px; border-radius: 14px; white-space: pre-wrap;
  overflow-wrap: anywhere; unicode-bidi: plaintext; text-align: start; background: #fff;
  border: 1px solid #d0d7de; }
.msg.visitor .bubble { background: var(--hark-accent, #2563eb); color: #fff; border-color: transparent; }
.msg.agent .bubble { border-color: #86efac; background: #f0fdf4; }
.msg.system .bubble { background: transparent; border: 0; color: #57606a; font-size: 12px;
  font-style: italic; text-align: center; padding: 2px 8px; }
.msg[data-status=pending] .bubble { opacity: .65; }
.msg[data-status=failed] .bubble { background: #fee2e2; color: #7f1d1d; }
.meta { font-size: 11px; color: #57606a; margin: 1px 8px; }
.ended { padding: 14px; text-align: center; border-top: 1px solid #d0d7de; }
.ended p { margin: 0 0 8px; color: #57606a; }
.primary { border: 0; border-radius: 8px; padding: 8px 14px; color: #fff; background: var(--hark-accent, #2563eb); }
form { display: flex; gap: 8px; align-items: flex-end; padding: 10px; margin: 0; border-top: 1px solid #d0d7de; }
textarea { flex: 1; resize: none; box-sizing: border-box; min-height: 38px; max-height: 120px; margin: 0;
  padding: 8px 10px; border: 1px solid #d0d7de; border-radius: 10px; font: inherit; color: inherit;
  background: #fff; unicode-bidi: plaintext; }
textarea:focus { outline: 2px solid var(--hark-accent, #2563eb); outline-offset: -1px; }
.send { width: 38px; height: 38px; flex: none; border: 0; border-radius: 10px; display: grid;
  place-items: center; color: #fff; background: var(--hark-accent, #2563eb); padding: 0; }
.send:disabled, textarea:disabled { opacity: .5; cursor: default; }
.root[dir=rtl] .send svg { transform: scaleX(-1); }
@media (max-width: 480px) {
  .panel { position: fixed; inset: 0; width: auto; height: auto; max-height: none; border-radius: 0; }
  .root.open .launcher { display: none; }
}`;

  const ICON_CHAT = '<svg width="26" height="26" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"/></svg>';
  const ICON_CLOSE = '<svg width="26" height="26" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" aria-hidden="true"><path d="M6 6l12 12M18 6L6 18"/></svg>';
  const ICON_SEND = '<svg width="18" height="18" viewBox="0 0 24 24" fill="currentColor" aria-hidden="true"><path d="M3 20.5V14l9-2-9-2V3.5L22 12z"/></svg>';

  /** Tiny element builder: h('div', {class: 'x', id: 'y'}, child, 'text', …). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'html') el.innerHTML = v; // only ever our own constant SVG icons
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c != null) el.append(c);
    return el;
  }
  const tid = (id) => ({ id, 'data-testid': id });

  const ui = {};
  const msgEls = new Map(); // message object -> <li>

  function build() {
    const host = document.createElement('hark-widget');
    host.setAttribute('data-testid', 'hark-widget');
    const root = host.attachShadow({ mode: 'open' });
    if ('adoptedStyleSheets' in root && typeof CSSStyleSheet === 'function' && 'replaceSync' in CSSStyleSheet.prototype) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS); // constructed sheets also work under a strict style-src CSP
      root.adoptedStyleSheets = [sheet];
    } else {
      root.append(h('style', {}, CSS));
    }

    ui.launcher = h('button', { ...tid('hark-launcher'), class: 'launcher', type: 'button', onclick: () => (isOpen ? close() : open()) });
    ui.badge = h('span', { ...tid('hark-unread'), class: 'badge', hidden: true });
    ui.agent = h('div', { ...tid('hark-agent-name'), class: 'agent' });
    ui.leave = h('button', { ...tid('hark-leave'), type: 'button', onclick: leave }, STRINGS.endChat);
    ui.close = h('button', { ...tid('hark-close'), type: 'button', 'aria-label': STRINGS.closeChat, onclick: close }, '—');
    ui.statusText = h('span', {});
    ui.statusAction = h('button', { type: 'button', ...tid('hark-status-action'), hidden: true, onclick: () => { attempt = 0; phase = 'idle'; connect(); } }, STRINGS.continueHere);
    ui.status = h('div', { ...tid('hark-status'), class: 'status', role: 'status', hidden: true }, ui.statusText, ui.statusAction);
    ui.greeting = h('li', { class: 'greeting', dir: 'auto' }, STRINGS.greeting);
    ui.list = h('ol', { ...tid('hark-messages'), class: 'messages', 'aria-live': 'polite' });
    ui.newChat = h('button', { ...tid('hark-new-chat'), class: 'primary', type: 'button', onclick: startNewChat }, STRINGS.startNewChat);
    ui.ended = h('div', { ...tid('hark-ended'), class: 'ended', hidden: true }, h('p', {}, STRINGS.chatEnded), ui.newChat);
    ui.input = h('textarea', {
      ...tid('hark-input'), dir: 'auto', rows: '1', maxlength: String(MAX_CHARS),
      placeholder: STRINGS.placeholder, 'aria-label': STRINGS.placeholder,
    });
    ui.send = h('button', { ...tid('hark-send'), class: 'send', type: 'submit', 'aria-label': STRINGS.send, title: STRINGS.send, html: ICON_SEND });
    ui.form = h('form', { ...tid('hark-composer') }, ui.input, ui.send);
    ui.panel = h('section', { ...tid('hark-panel'), class: 'panel', role: 'dialog', 'aria-label': STRINGS.title, hidden: true },
      h('header', {}, h('div', { class: 'who' }, h('div', { class: 'title' }, STRINGS.title), ui.agent), ui.leave, ui.close),
      ui.status, ui.list, ui.ended, ui.form);
    ui.root = h('div', { class: 'root', dir: STRINGS.dir }, ui.panel, ui.launcher);
    root.append(ui.root);

    ui.form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (send(ui.input.value)) { ui.input.value = ''; autosize(); }
    });
    ui.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); ui.form.requestSubmit(); }
    });
    ui.input.addEventListener('input', autosize);
    ui.root.addEventListener('keydown', (e) => { if (e.key === 'Escape' && isOpen) { close(); ui.launcher.focus(); } });
    document.body.append(host);
  }

  function autosize() {
    ui.input.style.height = 'auto';
    ui.input.style.height = Math.min(ui.input.scrollHeight + 2, 120) + 'px';
  }

  function nameOf(m) {
    if (m.role === 'bot') return STRINGS.botName;
    if (m.role === 'agent') return m.name || STRINGS.agent;
    return null; // the visitor's own and system messages carry no name line
  }

  function messageEl(m) {
    let el = msgEls.get(m);
    if (!el) {
      const name = nameOf(m);
      el = h('li', { class: 'msg ' + m.role, 'data-role': m.role },
        name ? h('div', { class: 'name', dir: 'auto' }, name) : null,
        h('div', { class: 'bubble', dir: 'auto' }, m.text),
        h('div', { class: 'meta' }));
      msgEls.set(m, el);
    }
    if (m.seq != null) el.dataset.seq = m.seq;
    if (m.clientId) el.dataset.clientId = m.clientId;
    if (m.status) el.dataset.status = m.status;
    el.lastChild.textContent = m.status === 'pending' ? STRINGS.sending : m.status === 'failed' ? STRINGS.notDelivered : '';
    el.lastChild.hidden = !el.lastChild.textContent;
    return el;
  }

  function render(opts) {
    if (!ui.root) return;
    ui.root.classList.toggle('open', isOpen);
    ui.panel.hidden = !isOpen;
    if (ui.launcher.dataset.open !== String(isOpen)) {
      ui.launcher.dataset.open = String(isOpen);
      ui.launcher.innerHTML = isOpen ? ICON_CLOSE : ICON_CHAT;
      ui.launcher.append(ui.badge);
      ui.launcher.setAttribute('aria-label', isOpen ? STRINGS.closeChat : STRINGS.openChat);
      ui.launcher.setAttribute('aria-expanded', String(isOpen));
    }
    ui.badge.hidden = isOpen || unread === 0;
    ui.badge.textContent = unread > 9 ? '9+' : String(unread);
    ui.badge.title = fmt(STRINGS.unread, { n: unread });

    ui.agent.textContent = holderLabel(holder);
    ui.agent.dataset.holder = holder.kind || 'bot';

    let status = flash, action = false;
    if (!status) {
      if (phase === 'connecting') status = attempt > 0 || sessionId ? STRINGS.reconnecting : STRINGS.connecting;
      else if (phase === 'replaced') { status = STRINGS.replaced; action = true; }
      else if (phase === 'unavailable') status = STRINGS.unavailable;
    }
    ui.status.hidden = !status;
    ui.statusText.textContent = status;
    ui.statusAction.hidden = !action;

    const ended = phase === 'ended', dead = ended || phase === 'unavailable';
    ui.ended.hidden = !ended;
    ui.form.hidden = ended;
    ui.input.disabled = dead;
    ui.send.disabled = dead;
    ui.leave.hidden = dead || !sessionId;

    // Keyed list sync: reuse each message's <li>, fix order, drop the rest.
    const list = ui.list;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
    const want = messages.length ? messages.map(messageEl) : [ui.greeting];
    want.forEach((el, i) => { if (list.children[i] !== el) list.insertBefore(el, list.children[i] || null); });
    while (list.children.length > want.length) list.lastChild.remove();
    for (const m of msgEls.keys()) if (!messages.includes(m)) msgEls.delete(m);
    if (atBottom || (opts && opts.scroll)) list.scrollTop = list.scrollHeight;
  }

  // ---- start -------------------------------------------------------------------------------

  window.harkWidget = { open, close, send, leave, state };
  restore();

  function start() {
    build();
    render({ scroll: true });
    if (resumeToken || !LAZY) connect();
    window.addEventListener('online', retryNow);
    document.addEventListener('visibilitychange', () => { if (!document.hidden) retryNow(); });
  }

  if (document.body) start();
  else document.addEventListener('DOMContentLoaded', start);
})();
