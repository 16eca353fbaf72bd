/**
 * hark supervisor console — the browser side of /console.
 *
 * Why this file exists: a supervisor signs in with a bearer token and sees every live
 * session of the tenant as a card that updates as it happens; clicking a card watches the
 * conversation, and from there the supervisor can take over from the bot, reply, leave, or
 * transfer to an agent or group. It speaks the supervisor socket of docs/PROTOCOLS.md
 * (ws(s)://HOST/v1/supervise?access_token=TOKEN) and reconnects with backoff, re-watching and
 * re-taking-over what it had, so a network blip costs the supervisor nothing.
 *
 * Plain ES2020, no build step. All user-visible strings are in STRINGS below.
 */
(function () {
  'use strict';

  /** Every user-visible string of the console (the HTML only names keys, via data-s*). */
  const STRINGS = {
    title: 'hark — live sessions',
    signInTitle: 'Supervisor sign-in',
    tokenLabel: 'Access token',
    tokenPlaceholder: 'Paste your bearer token',
    signIn: 'Sign in',
    signOut: 'Sign out',
    signInFailed: 'Sign-in failed: the token was refused.',
    connecting: 'Connecting…',
    connected: 'Live',
    reconnecting: 'Reconnecting…',
    liveCount: '{n} live',
    noSessions: 'No live sessions right now.',
    noCountry: '—',
    noSentiment: '—',
    messageCount: '{n} msgs',
    noMessages: 'No messages yet',
    holderBot: 'Bot',
    holderAgent: 'Agent {name}',
    holderWaiting: 'Waiting · {queue}',
    youHold: 'You hold this chat as {name}',
    visitorOnline: 'Visitor online',
    visitorOffline: 'Visitor offline',
    sentiment: 'Sentiment',
    duration: 'Duration',
    device: 'Device',
    country: 'Country',
    ended: 'Session ended',
    endedReason: 'Session ended ({reason})', // used when hark gives a reason, else `ended`
    sessionTitle: 'Session {id}',
    close: 'Close',
    agentName: 'Your display name',
    needName: 'Enter your display name first.',
    takeOver: 'Take over',
    leave: 'Leave',
    replyPlaceholder: 'Reply to the visitor… (Enter sends)',
    send: 'Send',
    transferGroup: 'to group',
    transferAgent: 'to agent',
    transferTo: 'Agent name or group',
    transfer: 'Transfer',
    roles: { visitor: 'Visitor', bot: 'Bot', agent: 'Agent', system: 'System', customer: 'Customer' },
    speaking: 'speaking…',
    errors: {
      held: 'Take-over refused — {message}',
      unknown_session: 'This session is no longer live.',
      not_holder: 'You do not hold this chat — take it over first.',
      bad_request: 'Request refused: {message}',
      other: 'Error ({code}): {message}',
    },
  };

  const TOKEN_KEY = 'hark.console.token';
  const AGENT_KEY = 'hark.console.agentName';
  const ENDED_LINGER_MS = 5000; // an ended card fades out instead of vanishing

  // ---- helpers -----------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);
  const fmt = (s, vars) => String(s).replace(/\{(\w+)\}/g, (m, k) => (vars && k in vars ? vars[k] : m));
  const store = {
    get: (k) => { try { return localStorage.getItem(k) || ''; } catch (_) { return ''; } },
    set: (k, v) => { try { if (v) localStorage.setItem(k, v); else localStorage.removeItem(k); } catch (_) { /* blocked */ } },
  };

  /** Tiny element builder: h('div', {class: 'x'}, child, 'text', …). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c != null) el.append(c);
    return el;
  }

  function newClientId() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
  }

  function formatDuration(secs) {
    secs = Math.max(0, Math.floor(secs));
    const hh = Math.floor(secs / 3600), mm = Math.floor((secs % 3600) / 60), ss = secs % 60;
    const two = (n) => String(n).padStart(2, '0');
    return hh ? `${hh}:${two(mm)}:${two(ss)}` : `${mm}:${two(ss)}`;
  }

  function formatTime(at) {
    const d = new Date(at);
    return isNaN(d) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function holderText(hd) {
    if (hd && hd.kind === 'agent') return fmt(STRINGS.holderAgent, { name: hd.name || '?' });
    if (hd && hd.kind === 'waiting') return fmt(STRINGS.holderWaiting, { queue: hd.queue || '?' });
    return STRINGS.holderBot;
  }

  function endedText(c) {
    return c.end_reason ? fmt(STRINGS.endedReason, { reason: c.end_reason }) : STRINGS.ended;
  }

  /** Sentiment is filled by later analysis stages; accept a number, a label or {label, score}. */
  function sentimentView(s) {
    if (s == null) return { text: STRINGS.noSentiment, tone: 'none' };
    const score = typeof s === 'number' ? s : typeof s === 'object' && typeof s.score === 'number' ? s.score : null;
    const label = typeof s === 'string' ? s : typeof s === 'object' && s.label ? String(s.label) : null;
    const tone = score != null ? (score > 0.2 ? 'positive' : score < -0.2 ? 'negative' : 'neutral')
      : /pos/i.test(label || '') ? 'positive' : /neg/i.test(label || '') ? 'negative' : 'neutral';
    const text = label || (score != null ? (score > 0 ? '+' : '') + score.toFixed(2) : JSON.stringify(s));
    return { text, tone };
  }

  // ---- state -------------------------------------------------------------------------------

  let token = store.get(TOKEN_KEY);
  let ws = null, attempt = 0, retryTimer = null;
  let generation = 0; // bumped on sign-in/out so stale sockets and probes are ignored
  let everOpened = false; // did a socket open since this sign-in?
  let nextRef = 1;
  const pending = new Map(); // ref -> {type, session_id, text}
  const cards = new Map(); // session_id -> card
  const endedAt = new Map(); // session_id -> timer of an ended card still on screen
  const holding = new Map(); // session_id -> agent name we hold it as
  let watching = null; // session_id shown in the panel
  let log = []; // log entries of the watched session, in seq order

  // ---- socket ------------------------------------------------------------------------------

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (ws || !token) return;
    const gen = generation;
    const url = new URL('/v1/supervise', location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('access_token', token);
    setConn(attempt ? 'reconnecting' : 'connecting');
    let sock;
    try { sock = new WebSocket(url.href); } catch (_) { scheduleReconnect(); return; }
    ws = sock;
    let opened = false;
    sock.onopen = () => {
      if (ws !== sock) return;
      opened = true;
      everOpened = true;
      attempt = 0;
      setConn('live');
      showBoard();
      resume();
    };
    sock.onmessage = (ev) => {
      if (ws !== sock) return;
      let f;
      try { f = JSON.parse(ev.data); } catch (_) { return; }
      onFrame(f);
    };
    sock.onclose = () => {
      if (ws !== sock) return;
      ws = null;
      for (const [ref, p] of pending) if (p.type !== 'watch') pending.delete(ref);
      setConn('reconnecting');
      renderPanel();
      if (opened) scheduleReconnect();
      else probe(gen); // it never opened: a refused token (HTTP 401) or hark unreachable?
    };
  }

  /** A WebSocket cannot tell us its HTTP status, so ask a REST route with the same token. */
  async function probe(gen) {
    let status = 0;
    try {
      const r = await fetch('/v1/sessions?state=live&limit=1', { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' });
      status = r.status;
    } catch (_) { /* unreachable */ }
    if (gen !== generation) return;
    const refused = status === 401 || status === 403;
    const okish = status === 0 || (status >= 200 && status < 300) || status >= 500;
    if (refused || (!everOpened && !okish)) signInFailed();
    else scheduleReconnect();
  }

  function scheduleReconnect() {
    const base = Math.min(10000, 500 * 2 ** attempt);
    attempt++;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, Math.min(10000, base * (0.75 + Math.random() * 0.5)));
    setConn('reconnecting');
  }

  /** Sends a command with a fresh ref; returns false if the socket is not open. */
  function command(type, fields) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    const ref = String(nextRef++);
    pending.set(ref, { type, ...fields });
    ws.send(JSON.stringify({ type, ref, ...fields }));
    return true;
  }

  /** After a (re)connect: watch what was watched, take back what was held (within the grace). */
  function resume() {
    if (watching) command('watch', { session_id: watching });
    for (const [id, name] of holding) command('take_over', { session_id: id, agent_name: name });
  }

  // ---- frames ------------------------------------------------------------------------------

  function onFrame(f) {
    switch (f.type) {
      case 'snapshot': {
        const live = new Set();
        for (const c of f.cards || []) { cards.set(c.session_id, c); live.add(c.session_id); }
        for (const id of [...cards.keys()]) if (!live.has(id) && !endedAt.has(id)) cards.delete(id);
        for (const id of [...holding.keys()]) if (!live.has(id)) holding.delete(id);
        renderCards();
        renderPanel();
        break;
      }
      case 'card':
        if (f.card && f.card.session_id) {
          const c = f.card;
          cards.set(c.session_id, c);
          // Another agent now holds it (e.g. after a transfer). Only that is conclusive: a card
          // saying "bot" may predate our take-over; losing the hold otherwise shows up as an
          // ok/error of our own commands (re-take-over after reconnect, not_holder on send).
          const mine = holding.get(c.session_id);
          if (mine && c.holder && c.holder.kind === 'agent' && c.holder.name !== mine) holding.delete(c.session_id);
          if (c.state === 'ended') { markEnded(c.session_id, c.end_reason); break; }
          renderCards();
          if (c.session_id === watching) renderPanel();
        }
        break;
      case 'ended':
        markEnded(f.session_id, f.reason);
        break;
      case 'history':
        if (f.session_id === watching) {
          log = [];
          for (const m of f.messages || []) addEntry(m);
          renderLog(true);
        }
        break;
      case 'message':
        if (f.session_id === watching && addEntry(f)) {
          if (f.speech) showPartial(f.speech.speaker, null);
          renderLog(false);
        }
        break;
      case 'partial':
        if (f.session_id === watching) showPartial(f.speaker, f.text);
        break;
      case 'ok':
        onOk(f.ref);
        break;
      case 'error':
        onError(f);
        break;
      default:
        break;
    }
  }

  function addEntry(m) {
    if (!Number.isInteger(m.seq) || log.some((e) => e.seq === m.seq)) return false;
    log.push(m);
    log.sort((a, b) => a.seq - b.seq);
    return true;
  }

  function markEnded(id, reason) {
    const c = cards.get(id);
    holding.delete(id);
    if (c) {
      c.state = 'ended';
      c.end_reason = reason || c.end_reason;
      if (endedAt.has(id)) clearTimeout(endedAt.get(id));
      endedAt.set(id, setTimeout(() => { endedAt.delete(id); cards.delete(id); renderCards(); }, ENDED_LINGER_MS));
    }
    renderCards();
    if (id === watching) renderPanel();
  }

  function onOk(ref) {
    const p = pending.get(ref);
    pending.delete(ref);
    if (!p) return;
    if (p.type === 'take_over') holding.set(p.session_id, p.agent_name);
    if (p.type === 'leave' || p.type === 'transfer') holding.delete(p.session_id);
    if (p.session_id === watching) { showError(''); renderPanel(); }
  }

  function onError(f) {
    const p = pending.get(f.ref);
    pending.delete(f.ref);
    const tpl = STRINGS.errors[f.code] || STRINGS.errors.other;
    const text = fmt(tpl, { code: f.code || '?', message: f.message || '' });
    if (p && p.type === 'send' && !$('reply-input').value) $('reply-input').value = p.text; // don't lose the reply
    if (p && (f.code === 'not_holder' || f.code === 'held' || f.code === 'unknown_session')) holding.delete(p.session_id);
    if (!p || p.session_id === watching || !watching) showError(text, f.code);
    renderPanel();
  }

  // ---- cards -------------------------------------------------------------------------------

  function sortedCards() {
    const rank = (c) => (c.state === 'ended' ? 2 : c.holder && c.holder.kind === 'waiting' ? 0 : 1);
    return [...cards.values()].sort((a, b) => rank(a) - rank(b) || String(a.started_at).localeCompare(String(b.started_at)));
  }

  function renderCards() {
    const grid = $('cards');
    const want = sortedCards().map(cardEl);
    want.forEach((el, i) => { if (grid.children[i] !== el) grid.insertBefore(el, grid.children[i] || null); });
    while (grid.children.length > want.length) grid.lastChild.remove();
    for (const id of cardEls.keys()) if (!cards.has(id)) cardEls.delete(id);
    const live = [...cards.values()].filter((c) => c.state !== 'ended').length;
    $('no-sessions').hidden = cards.size > 0;
    $('live-count').hidden = $('board').hidden;
    $('live-count').textContent = fmt(STRINGS.liveCount, { n: live });
    tick();
  }

  const cardEls = new Map(); // session_id -> element

  function cardEl(c) {
    const id = c.session_id;
    let el = cardEls.get(id);
    if (!el) {
      el = h('article', { class: 'card', 'data-testid': 'card', 'data-session-id': id, tabindex: '0', role: 'button' });
      el.addEventListener('click', () => watch(id));
      el.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); watch(id); } });
      cardEls.set(id, el);
    }
    const hd = c.holder || { kind: 'bot' };
    const ended = c.state === 'ended';
    const sent = sentimentView(c.sentiment);
    el.className = 'card' + (ended ? ' ended' : '') + (id === watching ? ' selected' : '') + ' holder-' + (hd.kind || 'bot');
    el.dataset.holder = hd.kind || 'bot';
    el.dataset.state = c.state || 'live';
    el.replaceChildren(
      h('div', { class: 'card-top' },
        h('span', { class: 'dot ' + (c.visitor_online ? 'online' : 'offline'), 'data-field': 'online', title: c.visitor_online ? STRINGS.visitorOnline : STRINGS.visitorOffline }),
        h('span', { class: 'channel', 'data-field': 'channel' }, c.channel || 'chat'),
        h('span', { class: 'site muted', 'data-field': 'site' }, c.site || ''),
        h('span', { class: 'spacer' }),
        h('span', { class: 'duration', 'data-field': 'duration', title: STRINGS.duration, 'data-started-at': c.started_at || '', 'data-fixed': ended ? String(c.duration_secs || 0) : null },
          formatDuration(c.duration_secs || 0))),
      h('div', { class: 'holder', 'data-field': 'holder' }, ended ? endedText(c) : holderText(hd)),
      h('p', { class: 'preview', dir: 'auto', 'data-field': 'last-message' }, c.last_message || STRINGS.noMessages),
      h('div', { class: 'card-bottom muted' },
        h('span', { 'data-field': 'country', title: STRINGS.country }, c.country || STRINGS.noCountry),
        h('span', { 'data-field': 'device', title: STRINGS.device }, c.device || 'unknown'),
        h('span', { 'data-field': 'message-count' }, fmt(STRINGS.messageCount, { n: c.message_count || 0 })),
        h('span', { class: 'spacer' }),
        h('span', { class: 'sentiment ' + sent.tone, 'data-field': 'sentiment', title: STRINGS.sentiment }, sent.text)));
    return el;
  }

  /** Durations tick locally from started_at; ended cards keep their final duration. */
  function tick() {
    const now = Date.now();
    for (const el of document.querySelectorAll('[data-started-at]')) {
      if (el.dataset.fixed != null) { el.textContent = formatDuration(Number(el.dataset.fixed)); continue; }
      const t = Date.parse(el.dataset.startedAt);
      if (!isNaN(t)) el.textContent = formatDuration((now - t) / 1000);
    }
  }

  // ---- watch panel -------------------------------------------------------------------------

  function watch(id) {
    if (watching === id) return;
    if (watching) command('unwatch', { session_id: watching });
    watching = id;
    log = [];
    $('partial-list').replaceChildren();
    showError('');
    $('watch-panel').hidden = false;
    document.body.classList.add('watching');
    command('watch', { session_id: id });
    renderLog(true);
    renderPanel();
    renderCards();
  }

  function unwatch() {
    if (watching) command('unwatch', { session_id: watching });
    watching = null;
    log = [];
    $('watch-panel').hidden = true;
    document.body.classList.remove('watching');
    renderCards();
  }

  function showError(text, code) {
    const el = $('panel-error');
    el.textContent = text;
    el.hidden = !text;
    if (code) el.dataset.code = code; else delete el.dataset.code;
  }

  function renderPanel() {
    if (!watching) return;
    const c = cards.get(watching) || { session_id: watching, state: 'ended' };
    const live = !!ws && ws.readyState === WebSocket.OPEN;
    const ended = c.state === 'ended';
    const mine = holding.get(watching);
    $('watch-panel').dataset.sessionId = watching;
    $('watch-title').textContent = fmt(STRINGS.sessionTitle, { id: watching.slice(0, 8) });
    $('watch-title').title = watching;
    $('watch-meta').textContent = [c.site, c.channel, c.country || STRINGS.noCountry, c.device].filter(Boolean).join(' · ');
    $('watch-holder').textContent = ended ? endedText(c)
      : mine ? fmt(STRINGS.youHold, { name: mine }) : holderText(c.holder);
    $('watch-holder').dataset.holding = String(!!mine);
    $('take-over-button').disabled = !live || ended || !!mine;
    $('agent-name-input').disabled = !!mine;
    $('leave-button').disabled = !live || !mine;
    $('reply-input').disabled = !live || !mine;
    $('send-button').disabled = !live || !mine;
    $('transfer-button').disabled = !live || ended;
  }

  function renderLog(full) {
    const list = $('message-list');
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
    if (full) list.replaceChildren();
    const shown = new Set([...list.children].map((li) => Number(li.dataset.seq)));
    for (const m of log) {
      if (shown.has(m.seq)) continue;
      const a = m.author || {};
      const role = a.role || 'system';
      const name = role === 'agent' ? a.name || STRINGS.roles.agent : STRINGS.roles[role] || role;
      const emotion = m.speech && m.speech.emotion
        ? h('span', { class: 'emotion ' + m.speech.emotion, 'data-testid': 'emotion' }, m.speech.emotion) : null;
      const li = h('li', { class: 'entry ' + role, 'data-seq': String(m.seq), 'data-role': role },
        h('div', { class: 'entry-head' }, h('span', { class: 'who', dir: 'auto' }, name), h('span', { class: 'muted' }, formatTime(m.at)), emotion),
        h('div', { class: 'text', dir: 'auto' }, String(m.text == null ? '' : m.text)));
      const after = [...list.children].find((x) => Number(x.dataset.seq) > m.seq);
      list.insertBefore(li, after || null);
    }
    if (full || atBottom) list.scrollTop = list.scrollHeight;
  }

  /** A call's utterance in progress, one line per speaker; `text` null removes it (its final came). */
  function showPartial(speaker, text) {
    const list = $('partial-list');
    let li = [...list.children].find((x) => x.dataset.speaker === speaker);
    if (text == null) { if (li) li.remove(); return; }
    if (!li) {
      li = h('li', { class: 'entry partial ' + speaker, 'data-speaker': speaker, 'data-testid': 'partial' });
      list.append(li);
    }
    li.replaceChildren(
      h('div', { class: 'entry-head' }, h('span', { class: 'who' }, STRINGS.roles[speaker] || speaker), h('span', { class: 'muted' }, STRINGS.speaking)),
      h('div', { class: 'text', dir: 'auto' }, text));
  }

  // ---- actions -----------------------------------------------------------------------------

  function takeOver() {
    const input = $('agent-name-input');
    const name = input.value.trim();
    if (!name) { showError(STRINGS.needName); input.focus(); return; }
    store.set(AGENT_KEY, name);
    showError('');
    command('take_over', { session_id: watching, agent_name: name });
  }

  function sendReply(e) {
    e.preventDefault();
    const input = $('reply-input');
    const text = input.value.trim();
    if (!text || !watching || !holding.has(watching)) return;
    if (command('send', { session_id: watching, text, client_id: newClientId() })) input.value = '';
  }

  function transfer(e) {
    e.preventDefault();
    const to = $('transfer-to').value.trim();
    if (!to || !watching) return;
    const key = $('transfer-kind').value === 'agent' ? 'to_agent' : 'to_group';
    if (command('transfer', { session_id: watching, [key]: to })) $('transfer-to').value = '';
  }

  // ---- sign-in -----------------------------------------------------------------------------

  function setConn(state) {
    const el = $('conn-status');
    el.dataset.state = state;
    el.textContent = { live: STRINGS.connected, connecting: STRINGS.connecting, reconnecting: STRINGS.reconnecting }[state] || '';
  }

  function showBoard() {
    $('sign-in-box').hidden = true;
    $('board').hidden = false;
    $('sign-out-button').hidden = false;
    $('sign-in-error').hidden = true;
  }

  function showSignIn(error) {
    $('board').hidden = true;
    $('sign-out-button').hidden = true;
    $('live-count').hidden = true;
    $('sign-in-box').hidden = false;
    $('sign-in-error').textContent = error || '';
    $('sign-in-error').hidden = !error;
    $('token-input').focus();
  }

  function reset() {
    generation++;
    clearTimeout(retryTimer);
    retryTimer = null;
    const sock = ws;
    ws = null;
    if (sock) sock.close(1000);
    attempt = 0;
    everOpened = false;
    pending.clear();
    holding.clear();
    cards.clear();
    for (const t of endedAt.values()) clearTimeout(t);
    endedAt.clear();
    if (watching) unwatch();
    renderCards();
    setConn('offline');
  }

  function signIn(t) {
    reset();
    token = t;
    store.set(TOKEN_KEY, token);
    connect();
  }

  function signInFailed() {
    reset();
    token = '';
    store.set(TOKEN_KEY, '');
    showSignIn(STRINGS.signInFailed);
  }

  function signOut() {
    reset();
    token = '';
    store.set(TOKEN_KEY, '');
    $('token-input').value = '';
    showSignIn('');
  }

  // ---- start -------------------------------------------------------------------------------

  function init() {
    document.documentElement.dir = document.documentElement.dir || 'ltr';
    for (const el of document.querySelectorAll('[data-s]')) el.textContent = STRINGS[el.dataset.s];
    for (const el of document.querySelectorAll('[data-s-placeholder]')) el.placeholder = STRINGS[el.dataset.sPlaceholder];
    for (const el of document.querySelectorAll('[data-s-aria-label]')) el.setAttribute('aria-label', STRINGS[el.dataset.sAriaLabel]);
    document.title = STRINGS.title;

    $('sign-in-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = $('token-input').value.trim();
      if (t) signIn(t);
    });
    $('sign-out-button').addEventListener('click', signOut);
    $('watch-close').addEventListener('click', unwatch);
    $('take-over-button').addEventListener('click', takeOver);
    $('leave-button').addEventListener('click', () => command('leave', { session_id: watching }));
    $('reply-form').addEventListener('submit', sendReply);
    $('reply-input').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); $('reply-form').requestSubmit(); }
    });
    $('transfer-form').addEventListener('submit', transfer);
    document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && watching) unwatch(); });
    window.addEventListener('online', () => { if (retryTimer) connect(); });
    $('agent-name-input').value = store.get(AGENT_KEY);
    setInterval(tick, 1000);

    if (token) { showBoard(); connect(); } else showSignIn('');
  }

  init();
})();
