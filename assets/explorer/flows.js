// The explorer's home: the flows (newest run first), then a flow's runs.

import { $, el, say, ms, duration, timeCell, badge } from './ui.js';
import { gql, failed } from './api.js';
import { actions } from './state.js';

const FLOWS_PAGE = 50;
const RUNS_PAGE = 25;

const FLOWS = `query($first: Int, $after: String) {
  flows(first: $first, after: $after) {
    edges { node { flowId lastRunAt lastRun { id status } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const ROOTS = `query($flow: ID!, $first: Int, $after: String, $status: [ExecutionStatus!], $from: DateTime, $before: DateTime) {
  rootExecutions(flowId: $flow, first: $first, after: $after, status: $status, createdFrom: $from, createdBefore: $before) {
    edges { cursor node { levels totalNested execution { id status createdAt startedAt completedAt } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const lists = { flowsAfter: null, runsAfter: null, flow: '' };

/// Lists the flows (the home page); `more` appends the next page.
export async function showFlows(more = false) {
  $('flows').hidden = false;
  $('runs').hidden = true;
  if (!more) { lists.flowsAfter = null; $('flow-rows').replaceChildren(); }
  const started = performance.now();
  try {
    const page = (await gql(FLOWS, { first: FLOWS_PAGE, after: lists.flowsAfter })).flows;
    for (const { node } of page.edges) $('flow-rows').append(flowRow(node));
    lists.flowsAfter = page.pageInfo.endCursor;
    $('more-flows').hidden = !page.pageInfo.hasNextPage;
    if (!more && !page.edges.length) say('No runs yet: create an execution, or type a flow id above.');
    window.explorer.flowsShownInMs = performance.now() - started;
    requestAnimationFrame(() => requestAnimationFrame(() => { window.explorer.flowsDrawnAt = performance.now(); }));
  } catch (e) {
    failed(e);
  }
}

function flowRow({ flowId, lastRunAt, lastRun }) {
  const open = () => actions.navigate({ flow: flowId });
  return el('tr', { tabindex: '0', 'data-flow': flowId, onclick: open, onkeydown: (e) => { if (e.key === 'Enter') open(); } },
    el('td', {}, flowId),
    timeCell(lastRunAt),
    el('td', {}, badge(lastRun.status)));
}

function filters() {
  const status = [...document.querySelectorAll('#statuses input:checked')].map((i) => i.value);
  const iso = (v) => (v ? new Date(v).toISOString() : null);
  return { status: status.length ? status : null, from: iso($('from').value), before: iso($('before').value) };
}

/// Lists the runs of `flow`, newest first; `more` appends the next page.
export async function showRuns(flow, more = false) {
  $('flows').hidden = true;
  $('runs').hidden = false;
  $('flow').value = flow;
  if (!more || flow !== lists.flow) { lists.runsAfter = null; $('run-rows').replaceChildren(); }
  lists.flow = flow;
  try {
    const data = await gql(ROOTS, { flow, first: RUNS_PAGE, after: lists.runsAfter, ...filters() });
    const page = data.rootExecutions;
    for (const { node } of page.edges) $('run-rows').append(runRow(node));
    lists.runsAfter = page.pageInfo.endCursor;
    $('older').hidden = !page.pageInfo.hasNextPage;
    if (!more && !page.edges.length) say(`No runs of flow ${flow} match.`);
    else say('');
  } catch (e) {
    failed(e);
  }
}

function runRow({ execution: x, levels, totalNested }) {
  const started = x.startedAt || x.createdAt;
  const open = () => actions.navigate({ flow: lists.flow, run: x.id });
  return el('tr', { tabindex: '0', 'data-id': x.id, onclick: open, onkeydown: (e) => { if (e.key === 'Enter') open(); } },
    el('td', {}, x.id),
    el('td', {}, badge(x.status)),
    timeCell(started),
    el('td', {}, duration(ms(started), ms(x.completedAt))),
    el('td', {}, String(levels)),
    el('td', {}, String(totalNested)));
}

/// Marks the open run in the runs table.
export function markOpenRun(id) {
  for (const tr of document.querySelectorAll('#run-rows tr')) tr.classList.toggle('open', tr.dataset.id === id);
}

export function wireLists() {
  $('find').addEventListener('submit', (e) => {
    e.preventDefault();
    const flow = $('flow').value.trim();
    if (flow) actions.navigate({ flow }, { reload: true });
  });
  $('older').addEventListener('click', () => showRuns(lists.flow, true));
  $('more-flows').addEventListener('click', () => showFlows(true));
  $('home').addEventListener('click', (e) => { e.preventDefault(); actions.navigate({}); });
}
