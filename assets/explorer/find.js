// Find in a run: how many of the open run's executions are in each status,
// and, for a status, the matching executions from the server (newest
// first, paged); choosing one reveals it in the tree.

import { $, el, badge } from './ui.js';
import { gql, failed } from './api.js';
import { actions } from './state.js';

const FOUND_PAGE = 50;
const ORDER = ['FAILED', 'RUNNING', 'PAUSED', 'STOPPED', 'CREATED', 'COMPLETED'];

const STATS = `query($root: ID!) { executionStats(rootExecutionId: $root) { created running paused completed failed stopped } }`;
const FOUND = `query($root: ID!, $status: [ExecutionStatus!], $first: Int, $after: String) {
  childFeed(rootExecutionId: $root, status: $status, first: $first, after: $after) {
    nodes { id status errorMessage executionDepth }
    pageInfo { hasNextPage endCursor }
  }
}`;

const search = { root: null, status: null, after: null };

/// The status boxes of run `root` (its executions below the root).
export async function showCounts(root) {
  search.root = root;
  $('find-in-run').replaceChildren();
  $('found').hidden = true;
  try {
    const stats = (await gql(STATS, { root })).executionStats;
    if (search.root !== root) return;
    const boxes = ORDER.filter((s) => stats[s.toLowerCase()] > 0).map((s) => el('button', {
      type: 'button', class: 'status-box', 'data-status': s, onclick: () => showFound(s),
    }, badge(s), ` ${stats[s.toLowerCase()]}`));
    $('find-in-run').replaceChildren(...boxes);
    window.explorer.countsShownAt = performance.now();
  } catch (e) {
    failed(e);
  }
}

/// The run's executions in `status`; `more` appends the next page.
export async function showFound(status, more = false) {
  if (!more) { search.status = status; search.after = null; $('found-rows').replaceChildren(); }
  for (const box of document.querySelectorAll('.status-box')) box.classList.toggle('active', box.dataset.status === status);
  $('found').hidden = false;
  const started = performance.now();
  try {
    const feed = (await gql(FOUND, { root: search.root, status: [status], first: FOUND_PAGE, after: search.after })).childFeed;
    for (const x of feed.nodes) {
      const open = () => actions.navigate({ execution: x.id }, { keep: true });
      $('found-rows').append(el('li', { tabindex: '0', 'data-id': x.id, onclick: open, onkeydown: (e) => { if (e.key === 'Enter') open(); } },
        badge(x.status), ` ${x.id}`, x.errorMessage ? el('span', { class: 'error' }, ` ${x.errorMessage}`) : ''));
    }
    search.after = feed.pageInfo.endCursor;
    $('more-found').hidden = !feed.pageInfo.hasNextPage;
    window.explorer.foundInMs = performance.now() - started;
  } catch (e) {
    failed(e);
  }
}

export function wireFind() {
  $('more-found').addEventListener('click', () => showFound(search.status, true));
  $('close-found').addEventListener('click', () => {
    $('found').hidden = true;
    for (const box of document.querySelectorAll('.status-box')) box.classList.remove('active');
  });
}
