// Outpost's call widget (docs/embed.md): talks to the page that frames it
// with postMessage (shared/contract/embed-events.md), and to its node with
// fetch: sign-in, the user's call events (Server-Sent Events read from a
// stream, as EventSource cannot send a bearer token) and the requests on
// calls. It posts only to the origin the node allowed, and hears only that
// origin's window. Every name and number is shown as text.
'use strict';
(() => {
  const root = document.getElementById('widget');
  if (!root) return;
  const origin = root.dataset.origin; // exactly as the node allowed it
  const framed = window.parent !== window;
  const storageKey = 'outpost-embed-session';
  const $ = (id) => document.getElementById(id);

  const state = {
    token: null,
    user: null,
    config: {},
    calls: new Map(), // engagementId -> engagement, as the node last said
    items: new Map(), // engagementId -> its list item
    contacts: new Map(), // engagementId -> the host's contact chosen for it
    choices: new Map(), // engagementId -> several contacts to pick from
    incoming: [], // engagementIds waiting for a zcc-incomingPhone-response
    pendingContact: null, // the contact of the call being placed
    searchMatches: [],
    stream: null, // the AbortController of the event stream
  };

  // ---- The host ----

  function post(type, data) {
    if (!framed) {
      console.info('outpost widget: not in a frame; not posting', type);
      return;
    }
    window.parent.postMessage(data === undefined ? { type } : { type, data }, origin);
  }

  window.addEventListener('message', (ev) => {
    if (ev.origin !== origin || ev.source !== window.parent) {
      console.warn('outpost widget: ignored a message from ' + ev.origin + ': only ' + origin + ', the page framing the widget, is heard');
      return;
    }
    const msg = ev.data;
    if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') {
      console.warn('outpost widget: ignored a message that is not {type, data}');
      return;
    }
    fromHost(msg);
  });

  function fromHost(msg) {
    switch (msg.type) {
      case 'zcc-init-config-response':
        state.config = (msg.data && typeof msg.data === 'object') ? msg.data : {};
        return;
      case 'zcc-contact-search-response':
        searchResponse(msg.data);
        return;
      case 'zcc-incomingPhone-response':
        incomingResponse(msg.data);
        return;
    }
    if (!state.token) {
      post('zcc-error', { code: 'not-signed-in', message: msg.type + ': the user has not signed in to the widget yet' });
      return;
    }
    if (msg.type === 'onclicktoact' && msg.data && typeof msg.data === 'object') {
      state.pendingContact = contactOf(msg.data);
    }
    act({ type: msg.type, data: msg.data }, true);
  }

  // A contact as the host describes it, for the call log's user.
  function contactOf(m) {
    const c = {};
    for (const k of ['id', 'name', 'phone', 'email', 'entity']) {
      let v = m[k];
      if (k === 'entity' && v === undefined) v = m.userEntity;
      if (typeof v === 'string' || typeof v === 'number') c[k] = String(v).slice(0, 256);
    }
    return c;
  }

  function contactLabel(c) {
    return [c.name || c.id || '', c.phone || '', c.entity ? '(' + c.entity + ')' : ''].filter(Boolean).join(' · ');
  }

  // ---- The node ----

  function headers(json) {
    const h = {};
    if (json) h['Content-Type'] = 'application/json';
    if (state.token) h.Authorization = 'Bearer ' + state.token;
    return h;
  }

  // act sends a host request (or the widget's own) to the node; a host's
  // gets the node's messages posted back (a zcc-error when refused).
  async function act(msg, forHost) {
    let res;
    let body = {};
    try {
      res = await fetch('/embed/api/action', { method: 'POST', headers: headers(true), body: JSON.stringify(msg), credentials: 'omit', cache: 'no-store' });
      body = await res.json().catch(() => ({}));
    } catch (e) {
      const message = msg.type + ': the node cannot be reached (' + e.message + ')';
      if (forHost) post('zcc-error', { code: 'unavailable', message });
      notice(message);
      return { ok: false, error: message };
    }
    if (res.status === 401) {
      if (forHost) post('zcc-error', { code: 'not-signed-in', message: msg.type + ': ' + (body.error || 'signed out') });
      signedOut(body.error);
      return body;
    }
    if (forHost) {
      for (const m of Array.isArray(body.messages) ? body.messages : []) post(m.type, m.data);
    } else if (!res.ok) {
      notice(body.error || msg.type + ' failed (' + res.status + ')');
    }
    if (msg.type === 'onclicktoact' && body.engagementId && state.pendingContact) {
      state.contacts.set(body.engagementId, state.pendingContact);
      state.pendingContact = null;
    }
    return body;
  }

  function uuid() {
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  function onCall(type, id, extra) {
    return act({ type, data: { engagementId: id, channelType: 'voice', requestId: uuid(), ...extra } }, false);
  }

  // ---- Sign-in ----

  function showSignIn(message) {
    $('app').hidden = true;
    $('signin').hidden = false;
    const err = $('signin-error');
    err.textContent = message || '';
    err.hidden = !message;
  }

  for (const r of document.querySelectorAll('input[name=method]')) {
    r.addEventListener('change', () => {
      const byToken = $('with-token').checked;
      $('password-fields').hidden = byToken;
      $('token-fields').hidden = !byToken;
    });
  }

  $('signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const byToken = $('with-token').checked;
    const req = byToken ? { token: $('widget-token').value.trim() } : { username: $('username').value.trim(), password: $('password').value };
    if (byToken ? !req.token : !(req.username && req.password)) {
      showSignIn(byToken ? 'Paste the widget token an administrator gave you.' : 'Type your SIP username and password.');
      return;
    }
    const button = $('signin-button');
    button.disabled = true;
    try {
      const res = await fetch('/embed/api/session', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(req), credentials: 'omit', cache: 'no-store' });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) {
        showSignIn(body.error || 'Sign-in failed (' + res.status + ').');
        return;
      }
      $('password').value = '';
      $('widget-token').value = '';
      start(body.token, body.user);
    } catch (e) {
      showSignIn('The node cannot be reached: ' + e.message);
    } finally {
      button.disabled = false;
    }
  });

  function start(token, user) {
    state.token = token;
    try { sessionStorage.setItem(storageKey, token); } catch (e) { /* storage off: memory only */ }
    if (user) showUser(user);
    $('signin').hidden = true;
    $('app').hidden = false;
    openStream();
  }

  function signedOut(message) {
    state.token = null;
    try { sessionStorage.removeItem(storageKey); } catch (e) { /* nothing kept */ }
    if (state.stream) state.stream.abort();
    state.stream = null;
    state.calls.clear();
    for (const li of state.items.values()) li.remove();
    state.items.clear();
    showSignIn(message);
  }

  $('signout').addEventListener('click', () => signedOut(''));

  function showUser(u) {
    state.user = u;
    $('me-name').textContent = u.name || u.username;
    $('me-ext').textContent = u.extension ? 'ext. ' + u.extension : '';
  }

  // ---- The event stream ----

  async function openStream() {
    if (state.stream) state.stream.abort();
    const ctrl = new AbortController();
    state.stream = ctrl;
    let delay = 1000;
    while (state.token && state.stream === ctrl) {
      try {
        const res = await fetch('/embed/api/events', { headers: headers(false), credentials: 'omit', cache: 'no-store', signal: ctrl.signal });
        if (res.status === 401) {
          const body = await res.json().catch(() => ({}));
          signedOut(body.error);
          return;
        }
        if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
        connection('');
        delay = 1000;
        await readEvents(res.body, streamEvent);
      } catch (e) {
        if (ctrl.signal.aborted) return;
        console.warn('outpost widget: event stream: ' + e.message);
      }
      if (!state.token || state.stream !== ctrl) return;
      connection('Reconnecting…');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15000);
    }
  }

  // readEvents parses Server-Sent Events from a byte stream.
  async function readEvents(body, onEvent) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let name = 'message';
        let data = '';
        for (const line of block.split('\n')) {
          if (line === '' || line.startsWith(':')) continue;
          const c = line.indexOf(':');
          const field = c < 0 ? line : line.slice(0, c);
          let v = c < 0 ? '' : line.slice(c + 1);
          if (v.startsWith(' ')) v = v.slice(1);
          if (field === 'event') name = v;
          else if (field === 'data') data += (data ? '\n' : '') + v;
        }
        if (!data) continue;
        let parsed;
        try { parsed = JSON.parse(data); } catch (e) { console.warn('outpost widget: bad event data'); continue; }
        onEvent(name, parsed);
      }
    }
  }

  function streamEvent(name, data) {
    switch (name) {
      case 'state':
        showUser(data.user);
        showAgentStatus(data.agentStatus);
        for (const id of [...state.calls.keys()]) if (!data.engagements.some((e) => e.engagementId === id)) dropCall(id);
        for (const e of data.engagements) setCall(e);
        return;
      case 'engagement':
        setCall(data);
        return;
      case 'zcc':
        toHost(data);
        return;
      case 'signed-out':
        signedOut(data.error);
    }
  }

  // toHost posts a message from the node, adding what only the widget
  // knows: the host's contact for the call log.
  function toHost(m) {
    const d = m.data || {};
    switch (m.type) {
      case 'zcc-outbound-call-started':
        if (state.pendingContact && !state.contacts.has(d.engagementId)) {
          state.contacts.set(d.engagementId, state.pendingContact);
          state.pendingContact = null;
        }
        break;
      case 'zcc-incomingPhone-request':
        state.incoming.push(d.engagementId);
        if (state.incoming.length > 20) state.incoming.shift(); // the host does not answer them
        break;
      case 'zcc-agent-status-notification':
        showAgentStatus(d);
        break;
      case 'zcc-phone-call-log':
        d.user = state.contacts.get(d.engagementId) || {};
        state.contacts.delete(d.engagementId);
        state.choices.delete(d.engagementId);
        break;
    }
    post(m.type, m.data);
  }

  function connection(text) {
    $('connection').textContent = text;
  }

  function notice(text) {
    $('notice').textContent = text || '';
  }

  // ---- Agent status ----

  function showAgentStatus(s) {
    if (!s) return;
    const occupied = s.statusCode === 3;
    $('occupied').hidden = !occupied;
    if (!occupied) $('agent-status').value = String(s.statusCode);
  }

  $('agent-status').addEventListener('change', () => {
    act({ type: 'zcc-agent-status-set-request', data: { id: Number($('agent-status').value) } }, false);
  });

  // ---- Resize ----

  $('resize').addEventListener('click', () => {
    const large = $('resize').getAttribute('aria-pressed') !== 'true';
    $('resize').setAttribute('aria-pressed', String(large));
    post('zcc-resize', large ? { widthInPixels: 480, heightInPixels: 760 } : { widthInPixels: 340, heightInPixels: 560 });
  });

  // ---- Dialling and contact search ----

  let searchTimer = null;
  $('dial').addEventListener('input', () => {
    clearTimeout(searchTimer);
    const q = $('dial').value.trim();
    state.searchMatches = [];
    showMatches();
    if (q.length < 2) return;
    searchTimer = setTimeout(() => post('zcc-contact-search-event', { query: q }), 400);
  });

  function searchResponse(data) {
    const list = Array.isArray(data) ? data : (data && typeof data === 'object' ? [data] : []);
    for (const m of list) {
      if (!m || typeof m !== 'object') continue;
      const c = contactOf(m);
      if (!c.phone || state.searchMatches.some((x) => x.id === c.id && x.phone === c.phone)) continue;
      state.searchMatches.push(c);
    }
    showMatches();
  }

  function showMatches() {
    const ul = $('matches');
    ul.replaceChildren();
    for (const c of state.searchMatches.slice(0, 20)) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = 'Call ' + contactLabel(c);
      b.addEventListener('click', () => dial(c.phone, c));
      const li = document.createElement('li');
      li.append(b);
      ul.append(li);
    }
    ul.hidden = state.searchMatches.length === 0;
  }

  $('dial-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = $('dial').value.trim();
    if (!v) {
      notice('Type a number or extension to call.');
      return;
    }
    dial(v, null);
  });

  async function dial(phone, contact) {
    state.pendingContact = contact;
    notice('Calling ' + phone + ': your phone rings first; answer it to be connected.');
    const body = await act({ type: 'onclicktoact', data: { phone } }, false);
    if (body && body.ok) {
      $('dial').value = '';
      state.searchMatches = [];
      showMatches();
    }
  }

  // ---- Incoming calls' contacts ----

  function incomingResponse(data) {
    const id = state.incoming.shift();
    if (!id) return;
    const list = (Array.isArray(data) ? data : []).filter((m) => m && typeof m === 'object').map(contactOf);
    if (list.length === 1) state.contacts.set(id, list[0]);
    else if (list.length > 1) state.choices.set(id, list.slice(0, 20));
    const e = state.calls.get(id);
    if (e) setCall(e);
  }

  // ---- The calls ----

  let itemSeq = 0;

  function button(text, act, cls) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    b.dataset.act = act;
    if (cls) b.className = cls;
    return b;
  }

  function newItem(id) {
    const n = ++itemSeq;
    const li = document.createElement('li');
    li.className = 'call';
    li.dataset.engagement = id;
    const who = document.createElement('p');
    who.className = 'who';
    const dir = document.createElement('span');
    dir.className = 'dir';
    const party = document.createElement('span');
    party.className = 'party';
    const contact = document.createElement('span');
    contact.className = 'contact muted';
    who.append(dir, ' ', party, ' ', contact);
    const st = document.createElement('p');
    st.className = 'state';
    const actions = document.createElement('div');
    actions.className = 'actions';
    actions.append(button('Answer', 'accept', 'good'), button('Reject', 'reject', 'danger'), button('Hang up', 'hangup', 'danger'),
      button('Hold', 'hold', 'secondary'), button('Mute', 'mute', 'secondary'), button('Keypad', 'keypad', 'secondary'),
      button('Transfer', 'transfer', 'secondary'));
    const pad = document.createElement('div');
    pad.className = 'keypad';
    pad.setAttribute('role', 'group');
    pad.hidden = true;
    for (const k of ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#']) {
      const b = button(k, 'digit');
      b.dataset.digit = k;
      b.setAttribute('aria-label', 'Send ' + k);
      pad.append(b);
    }
    const tf = document.createElement('form');
    tf.className = 'transfer';
    tf.hidden = true;
    const tl = document.createElement('label');
    tl.htmlFor = 'transfer-to-' + n;
    tl.textContent = 'Transfer to';
    const ti = document.createElement('input');
    ti.id = 'transfer-to-' + n;
    ti.type = 'tel';
    ti.autocomplete = 'off';
    ti.maxLength = 40;
    const sl = document.createElement('label');
    sl.htmlFor = 'transfer-type-' + n;
    sl.textContent = 'How';
    const ts = document.createElement('select');
    ts.id = 'transfer-type-' + n;
    for (const [v, t] of [['direct', 'Now (blind)'], ['warm', 'Talk to them first']]) {
      const o = document.createElement('option');
      o.value = v;
      o.textContent = t;
      ts.append(o);
    }
    const tb = document.createElement('button');
    tb.type = 'submit';
    tb.textContent = 'Transfer the call';
    tf.append(tl, ti, sl, ts, tb);
    const pick = document.createElement('ul');
    pick.className = 'matches';
    pick.hidden = true;
    li.append(who, st, actions, pad, tf, pick);

    li.addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-act]');
      if (!b || !li.contains(b)) return;
      const e = state.calls.get(id);
      if (!e) return;
      switch (b.dataset.act) {
        case 'accept': onCall('zcc-accept-engagement', id); break;
        case 'reject': onCall('zcc-reject-engagement', id); break;
        case 'hangup': onCall('zcc-terminate-engagement', id); break;
        case 'hold': onCall('zcc-set-hold', id, { hold: !(e.hold || e.state === 'held') }); break;
        case 'mute': onCall('zcc-set-mute', id, { mute: !e.mute }); break;
        case 'keypad':
          pad.hidden = !pad.hidden;
          b.setAttribute('aria-expanded', String(!pad.hidden));
          break;
        case 'transfer':
          tf.hidden = !tf.hidden;
          b.setAttribute('aria-expanded', String(!tf.hidden));
          if (!tf.hidden) ti.focus();
          break;
        case 'digit': onCall('zcc-send-dtmf', id, { digit: b.dataset.digit }); break;
        case 'pick': {
          const c = (state.choices.get(id) || [])[Number(b.dataset.index)];
          if (!c) break;
          state.contacts.set(id, c);
          state.choices.delete(id);
          post('zcc-screen-pop', { id: c.id });
          setCall(e);
          break;
        }
      }
    });
    tf.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const dest = ti.value.trim();
      if (!dest) {
        notice('Type where to transfer the call.');
        return;
      }
      const body = await onCall('zcc-transfer-engagement', id, { transferType: ts.value, destination: dest });
      if (body && body.ok) {
        ti.value = '';
        tf.hidden = true;
      }
    });
    return li;
  }

  function setCall(e) {
    const id = e.engagementId;
    if (!id) return;
    state.calls.set(id, e);
    let li = state.items.get(id);
    if (!li) {
      li = newItem(id);
      state.items.set(id, li);
      $('calls').prepend(li);
    }
    const ended = e.state === 'ended';
    const ringing = e.state === 'ringing';
    const dialing = e.state === 'dialing';
    const inbound = e.direction === 'inbound';
    const live = e.state === 'connected' || e.state === 'held';
    li.dataset.state = ended ? 'ended' : live ? 'connected' : 'ringing';
    const party = inbound ? e.from : e.to;
    li.querySelector('.dir').textContent = inbound ? 'From' : 'To';
    li.querySelector('.party').textContent = party || 'unknown';
    const c = state.contacts.get(id);
    li.querySelector('.contact').textContent = c ? contactLabel(c) : '';
    const parts = [ended ? 'Ended' : live ? 'Connected' : dialing ? 'Calling your phone…' : inbound ? 'Ringing' : 'Ringing…'];
    if (live && (e.hold || e.state === 'held')) parts.push('on hold');
    if (live && e.mute) parts.push('muted');
    if (e.queueName) parts.push('via ' + e.queueName);
    li.querySelector('.state').textContent = parts.join(' · ');
    const show = { accept: ringing && inbound, reject: ringing && inbound, hangup: !ended, hold: live, mute: live, keypad: live, transfer: live };
    for (const b of li.querySelectorAll('.actions button')) {
      b.hidden = !show[b.dataset.act];
      b.setAttribute('aria-label', b.textContent + (inbound ? ' the call from ' : ' the call to ') + (party || 'unknown'));
    }
    li.querySelector('[data-act=hold]').setAttribute('aria-pressed', String(!!e.hold || e.state === 'held'));
    li.querySelector('[data-act=mute]').setAttribute('aria-pressed', String(!!e.mute));
    if (!live) {
      li.querySelector('.keypad').hidden = true;
      li.querySelector('form.transfer').hidden = true;
    }
    const pick = li.querySelector('ul.matches');
    const choices = state.choices.get(id) || [];
    pick.replaceChildren();
    choices.forEach((m, i) => {
      const b = button('This is ' + contactLabel(m), 'pick');
      b.dataset.index = String(i);
      const item = document.createElement('li');
      item.append(b);
      pick.append(item);
    });
    pick.hidden = choices.length === 0 || ended;
    if (ended) setTimeout(() => { if (state.calls.get(id) === e) dropCall(id); }, 15000);
    $('no-calls').hidden = state.calls.size > 0;
  }

  function dropCall(id) {
    state.calls.delete(id);
    const li = state.items.get(id);
    if (li) li.remove();
    state.items.delete(id);
    $('no-calls').hidden = state.calls.size > 0;
  }

  // ---- Start ----

  post('zcc-init-config-request');
  let saved = null;
  try { saved = sessionStorage.getItem(storageKey); } catch (e) { /* storage off */ }
  if (saved) start(saved, null);
  else showSignIn('');
})();
