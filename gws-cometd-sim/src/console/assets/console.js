// The console's script: follows the user's calls (a long poll on /console/api/state) and
// sends the agent's operations to the GWS REST API as any desktop (and the CLI) does.
'use strict';

const $ = (id) => document.getElementById(id);

// --- GWS REST: the session's CSRF token, then POST /api/v2/me/calls/{id} ---------------

let csrf = null;

async function login() {
  const r = await fetch('/api/v2/me', { cache: 'no-store', credentials: 'same-origin' });
  if (!r.ok) throw new Error(`login: HTTP ${r.status}`);
  const header = r.headers.get('X-CSRF-HEADER');
  const token = r.headers.get('X-CSRF-TOKEN');
  csrf = header && token ? { header, token } : {};
}

async function readReply(r) {
  try {
    return await r.json();
  } catch {
    return {};
  }
}

function describe(what, r, reply) {
  const message = reply.statusMessage || `HTTP ${r.status}`;
  const code = reply.statusCode !== undefined ? ` (statusCode ${reply.statusCode})` : '';
  return `${what}: ${message}${code}`;
}

async function post(path, body, what, { gws = true, retried = false } = {}) {
  const headers = { 'Content-Type': 'application/json' };
  if (gws) {
    if (!csrf) await login();
    if (csrf.header) headers[csrf.header] = csrf.token;
  }
  const r = await fetch(path, {
    method: 'POST', headers, body: JSON.stringify(body), credentials: 'same-origin',
  });
  const reply = await readReply(r);
  if (gws && (r.status === 403 || r.status === 401) && !retried) {
    // The session or its token changed: log in again once.
    csrf = null;
    return post(path, body, what, { gws, retried: true });
  }
  if (!r.ok || reply.statusCode !== 0) throw new Error(describe(what, r, reply));
  return reply;
}

function operation(id, operationName, extra = {}) {
  return post(`/api/v2/me/calls/${encodeURIComponent(id)}`, { operationName, ...extra }, operationName);
}

// --- Errors ------------------------------------------------------------------------------

function showError(message) {
  $('error-text').textContent = message;
  $('error').hidden = false;
}

async function act(f) {
  try {
    await f();
  } catch (e) {
    showError(e.message || String(e));
  }
}

// --- Rendering ---------------------------------------------------------------------------

function el(tag, props = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else if (k.startsWith('data-') || k === 'aria-label' || k === 'placeholder') e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

// The buttons of a call: [testid, label, operationName or handler, class].
const CONTROLS = [
  ['answer', 'Answer', 'Answer', 'primary'],
  ['hold', 'Hold', 'Hold', ''],
  ['retrieve', 'Retrieve', 'Retrieve', ''],
  ['hangup', 'Hang up', 'Hangup', 'danger'],
];

function controls(call) {
  const box = el('div', { class: 'actions' });
  for (const [testid, label, op, cls] of CONTROLS) {
    const b = el('button', { type: 'button', text: label, class: cls, 'data-testid': testid });
    b.disabled = !call.capabilities.includes(op);
    b.addEventListener('click', () => act(() => operation(call.id, op)));
    box.append(b);
  }
  if (call.state === 'Dialing') {
    const b = el('button', { type: 'button', text: 'Far end answers', 'data-testid': 'remote-answer' });
    b.addEventListener('click', () => act(() =>
      post(`/console/api/calls/${encodeURIComponent(call.id)}/remote-answer`, {}, 'far end answer', { gws: false })));
    box.append(b);
  }
  if (call.state === 'Released') {
    const b = el('button', { type: 'button', text: 'End wrap-up', 'data-testid': 'complete' });
    b.addEventListener('click', () => act(() => operation(call.id, 'Complete')));
    box.append(b);
  }
  return box;
}

function dataTable(call) {
  if (call.userData.length === 0) return el('p', { class: 'no-data', text: 'None yet.' });
  const takes = call.capabilities.includes('DeleteUserDataPair');
  const rows = call.userData.map((pair) => {
    const del = el('button', {
      type: 'button', class: 'ghost small remove', text: '✕',
      'data-testid': 'delete-pair', 'data-key': pair.key, 'aria-label': `Delete ${pair.key}`,
    });
    del.disabled = !takes;
    del.addEventListener('click', () => act(() => operation(call.id, 'DeleteUserDataPair', { key: pair.key })));
    return el('tr', { 'data-testid': 'pair' }, [
      el('td', { class: 'key', text: pair.key, 'data-testid': 'pair-key' }),
      el('td', { class: pair.json ? 'value json' : 'value', text: pair.value, 'data-testid': 'pair-value' }),
      el('td', { class: 'del' }, [del]),
    ]);
  });
  return el('table', { class: 'data' }, [el('tbody', {}, rows)]);
}

function attachForm(card) {
  const key = el('input', { placeholder: 'key', 'data-testid': 'attach-key', 'aria-label': 'Key' });
  const value = el('input', { placeholder: 'value', 'data-testid': 'attach-value', 'aria-label': 'Value' });
  const send = (op) => act(async () => {
    const [k, v] = [key.value, value.value];
    if (!k) throw new Error(`${op}: the key is empty`);
    // Cleared at once: the change may show (and the next pair be typed) before the reply.
    key.value = '';
    value.value = '';
    try {
      await operation(card.dataset.callId, op, { userData: { [k]: v } });
    } catch (e) {
      if (!key.value && !value.value) [key.value, value.value] = [k, v];
      throw e;
    }
  });
  const attach = el('button', { type: 'submit', text: 'Attach', 'data-testid': 'attach' });
  const update = el('button', { type: 'button', text: 'Update', 'data-testid': 'update' });
  update.addEventListener('click', () => send('UpdateUserData'));
  const form = el('form', { class: 'attach', autocomplete: 'off' }, [key, value, attach, update]);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    send('AttachUserData');
  });
  return form;
}

function dataHead(card) {
  const clear = el('button', {
    type: 'button', text: 'Delete all', class: 'ghost small danger', 'data-testid': 'delete-all',
  });
  clear.addEventListener('click', () => act(() => operation(card.dataset.callId, 'DeleteUserData')));
  return el('div', { class: 'data-head' }, [el('span', { text: 'Attached data' }), clear]);
}

// Cards are kept per call, so what is typed in a call's form survives updates.
const cards = new Map();

function card(call) {
  let c = cards.get(call.id);
  if (!c) {
    c = el('article', { class: 'call', 'data-testid': 'call', 'data-call-id': call.id });
    c.append(el('div', { class: 'call-top' }), el('div', { class: 'parties', 'data-testid': 'parties' }));
    c.append(el('div'), dataHead(c), el('div'), attachForm(c));
    cards.set(call.id, c);
  }
  c.dataset.state = call.state;
  const [top, parties, actions, head, data, form] = c.children;
  top.replaceChildren(
    el('span', { class: 'state', text: call.state, 'data-testid': 'state' }),
    el('span', { class: 'type', text: call.callType, 'data-testid': 'type' }),
    el('span', { class: 'call-id', text: call.id, title: 'call id' }),
  );
  parties.textContent = `${call.ani} → ${call.dnis}`;
  actions.replaceWith(controls(call));
  data.replaceWith(dataTable(call));
  const takes = call.capabilities.includes('AttachUserData');
  for (const b of form.querySelectorAll('button')) b.disabled = !takes;
  head.querySelector('button').disabled = !call.capabilities.includes('DeleteUserData') || call.userData.length === 0;
  return c;
}

function render(state) {
  $('user').textContent = state.user;
  $('number').textContent = state.number || '–';
  const list = $('calls');
  const seen = new Set();
  const wanted = state.calls.map((call) => {
    seen.add(call.id);
    return card(call);
  });
  for (const id of [...cards.keys()]) if (!seen.has(id)) cards.delete(id);
  list.replaceChildren(...wanted);
  $('count').textContent = String(state.calls.length);
  $('no-calls').hidden = state.calls.length > 0;
  $('changes').replaceChildren(
    ...state.changes.slice().reverse().map((line) => el('li', { text: line, 'data-testid': 'change' })),
  );
  renderReplay(state.replay);
}

// serve --replay: `state.replay` is null without a replay; with one, where it stands and
// its controls, which post to /console/api/replay/{play,pause,step,speed}.
function renderReplay(replay) {
  $('replay').hidden = !replay;
  if (!replay) return;
  const sessions = `${replay.sessions} session${replay.sessions === 1 ? '' : 's'}`;
  const speed = replay.speed === 'max' ? 'max speed' : `${replay.speed}×`;
  const position = $('replay-position');
  position.textContent = `${replay.delivered} of ${replay.total} delivered · loop ${replay.loops}`
    + ` · ${sessions} · ${replay.paused ? 'paused' : 'playing'} · ${speed}`;
  position.dataset.delivered = String(replay.delivered);
  position.dataset.total = String(replay.total);
  position.dataset.sessions = String(replay.sessions);
  position.dataset.paused = String(replay.paused);
  position.dataset.speed = replay.speed;
  $('replay-play').disabled = !replay.paused;
  $('replay-pause').disabled = replay.paused;
  // A step lets one notification go while paused; playing, it would do nothing.
  $('replay-step').disabled = !replay.paused;
  const select = $('replay-speed');
  if (![...select.options].some((o) => o.value === replay.speed)) {
    // A speed given on the command line that the list lacks (--speed 0.25).
    select.append(el('option', { value: replay.speed, text: `${replay.speed}×` }));
  }
  if (document.activeElement !== select) select.value = replay.speed;
}

function replayControl(action, body = {}) {
  return act(() => post(`/console/api/replay/${action}`, body, `replay ${action}`, { gws: false }));
}

function setLive(live, why) {
  const link = $('link');
  link.dataset.live = String(live);
  link.textContent = live ? 'live' : 'reconnecting';
  link.title = why || '';
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function follow() {
  let since = null;
  for (;;) {
    try {
      const url = since === null ? '/console/api/state' : `/console/api/state?since=${since}`;
      const r = await fetch(url, { cache: 'no-store', credentials: 'same-origin' });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const state = await r.json();
      since = state.version;
      render(state);
      setLive(true);
    } catch (e) {
      setLive(false, e.message);
      since = null;
      await sleep(1000);
    }
  }
}

// --- The phone and IVR side --------------------------------------------------------------

// `KEY=VALUE` (a string) or `KEY:=JSON` lines, as the CLI reads them, into [key, JSON text].
function pairs(text) {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const json = line.indexOf(':=');
    const eq = line.indexOf('=');
    if (json > 0 && json < eq) {
      out.push([line.slice(0, json), line.slice(json + 2)]);
    } else if (eq > 0) {
      out.push([line.slice(0, eq), JSON.stringify(line.slice(eq + 1))]);
    } else {
      throw new Error(`ring: "${line}" is not KEY=VALUE or KEY:=JSON`);
    }
  }
  return out;
}

function setup() {
  $('error-close').addEventListener('click', () => { $('error').hidden = true; });
  $('ring-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = e.target.elements;
    act(() => post('/console/api/ring', {
      from: f.from.value, to: f.to.value, userData: pairs(f.data.value),
    }, 'ring', { gws: false }));
  });
  $('dial-form').addEventListener('submit', (e) => {
    e.preventDefault();
    act(() => post('/console/api/dial', { to: e.target.elements.to.value }, 'dial', { gws: false }));
  });
  for (const action of ['play', 'pause', 'step']) {
    $(`replay-${action}`).addEventListener('click', () => replayControl(action));
  }
  $('replay-speed').addEventListener('change', (e) => replayControl('speed', { speed: e.target.value }));
  follow();
}

setup();
