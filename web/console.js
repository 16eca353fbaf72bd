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
    title: 'hark — supervisor console',
    tabLive: 'Live',
    tabAlerts: 'Alerts',
    tabHistory: 'History',
    tabReports: 'Reports',
    reportsTitle: 'Reports',
    exportPdf: 'Export to PDF',
    rPeriod: 'Period',
    rDate: 'Date',
    rSecond: 'Second line',
    periodRealtime: 'Today so far (live)',
    periodDay: 'Day',
    periodMonth: 'Month',
    periodYear: 'Year',
    reportHeading: '{period} {date} — compared with {previous}',
    reportHeadingRealtime: 'Today so far ({date}, refreshed every 30 s) — compared with {previous}',
    reportLive: 'Live now: {n} sessions in progress',
    reportsForbidden: 'Reports need the reports permission — ask an administrator to grant it to your user.',
    reportsFailed: 'Could not load the report: {message}',
    usageLine: 'Analysed this month ({month}): {analyzed} of {quota} — {remaining} remaining',
    usageUnlimited: 'Analysed this month ({month}): {analyzed} (no quota)',
    tileCalls: 'Calls',
    tileAnalyzed: 'Analysed',
    tileDuration: 'Average duration',
    tileAlerts: 'Alerts',
    changeTitle: 'Previous period: {previous}',
    noChange: 'no comparison',
    colAgentName: 'Agent',
    colCalls: 'Calls',
    colAnalyzed: 'Analysed',
    colAvgDuration: 'Avg. duration',
    colAlerts: 'Alerts',
    noAgent: 'no agent',
    noAgentsRows: 'No calls in this period.',
    sortBy: 'Sort by {column}',
    chartTitle: 'Calls per {bucket}',
    chartBucket: { realtime: 'hour', day: 'hour', month: 'day', year: 'month' },
    chartPoint: '{label}: {value}',
    chartNone: 'calls only',
    compareTitle: 'Compare an agent',
    cAgent: 'Agent',
    cAgainst: 'Against',
    cMonth: 'Month',
    compare: 'Compare',
    againstDesk: 'their desk (average agent)',
    againstDepartment: 'their department (average agent)',
    againstAgent: 'agent {name}',
    compareKind: { agent: 'Agent', desk: 'Desk', department: 'Department' },
    compareSideName: '{kind}: {name}',
    compareAgents: 'averaged over {n} agents',
    compareMetric: 'Figure',
    compareChartTitle: 'Calls per day, {month}',
    compareFailed: 'Could not compare: {message}',
    compareNeedAgent: 'Pick an agent first.',
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
    holderCall: 'Phone call',
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
    placement: '{agent} · {desk}',
    // SLA clock on a card
    sla: 'SLA',
    slaMetrics: { first_response: 'First response', next_response: 'Next response', resolution: 'Resolution' },
    slaDue: '{metric} due in {time}',
    slaOverdue: '{metric} breached {time} ago',
    slaMissed: 'SLA missed',
    slaMissedDue: 'SLA missed · {metric} due in {time}',
    slaHit: 'SLA met',
    slaPolicy: 'SLA policy {policy}',
    // sound
    sound: 'Sound',
    soundAll: 'every message',
    soundNew: 'new sessions only',
    soundOff: 'silent',
    soundNote: 'Sound (a short beep for new sessions, messages and alerts, as chosen at the top): browsers allow sound only after your first click on this page.',
    // alerts
    alertsTitle: 'Alerts',
    alertsUnackedOnly: 'Unacknowledged only',
    noAlerts: 'No alerts.',
    severity: { info: 'Info', warning: 'Warning', critical: 'Critical' },
    acknowledge: 'Acknowledge',
    acknowledgedBy: 'Acknowledged {time} by {who}',
    openSession: 'Open session',
    watchLive: 'Watch live',
    raisedAt: 'Raised {time}',
    alertsFailed: 'Could not load the alerts: {message}',
    ackFailed: 'Could not acknowledge: {message}',
    unackedTitle: '{n} unacknowledged',
    // history
    historyTitle: 'History',
    fSince: 'From',
    fUntil: 'Until',
    fDepartment: 'Department',
    fDesk: 'Desk',
    fAgent: 'Agent',
    fChannel: 'Channel',
    fCategory: 'Category',
    fOutcome: 'Outcome',
    fTags: 'Tags',
    fTagsHint: 'all of: billing, vip',
    fScore: 'Score',
    fMin: 'min',
    fMax: 'max',
    fChecklist: 'Checklist item',
    fCheckItem: 'item id, e.g. greeting',
    fQuery: 'Search text',
    fQueryHint: 'words, "a phrase", -without, a or b',
    fSort: 'Sort',
    any: 'Any',
    chat: 'Chat',
    voice: 'Voice',
    done: 'done',
    missed: 'missed',
    sortNewest: 'Newest first',
    sortOldest: 'Oldest first',
    sortLongest: 'Longest first',
    sortShortest: 'Shortest first',
    search: 'Search',
    resetFilters: 'Reset',
    exportCsv: 'Export CSV',
    exporting: 'Exporting…',
    exportFailed: 'Export failed: {message}',
    colStarted: 'Started',
    colDuration: 'Duration',
    colChannel: 'Channel',
    colAgent: 'Agent / desk',
    colCategory: 'Category',
    colOutcome: 'Outcome',
    colScores: 'Scores',
    colTags: 'Tags',
    colLast: 'Last message',
    historyEmpty: 'No finished sessions match these filters.',
    historyFailed: 'Could not load the history: {message}',
    loadMore: 'Load more',
    loading: 'Loading…',
    scoreLabels: { customer_sentiment: 'Customer sentiment', talk_ratio: 'Talk ratio', silence: 'Silence', over_talk: 'Over-talk', response_speed: 'Response speed' },
    // call page
    back: '← History',
    callTitle: '{channel} session {id}',
    callTabs: 'Session views',
    tabAnalysis: 'Analysis',
    tabTranscript: 'Transcript',
    tabNotes: 'Notes',
    callFailed: 'Could not load the session: {message}',
    callLive: 'This session is still live.',
    notAnalysed: 'Not analysed: {reason}',
    analysisPending: 'The analysis is not ready yet (the session is still being finished).',
    refresh: 'Refresh',
    scores: 'Scores',
    noScores: 'No score could be measured.',
    scoreOf: '{score}/10',
    checklist: 'Checklist',
    noChecklist: 'No checklist items configured.',
    itemDone: 'done',
    itemMissed: 'missed',
    evidence: '{speaker} at {time}: “{text}”',
    tags: 'Tags',
    noTags: 'none',
    category: 'Category',
    outcome: 'Outcome',
    none: '—',
    noTranscript: 'No transcript lines.',
    from: 'from {number}',
    placementMeta: '{agent} ({desk}, {department})',
    // notes
    notePlaceholder: 'Add a note for this session…',
    addNote: 'Add note',
    noNotes: 'No notes yet.',
    edit: 'Edit',
    save: 'Save',
    cancel: 'Cancel',
    delete: 'Delete',
    confirmDelete: 'Really delete?',
    edited: 'edited {time}',
    notesFailed: 'Notes: {message}',
    // player
    play: 'Play',
    pause: 'Pause',
    back10: '−10 s',
    fwd10: '+10 s',
    back10Label: 'Back 10 seconds',
    fwd10Label: 'Forward 10 seconds',
    seek: 'Position',
    speed: 'Speed',
    volume: 'Volume',
    speaker: 'Speaker',
    playingStream: 'Playing the {speaker} recording (stream {index}).',
    noRecording: 'No recording for this call.',
    watchDetails: 'Details',
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
  const SOUND_KEY = 'hark.console.sound';
  const ENDED_LINGER_MS = 5000; // an ended card fades out instead of vanishing
  const SLA_WARN_SECS = 30; // a running SLA deadline this close turns amber

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

  /** replaceChildren, skipping null children (optional parts of a view). */
  function fill(el, ...children) {
    el.replaceChildren(...children.filter((c) => c != null));
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

  /** Who has the session: for a phone call, its agent (the bot never holds a call). */
  function holderText(hd, card) {
    if (card && card.channel === 'voice') {
      const agent = card.placement && card.placement.agent_name;
      return agent ? fmt(STRINGS.holderAgent, { name: agent }) : STRINGS.holderCall;
    }
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
      loadAlerts(); // again after a reconnect: alerts raised meanwhile arrive no other way
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
          const before = cards.get(c.session_id);
          if (!before && c.state !== 'ended') beep('new');
          else if (before && (c.message_count || 0) > (before.message_count || 0)) beep('message');
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
      case 'alert':
        if (f.alert && f.alert.id) onAlert(f.alert);
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
    $('live-count').hidden = !signedIn();
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
    fill(el,
      h('div', { class: 'card-top' },
        h('span', { class: 'dot ' + (c.visitor_online ? 'online' : 'offline'), 'data-field': 'online', title: c.visitor_online ? STRINGS.visitorOnline : STRINGS.visitorOffline }),
        h('span', { class: 'channel', 'data-field': 'channel' }, c.channel || 'chat'),
        h('span', { class: 'site muted', 'data-field': 'site' }, c.site || ''),
        h('span', { class: 'spacer' }),
        h('span', { class: 'duration', 'data-field': 'duration', title: STRINGS.duration, 'data-started-at': c.started_at || '', 'data-fixed': ended ? String(c.duration_secs || 0) : null },
          formatDuration(c.duration_secs || 0))),
      h('div', { class: 'holder', 'data-field': 'holder' }, ended ? endedText(c) : holderText(hd, c)),
      placementEl(c.placement),
      slaEl(c.sla, ended),
      h('p', { class: 'preview', dir: 'auto', 'data-field': 'last-message' }, c.last_message || STRINGS.noMessages),
      h('div', { class: 'card-bottom muted' },
        h('span', { 'data-field': 'country', title: STRINGS.country }, c.country || STRINGS.noCountry),
        h('span', { 'data-field': 'device', title: STRINGS.device }, c.device || 'unknown'),
        h('span', { 'data-field': 'message-count' }, fmt(STRINGS.messageCount, { n: c.message_count || 0 })),
        h('span', { class: 'spacer' }),
        h('span', { class: 'sentiment ' + sent.tone, 'data-field': 'sentiment', title: STRINGS.sentiment }, sent.text)));
    return el;
  }

  function placementEl(p) {
    if (!p || !(p.agent_name || p.desk_name)) return null;
    const text = p.agent_name && p.desk_name ? fmt(STRINGS.placement, { agent: p.agent_name, desk: p.desk_name }) : p.agent_name || p.desk_name;
    return h('div', { class: 'placement muted', dir: 'auto', 'data-field': 'placement' }, text);
  }

  /** The card's SLA clock: a countdown to `due.at`, re-rendered every second by tick(). */
  function slaEl(sla, ended) {
    if (!sla) return null;
    const el = h('div', { class: 'sla', 'data-field': 'sla', 'data-sla-state': sla.state || '', title: fmt(STRINGS.slaPolicy, { policy: sla.policy || '?' }) });
    el._sla = ended ? { ...sla, due: null } : sla;
    renderSla(el, Date.now());
    return el;
  }

  /** Text and tone of an SLA clock at `now`: ok, warn (due within a minute), bad (breached or missed), met. */
  function slaView(sla, now) {
    const due = sla.due && sla.due.at ? sla.due : null;
    const missed = sla.state === 'missed' || sla.state === 'active_with_misses';
    if (!due) return missed ? { text: STRINGS.slaMissed, tone: 'bad' } : sla.state === 'hit' ? { text: STRINGS.slaHit, tone: 'met' } : { text: STRINGS.sla, tone: 'ok' };
    // PROTOCOLS names the metrics first_response …; cards have said "first response" too.
    const key = String(due.metric || '').replace(/ /g, '_');
    const metric = STRINGS.slaMetrics[key] || String(due.metric || '');
    const left = (Date.parse(due.at) - now) / 1000;
    if (isNaN(left)) return { text: STRINGS.sla, tone: 'ok' };
    if (left < 0) return { text: fmt(STRINGS.slaOverdue, { metric, time: formatDuration(-left) }), tone: 'bad', breached: true };
    const text = fmt(missed ? STRINGS.slaMissedDue : STRINGS.slaDue, { metric, time: formatDuration(Math.ceil(left)) });
    return { text, tone: missed ? 'bad' : left <= SLA_WARN_SECS ? 'warn' : 'ok' };
  }

  function renderSla(el, now) {
    const v = slaView(el._sla, now);
    el.textContent = v.text;
    el.dataset.tone = v.tone;
    el.dataset.breached = String(!!v.breached);
  }

  /** Durations tick locally from started_at; ended cards keep their final duration. */
  function tick() {
    const now = Date.now();
    for (const el of document.querySelectorAll('.sla[data-field=sla]')) if (el._sla) renderSla(el, now);
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
    $('watch-details').href = '#/session/' + encodeURIComponent(watching);
    $('watch-meta').textContent = [c.site, c.channel, c.country || STRINGS.noCountry, c.device].filter(Boolean).join(' · ');
    $('watch-holder').textContent = ended ? endedText(c)
      : mine ? fmt(STRINGS.youHold, { name: mine }) : holderText(c.holder, c);
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

  // ---- REST and sound ----------------------------------------------------------------------

  /** A REST call with the bearer token; resolves {data, res}, throws an Error with the problem's detail. */
  async function api(path, { method = 'GET', json } = {}) {
    const headers = { Authorization: 'Bearer ' + token };
    if (json !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, { method, headers, body: json === undefined ? undefined : JSON.stringify(json), cache: 'no-store' });
    let data = null;
    if (res.status !== 204) {
      const text = await res.text();
      try { data = JSON.parse(text); } catch (_) { data = text; }
    }
    if (!res.ok) {
      const detail = data && typeof data === 'object' ? data.detail || data.title : '';
      const err = new Error(`${res.status}${detail ? ' — ' + detail : ''}`);
      err.status = res.status;
      throw err;
    }
    return { data, res };
  }

  function showMsg(id, text) {
    const el = $(id);
    el.textContent = text || '';
    el.hidden = !text;
  }

  function formatDateTime(at) {
    const d = new Date(at);
    return isNaN(d) ? '' : d.toLocaleString([], { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  /** mm:ss (h:mm:ss past an hour) of a position in milliseconds. */
  const clock = (ms) => formatDuration((ms || 0) / 1000);

  // Sound: a tiny WebAudio beep. Browsers start an AudioContext only after a user gesture, so it
  // is created (or resumed) on the first click or key press; until then beeps are skipped.
  let audioCtx = null;
  const sounds = { played: 0, skipped: 0 }; // exposed for tests as window.harkConsole.sounds

  function unlockAudio() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    try {
      if (!audioCtx) audioCtx = new Ctx();
      if (audioCtx.state === 'suspended') audioCtx.resume().catch(() => {});
    } catch (_) { /* no audio */ }
  }

  function soundPref() { return store.get(SOUND_KEY) || 'new'; }

  /** kind: 'message' (only with "every message"), 'new' (a new session) or 'alert' (both). */
  function beep(kind) {
    const pref = soundPref();
    if (pref === 'off' || (kind === 'message' && pref !== 'all')) return;
    if (!audioCtx || audioCtx.state !== 'running') { sounds.skipped++; return; }
    const freq = kind === 'alert' ? 880 : kind === 'new' ? 660 : 520;
    const t = audioCtx.currentTime;
    const osc = audioCtx.createOscillator();
    const gain = audioCtx.createGain();
    osc.type = 'sine';
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.15, t + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.15);
    osc.connect(gain).connect(audioCtx.destination);
    osc.start(t);
    osc.stop(t + 0.16);
    sounds.played++;
  }

  // ---- routes ------------------------------------------------------------------------------

  const VIEWS = { live: 'board', alerts: 'alerts-view', history: 'history-view', reports: 'reports-view', session: 'call-view' };
  let routeKey = null;

  function signedIn() { return !!token && $('sign-in-box').hidden; }

  function parseRoute() {
    const parts = (location.hash || '').replace(/^#\/?/, '').split('/').filter(Boolean).map((p) => { try { return decodeURIComponent(p); } catch (_) { return p; } });
    const name = VIEWS[parts[0]] ? parts[0] : 'live';
    return { name, id: parts[1] || null };
  }

  /** Shows the view the hash names (#/live[/id], #/alerts, #/history, #/session/id). */
  function applyRoute() {
    if (!signedIn()) return;
    const r = parseRoute();
    for (const [name, id] of Object.entries(VIEWS)) $(id).hidden = name !== r.name;
    for (const a of document.querySelectorAll('#tabs a')) {
      const current = a.dataset.view === r.name;
      a.classList.toggle('current', current);
      if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    document.body.dataset.view = r.name;
    const key = r.name + '/' + (r.id || '');
    if (key === routeKey) return;
    routeKey = key;
    if (r.name !== 'session') leaveCall();
    if (r.name !== 'reports') leaveReports();
    if (r.name === 'live' && r.id) watch(r.id);
    if (r.name === 'alerts') renderAlerts();
    if (r.name === 'history') enterHistory();
    if (r.name === 'reports') enterReports();
    if (r.name === 'session' && r.id) openCall(r.id);
  }

  // ---- alerts ------------------------------------------------------------------------------

  const alerts = new Map(); // id -> alert
  const alertEls = new Map(); // id -> element

  /** The first acknowledgement stays: never let an older copy undo one. */
  function mergeAlert(old, a) {
    if (!old) return a;
    const m = { ...old, ...a };
    if (!a.acknowledged_at && old.acknowledged_at) { m.acknowledged_at = old.acknowledged_at; m.acknowledged_by = old.acknowledged_by; }
    return m;
  }

  async function loadAlerts() {
    const gen = generation;
    try {
      const { data } = await api('/v1/alerts?limit=200');
      if (gen !== generation) return;
      for (const a of Array.isArray(data) ? data : []) alerts.set(a.id, mergeAlert(alerts.get(a.id), a));
      showMsg('alerts-error', '');
    } catch (e) {
      if (gen !== generation) return;
      showMsg('alerts-error', fmt(STRINGS.alertsFailed, { message: e.message }));
    }
    renderAlerts();
  }

  function onAlert(a) {
    const known = alerts.has(a.id);
    alerts.set(a.id, mergeAlert(alerts.get(a.id), a));
    if (!known && !a.acknowledged_at) beep('alert');
    renderAlerts();
  }

  function renderAlerts() {
    const all = [...alerts.values()].sort((a, b) => (Date.parse(b.raised_at) || 0) - (Date.parse(a.raised_at) || 0));
    const open = all.filter((a) => !a.acknowledged_at).length;
    const badge = $('alerts-badge');
    badge.textContent = String(open);
    badge.hidden = open === 0;
    badge.title = fmt(STRINGS.unackedTitle, { n: open });
    $('tab-alerts').setAttribute('aria-label', STRINGS.tabAlerts + (open ? ' — ' + fmt(STRINGS.unackedTitle, { n: open }) : ''));
    const shown = $('alerts-unacked-only').checked ? all.filter((a) => !a.acknowledged_at) : all;
    const list = $('alert-list');
    const want = shown.map(alertEl);
    want.forEach((el, i) => { if (list.children[i] !== el) list.insertBefore(el, list.children[i] || null); });
    while (list.children.length > want.length) list.lastChild.remove();
    for (const id of alertEls.keys()) if (!alerts.has(id)) alertEls.delete(id);
    $('no-alerts').hidden = shown.length > 0;
  }

  function alertEl(a) {
    let el = alertEls.get(a.id);
    if (!el) {
      el = h('li', { 'data-testid': 'alert', 'data-alert-id': a.id, tabindex: '-1' });
      alertEls.set(a.id, el);
    }
    const sev = a.severity || 'info';
    const acked = !!a.acknowledged_at;
    el.className = 'alert sev-' + sev + (acked ? ' acked' : '');
    el.dataset.severity = sev;
    el.dataset.acknowledged = String(acked);
    el.dataset.sessionId = a.session_id || '';
    const c = cards.get(a.session_id);
    const live = c && c.state !== 'ended';
    const link = h('a', { href: (live ? '#/live/' : '#/session/') + encodeURIComponent(a.session_id), 'data-testid': 'alert-session' },
      live ? STRINGS.watchLive : STRINGS.openSession);
    const action = acked
      ? h('span', { class: 'muted', 'data-testid': 'alert-acked', dir: 'auto' }, fmt(STRINGS.acknowledgedBy, { time: formatTime(a.acknowledged_at), who: a.acknowledged_by || '?' }))
      : h('button', { type: 'button', class: 'primary', 'data-testid': 'ack-button', onclick: (e) => ack(a.id, e.currentTarget) }, STRINGS.acknowledge);
    fill(el,
      h('div', { class: 'alert-head' },
        h('span', { class: 'sev', 'data-field': 'severity' }, STRINGS.severity[sev] || sev),
        h('strong', { dir: 'auto', 'data-field': 'rule' }, a.rule_name || a.rule_id || ''),
        h('span', { class: 'muted', title: a.raised_at || '' }, fmt(STRINGS.raisedAt, { time: formatTime(a.raised_at) }))),
      h('p', { class: 'alert-msg', dir: 'auto', 'data-field': 'message' }, a.message || ''),
      a.evidence ? h('p', { class: 'alert-evidence muted', dir: 'auto' }, '“' + a.evidence + '”') : null,
      h('div', { class: 'alert-foot' }, link, h('span', { class: 'spacer' }), action));
    return el;
  }

  async function ack(id, button) {
    button.disabled = true;
    try {
      const { data } = await api(`/v1/alerts/${encodeURIComponent(id)}/ack`, { method: 'POST' });
      if (data && data.id) onAlert(data);
      showMsg('alerts-error', '');
      const el = alertEls.get(id);
      if (el && el.isConnected) el.focus();
    } catch (e) {
      button.disabled = false;
      showMsg('alerts-error', fmt(STRINGS.ackFailed, { message: e.message }));
    }
  }

  // ---- history -----------------------------------------------------------------------------

  let histOrg = null; // {departments, desks, agents}
  let histStarted = false;
  let histNext = null; // the Link rel="next" of the last page
  let histSeq = 0; // the newest search; older answers are dropped

  function enterHistory() {
    if (!histOrg) loadOrg();
    if (!histStarted) { histStarted = true; searchHistory(false); }
  }

  async function loadOrg() {
    const gen = generation;
    try {
      const [departments, desks, agents] = await Promise.all(['/v1/departments', '/v1/desks', '/v1/agents'].map((p) => api(p).then((r) => r.data || [])));
      if (gen !== generation) return;
      histOrg = { departments, desks, agents };
      fillOrgSelects();
    } catch (e) {
      if (gen === generation) showMsg('history-error', fmt(STRINGS.historyFailed, { message: e.message }));
    }
  }

  function fillSelect(sel, items, label) {
    const keep = sel.value;
    sel.replaceChildren(h('option', { value: '' }, STRINGS.any), ...items.map((x) => h('option', { value: x.id, dir: 'auto' }, label(x))));
    sel.value = items.some((x) => x.id === keep) ? keep : '';
  }

  /** Desks follow the chosen department, agents the chosen desk (or department). */
  function fillOrgSelects() {
    if (!histOrg) return;
    const dep = $('f-department').value;
    fillSelect($('f-department'), histOrg.departments, (d) => d.name);
    const desks = histOrg.desks.filter((d) => !dep || d.department_id === dep);
    fillSelect($('f-desk'), desks, (d) => d.name);
    const desk = $('f-desk').value;
    const deskIds = new Set(desks.map((d) => d.id));
    const agents = histOrg.agents.filter((a) => (desk ? a.desk_id === desk : !dep || deskIds.has(a.desk_id)));
    fillSelect($('f-agent'), agents, (a) => a.name + (a.extension ? ` (${a.extension})` : '') + (a.active === false ? ' †' : ''));
  }

  /** The history filters of the form, as query parameters (shared by the list and the export). */
  function filterParams() {
    const q = new URLSearchParams();
    const v = (id) => $(id).value.trim();
    const iso = (id) => { const d = new Date(v(id)); return isNaN(d) ? '' : d.toISOString(); };
    if (v('f-since') && iso('f-since')) q.set('since', iso('f-since'));
    if (v('f-until') && iso('f-until')) q.set('until', iso('f-until'));
    for (const k of ['department', 'desk', 'agent', 'channel', 'category', 'outcome']) if (v('f-' + k)) q.set(k, v('f-' + k));
    if (v('f-tags')) q.set('tags', v('f-tags').split(',').map((t) => t.trim()).filter(Boolean).join(','));
    const label = v('f-score-label'), lo = v('f-score-min'), hi = v('f-score-max');
    if (label && (lo || hi)) q.set('scores', `${label}:${lo || 1}-${hi || 10}`);
    if (v('f-check-item')) q.set('checklist', `${v('f-check-item')}:${v('f-check-status')}`);
    if (v('f-q')) q.set('q', v('f-q'));
    return q;
  }

  function nextLink(header) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(header || '');
    return m ? m[1] : null;
  }

  async function searchHistory(append) {
    const seq = ++histSeq;
    const gen = generation;
    let url;
    if (append) url = histNext;
    else {
      const q = filterParams();
      q.set('state', 'ended');
      q.set('sort', $('f-sort').value || '-started_at');
      q.set('limit', String(window.harkConsole.historyPageSize || 50));
      url = '/v1/sessions?' + q.toString();
    }
    if (!url) return;
    const more = $('history-more');
    more.disabled = true;
    more.textContent = STRINGS.loading;
    $('history-table').setAttribute('aria-busy', 'true');
    try {
      const { data, res } = await api(url);
      if (seq !== histSeq || gen !== generation) return;
      const body = $('history-rows');
      if (!append) body.replaceChildren();
      for (const row of Array.isArray(data) ? data : []) body.append(historyRow(row));
      histNext = nextLink(res.headers.get('Link'));
      showMsg('history-error', '');
      $('history-empty').hidden = body.children.length > 0;
      more.hidden = !histNext;
    } catch (e) {
      if (seq === histSeq && gen === generation) showMsg('history-error', fmt(STRINGS.historyFailed, { message: e.message }));
    } finally {
      if (seq === histSeq) {
        more.disabled = false;
        more.textContent = STRINGS.loadMore;
        $('history-table').removeAttribute('aria-busy');
      }
    }
  }

  function scoreName(label) { return STRINGS.scoreLabels[label] || String(label).replace(/_/g, ' '); }

  function historyRow(r) {
    const id = r.session_id;
    const p = r.placement || {};
    const secs = r.duration_ms != null ? r.duration_ms / 1000 : r.duration_secs || 0;
    const open = () => { location.hash = '#/session/' + encodeURIComponent(id); };
    const tr = h('tr', { 'data-testid': 'history-row', 'data-session-id': id, 'data-finalized': String(r.duration_ms != null) });
    tr.addEventListener('click', (e) => { if (!e.target.closest('a')) open(); });
    tr.append(
      h('td', {}, h('a', { href: '#/session/' + encodeURIComponent(id), 'data-testid': 'history-open', title: id }, formatDateTime(r.started_at))),
      h('td', { class: 'num' }, formatDuration(secs)),
      h('td', {}, STRINGS[r.channel] || r.channel || ''),
      h('td', { dir: 'auto' }, [p.agent_name, p.desk_name].filter(Boolean).join(' · ') || STRINGS.none),
      h('td', { dir: 'auto' }, r.category || STRINGS.none),
      h('td', { dir: 'auto' }, r.outcome || STRINGS.none),
      h('td', { class: 'scores-cell' }, ...(r.scores || []).map((s) => h('span', { class: 'chip tone-' + scoreTone(s.score), title: scoreName(s.label) }, `${scoreName(s.label)} ${s.score}`))),
      h('td', {}, ...(r.tags || []).map((t) => h('span', { class: 'chip', dir: 'auto' }, t))),
      h('td', { class: 'last', dir: 'auto' }, r.last_message || ''));
    return tr;
  }

  function scoreTone(score) { return score >= 7 ? 'good' : score >= 4 ? 'mid' : 'bad'; }

  /** The CSV export takes the bearer header, so it is fetched and saved from a Blob. */
  async function exportCsv() {
    const btn = $('export-csv');
    btn.disabled = true;
    btn.textContent = STRINGS.exporting;
    try {
      const res = await fetch('/v1/sessions/export.csv?' + filterParams().toString(), { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' });
      if (!res.ok) {
        let detail = '';
        try { detail = (await res.json()).detail || ''; } catch (_) { /* not JSON */ }
        throw new Error(`${res.status}${detail ? ' — ' + detail : ''}`);
      }
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const stamp = new Date().toISOString().slice(0, 16).replace(/[-:T]/g, '');
      const a = h('a', { href: url, download: `hark-sessions-${stamp}.csv`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      showMsg('history-error', '');
    } catch (e) {
      showMsg('history-error', fmt(STRINGS.exportFailed, { message: e.message }));
    } finally {
      btn.disabled = false;
      btn.textContent = STRINGS.exportCsv;
    }
  }

  // ---- call page ---------------------------------------------------------------------------

  let callId = null;
  let callRecord = null;
  let callSeq = 0;
  let callTab = 'analysis';
  let streams = []; // [{index, role}] of the call's recordings
  let streamIndex = null;

  async function openCall(id) {
    callId = id;
    callRecord = null;
    const seq = ++callSeq;
    stopAudio();
    $('player').hidden = true;
    document.body.classList.remove('has-player');
    $('call-title').textContent = fmt(STRINGS.sessionTitle, { id: id.slice(0, 8) });
    $('call-title').title = id;
    $('call-meta').textContent = STRINGS.loading;
    $('cpanel-analysis').replaceChildren();
    $('transcript-list').replaceChildren();
    $('note-list').replaceChildren();
    showMsg('call-error', '');
    showMsg('notes-error', '');
    selectCallTab(callTab, false);
    $('call-view').dataset.sessionId = id;
    delete $('call-view').dataset.loaded;
    try {
      const { data } = await api('/v1/sessions/' + encodeURIComponent(id));
      if (seq !== callSeq) return;
      callRecord = data;
      renderCall();
      $('call-view').dataset.loaded = 'true';
    } catch (e) {
      if (seq !== callSeq) return;
      $('call-meta').textContent = '';
      showMsg('call-error', fmt(STRINGS.callFailed, { message: e.message }));
    }
  }

  function leaveCall() {
    if (!callId) return;
    callId = null;
    callRecord = null;
    callSeq++;
    stopAudio();
    $('player').hidden = true;
    document.body.classList.remove('has-player');
  }

  function renderCall() {
    const r = callRecord;
    const p = r.placement || {};
    $('call-title').textContent = fmt(STRINGS.callTitle, { channel: STRINGS[r.channel] || r.channel || '', id: r.session_id.slice(0, 8) });
    const from = r.call && r.call.from && r.call.from.number ? fmt(STRINGS.from, { number: r.call.from.number }) : null;
    const place = p.agent_name ? fmt(STRINGS.placementMeta, { agent: p.agent_name, desk: p.desk_name || STRINGS.none, department: p.department_name || STRINGS.none }) : null;
    const secs = r.duration_ms != null ? r.duration_ms / 1000 : r.duration_secs || 0;
    $('call-meta').textContent = [formatDateTime(r.started_at), formatDuration(secs), r.site, from, place, r.state === 'live' ? STRINGS.callLive : null]
      .filter(Boolean).join(' · ');
    renderAnalysis(r);
    renderTranscript(r);
    renderNotes(r.notes || []);
    setupPlayer(r);
  }

  function selectCallTab(name, focus) {
    callTab = name;
    for (const tab of document.querySelectorAll('#call-tabs [role=tab]')) {
      const selected = tab.dataset.tab === name;
      tab.setAttribute('aria-selected', String(selected));
      tab.tabIndex = selected ? 0 : -1;
      $(tab.getAttribute('aria-controls')).hidden = !selected;
      if (selected && focus) tab.focus();
    }
  }

  function speakerName(s) { return STRINGS.roles[s] || s || ''; }

  function renderAnalysis(r) {
    const panel = $('cpanel-analysis');
    const a = r.analysis;
    if (!a) {
      const why = r.analysis_skipped
        ? h('p', { 'data-testid': 'analysis-skipped', dir: 'auto' }, fmt(STRINGS.notAnalysed, { reason: r.analysis_skipped }))
        : h('p', { 'data-testid': 'analysis-pending', class: 'muted' }, r.state === 'live' ? STRINGS.callLive : STRINGS.analysisPending);
      const again = r.analysis_skipped ? null : h('button', { type: 'button', onclick: () => openCall(r.session_id) }, STRINGS.refresh);
      fill(panel, why, again);
      return;
    }
    const scores = (a.scores || []).map((s) => h('li', { class: 'score', 'data-testid': 'score', 'data-label': s.label, 'data-score': String(s.score) },
      h('div', { class: 'score-head' },
        h('strong', {}, scoreName(s.label)),
        h('span', { class: 'meter', role: 'img', 'aria-label': fmt(STRINGS.scoreOf, { score: s.score }) },
          h('span', { class: 'fill tone-' + scoreTone(s.score), style: `width:${Math.max(0, Math.min(10, s.score)) * 10}%` })),
        h('span', { class: 'score-num' }, fmt(STRINGS.scoreOf, { score: s.score }))),
      h('p', { class: 'muted explanation', dir: 'auto' }, s.explanation || '')));
    const voice = r.channel === 'voice';
    const items = (a.checklist || []).map((c) => {
      const ev = c.done && c.evidence ? c.evidence : null;
      let evEl = null;
      if (ev) {
        const text = fmt(STRINGS.evidence, { speaker: speakerName(ev.speaker), time: clock(ev.start_ms), text: ev.text || '' });
        evEl = voice && ev.start_ms != null
          ? h('button', { type: 'button', class: 'link evidence', dir: 'auto', 'data-testid': 'evidence', onclick: () => seekAndPlay(ev.start_ms / 1000, ev.speaker) }, text)
          : h('span', { class: 'evidence', dir: 'auto', 'data-testid': 'evidence' }, text);
      }
      return h('li', { class: 'check ' + (c.done ? 'done' : 'missed'), 'data-testid': 'checklist-item', 'data-item': c.id, 'data-status': c.done ? 'done' : 'missed' },
        h('span', { class: 'status' }, c.done ? '✓ ' + STRINGS.itemDone : '✗ ' + STRINGS.itemMissed),
        h('span', { dir: 'auto' }, c.label || c.id), evEl);
    });
    const tags = [...new Set([...(a.tags || []), ...(r.tags || [])])];
    panel.replaceChildren(
      h('h3', {}, STRINGS.scores),
      scores.length ? h('ul', { class: 'scores', 'data-testid': 'scores' }, ...scores) : h('p', { class: 'muted' }, STRINGS.noScores),
      h('h3', {}, STRINGS.checklist),
      items.length ? h('ul', { class: 'checklist', 'data-testid': 'checklist' }, ...items) : h('p', { class: 'muted' }, STRINGS.noChecklist),
      h('dl', { class: 'facts' },
        h('dt', {}, STRINGS.tags), h('dd', { 'data-testid': 'analysis-tags' }, ...(tags.length ? tags.map((t) => h('span', { class: 'chip', dir: 'auto' }, t)) : [STRINGS.noTags])),
        h('dt', {}, STRINGS.category), h('dd', { 'data-testid': 'analysis-category', dir: 'auto' }, a.category || STRINGS.none),
        h('dt', {}, STRINGS.outcome), h('dd', { 'data-testid': 'analysis-outcome', dir: 'auto' }, a.outcome || STRINGS.none)));
  }

  function renderTranscript(r) {
    const list = $('transcript-list');
    const t0 = Date.parse(r.started_at);
    const voice = r.channel === 'voice';
    const lines = (r.messages || []).map((m) => {
      const a = m.author || {};
      const role = a.role || 'system';
      const who = role === 'agent' && a.name ? a.name : STRINGS.roles[role] || role;
      const ms = m.speech && m.speech.start_ms != null ? m.speech.start_ms : Math.max(0, (Date.parse(m.at) - t0) || 0);
      const seekable = voice && m.speech && m.speech.start_ms != null;
      const li = h('li', { class: 'line ' + role + (seekable ? ' seekable' : ''), 'data-testid': 'transcript-line', 'data-seq': String(m.seq), 'data-role': role,
        'data-start-ms': seekable ? String(m.speech.start_ms) : null, 'data-end-ms': seekable ? String(m.speech.end_ms) : null,
        tabindex: seekable ? '0' : null, role: seekable ? 'button' : null },
      h('span', { class: 'time', 'data-field': 'time' }, clock(ms)),
      h('span', { class: 'who', dir: 'auto' }, who),
      m.speech && m.speech.emotion ? h('span', { class: 'emotion ' + m.speech.emotion, 'data-testid': 'emotion' }, m.speech.emotion) : null,
      h('span', { class: 'text', dir: 'auto' }, String(m.text == null ? '' : m.text)));
      if (seekable) {
        const go = () => seekAndPlay(m.speech.start_ms / 1000, m.speech.speaker);
        li.addEventListener('click', go);
        li.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); go(); } });
      }
      return li;
    });
    list.replaceChildren(...lines);
    if (!lines.length) list.append(h('li', { class: 'muted' }, STRINGS.noTranscript));
  }

  // Notes.

  function renderNotes(notes) {
    const list = $('note-list');
    list.replaceChildren(...notes.map(noteEl));
    if (!notes.length) list.append(h('li', { class: 'muted', 'data-testid': 'no-notes' }, STRINGS.noNotes));
  }

  async function reloadNotes() {
    const id = callId;
    const { data } = await api(`/v1/sessions/${encodeURIComponent(id)}/notes`);
    if (id === callId) renderNotes(Array.isArray(data) ? data : []);
  }

  async function noteAction(fn) {
    try {
      await fn();
      showMsg('notes-error', '');
      await reloadNotes();
    } catch (e) {
      showMsg('notes-error', fmt(STRINGS.notesFailed, { message: e.message }));
    }
  }

  function noteEl(n) {
    const base = `/v1/sessions/${encodeURIComponent(callId)}/notes/${encodeURIComponent(n.id)}`;
    const li = h('li', { class: 'note', 'data-testid': 'note', 'data-note-id': n.id });
    const text = h('div', { class: 'note-text', dir: 'auto', 'data-field': 'text' }, n.text);
    const edited = n.updated_at && n.updated_at !== n.created_at ? h('span', { class: 'muted' }, fmt(STRINGS.edited, { time: formatDateTime(n.updated_at) })) : null;
    const del = h('button', { type: 'button', class: 'ghost', 'data-testid': 'note-delete' }, STRINGS.delete);
    del.addEventListener('click', () => {
      if (del.dataset.confirm !== 'true') { del.dataset.confirm = 'true'; del.textContent = STRINGS.confirmDelete; return; }
      del.disabled = true;
      noteAction(() => api(base, { method: 'DELETE' }));
    });
    del.addEventListener('blur', () => { del.dataset.confirm = 'false'; del.textContent = STRINGS.delete; });
    const edit = h('button', { type: 'button', class: 'ghost', 'data-testid': 'note-edit' }, STRINGS.edit);
    edit.addEventListener('click', () => {
      const area = h('textarea', { rows: '3', dir: 'auto', maxlength: '10000', 'data-testid': 'note-edit-input', 'aria-label': STRINGS.edit });
      area.value = n.text;
      const cancel = () => li.replaceWith(noteEl(n));
      const save = h('button', { type: 'button', class: 'primary', 'data-testid': 'note-save' }, STRINGS.save);
      save.addEventListener('click', () => {
        const t = area.value.trim();
        if (!t) { area.focus(); return; }
        save.disabled = true;
        noteAction(() => api(base, { method: 'PUT', json: { text: t } }));
      });
      area.addEventListener('keydown', (e) => {
        if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); cancel(); }
        if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); save.click(); }
      });
      li.replaceChildren(area, h('div', { class: 'note-actions' }, save, h('button', { type: 'button', onclick: cancel }, STRINGS.cancel)));
      area.focus();
    });
    li.append(
      h('div', { class: 'note-head' }, h('strong', { dir: 'auto' }, n.author || ''), h('span', { class: 'muted' }, formatDateTime(n.created_at)), edited,
        h('span', { class: 'spacer' }), edit, del),
      text);
    return li;
  }

  function addNote(e) {
    e.preventDefault();
    const input = $('note-input');
    const t = input.value.trim();
    if (!t || !callId) return;
    const id = callId;
    noteAction(async () => {
      await api(`/v1/sessions/${encodeURIComponent(id)}/notes`, { method: 'POST', json: { text: t } });
      input.value = '';
    });
  }

  // The audio player (fixed at the bottom of the call page, across its tabs). A call's
  // recordings are one file per stream: stream 0 (the customer) plays by default; a call with
  // two streams offers the other speaker in a select, and clicking a line plays its speaker.

  function setupPlayer(r) {
    streams = r.channel === 'voice' && r.call && Array.isArray(r.call.streams)
      ? r.call.streams.map((s, index) => ({ index, role: s.role || 'customer', has: !!s.recording })).filter((s) => s.has) : [];
    if (!streams.length) {
      $('player').hidden = true;
      document.body.classList.remove('has-player');
      if (r.channel === 'voice') showMsg('call-error', STRINGS.noRecording);
      return;
    }
    const sel = $('p-stream');
    sel.replaceChildren(...streams.map((s) => h('option', { value: String(s.index) }, `${speakerName(s.role)} (${s.index})`)));
    $('p-stream-box').hidden = streams.length < 2;
    $('player').hidden = false;
    document.body.classList.add('has-player');
    setStream(streams[0].index);
  }

  function setStream(index) {
    const a = $('audio');
    const s = streams.find((x) => x.index === index) || streams[0];
    streamIndex = s.index;
    $('p-stream').value = String(s.index);
    const url = `/v1/sessions/${encodeURIComponent(callId)}/recordings/${s.index}?access_token=${encodeURIComponent(token)}`;
    a.src = url;
    a.playbackRate = Number($('p-speed').value) || 1;
    a.volume = Number($('p-volume').value);
    $('p-note').textContent = fmt(STRINGS.playingStream, { speaker: speakerName(s.role), index: s.index });
    updatePlayer();
  }

  function stopAudio() {
    const a = $('audio');
    a.pause();
    if (a.getAttribute('src')) { a.removeAttribute('src'); a.load(); }
    streams = [];
    streamIndex = null;
  }

  function audioDuration() {
    const a = $('audio');
    if (isFinite(a.duration) && a.duration > 0) return a.duration;
    const r = callRecord;
    return r ? (r.duration_ms != null ? r.duration_ms / 1000 : r.duration_secs || 0) : 0;
  }

  /** Seeks to `secs` (on `speaker`'s recording when the call has one for them) and plays. */
  function seekAndPlay(secs, speaker) {
    const a = $('audio');
    if (!streams.length) return;
    const want = streams.find((s) => s.role === speaker);
    if (want && want.index !== streamIndex) setStream(want.index);
    const go = () => {
      a.currentTime = Math.max(0, secs);
      const p = a.play();
      if (p && p.catch) p.catch(() => {});
    };
    if (a.readyState >= 1) go(); else a.addEventListener('loadedmetadata', go, { once: true });
  }

  let seekDragging = false;
  function updatePlayer() {
    const a = $('audio');
    const dur = audioDuration();
    const seek = $('p-seek');
    seek.max = String(dur || 0);
    if (!seekDragging) seek.value = String(a.currentTime || 0);
    $('p-time').textContent = `${formatDuration(a.currentTime || 0)} / ${formatDuration(dur)}`;
    const playing = !a.paused && !a.ended;
    const btn = $('p-play');
    btn.textContent = playing ? '❚❚' : '▶';
    btn.setAttribute('aria-label', playing ? STRINGS.pause : STRINGS.play);
    btn.dataset.state = playing ? 'playing' : 'paused';
    // The line being heard.
    const ms = (a.currentTime || 0) * 1000;
    for (const li of document.querySelectorAll('#transcript-list li[data-start-ms]')) {
      li.classList.toggle('current', playing && ms >= Number(li.dataset.startMs) && ms < Number(li.dataset.endMs));
    }
  }

  function wirePlayer() {
    const a = $('audio');
    for (const ev of ['play', 'pause', 'ended', 'timeupdate', 'durationchange', 'loadedmetadata', 'seeked']) a.addEventListener(ev, updatePlayer);
    $('p-play').addEventListener('click', () => { if (a.paused) { const p = a.play(); if (p && p.catch) p.catch(() => {}); } else a.pause(); });
    const jump = (d) => { a.currentTime = Math.max(0, Math.min(audioDuration() || Infinity, (a.currentTime || 0) + d)); updatePlayer(); };
    $('p-back').addEventListener('click', () => jump(-10));
    $('p-fwd').addEventListener('click', () => jump(10));
    const seek = $('p-seek');
    seek.addEventListener('input', () => { seekDragging = true; a.currentTime = Number(seek.value); $('p-time').textContent = `${formatDuration(Number(seek.value))} / ${formatDuration(audioDuration())}`; });
    seek.addEventListener('change', () => { seekDragging = false; a.currentTime = Number(seek.value); updatePlayer(); });
    $('p-speed').addEventListener('change', () => { a.playbackRate = Number($('p-speed').value) || 1; });
    $('p-volume').addEventListener('input', () => { a.volume = Number($('p-volume').value); });
    $('p-stream').addEventListener('change', () => {
      const t = a.currentTime || 0, playing = !a.paused;
      setStream(Number($('p-stream').value));
      if (playing) seekAndPlay(t); else a.addEventListener('loadedmetadata', () => { a.currentTime = t; }, { once: true });
    });
    // Call-page tabs: arrow keys move between them (WAI-ARIA tabs pattern).
    const tabs = [...document.querySelectorAll('#call-tabs [role=tab]')];
    for (const tab of tabs) tab.addEventListener('click', () => selectCallTab(tab.dataset.tab, false));
    $('call-tabs').addEventListener('keydown', (e) => {
      const i = tabs.findIndex((t) => t.dataset.tab === callTab);
      const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
      if (next == null) return;
      e.preventDefault();
      selectCallTab(tabs[(next + tabs.length) % tabs.length].dataset.tab, true);
    });
  }

  // ---- sign-in -----------------------------------------------------------------------------

  function setConn(state) {
    const el = $('conn-status');
    el.dataset.state = state;
    el.textContent = { live: STRINGS.connected, connecting: STRINGS.connecting, reconnecting: STRINGS.reconnecting }[state] || '';
  }

  // ---- reports -----------------------------------------------------------------------------
  // #/reports: tiles, chart and agents table of GET /v1/reports, the agent comparison of
  // GET /v1/reports/agents and the usage line of GET /v1/usage (docs/PROTOCOLS.md "Reports",
  // "Usage"). The chart is inline SVG drawn here (svgChart), no library. "Export to PDF" is
  // window.print() with the @media print rules of console.css, which show only #report-body.

  const REPORT_REFRESH_MS = 30000; // realtime refreshes itself this often
  const rep = { started: false, seq: 0, timer: null, data: null, sort: { key: 'calls', dir: -1 }, agents: null, loads: 0 };

  function resetReports() {
    clearTimeout(rep.timer);
    Object.assign(rep, { started: false, seq: rep.seq + 1, timer: null, data: null, agents: null, loads: 0 });
    $('report-tiles').replaceChildren();
    $('report-chart').replaceChildren();
    $('report-agents-head').replaceChildren();
    $('report-agents-rows').replaceChildren();
    $('report-heading').textContent = '';
    $('report-live').hidden = true;
    $('report-usage').hidden = true;
    $('compare-result').hidden = true;
    for (const id of ['report-body', 'compare-box', 'report-print']) $(id).hidden = false;
    showMsg('reports-error', '');
    showMsg('compare-error', '');
  }

  function enterReports() {
    if (!rep.started) {
      rep.started = true;
      loadUsage();
      loadReportAgents();
    }
    loadReport();
  }

  function leaveReports() { clearTimeout(rep.timer); rep.timer = null; }

  function setDateInput(period) {
    const input = $('r-date');
    input.disabled = period === 'realtime';
    const type = period === 'month' ? 'month' : period === 'year' ? 'number' : 'date';
    if (input.type !== type) { input.value = ''; input.type = type; }
    if (type === 'number') { input.min = '1970'; input.max = '9999'; input.step = '1'; } else { input.removeAttribute('min'); input.removeAttribute('max'); input.removeAttribute('step'); }
    if (period === 'realtime') input.value = '';
  }

  async function loadReport() {
    clearTimeout(rep.timer);
    rep.timer = null;
    const seq = ++rep.seq, gen = generation;
    const period = $('r-period').value;
    setDateInput(period);
    const q = new URLSearchParams({ period });
    const date = $('r-date').value.trim();
    if (period !== 'realtime' && date) q.set('date', date);
    try {
      const { data } = await api('/v1/reports?' + q);
      if (seq !== rep.seq || gen !== generation) return;
      showMsg('reports-error', '');
      $('report-body').hidden = false;
      rep.data = data;
      rep.loads++;
      renderReport();
    } catch (e) {
      if (seq !== rep.seq || gen !== generation) return;
      const forbidden = e.status === 403;
      showMsg('reports-error', forbidden ? STRINGS.reportsForbidden : fmt(STRINGS.reportsFailed, { message: e.message }));
      $('reports-error').dataset.forbidden = forbidden ? 'true' : 'false';
      if (forbidden) { $('report-body').hidden = true; $('compare-box').hidden = true; $('report-print').hidden = true; return; }
    }
    if (period === 'realtime' && document.body.dataset.view === 'reports') {
      const every = (window.harkConsole && window.harkConsole.reportRefreshMs) || REPORT_REFRESH_MS;
      rep.timer = setTimeout(loadReport, every);
    }
  }

  async function loadUsage() {
    const gen = generation;
    try {
      const { data: u } = await api('/v1/usage');
      if (gen !== generation) return;
      const vars = { month: u.month, analyzed: u.analyzed, quota: u.quota, remaining: u.remaining };
      $('report-usage').textContent = fmt(u.quota == null ? STRINGS.usageUnlimited : STRINGS.usageLine, vars);
      $('report-usage').hidden = false;
    } catch (_) {
      $('report-usage').hidden = true; // 403 (no usage permission) or unavailable: no line
    }
  }

  async function loadReportAgents() {
    const gen = generation;
    try {
      const [{ data: agents }, { data: desks }, { data: departments }] = await Promise.all(['/v1/agents', '/v1/desks', '/v1/departments'].map((p) => api(p)));
      if (gen !== generation) return;
      rep.agents = agents || [];
      rep.desks = desks || [];
      rep.departments = departments || [];
      const sel = $('c-agent');
      const keep = sel.value;
      sel.replaceChildren(...rep.agents.map((a) => h('option', { value: a.id, dir: 'auto' }, a.name + (a.active === false ? ' †' : ''))));
      if (rep.agents.some((a) => a.id === keep)) sel.value = keep;
      fillAgainst();
    } catch (e) {
      if (gen === generation) showMsg('compare-error', fmt(STRINGS.compareFailed, { message: e.message }));
    }
  }

  function fillAgainst() {
    const sel = $('c-against');
    const keep = sel.value;
    const me = $('c-agent').value;
    sel.replaceChildren(h('option', { value: 'desk' }, STRINGS.againstDesk), h('option', { value: 'department' }, STRINGS.againstDepartment),
      ...(rep.agents || []).filter((a) => a.id !== me).map((a) => h('option', { value: a.id, dir: 'auto' }, fmt(STRINGS.againstAgent, { name: a.name }))));
    sel.value = [...sel.options].some((o) => o.value === keep) ? keep : 'desk';
  }

  const num = (v, digits = 1) => (v == null || isNaN(v) ? '–' : Number.isInteger(v) ? String(v) : Number(v).toFixed(digits));
  const durationText = (ms) => (ms == null ? '–' : formatDuration(Math.round(ms / 1000)));
  const periodName = (p) => STRINGS['period' + p[0].toUpperCase() + p.slice(1)] || p;

  /** ▲/▼/– and the percent; tone good/bad/flat (upIsBad for alerts, neutral for durations). */
  function changeEl(tile, fmtValue, mode) {
    const pct = tile.change_pct;
    const arrow = pct == null || pct === 0 ? '–' : pct > 0 ? '▲' : '▼';
    let tone = 'flat';
    if (pct != null && pct !== 0 && mode !== 'neutral') tone = (pct > 0) !== (mode === 'upIsBad') ? 'good' : 'bad';
    const text = pct == null ? `– ${STRINGS.noChange}` : `${arrow} ${Math.abs(pct).toFixed(1)} %`;
    return h('span', { class: 'change ' + tone, 'data-field': 'change', 'data-tone': tone, 'data-arrow': arrow, title: fmt(STRINGS.changeTitle, { previous: fmtValue(tile.previous) }) }, text);
  }

  function tileEl(key, label, tile, fmtValue, mode) {
    return h('div', { class: 'tile', 'data-testid': 'tile-' + key, 'data-value': tile.value == null ? '' : String(tile.value) },
      h('div', { class: 'tile-label' }, label),
      h('div', { class: 'tile-value', 'data-field': 'value' }, fmtValue(tile.value)),
      changeEl(tile, fmtValue, mode));
  }

  function renderReport() {
    const d = rep.data;
    if (!d) return;
    const t = d.tiles;
    const realtime = d.period === 'realtime';
    if (!realtime && !$('r-date').value && d.window) $('r-date').value = d.window.date;
    $('report-heading').textContent = fmt(realtime ? STRINGS.reportHeadingRealtime : STRINGS.reportHeading,
      { period: periodName(d.period), date: d.window.date, previous: d.compared_with.date });
    $('report-live').hidden = d.live == null;
    $('report-live').textContent = d.live == null ? '' : fmt(STRINGS.reportLive, { n: d.live });
    $('report-body').dataset.period = d.period;
    $('report-body').dataset.loads = String(rep.loads);
    if (!$('c-month').value) $('c-month').value = d.window.date.slice(0, 7);
    const labels = Object.keys(t.scores || {});
    fill($('report-tiles'),
      tileEl('calls', STRINGS.tileCalls, t.calls, num),
      tileEl('analyzed', STRINGS.tileAnalyzed, t.analyzed, num),
      tileEl('duration', STRINGS.tileDuration, t.average_duration_ms, durationText, 'neutral'),
      tileEl('alerts', STRINGS.tileAlerts, t.alerts, num, 'upIsBad'),
      ...labels.map((l) => tileEl('score-' + l, scoreName(l), t.scores[l], num)));
    // The second line's choices: every score label of the period.
    const second = $('r-second');
    const keep = second.value;
    second.replaceChildren(h('option', { value: '' }, STRINGS.chartNone), ...labels.map((l) => h('option', { value: l }, scoreName(l))));
    second.value = labels.includes(keep) ? keep : '';
    renderReportChart();
    renderAgentsTable();
  }

  function bucketLabel(period, start) {
    if (period === 'realtime' || period === 'day') return start.slice(11, 13);
    if (period === 'month') return start.slice(8, 10);
    return start.slice(5, 7);
  }

  function renderReportChart() {
    const d = rep.data;
    const label = $('r-second').value;
    const series = [{ name: STRINGS.colCalls, cls: 's0', values: d.series.map((b) => b.calls) }];
    if (label) series.push({ name: scoreName(label), cls: 's1', axis: 'right', max: 10, values: d.series.map((b) => (b.scores && b.scores[label] != null ? b.scores[label] : null)) });
    const bars = d.period === 'realtime' || d.period === 'day';
    fill($('report-chart'), svgChart({
      kind: bars ? 'bar' : 'line',
      title: fmt(STRINGS.chartTitle, { bucket: STRINGS.chartBucket[d.period] }),
      labels: d.series.map((b) => bucketLabel(d.period, b.start)),
      fullLabels: d.series.map((b) => b.start),
      series,
    }));
  }

  // SVG -----------------------------------------------------------------------------------
  const SVG_NS = 'http://www.w3.org/2000/svg';
  let svgIds = 0;
  function sv(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v != null) el.setAttribute(k, v);
    for (const c of children) if (c != null) el.append(c);
    return el;
  }

  /** 0 … a round maximum ≥ max, and its tick step (4–5 ticks). */
  function niceScale(max) {
    if (!(max > 0)) return { top: 1, step: 0.25 };
    const raw = max / 4;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    return { top: Math.ceil(max / step) * step, step };
  }

  /** An accessible inline SVG chart: bars (kind 'bar', first series) or lines; a series with
   * axis 'right' is drawn as a line against its own 0…max scale on the right. */
  function svgChart({ kind, title, labels, fullLabels, series }) {
    const W = 960, H = 280, L = 48, R = 44, T = 34, B = 30;
    const pw = W - L - R, ph = H - T - B, n = Math.max(labels.length, 1), band = pw / n;
    const left = series.filter((s) => s.axis !== 'right');
    const scale = niceScale(Math.max(0, ...left.flatMap((s) => s.values.filter((v) => v != null))));
    const y = (v, top) => T + ph - (v / top) * ph;
    const xc = (i) => L + band * (i + 0.5);
    const id = 'chart-title-' + ++svgIds;
    const svg = sv('svg', { viewBox: `0 0 ${W} ${H}`, class: 'svg-chart', role: 'img', 'aria-labelledby': id, 'data-kind': kind, preserveAspectRatio: 'xMidYMid meet' },
      sv('title', { id }, title),
      sv('text', { x: L, y: 18, class: 'chart-title' }, title));
    // Axes and ticks (left: the counts; right: 0…max of a right-axis series).
    const axes = sv('g', { class: 'axes' });
    for (let v = 0; v <= scale.top + 1e-9; v += scale.step) {
      axes.append(sv('line', { x1: L, x2: L + pw, y1: y(v, scale.top), y2: y(v, scale.top), class: 'grid' }),
        sv('text', { x: L - 6, y: y(v, scale.top) + 4, class: 'tick', 'text-anchor': 'end' }, num(Math.round(v * 100) / 100)));
    }
    const right = series.find((s) => s.axis === 'right');
    if (right) for (let v = 0; v <= right.max; v += right.max / 5) axes.append(sv('text', { x: L + pw + 6, y: y(v, right.max) + 4, class: 'tick right ' + right.cls }, String(v)));
    axes.append(sv('line', { x1: L, x2: L, y1: T, y2: T + ph, class: 'axis' }), sv('line', { x1: L, x2: L + pw, y1: T + ph, y2: T + ph, class: 'axis' }));
    const every = Math.ceil(n / 16);
    labels.forEach((lab, i) => { if (i % every === 0) axes.append(sv('text', { x: xc(i), y: H - B + 16, class: 'tick', 'text-anchor': 'middle' }, lab)); });
    svg.append(axes);
    series.forEach((s, si) => {
      const top = s.axis === 'right' ? s.max : scale.top;
      const g = sv('g', { class: 'series ' + s.cls, 'data-series': s.name });
      const point = (v, i) => fmt(STRINGS.chartPoint, { label: (fullLabels || labels)[i], value: num(v) }) + ' — ' + s.name;
      if (kind === 'bar' && si === 0) {
        s.values.forEach((v, i) => g.append(sv('rect', { class: 'bar', 'data-value': String(v || 0), x: L + band * i + band * 0.15, width: Math.max(1, band * 0.7), y: y(v || 0, top), height: T + ph - y(v || 0, top) },
          sv('title', {}, point(v || 0, i)))));
      } else {
        const pts = s.values.map((v, i) => (v == null ? null : [xc(i), y(v, top), v, i])).filter(Boolean);
        g.append(sv('polyline', { class: 'line', fill: 'none', 'data-points': String(pts.length), points: pts.map((p) => `${p[0].toFixed(1)},${p[1].toFixed(1)}`).join(' ') }));
        for (const p of pts) g.append(sv('circle', { class: 'pt', cx: p[0].toFixed(1), cy: p[1].toFixed(1), r: 2.5 }, sv('title', {}, point(p[2], p[3]))));
      }
      svg.append(g);
    });
    // Legend.
    const legend = sv('g', { class: 'legend' });
    series.forEach((s, si) => legend.append(sv('rect', { x: W - R - 150 * (series.length - si), y: 8, width: 12, height: 12, class: 'swatch ' + s.cls }),
      sv('text', { x: W - R - 150 * (series.length - si) + 16, y: 18, class: 'legend-text' }, s.name)));
    svg.append(legend);
    return svg;
  }

  // Agents table --------------------------------------------------------------------------
  function agentColumns() {
    const d = rep.data;
    const labels = new Set(Object.keys(d.tiles.scores || {}));
    for (const r of d.agents) for (const l of Object.keys(r.scores || {})) labels.add(l);
    return [
      { key: 'name', label: STRINGS.colAgentName, get: (r) => (r.agent_id == null ? STRINGS.noAgent : r.agent_name || r.agent_id), text: (v) => v },
      { key: 'calls', label: STRINGS.colCalls, get: (r) => r.calls, text: num },
      { key: 'analyzed', label: STRINGS.colAnalyzed, get: (r) => r.analyzed, text: num },
      { key: 'duration', label: STRINGS.colAvgDuration, get: (r) => r.average_duration_ms, text: durationText },
      { key: 'alerts', label: STRINGS.colAlerts, get: (r) => r.alerts, text: num },
      ...[...labels].map((l) => ({ key: 'score-' + l, label: scoreName(l), get: (r) => (r.scores ? r.scores[l] : null), text: num })),
    ];
  }

  function renderAgentsTable() {
    const cols = agentColumns();
    const { key, dir } = rep.sort;
    const col = cols.find((c) => c.key === key) || cols[1];
    fill($('report-agents-head'), ...cols.map((c) => h('th', { scope: 'col', 'aria-sort': c === col ? (dir > 0 ? 'ascending' : 'descending') : 'none' },
      h('button', { type: 'button', class: 'sort', 'data-sort': c.key, title: fmt(STRINGS.sortBy, { column: c.label }),
        onclick: () => { rep.sort = { key: c.key, dir: rep.sort.key === c.key ? -rep.sort.dir : c.key === 'name' ? 1 : -1 }; renderAgentsTable(); } },
      c.label, c === col ? (dir > 0 ? ' ▲' : ' ▼') : ''))));
    const cmp = (a, b) => {
      const x = col.get(a), y = col.get(b);
      if (x == null && y == null) return 0;
      if (x == null) return 1; // empty cells last, whichever the direction
      if (y == null) return -1;
      return (typeof x === 'string' ? x.localeCompare(y) : x - y) * dir;
    };
    const rows = rep.data.agents.slice().sort(cmp);
    fill($('report-agents-rows'), ...(rows.length ? rows.map((r) => h('tr', { 'data-agent-id': r.agent_id == null ? '' : r.agent_id },
      ...cols.map((c) => h('td', { 'data-field': c.key, dir: c.key === 'name' ? 'auto' : null, class: c.key === 'name' && r.agent_id == null ? 'muted' : null }, c.text(c.get(r)))))) :
      [h('tr', {}, h('td', { colspan: cols.length, class: 'muted' }, STRINGS.noAgentsRows))]));
  }

  // Comparison ------------------------------------------------------------------------------
  async function runCompare(e) {
    if (e) e.preventDefault();
    const agent = $('c-agent').value;
    if (!agent) { showMsg('compare-error', STRINGS.compareNeedAgent); return; }
    const gen = generation;
    const q = new URLSearchParams({ agent, against: $('c-against').value });
    if ($('c-month').value) q.set('month', $('c-month').value);
    try {
      const { data } = await api('/v1/reports/agents?' + q);
      if (gen !== generation) return;
      showMsg('compare-error', '');
      renderCompare(data);
    } catch (err) {
      if (gen !== generation) return;
      $('compare-result').hidden = true;
      showMsg('compare-error', err.status === 403 ? STRINGS.reportsForbidden : fmt(STRINGS.compareFailed, { message: err.message }));
    }
  }

  function renderCompare(c) {
    const sides = [c.agent, c.against];
    const sideName = (s) => fmt(STRINGS.compareSideName, { kind: STRINGS.compareKind[s.kind] || s.kind, name: s.name || s.id });
    fill($('compare-head'), h('th', { scope: 'col' }, STRINGS.compareMetric),
      ...sides.map((s, i) => h('th', { scope: 'col', dir: 'auto', 'data-testid': i ? 'compare-name-against' : 'compare-name-agent', 'data-id': s.id },
        sideName(s), s.agents > 1 ? h('div', { class: 'muted small' }, fmt(STRINGS.compareAgents, { n: s.agents })) : null)));
    const labels = [...new Set(sides.flatMap((s) => Object.keys(s.scores || {})))];
    const rows = [
      ['calls', STRINGS.colCalls, (s) => num(s.calls)],
      ['analyzed', STRINGS.colAnalyzed, (s) => num(s.analyzed)],
      ['duration', STRINGS.colAvgDuration, (s) => durationText(s.average_duration_ms)],
      ['alerts', STRINGS.colAlerts, (s) => num(s.alerts)],
      ...labels.map((l) => ['score-' + l, scoreName(l), (s) => num(s.scores ? s.scores[l] : null)]),
    ];
    fill($('compare-rows'), ...rows.map(([key, label, get]) => h('tr', { 'data-metric': key }, h('th', { scope: 'row' }, label), ...sides.map((s) => h('td', {}, get(s))))));
    fill($('compare-chart'), svgChart({
      kind: 'line',
      title: fmt(STRINGS.compareChartTitle, { month: c.window.date }),
      labels: c.agent.series.map((b) => b.start.slice(8, 10)),
      fullLabels: c.agent.series.map((b) => b.start),
      series: sides.map((s, i) => ({ name: s.name || s.id, cls: 's' + i, values: s.series.map((b) => b.calls) })),
    }));
    $('compare-result').hidden = false;
  }

  function wireReports() {
    $('report-form').addEventListener('submit', (e) => { e.preventDefault(); loadReport(); });
    $('r-period').addEventListener('change', () => { setDateInput($('r-period').value); $('r-date').value = ''; loadReport(); });
    $('r-date').addEventListener('change', loadReport);
    $('r-second').addEventListener('change', () => { if (rep.data) renderReportChart(); });
    $('report-print').addEventListener('click', () => window.print());
    $('compare-form').addEventListener('submit', runCompare);
    $('c-agent').addEventListener('change', fillAgainst);
    $('r-period').value = 'day';
    setDateInput('day');
  }

  function showBoard() {
    $('sign-in-box').hidden = true;
    $('tabs').hidden = false;
    $('sound-box').hidden = false;
    $('sign-out-button').hidden = false;
    $('sign-in-error').hidden = true;
    $('live-count').hidden = false;
    applyRoute();
  }

  function showSignIn(error) {
    for (const id of Object.values(VIEWS)) $(id).hidden = true;
    $('tabs').hidden = true;
    $('sound-box').hidden = true;
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
    leaveCall();
    routeKey = null;
    alerts.clear();
    renderAlerts();
    histOrg = null;
    histStarted = false;
    histNext = null;
    histSeq++;
    $('history-rows').replaceChildren();
    $('history-more').hidden = true;
    resetReports();
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
    document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && watching && !$('board').hidden) unwatch(); });
    window.addEventListener('hashchange', applyRoute);
    // Sound: the preference, and the AudioContext unlocked by the first click or key.
    for (const ev of ['pointerdown', 'keydown']) document.addEventListener(ev, unlockAudio, { capture: true, passive: true });
    $('sound-select').value = soundPref();
    $('sound-select').addEventListener('change', () => store.set(SOUND_KEY, $('sound-select').value));
    $('alerts-unacked-only').addEventListener('change', renderAlerts);
    $('history-form').addEventListener('submit', (e) => { e.preventDefault(); searchHistory(false); });
    $('history-form').addEventListener('reset', () => setTimeout(() => { fillOrgSelects(); searchHistory(false); }, 0));
    $('f-department').addEventListener('change', fillOrgSelects);
    $('f-desk').addEventListener('change', fillOrgSelects);
    $('f-sort').addEventListener('change', () => searchHistory(false));
    $('history-more').addEventListener('click', () => searchHistory(true));
    $('export-csv').addEventListener('click', exportCsv);
    $('f-score-label').replaceChildren(h('option', { value: '' }, STRINGS.any),
      ...Object.entries(STRINGS.scoreLabels).map(([k, v]) => h('option', { value: k }, v)));
    $('note-form').addEventListener('submit', addNote);
    $('note-input').addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); $('note-form').requestSubmit(); } });
    wirePlayer();
    wireReports();
    updatePlayer();
    // Test hooks: the beeps played or skipped, and the history page size (default 50).
    window.harkConsole = { sounds, historyPageSize: 50 };
    window.addEventListener('online', () => { if (retryTimer) connect(); });
    $('agent-name-input').value = store.get(AGENT_KEY);
    setInterval(tick, 1000);

    if (token) { showBoard(); connect(); } else showSignIn('');
  }

  init();
})();
