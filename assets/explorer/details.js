// The details pane: every field of the selected execution, its claim and
// its recovery history.

import { $, el, localTime } from './ui.js';
import { gql, AuthNeeded } from './api.js';
import { actions } from './state.js';

const RUNNING = `query($id: ID!) { executionStats(rootExecutionId: $id) { running } }`;

const DETAILS = `query($id: ID!) { execution(id: $id) {
  id flowId ownerId rootExecutionId parentExecutionId status executionDepth createdAt updatedAt
  startedAt completedAt errorMessage errorNodeId options integration externalEvents failureCount
  lastFailureReason lastFailureAt processingStartedAt processingWorkerId childCount runAt priority paused
  concurrencyKey
  claim { workerId status claimedAt expiresAt heartbeatAt }
  recoveryHistory { id recoveredAt recoveredByWorker recoveryReason previousStatus }
} }`;

// The latest request: an answer to an earlier one (another execution
// selected since, or the same one again) is not shown over it.
let latest = 0;

export async function showDetails(id) {
  const pane = $('details');
  const mine = ++latest;
  try {
    const { execution: x } = await gql(DETAILS, { id });
    if (mine !== latest) return;
    if (!x) { pane.replaceChildren(el('p', { class: 'hint' }, `No execution ${id}.`)); return; }
    const list = el('dl');
    const add = (k, v, utc) => {
      if (v === null || v === undefined || v === '') return;
      list.append(el('dt', {}, k), el('dd', utc ? { title: `${v} (UTC)` } : {}, utc ? localTime(v) : String(v)));
    };
    for (const k of ['status', 'flowId', 'ownerId', 'rootExecutionId', 'parentExecutionId', 'executionDepth', 'childCount',
      'errorMessage', 'errorNodeId', 'failureCount', 'lastFailureReason', 'processingWorkerId']) add(k, x[k]);
    if (x.priority) add('priority', x.priority);
    add('concurrencyKey', x.concurrencyKey);
    // A run's limit, beside how many of its executions run now.
    const limit = x.id === x.rootExecutionId ? x.options?.execution?.maxConcurrency : undefined;
    if (limit !== undefined) {
      const { executionStats: s } = await gql(RUNNING, { id: x.id });
      if (mine !== latest) return;
      add('maxConcurrency', `${limit} (executions RUNNING now: ${s.running})`);
    }
    if (x.paused) add('paused', 'yes (under a paused execution)');
    if (x.runAt !== x.createdAt) add('runAt', x.runAt, true);
    for (const k of ['createdAt', 'updatedAt', 'startedAt', 'completedAt', 'lastFailureAt', 'processingStartedAt']) add(k, x[k], true);
    const json = (k) => (x[k] === null ? [] : [el('h3', {}, k), el('pre', {}, JSON.stringify(x[k], null, 2))]);
    const claim = x.claim
      ? [el('h3', {}, 'claim'), el('dl', {}, el('dt', {}, 'worker'), el('dd', {}, x.claim.workerId), el('dt', {}, 'status'), el('dd', {}, x.claim.status),
        el('dt', {}, 'expires'), el('dd', { title: `${x.claim.expiresAt} (UTC)` }, localTime(x.claim.expiresAt)))]
      : [];
    const recoveries = x.recoveryHistory.length
      ? [el('h3', {}, 'recovery history'), el('ul', {}, ...x.recoveryHistory.map((r) => el('li', { title: `${r.recoveredAt} (UTC)` }, `${localTime(r.recoveredAt)} · ${r.recoveryReason} (by ${r.recoveredByWorker}; was ${r.previousStatus || '?'})`)))]
      : [];
    const buttons = actions.controls(x, () => showDetails(id));
    pane.replaceChildren(el('h2', {}, x.id), ...buttons, list, ...json('options'), ...json('integration'), ...json('externalEvents'), ...claim, ...recoveries);
  } catch (e) {
    if (mine === latest && !(e instanceof AuthNeeded)) pane.replaceChildren(el('p', { class: 'hint' }, e.message));
  }
}
