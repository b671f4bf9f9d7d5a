// Run control from the details pane: Cancel, Pause / Resume and, on a run's
// root, "Retry failed". Each asks first, saying how many executions it
// touches (counted by the server: `executionStats` for a run, the subtree
// for an inner execution); a refused action is shown as such, and the tree
// follows by the live events the change sends.

import { $, el, say } from './ui.js';
import { gql, failed } from './api.js';

const RUN_COUNTS = `query($id: ID!) { executionStats(rootExecutionId: $id) { created running paused failed } }`;
const SUBTREE = `query($id: ID!) { executionTree(executionId: $id) { execution { status paused } } }`;

const MUTATIONS = {
  cancel: 'mutation($id: ID!) { n: cancelExecution(id: $id, reason: "cancelled from the explorer") }',
  pause: 'mutation($id: ID!) { n: pauseExecution(id: $id) }',
  resume: 'mutation($id: ID!) { n: resumeExecution(id: $id) }',
  retry: 'mutation($id: ID!) { n: retryExecutions(rootExecutionId: $id) }',
};

const unfinished = (s) => s === 'CREATED' || s === 'RUNNING' || s === 'PAUSED';

/// How many executions each action would touch, for `x` (status, paused,
/// rootExecutionId): for a run, its statistics plus the root; for an inner
/// execution, its subtree (one bounded request).
async function counts(x) {
  const self = { open: unfinished(x.status) ? 1 : 0, paused: x.paused ? 1 : 0, failed: x.status === 'FAILED' ? 1 : 0 };
  if (x.id === x.rootExecutionId) {
    const { executionStats: s } = await gql(RUN_COUNTS, { id: x.id });
    return { open: self.open + s.created + s.running + s.paused, paused: self.paused + s.paused, failed: self.failed + s.failed };
  }
  const nodes = (await gql(SUBTREE, { id: x.id })).executionTree.map((n) => n.execution);
  return {
    open: nodes.filter((n) => unfinished(n.status)).length,
    paused: nodes.filter((n) => n.paused || n.status === 'PAUSED').length,
    failed: 0,
  };
}

const plural = (n, what) => `${n} ${what}${n === 1 ? '' : 's'}`;

/// Asks in the page's own dialog (tests and keyboards can answer it).
function confirmInPage(text) {
  const dialog = $('confirm');
  $('confirm-text').textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes'), { once: true });
    dialog.returnValue = '';
    dialog.showModal();
    $('confirm-yes').focus();
  });
}

async function act(kind, x, question, refresh) {
  if (!(await confirmInPage(question))) return;
  try {
    const { n } = await gql(MUTATIONS[kind], { id: x.id });
    say(`${kind === 'retry' ? 'Put back' : `${kind[0].toUpperCase()}${kind.slice(1)}d`}: ${plural(n, 'execution')}.`);
    window.explorer.controls = (window.explorer.controls || 0) + 1;
    refresh();
  } catch (e) {
    // Refused (not yours, gone, not allowed): the message says which.
    failed(new Error(`${kind} refused: ${e.message}`));
  }
}

/// The buttons for execution `x` (its details), or nothing when none
/// applies (a finished inner execution); `refresh` shows the details again
/// after a change.
export function controls(x, refresh) {
  const box = el('div', { id: 'controls', class: 'controls' });
  const target = x.id === x.rootExecutionId ? `run ${x.id}` : `${x.id} and everything below it`;
  const button = (kind, label, question) => el('button', {
    type: 'button', 'data-action': kind,
    onclick: async () => {
      try {
        await act(kind, x, question(await counts(x)), refresh);
      } catch (e) { failed(e); }
    },
  }, label);
  if (unfinished(x.status) || x.childCount) {
    box.append(button('cancel', 'Cancel', (c) => `Cancel ${target}? ${plural(c.open, 'unfinished execution')} will be stopped.`));
  }
  if (x.paused) {
    box.append(button('resume', 'Resume', (c) => `Resume ${target}? ${plural(c.paused, 'paused execution')} go back to the queue.`));
  } else if (unfinished(x.status) || x.childCount) {
    box.append(button('pause', 'Pause', (c) => `Pause ${target}? ${plural(c.open, 'unfinished execution')} will be held out of the queue.`));
  }
  if (x.id === x.rootExecutionId) {
    box.append(button('retry', 'Retry failed', (c) => `Put the ${plural(c.failed, 'failed execution')} of run ${x.id} back in the queue?`));
  }
  return box.childElementCount ? [box] : [];
}
