// execstore's execution explorer: runs of a flow, a tree expanded level by
// level through `children`, a waterfall of start-to-end bars, details, and
// live updates over /graphql/ws. Plain ES module, no build step, nothing
// loaded from elsewhere. It uses the queries TraceView uses.

const PAGE = 25;            // runs per page
const CHILDREN = 100;       // children per parent per request
const CHAIN_LEVELS = 12;    // a single-child chain opens this deep in one request
const EXPAND_LEVELS = 4;    // "Expand 4 levels"
const ROW = 26;             // px, fixed: rows are virtualised
const OVERSCAN = 12;

const NODE_FIELDS = `id status flowId parentExecutionId executionDepth createdAt startedAt
  completedAt errorMessage errorNodeId cursor`;
const NODE = `${NODE_FIELDS} childCount`;

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const kid of kids) e.append(kid);
  return e;
};

// ---- talking to the server -------------------------------------------------

const session = {
  get token() { return sessionStorage.getItem('execstore.token') || ''; },
  set token(t) { sessionStorage.setItem('execstore.token', t); },
};
/// Requests sent, for the page's own tests and for the curious.
// What the browser tests read: requests sent, events applied (kind:id:cursor).
window.explorer = { requests: 0, events: [] };

class AuthNeeded extends Error {}

async function gql(query, variables = {}) {
  const headers = { 'content-type': 'application/json' };
  if (session.token) headers.authorization = `Bearer ${session.token}`;
  window.explorer.requests += 1;
  const response = await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  if (response.status === 401) {
    askForToken(session.token ? 'The server refused this token (401). Paste another one.' : 'This server needs a bearer token.');
    throw new AuthNeeded('unauthenticated');
  }
  const body = await response.json();
  if (body.errors && body.errors.length) {
    const first = body.errors[0];
    const code = first.extensions && first.extensions.code;
    if (code === 'FORBIDDEN') say(`Not allowed with this token (403): ${first.message}`, true);
    throw new Error(`${code || 'ERROR'}: ${first.message}`);
  }
  return body.data;
}

function say(text, isError = false) {
  const m = $('message');
  m.textContent = text;
  m.className = isError ? 'error' : '';
  m.hidden = !text;
}

function askForToken(why) {
  $('auth-why').textContent = why;
  const dialog = $('auth');
  if (!dialog.open) dialog.showModal();
  $('auth-token').focus();
}

$('auth-form').addEventListener('submit', () => {
  session.token = $('auth-token').value.trim();
  $('auth-token').value = '';
  say('');
  reconnectLive();
  if (state.flow) findRuns();
});

// ---- time ------------------------------------------------------------------

const localTime = (iso) => (iso ? new Date(iso).toLocaleString() : '');
const ms = (iso) => (iso ? Date.parse(iso) : null);
function duration(from, to) {
  if (from === null) return '';
  const d = Math.max(0, (to ?? Date.now()) - from);
  if (d < 1000) return `${d} ms`;
  if (d < 60_000) return `${(d / 1000).toFixed(1)} s`;
  if (d < 3_600_000) return `${Math.floor(d / 60_000)} min ${Math.round((d % 60_000) / 1000)} s`;
  return `${(d / 3_600_000).toFixed(1)} h`;
}
const timeCell = (iso) => el('td', { title: iso ? `${iso} (UTC)` : '' }, localTime(iso));

// ---- runs ------------------------------------------------------------------

const state = {
  flow: '', after: null,
  rootId: null, nodes: new Map(), expanded: new Set(), selected: null,
  rows: [], socket: null, pending: [],
  // The last event applied (or the log's position before the tree was
  // loaded): the live view resumes from it after any disconnect.
  cursor: null, retry: null, attempt: 0,
};

const ROOTS = `query($flow: ID!, $first: Int, $after: String, $status: [ExecutionStatus!], $from: DateTime, $before: DateTime) {
  rootExecutions(flowId: $flow, first: $first, after: $after, status: $status, createdFrom: $from, createdBefore: $before) {
    edges { cursor node { levels totalNested execution { id status createdAt startedAt completedAt } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

function filters() {
  const status = [...document.querySelectorAll('#statuses input:checked')].map((i) => i.value);
  const iso = (v) => (v ? new Date(v).toISOString() : null);
  return { status: status.length ? status : null, from: iso($('from').value), before: iso($('before').value) };
}

async function findRuns(more = false) {
  state.flow = $('flow').value.trim();
  if (!state.flow) return;
  if (!more) { state.after = null; $('run-rows').replaceChildren(); }
  try {
    const data = await gql(ROOTS, { flow: state.flow, first: PAGE, after: state.after, ...filters() });
    const page = data.rootExecutions;
    for (const { node } of page.edges) $('run-rows').append(runRow(node));
    state.after = page.pageInfo.endCursor;
    $('older').hidden = !page.pageInfo.hasNextPage;
    if (!more && !page.edges.length) say(`No runs of flow ${state.flow} match.`);
    else say('');
  } catch (e) {
    if (!(e instanceof AuthNeeded)) say(e.message, true);
  }
}

function runRow({ execution: x, levels, totalNested }) {
  const started = x.startedAt || x.createdAt;
  const row = el('tr', { tabindex: '0', 'data-id': x.id, onclick: () => openTree(x.id), onkeydown: (e) => { if (e.key === 'Enter') openTree(x.id); } },
    el('td', {}, x.id),
    el('td', {}, el('span', { class: `badge s-${x.status}` }, x.status.toLowerCase())),
    timeCell(started),
    el('td', {}, duration(ms(started), ms(x.completedAt))),
    el('td', {}, String(levels)),
    el('td', {}, String(totalNested)));
  return row;
}

$('find').addEventListener('submit', (e) => { e.preventDefault(); findRuns(); });
$('older').addEventListener('click', () => findRuns(true));
$('jump').addEventListener('submit', (e) => {
  e.preventDefault();
  const id = $('jump-id').value.trim();
  if (id) openTree(id);
});

// ---- the tree ----------------------------------------------------------------

function remember(data, parentId) {
  const known = state.nodes.get(data.id);
  const node = known || { id: data.id, children: null, parentId };
  node.data = { childCount: 0, ...(known ? known.data : {}), ...data };
  node.parentId = data.parentExecutionId ?? parentId ?? node.parentId;
  state.nodes.set(data.id, node);
  return node;
}

/// `children(first: per) { NODE children(first: per) { … } }`, `depth` deep.
const nested = (depth, per) => (depth === 0 ? '' : `children(first: ${per}) { ${NODE} ${nested(depth - 1, per)} }`);

async function openTree(id) {
  for (const tr of document.querySelectorAll('#run-rows tr')) tr.classList.toggle('open', tr.dataset.id === id);
  state.rootId = id; state.nodes = new Map(); state.expanded = new Set(); state.selected = id;
  $('tree-title').textContent = id;
  closeLive();
  try {
    // Taken before the tree is read: subscribing after it, nothing written
    // in between can be missed.
    state.cursor = (await gql('{ eventCursor }')).eventCursor;
    const data = await gql(`query($id: ID!, $n: Int) { execution(id: $id) { ${NODE} children(first: $n) { ${NODE} } } }`, { id, n: CHILDREN });
    if (!data.execution) { say(`No execution ${id} (or not yours).`, true); render(); return; }
    say('');
    const root = remember(data.execution, null);
    root.children = data.execution.children.map((c) => remember(c, root.id).id);
    state.expanded.add(root.id);
    if (root.children.length === 1) await openChain(state.nodes.get(root.children[0]));
    render();
    showDetails(id);
    reconnectLive();
    $('tree').focus();
  } catch (e) {
    if (!(e instanceof AuthNeeded)) say(e.message, true);
  }
}

/// Expands `node`: a node with one child opens down its chain of single
/// children in one request; others load their first page of children.
async function expand(node) {
  if (node.children !== null) { state.expanded.add(node.id); render(); return; }
  if (node.data.childCount === 0) return;
  node.loading = true; render();
  try {
    if (node.data.childCount === 1) await openChain(node);
    else await loadChildren(node, null);
  } catch (e) {
    if (!(e instanceof AuthNeeded)) say(e.message, true);
  }
  node.loading = false;
  render();
}

async function openChain(node) {
  const data = await gql(`query($id: ID!) { execution(id: $id) { ${NODE} ${nested(CHAIN_LEVELS, 1)} } }`, { id: node.id });
  let at = data.execution;
  let current = node;
  while (at && current.data.childCount === 1 && at.children && at.children.length === 1) {
    const child = remember(at.children[0], current.id);
    current.children = [child.id];
    state.expanded.add(current.id);
    current = child;
    at = at.children[0];
  }
}

async function loadChildren(node, after) {
  const data = await gql(`query($id: ID!, $n: Int, $after: String) { execution(id: $id) { childCount children(first: $n, after: $after) { ${NODE} } } }`,
    { id: node.id, n: CHILDREN, after });
  if (!data.execution) return;
  node.data.childCount = data.execution.childCount;
  const ids = data.execution.children.map((c) => remember(c, node.id).id);
  node.children = after ? [...(node.children || []), ...ids] : ids;
  state.expanded.add(node.id);
}

async function loadMore(parentId) {
  const node = state.nodes.get(parentId);
  const last = state.nodes.get(node.children[node.children.length - 1]);
  try { await loadChildren(node, last.data.cursor); } catch (e) { if (!(e instanceof AuthNeeded)) say(e.message, true); }
  render();
}

/// Opens every level below the run, EXPAND_LEVELS deep, in one request
/// (each parent's first CHILDREN children; "N more" rows for the rest).
async function expandLevels() {
  const root = state.nodes.get(state.rootId);
  if (!root) return;
  const started = performance.now();
  try {
    const data = await gql(`query($id: ID!) { execution(id: $id) { ${NODE} ${nested(EXPAND_LEVELS, CHILDREN)} } }`, { id: root.id });
    window.explorer.expandAnsweredInMs = performance.now() - started;
    const walk = (at, parentId) => {
      const node = remember(at, parentId);
      if (at.children) {
        node.children = at.children.map((c) => walk(c, node.id).id);
        if (node.children.length) state.expanded.add(node.id);
      }
      return node;
    };
    if (data.execution) walk(data.execution, root.parentId);
  } catch (e) {
    if (!(e instanceof AuthNeeded)) say(e.message, true);
  }
  render();
  // Drawn on the next frame; measured once it has been painted.
  requestAnimationFrame(() => requestAnimationFrame(() => {
    window.explorer.expandedInMs = performance.now() - started;
  }));
}
$('expand-all').addEventListener('click', expandLevels);

function collapse(node) { state.expanded.delete(node.id); render(); }

/// The rows on screen: a depth-first walk of the expanded nodes, with a
/// "more" row under each parent whose children are not all loaded.
function visibleRows() {
  const rows = [];
  const root = state.nodes.get(state.rootId);
  if (!root) return rows;
  const stack = [[root, 0]];
  while (stack.length) {
    const [node, depth] = stack.pop();
    if (node.more) { rows.push({ more: node.more, depth }); continue; }
    rows.push({ node, depth });
    if (!state.expanded.has(node.id) || !node.children) continue;
    const left = node.data.childCount - node.children.length;
    if (left > 0) stack.push([{ more: { parentId: node.id, left } }, depth + 1]);
    for (let i = node.children.length - 1; i >= 0; i--) {
      const child = state.nodes.get(node.children[i]);
      if (child) stack.push([child, depth + 1]);
    }
  }
  return rows;
}

/// The waterfall's axis: from the root's start to the latest end (now for
/// what still runs) among the loaded executions.
function axis() {
  let from = Infinity; let to = -Infinity;
  for (const { data } of state.nodes.values()) {
    const start = ms(data.startedAt) ?? ms(data.createdAt);
    const end = ms(data.completedAt) ?? Date.now();
    if (start < from) from = start;
    if (end > to) to = end;
  }
  if (!(to > from)) to = from + 1;
  return { from, to };
}

let frame = 0;
function render() {
  if (frame) return;
  frame = requestAnimationFrame(() => { frame = 0; draw(); });
}

function draw() {
  state.rows = visibleRows();
  const tree = $('tree');
  $('tree-spacer').style.height = `${state.rows.length * ROW}px`;
  const first = Math.max(0, Math.floor(tree.scrollTop / ROW) - OVERSCAN);
  const last = Math.min(state.rows.length, Math.ceil((tree.scrollTop + tree.clientHeight) / ROW) + OVERSCAN);
  const span = axis();
  $('axis').textContent = state.rows.length ? `${duration(span.from, span.to)} from ${localTime(new Date(span.from).toISOString())}` : '';
  const drawn = [];
  for (let i = first; i < last; i++) drawn.push(rowElement(state.rows[i], i, span));
  for (const old of tree.querySelectorAll('.row')) old.remove();
  tree.append(...drawn);
  const active = state.rows.findIndex((r) => r.node && r.node.id === state.selected);
  if (active >= 0) tree.setAttribute('aria-activedescendant', `row-${cssId(state.selected)}`);
}

const cssId = (id) => id.replace(/[^A-Za-z0-9_-]/g, (c) => `_${c.charCodeAt(0)}`);

function rowElement(row, index, span) {
  const top = `${index * ROW}px`;
  if (row.more) {
    return el('div', { class: 'row more', style: `top:${top}`, 'data-more': row.more.parentId },
      el('div', { class: 'label', style: `padding-left:${row.depth * 16 + 20}px`, onclick: () => loadMore(row.more.parentId) },
        `${row.more.left} more…`),
      el('div'));
  }
  const { node, depth } = row;
  const x = node.data;
  const open = state.expanded.has(node.id) && node.children;
  const toggle = x.childCount === 0 ? '' : node.loading ? '…' : open ? '▾' : '▸';
  const start = ms(x.startedAt) ?? ms(x.createdAt);
  const end = ms(x.completedAt) ?? Date.now();
  const width = span.to - span.from;
  const left = ((start - span.from) / width) * 100;
  const right = ((end - span.from) / width) * 100;
  const failed = x.status === 'FAILED' && (x.errorMessage || x.errorNodeId);
  const tip = failed
    ? `${x.errorMessage || 'failed'}${x.errorNodeId ? ` (node ${x.errorNodeId})` : ''}`
    : `${x.status.toLowerCase()} · ${duration(start, ms(x.completedAt))}`;
  return el('div', {
    class: `row${state.selected === node.id ? ' selected' : ''}`, style: `top:${top}`, role: 'treeitem',
    id: `row-${cssId(node.id)}`, 'data-id': node.id, 'aria-level': String(depth + 1),
    'aria-expanded': x.childCount ? String(Boolean(open)) : null, 'aria-selected': String(state.selected === node.id),
    onclick: () => select(node.id),
  },
  el('div', { class: 'label', style: `padding-left:${depth * 16}px` },
    el('span', { class: 'toggle', onclick: (e) => { e.stopPropagation(); open ? collapse(node) : expand(node); } }, toggle),
    el('span', { class: `badge s-${x.status}` }, x.status.toLowerCase()),
    el('span', { class: 'id', title: `created ${x.createdAt} (UTC)` }, node.id),
    x.childCount ? el('span', { class: 'count' }, `(${x.childCount})`) : '',
    failed ? el('span', { class: 'error' }, tip) : ''),
  el('div', { class: 'lane' },
    el('div', { class: `bar s-${x.status}`, title: tip, 'data-start': String(start), style: `left:${left}%;width:${Math.max(0, right - left)}%` })));
}

$('tree').addEventListener('scroll', render);
window.addEventListener('resize', render);
// What still runs grows with the clock.
setInterval(() => {
  for (const { data } of state.nodes.values()) if (!data.completedAt) { render(); return; }
}, 1000);

function select(id) {
  state.selected = id;
  render();
  showDetails(id);
}

$('tree').addEventListener('keydown', (e) => {
  const rows = state.rows;
  let i = rows.findIndex((r) => r.node && r.node.id === state.selected);
  const node = i >= 0 ? rows[i].node : null;
  const go = (j) => {
    j = Math.max(0, Math.min(rows.length - 1, j));
    while (rows[j] && !rows[j].node && j > 0) j -= 1;
    if (rows[j] && rows[j].node) {
      state.selected = rows[j].node.id;
      const tree = $('tree');
      if (j * ROW < tree.scrollTop) tree.scrollTop = j * ROW;
      if ((j + 1) * ROW > tree.scrollTop + tree.clientHeight) tree.scrollTop = (j + 1) * ROW - tree.clientHeight;
      render();
    }
  };
  switch (e.key) {
    case 'ArrowDown': go(i + 1); break;
    case 'ArrowUp': go(i - 1); break;
    case 'Home': go(0); break;
    case 'End': go(rows.length - 1); break;
    case 'ArrowRight':
      if (node && node.data.childCount && !(state.expanded.has(node.id) && node.children)) expand(node);
      else go(i + 1);
      break;
    case 'ArrowLeft':
      if (node && state.expanded.has(node.id) && node.children) collapse(node);
      else if (node && node.parentId && state.nodes.has(node.parentId)) { state.selected = node.parentId; render(); }
      break;
    case 'Enter': if (node) showDetails(node.id); break;
    default: return;
  }
  e.preventDefault();
});

// ---- details -------------------------------------------------------------------

const DETAILS = `query($id: ID!) { execution(id: $id) {
  id flowId ownerId rootExecutionId parentExecutionId status executionDepth createdAt updatedAt
  startedAt completedAt errorMessage errorNodeId options integration externalEvents failureCount
  lastFailureReason lastFailureAt processingStartedAt processingWorkerId childCount
  claim { workerId status claimedAt expiresAt heartbeatAt }
  recoveryHistory { id recoveredAt recoveredByWorker recoveryReason previousStatus }
} }`;

async function showDetails(id) {
  const pane = $('details');
  try {
    const { execution: x } = await gql(DETAILS, { id });
    if (!x) { pane.replaceChildren(el('p', { class: 'hint' }, `No execution ${id}.`)); return; }
    const list = el('dl');
    const add = (k, v, utc) => {
      if (v === null || v === undefined || v === '') return;
      list.append(el('dt', {}, k), el('dd', utc ? { title: `${v} (UTC)` } : {}, utc ? localTime(v) : String(v)));
    };
    for (const k of ['status', 'flowId', 'ownerId', 'rootExecutionId', 'parentExecutionId', 'executionDepth', 'childCount',
      'errorMessage', 'errorNodeId', 'failureCount', 'lastFailureReason', 'processingWorkerId']) add(k, x[k]);
    for (const k of ['createdAt', 'updatedAt', 'startedAt', 'completedAt', 'lastFailureAt', 'processingStartedAt']) add(k, x[k], true);
    const json = (k) => (x[k] === null ? [] : [el('h3', {}, k), el('pre', {}, JSON.stringify(x[k], null, 2))]);
    const claim = x.claim
      ? [el('h3', {}, 'claim'), el('dl', {}, el('dt', {}, 'worker'), el('dd', {}, x.claim.workerId), el('dt', {}, 'status'), el('dd', {}, x.claim.status),
        el('dt', {}, 'expires'), el('dd', { title: `${x.claim.expiresAt} (UTC)` }, localTime(x.claim.expiresAt)))]
      : [];
    const recoveries = x.recoveryHistory.length
      ? [el('h3', {}, 'recovery history'), el('ul', {}, ...x.recoveryHistory.map((r) => el('li', { title: `${r.recoveredAt} (UTC)` }, `${localTime(r.recoveredAt)} · ${r.recoveryReason} (by ${r.recoveredByWorker}; was ${r.previousStatus || '?'})`)))]
      : [];
    pane.replaceChildren(el('h2', {}, x.id), list, ...json('options'), ...json('integration'), ...json('externalEvents'), ...claim, ...recoveries);
  } catch (e) {
    if (!(e instanceof AuthNeeded)) pane.replaceChildren(el('p', { class: 'hint' }, e.message));
  }
}

// ---- live ------------------------------------------------------------------------

function reconnectLive() {
  closeLive();
  state.attempt = 0;
  if (state.rootId) connectLive();
}

function closeLive() {
  clearTimeout(state.retry);
  if (state.socket) { state.socket.onclose = null; state.socket.close(); state.socket = null; }
  showLive(null);
}

function showLive(text) {
  const badge = $('live');
  badge.hidden = !text;
  badge.textContent = text || '';
  badge.classList.toggle('reconnecting', text !== '● live');
}

/// Follows the open run's events from `state.cursor`. A closed socket (a
/// restart, a deploy, a sleeping tab, a proxy's idle timeout) retries with
/// backoff and resumes from the last event applied: nothing missed, nothing
/// twice. EVENTS_EXPIRED (away longer than the server keeps events) reloads
/// the tree.
function connectLive() {
  const root = state.nodes.get(state.rootId);
  const treeRoot = root ? root.data.rootExecutionId || state.rootId : state.rootId;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(`${scheme}://${location.host}/graphql/ws`, 'graphql-transport-ws');
  state.socket = socket;
  socket.onopen = () => socket.send(JSON.stringify({ type: 'connection_init', payload: session.token ? { Authorization: `Bearer ${session.token}` } : {} }));
  socket.onmessage = (message) => {
    const m = JSON.parse(message.data);
    if (m.type === 'connection_ack') {
      socket.send(JSON.stringify({ id: 'tree', type: 'subscribe', payload: {
        // No childCount: a created execution has none, an update does not
        // change it, and leaving it out spares the server a count per event.
        query: `subscription($root: ID!, $after: String) { executionEvents(rootExecutionId: $root, after: $after) { kind executionId cursor execution { ${NODE_FIELDS} } } }`,
        variables: { root: treeRoot, after: state.cursor },
      } }));
      state.attempt = 0;
      showLive('● live');
    } else if (m.type === 'next' && m.payload.data) {
      const event = m.payload.data.executionEvents;
      state.cursor = event.cursor;
      state.pending.push(event);
      if (state.pending.length === 1) requestAnimationFrame(applyEvents);
    } else if ((m.type === 'next' && m.payload.errors) || m.type === 'error') {
      const errors = m.payload.errors || m.payload;
      if (errors.some((e) => e.extensions && e.extensions.code === 'EVENTS_EXPIRED')) {
        say('Away longer than the server keeps events: the tree was reloaded.');
        openTree(state.rootId);
      } else {
        say(`Live updates stopped: ${errors[0].message}`, true);
        closeLive();
      }
    } else if (m.type === 'ping') {
      socket.send(JSON.stringify({ type: 'pong' }));
    }
  };
  socket.onclose = () => {
    if (state.socket !== socket) return;
    state.socket = null;
    showLive('reconnecting…');
    const delay = Math.min(10000, 250 * 2 ** state.attempt);
    state.attempt += 1;
    state.retry = setTimeout(connectLive, delay);
  };
}

/// Applies every event that arrived since the last frame, then draws once.
function applyEvents() {
  const events = state.pending; state.pending = [];
  for (const { kind, executionId, execution, cursor } of events) {
    window.explorer.events.push(`${kind}:${executionId}:${cursor}`);
    const known = state.nodes.get(executionId);
    if (kind === 'DELETED') {
      if (!known) continue;
      const parent = state.nodes.get(known.parentId);
      if (parent) {
        if (parent.children) parent.children = parent.children.filter((c) => c !== executionId);
        parent.data.childCount = Math.max(0, parent.data.childCount - 1);
      }
      state.nodes.delete(executionId);
    } else if (kind === 'CREATED' && !known && execution) {
      const parent = state.nodes.get(execution.parentExecutionId);
      if (!parent) continue;
      // Shown at once when the parent's list is whole; else counted.
      if (parent.children && parent.children.length === parent.data.childCount) parent.children.push(remember(execution, parent.id).id);
      parent.data.childCount += 1;
    } else if (known && execution) {
      remember(execution, known.parentId);
    }
  }
  render();
  if (state.selected && events.some((e) => e.executionId === state.selected)) showDetails(state.selected);
}

// ---- start ---------------------------------------------------------------------

const params = new URLSearchParams(location.search);
if (params.get('flow')) { $('flow').value = params.get('flow'); findRuns(); }
if (params.get('execution')) openTree(params.get('execution'));
