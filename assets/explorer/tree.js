// The run's tree. Levels load on demand through `children`; a parent's
// children load in windows as they scroll into view (from either end: a
// gap row between loaded windows loads the side it is reached from), so a
// parent of a hundred thousand children needs no clicks and the DOM keeps
// only the rows on screen. `reveal` opens the path to any execution.

import { $, el, say, duration, localTime, dueIn } from './ui.js';
import { gql, failed, NODE } from './api.js';
import { axis, bar, slowestPath } from './waterfall.js';
import { showDetails } from './details.js';
import { state, actions } from './state.js';

const CHILDREN = 100;       // children per window
const AROUND = 50;          // children loaded on each side of a revealed one
const CHAIN_LEVELS = 12;    // a single-child chain opens this deep in one request
const EXPAND_LEVELS = 4;    // "Expand 4 levels"
const ROW = 26;             // px, fixed: rows are virtualised
const OVERSCAN = 12;

// For the browser tests: what is loaded and drawn.
window.explorer.tree = state;

// ---- the model ---------------------------------------------------------------

/// Records an execution's data; a node keeps its loaded children.
export function remember(data, parentId) {
  const known = state.nodes.get(data.id);
  const node = known || { id: data.id, children: null, gapBefore: new Set(), gapAtEnd: false, parentId };
  node.data = { childCount: 0, ...(known ? known.data : {}), ...data };
  node.parentId = data.parentExecutionId ?? parentId ?? node.parentId;
  state.nodes.set(data.id, node);
  return node;
}

/// Creation time to the microsecond, then id: where a window with no
/// loaded neighbour goes among the loaded children.
function key(id) {
  const { createdAt } = state.nodes.get(id).data;
  const m = /^(.*:\d\d)(?:\.(\d+))?(Z|[+-].*)$/.exec(createdAt) || [];
  return [Date.parse(`${m[1]}${m[3]}`), Number((m[2] || '').padEnd(6, '0').slice(0, 6)), id];
}
const before = (a, b) => {
  const [x, y] = [key(a), key(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] < y[i];
  return false;
};

/// Adds a window of `parent`'s children (`run`, in the server's order) to
/// what is loaded: right after the child it follows (`after`), right before
/// the one it precedes (`before`), first (`fromStart`), or — a revealed
/// execution's window, with no loaded neighbour — by creation time. The
/// server's order is kept as it came, never re-sorted here (ids that tie on
/// time sort by the database's collation, which the page does not know).
/// Where loaded children are not known to follow one another a gap remains
/// (`gapBefore` an id, `gapAtEnd`); `toEnd`: the window ends with the last
/// child.
function mergeWindow(parent, run, { after, before: next, fromStart = false, toEnd = false }) {
  const old = new Set(parent.children || []);
  const ids = run.map((d) => remember(d, parent.id).id);
  const inWindow = new Set(ids);
  const rest = (parent.children || []).filter((id) => !inWindow.has(id));
  let at = -1;
  if (after) at = rest.indexOf(after) + 1 || -1;
  else if (next) at = rest.indexOf(next);
  else if (fromStart) at = 0;
  if (at < 0) {
    at = ids.length ? rest.findIndex((id) => before(ids[0], id)) : rest.length;
    if (at < 0) at = rest.length;
  }
  const children = [...rest.slice(0, at), ...ids, ...rest.slice(at)];
  const gaps = parent.gapBefore;
  ids.forEach((id, i) => { if (i > 0) gaps.delete(id); else if (!old.has(id)) gaps.add(id); });
  if (ids.length) {
    if (fromStart || after) gaps.delete(ids[0]);
    if (next) gaps.delete(next);
    if (toEnd) parent.gapAtEnd = false;
    else if (children.indexOf(ids[ids.length - 1]) === children.length - 1) parent.gapAtEnd = true;
  } else {
    if (toEnd) parent.gapAtEnd = false;
    if (fromStart && next) gaps.delete(next);
  }
  if (fromStart && children.length) gaps.delete(children[0]);
  parent.children = children;
  if (children.length >= parent.data.childCount) { gaps.clear(); parent.gapAtEnd = false; }
  state.expanded.add(parent.id);
}

// ---- loading -----------------------------------------------------------------

const CHILD_WINDOW = `query($id: ID!, $n: Int, $after: String) {
  execution(id: $id) { childCount children(first: $n, after: $after) { ${NODE} } } }`;
const LAST_CHILDREN = `query($id: ID!, $n: Int, $before: String) {
  directChildFeed(parentExecutionId: $id, first: $n, after: $before) { nodes { ${NODE} } pageInfo { hasNextPage } } }`;

/// The next window after child `after` (from the first child when null).
async function loadForward(parent, after) {
  const cursor = after ? state.nodes.get(after).data.cursor : null;
  const generation = state.generation;
  const data = await gql(CHILD_WINDOW, { id: parent.id, n: CHILDREN, after: cursor });
  if (!data.execution || generation !== state.generation) return;
  parent.data.childCount = data.execution.childCount;
  const run = data.execution.children;
  mergeWindow(parent, run, { after, fromStart: !after, toEnd: run.length < CHILDREN });
}

/// The window before child `before` (the last children when null).
async function loadBackward(parent, before) {
  const cursor = before ? state.nodes.get(before).data.cursor : null;
  const generation = state.generation;
  const feed = (await gql(LAST_CHILDREN, { id: parent.id, n: CHILDREN, before: cursor })).directChildFeed;
  if (generation !== state.generation) return;
  const run = [...feed.nodes].reverse();
  mergeWindow(parent, run, { before, fromStart: !feed.pageInfo.hasNextPage, toEnd: !before });
}

/// `children(first: per) { NODE children(first: per) { … } }`, `depth` deep.
const nested = (depth, per) => (depth === 0 ? '' : `children(first: ${per}) { ${NODE} ${nested(depth - 1, per)} }`);

/// Opens the run `id`: the root and its first window of children.
export async function openTree(id) {
  actions.markOpenRun(id);
  Object.assign(state, {
    rootId: id, nodes: new Map(), expanded: new Set(), selected: id,
    gapsLoading: new Set(), gapsStuck: new Set(), generation: state.generation + 1,
  });
  const generation = state.generation;
  const current = () => generation === state.generation;
  $('tree-title').textContent = id;
  $('tree').scrollTop = 0;
  actions.closeLive();
  try {
    // Taken before the tree is read: subscribing after it, nothing written
    // in between can be missed.
    const cursor = (await gql('{ eventCursor }')).eventCursor;
    const data = await gql(`query($id: ID!, $n: Int) { execution(id: $id) { ${NODE} children(first: $n) { ${NODE} } } }`, { id, n: CHILDREN });
    if (!current()) return false;
    state.cursor = cursor;
    if (!data.execution) { say(`No execution ${id} (or not yours).`, true); render(); return false; }
    say('');
    const root = remember(data.execution, null);
    const run = data.execution.children;
    mergeWindow(root, run, { fromStart: true, toEnd: run.length < CHILDREN });
    if (run.length === 1) await openChain(state.nodes.get(run[0].id));
    if (!current()) return false;
    render();
    requestAnimationFrame(() => requestAnimationFrame(() => { window.explorer.treeDrawnAt = performance.now(); }));
    actions.showCounts(data.execution.rootExecutionId);
    actions.reconnectLive();
    return true;
  } catch (e) {
    failed(e);
    return false;
  }
}

/// Expands `node`: a node with one child opens down its chain of single
/// children in one request; others load their first window of children.
async function expand(node) {
  if (node.children !== null) { state.expanded.add(node.id); render(); return; }
  if (node.data.childCount === 0) return;
  node.loading = true; render();
  try {
    if (node.data.childCount === 1) await openChain(node);
    else await loadForward(node, null);
  } catch (e) {
    failed(e);
  }
  node.loading = false;
  render();
}

async function openChain(node) {
  const generation = state.generation;
  const data = await gql(`query($id: ID!) { execution(id: $id) { ${NODE} ${nested(CHAIN_LEVELS, 1)} } }`, { id: node.id });
  if (generation !== state.generation) return;
  let at = data.execution;
  let current = node;
  while (at && current.data.childCount === 1 && at.children && at.children.length === 1) {
    mergeWindow(current, at.children, { fromStart: true, toEnd: true });
    current = state.nodes.get(at.children[0].id);
    at = at.children[0];
  }
}

/// Opens every level below the run, EXPAND_LEVELS deep, in one request
/// (each parent's first window; the rest loads as it scrolls into view).
export async function expandLevels() {
  const root = state.nodes.get(state.rootId);
  if (!root) return;
  const started = performance.now();
  const generation = state.generation;
  try {
    const data = await gql(`query($id: ID!) { execution(id: $id) { ${NODE} ${nested(EXPAND_LEVELS, CHILDREN)} } }`, { id: root.id });
    if (generation !== state.generation) return;
    window.explorer.expandAnsweredInMs = performance.now() - started;
    const walk = (at, parentId) => {
      const node = remember(at, parentId);
      if (at.children) {
        mergeWindow(node, at.children, { fromStart: true, toEnd: at.children.length < CHILDREN });
        for (const child of at.children) walk(child, node.id);
      }
      return node;
    };
    if (data.execution) walk(data.execution, root.parentId);
  } catch (e) {
    failed(e);
  }
  render();
  // Drawn on the next frame; measured once it has been painted.
  requestAnimationFrame(() => requestAnimationFrame(() => {
    window.explorer.expandedInMs = performance.now() - started;
  }));
}

/// Loads a gap's children from the side it was reached from, keeping the
/// rows below in place when the window lands above them. A load that fails
/// or brings nothing leaves the gap for a click (`retry`).
async function fillGap(gap, backward, { retry = false } = {}) {
  const tag = `${gap.parentId}|${gap.after}|${gap.before}`;
  if (state.gapsLoading.has(tag) || (state.gapsStuck.has(tag) && !retry)) return;
  state.gapsLoading.add(tag);
  state.gapsStuck.delete(tag);
  const generation = state.generation;
  const parent = state.nodes.get(gap.parentId);
  const loaded = parent.children.length;
  const anchor = gap.before;
  const indexOf = () => state.rows.findIndex((r) => r.node && r.node.id === anchor);
  const was = backward && anchor ? indexOf() : -1;
  let ok = true;
  try {
    if (backward) await loadBackward(parent, gap.before);
    else await loadForward(parent, gap.after);
  } catch (e) {
    ok = false;
    failed(e);
  }
  if (generation !== state.generation) return;
  state.gapsLoading.delete(tag);
  if (!ok || parent.children.length === loaded) state.gapsStuck.add(tag);
  if (was >= 0) {
    state.rows = visibleRows();
    $('tree-spacer').style.height = `${state.rows.length * ROW}px`;
    $('tree').scrollTop += (indexOf() - was) * ROW;
  }
  render();
}

/// The last window of a parent's children, then the view scrolled to it.
async function jumpToEnd(parent) {
  try { await loadBackward(parent, null); } catch (e) { failed(e); return; }
  state.rows = visibleRows();
  scrollToRow(parent.children[parent.children.length - 1], 'end');
  render();
}

// ---- reveal --------------------------------------------------------------------

/// Shows execution `id` in its run's tree: the run opened, each ancestor
/// expanded with a window of children around the next one on the path
/// (one request for every level), the row selected and scrolled to.
export async function reveal(id) {
  const started = performance.now();
  try {
    const found = (await gql(`query($id: ID!) { execution(id: $id) { ${NODE} ancestors { ${NODE} } } }`, { id })).execution;
    if (!found) { say(`No execution ${id} (or not yours).`, true); return null; }
    const path = [...found.ancestors, found];
    if (state.rootId !== path[0].id && !(await openTree(path[0].id))) return null;
    const generation = state.generation;
    let prior = remember(path[0], null);
    const levels = [];
    for (const at of path.slice(1)) {
      const parent = prior;
      prior = remember(at, parent.id);
      if (!parent.children || !parent.children.includes(at.id)) levels.push({ parent, at });
      else state.expanded.add(parent.id);
    }
    if (levels.length) {
      const vars = {};
      const parts = levels.map(({ parent, at }, i) => {
        vars[`p${i}`] = parent.id; vars[`c${i}`] = at.cursor;
        return `f${i}: execution(id: $p${i}) { childCount children(first: ${AROUND}, after: $c${i}) { ${NODE} } }
          b${i}: directChildFeed(parentExecutionId: $p${i}, first: ${AROUND}, after: $c${i}) { nodes { ${NODE} } pageInfo { hasNextPage } }`;
      });
      const decls = levels.map((_, i) => `$p${i}: ID!, $c${i}: String`).join(', ');
      const data = await gql(`query(${decls}) { ${parts.join('\n')} }`, vars);
      if (generation !== state.generation) return null;
      levels.forEach(({ parent, at }, i) => {
        const after = data[`f${i}`] ? data[`f${i}`].children : [];
        const before = [...data[`b${i}`].nodes].reverse();
        mergeWindow(parent, [...before, at, ...after], {
          fromStart: !data[`b${i}`].pageInfo.hasNextPage, toEnd: after.length < AROUND,
        });
      });
    }
    state.selected = id;
    state.rows = visibleRows();
    scrollToRow(id, 'center');
    render();
    showDetails(id);
    requestAnimationFrame(() => requestAnimationFrame(() => { window.explorer.revealedInMs = performance.now() - started; }));
    return found;
  } catch (e) {
    failed(e);
    return null;
  }
}

/// Scrolls `state.rows` (just recomputed) so that row `id` is in the
/// middle (or at the bottom) of the tree.
function scrollToRow(id, where) {
  const index = state.rows.findIndex((r) => r.node && r.node.id === id);
  if (index < 0) return;
  const tree = $('tree');
  // The spacer first: the browser clamps scrollTop to what it can scroll.
  $('tree-spacer').style.height = `${state.rows.length * ROW}px`;
  const offset = where === 'end' ? tree.clientHeight - ROW : (tree.clientHeight - ROW) / 2;
  tree.scrollTop = Math.max(0, index * ROW - offset);
}

// ---- live changes ----------------------------------------------------------------

/// Applies one event of the run to what is loaded.
export function applyEvent({ kind, executionId, execution }) {
  const known = state.nodes.get(executionId);
  if (kind === 'DELETED') {
    if (!known) return;
    const parent = state.nodes.get(known.parentId);
    if (parent) {
      const i = parent.children ? parent.children.indexOf(executionId) : -1;
      if (i >= 0) {
        // The unloaded children before it are still there: their gap moves
        // to the next loaded sibling (or to the end).
        if (parent.gapBefore.delete(executionId)) {
          const next = parent.children[i + 1];
          if (next) parent.gapBefore.add(next);
          else parent.gapAtEnd = true;
        }
        parent.children.splice(i, 1);
      }
      parent.data.childCount = Math.max(0, parent.data.childCount - 1);
    }
    state.nodes.delete(executionId);
  } else if (kind === 'CREATED' && !known && execution) {
    const parent = state.nodes.get(execution.parentExecutionId);
    if (!parent) return;
    // Shown at once when the parent's list is whole; else counted, and the
    // list ends in a gap that loads it.
    const whole = parent.children && parent.children.length === parent.data.childCount;
    parent.data.childCount += 1;
    if (whole) parent.children.push(remember(execution, parent.id).id);
    else if (parent.children) parent.gapAtEnd = true;
  } else if (known && execution) {
    remember(execution, known.parentId);
  }
}

// ---- drawing -------------------------------------------------------------------

/// The rows on screen: a depth-first walk of the expanded nodes, with a
/// gap row wherever a parent's loaded children are not contiguous.
function visibleRows() {
  const rows = [];
  const root = state.nodes.get(state.rootId);
  if (!root) return rows;
  const stack = [[root, 0]];
  while (stack.length) {
    const [item, depth] = stack.pop();
    if (item.gap) { rows.push({ gap: item.gap, depth }); continue; }
    rows.push({ node: item, depth });
    if (!state.expanded.has(item.id) || !item.children) continue;
    const kids = item.children;
    const gaps = item.gapBefore.size + (item.gapAtEnd ? 1 : 0);
    const left = gaps === 1 ? item.data.childCount - kids.length : null;
    if (item.gapAtEnd) stack.push([{ gap: { parentId: item.id, after: kids[kids.length - 1] ?? null, before: null, left } }, depth + 1]);
    for (let i = kids.length - 1; i >= 0; i--) {
      const child = state.nodes.get(kids[i]);
      if (child) stack.push([child, depth + 1]);
      if (item.gapBefore.has(kids[i])) stack.push([{ gap: { parentId: item.id, after: kids[i - 1] ?? null, before: kids[i], left } }, depth + 1]);
    }
  }
  return rows;
}

let frame = 0;
export function render() {
  if (frame) return;
  frame = requestAnimationFrame(() => { frame = 0; draw(); });
}

const cssId = (id) => id.replace(/[^A-Za-z0-9_-]/g, (c) => `_${c.charCodeAt(0)}`);

function draw() {
  window.explorer.drawn = (window.explorer.drawn || 0) + 1;
  state.rows = visibleRows();
  const tree = $('tree');
  $('tree-spacer').style.height = `${state.rows.length * ROW}px`;
  const first = Math.max(0, Math.floor(tree.scrollTop / ROW) - OVERSCAN);
  const last = Math.min(state.rows.length, Math.ceil((tree.scrollTop + tree.clientHeight) / ROW) + OVERSCAN);
  const span = axis(state.nodes.values());
  const slowest = slowestPath(state.nodes, state.rootId);
  $('axis').textContent = state.rows.length ? `${duration(span.from, span.to)} from ${localTime(new Date(span.from).toISOString())}` : '';
  const drawn = [];
  for (let i = first; i < last; i++) drawn.push(rowElement(state.rows[i], i, span, slowest));
  for (const old of tree.querySelectorAll('.row')) old.remove();
  tree.append(...drawn);
  if (state.rows.some((r) => r.node && r.node.id === state.selected)) tree.setAttribute('aria-activedescendant', `row-${cssId(state.selected)}`);
  // Gaps on screen load: from above when reached scrolling down, from
  // below when reached scrolling up.
  for (let i = Math.max(first, Math.floor(tree.scrollTop / ROW)); i < Math.min(last, Math.ceil((tree.scrollTop + tree.clientHeight) / ROW)); i++) {
    const { gap } = state.rows[i];
    if (!gap) continue;
    const upperHalf = i * ROW - tree.scrollTop < tree.clientHeight / 2;
    fillGap(gap, gap.before === null ? false : gap.after === null ? true : upperHalf);
  }
}

function rowElement(row, index, span, slowest) {
  const top = `${index * ROW}px`;
  if (row.gap) {
    const { gap } = row;
    const label = gap.left !== null ? `${gap.left} more…` : 'more…';
    return el('div', { class: 'row more', style: `top:${top}`, 'data-more': gap.parentId },
      el('div', { class: 'label', style: `padding-left:${row.depth * 16 + 20}px` },
        el('span', { class: 'load', onclick: () => fillGap(gap, false, { retry: true }) }, label)),
      el('div'));
  }
  const { node, depth } = row;
  const x = node.data;
  const open = state.expanded.has(node.id) && node.children;
  const toggle = x.childCount === 0 ? '' : node.loading ? '…' : open ? '▾' : '▸';
  const { left, width, start } = bar(x, span);
  const failedHere = x.status === 'FAILED' && (x.errorMessage || x.errorNodeId);
  const tip = failedHere
    ? `${x.errorMessage || 'failed'}${x.errorNodeId ? ` (node ${x.errorNodeId})` : ''}`
    : `${x.status.toLowerCase()} · ${duration(start, x.completedAt ? Date.parse(x.completedAt) : null)}`;
  const critical = slowest.has(node.id);
  return el('div', {
    class: `row${state.selected === node.id ? ' selected' : ''}${critical ? ' critical' : ''}`, style: `top:${top}`, role: 'treeitem',
    id: `row-${cssId(node.id)}`, 'data-id': node.id, 'aria-level': String(depth + 1),
    'aria-expanded': x.childCount ? String(Boolean(open)) : null, 'aria-selected': String(state.selected === node.id),
    onclick: () => select(node.id),
  },
  el('div', { class: 'label', style: `padding-left:${depth * 16}px` },
    el('span', { class: 'toggle', onclick: (e) => { e.stopPropagation(); open ? collapse(node) : expand(node); } }, toggle),
    el('span', { class: `badge s-${x.status}` }, x.status.toLowerCase()),
    el('span', { class: 'id', title: `created ${x.createdAt} (UTC)` }, node.id),
    x.childCount ? el('span', { class: 'count' }, `(${x.childCount})`) : '',
    x.priority ? el('span', { class: 'priority', title: 'priority (higher first)' }, `p${x.priority}`) : '',
    x.status === 'CREATED' && dueIn(x.runAt) ? el('span', { class: 'due', title: `due ${x.runAt} (UTC)` }, dueIn(x.runAt)) : '',
    open && node.gapAtEnd ? el('button', {
      type: 'button', class: 'end', title: 'Load the last children and scroll to them',
      onclick: (e) => { e.stopPropagation(); jumpToEnd(node); },
    }, '⇥ end') : '',
    failedHere ? el('span', { class: 'error' }, tip) : ''),
  el('div', { class: 'lane' },
    el('div', { class: `bar s-${x.status}`, title: critical ? `${tip} · on the slowest path` : tip, 'data-start': String(start), style: `left:${left}%;width:${width}%` })));
}

function collapse(node) { state.expanded.delete(node.id); render(); }

/// Selects row `id` (and, with `scroll`, brings it into view).
export function select(id, { scroll = false } = {}) {
  state.selected = id;
  if (scroll) {
    state.rows = visibleRows();
    scrollToRow(id, 'center');
  }
  render();
  showDetails(id);
  actions.followSelection(id);
}

export function wireTree() {
  const tree = $('tree');
  tree.addEventListener('scroll', render);
  window.addEventListener('resize', render);
  $('expand-all').addEventListener('click', expandLevels);
  // What still runs grows with the clock.
  setInterval(() => {
    for (const { data } of state.nodes.values()) if (!data.completedAt) { render(); return; }
  }, 1000);
  tree.addEventListener('keydown', (e) => {
    const rows = state.rows;
    const i = rows.findIndex((r) => r.node && r.node.id === state.selected);
    const node = i >= 0 ? rows[i].node : null;
    const go = (j) => {
      j = Math.max(0, Math.min(rows.length - 1, j));
      while (rows[j] && !rows[j].node && j > 0) j -= 1;
      if (rows[j] && rows[j].node) {
        if (j * ROW < tree.scrollTop) tree.scrollTop = j * ROW;
        if ((j + 1) * ROW > tree.scrollTop + tree.clientHeight) tree.scrollTop = (j + 1) * ROW - tree.clientHeight;
        state.selected = rows[j].node.id;
        actions.followSelection(state.selected);
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
        else if (node && node.parentId && state.nodes.has(node.parentId)) go(rows.findIndex((r) => r.node && r.node.id === node.parentId));
        break;
      case 'Enter': if (node) showDetails(node.id); break;
      default: return;
    }
    e.preventDefault();
  });
}
