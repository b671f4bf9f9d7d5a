// The URL follows the view: `?flow=F` lists a flow's runs, `&run=R` opens
// a run, `&execution=E` selects one of its executions (revealed in the
// tree). Opening such a link restores the view; back and forward work.
// Without parameters the explorer opens on the flows.

import { state, actions } from './state.js';

const PARAMS = ['flow', 'run', 'execution'];

function fromUrl() {
  const params = new URLSearchParams(location.search);
  const view = {};
  for (const p of PARAMS) if (params.get(p)) view[p] = params.get(p);
  return view;
}

function toUrl(view) {
  const params = new URLSearchParams();
  for (const p of PARAMS) if (view[p]) params.set(p, view[p]);
  const query = params.toString();
  return `${location.pathname}${query ? `?${query}` : ''}`;
}

let current = {};

/// Goes to `view` (a new history entry). `keep`: stay in the open run;
/// `reload`: show it again even when the URL does not change.
export async function navigate(view, { keep = false, reload = false } = {}) {
  const next = keep ? { ...current, ...view } : view;
  const url = toUrl(next);
  if (url !== `${location.pathname}${location.search}`) history.pushState(next, '', url);
  else if (!reload) return;
  await show(next, reload);
}

/// The selected execution, in the URL without a new history entry.
export function followSelection(id) {
  if (!current.run) return;
  const next = { ...current, execution: id === current.run ? undefined : id };
  current = next;
  history.replaceState(next, '', toUrl(next));
}

/// Draws `view`, loading only what changed since the one on screen.
async function show(view, reload = false) {
  const before = current;
  current = view;
  if (view.run) {
    if (view.flow && (reload || view.flow !== before.flow || !before.run)) actions.showRuns(view.flow);
    if (reload || state.rootId !== view.run) await actions.openTree(view.run);
    if (view.execution && view.execution !== view.run) await actions.reveal(view.execution);
    else actions.select(view.run, { scroll: true });
  } else if (view.execution) {
    // A bare execution: open its run around it, then say so in the URL.
    const found = await actions.reveal(view.execution);
    if (!found) return;
    const root = found.ancestors.length ? found.ancestors[0] : found;
    const next = { flow: root.flowId, run: root.id, execution: found.id === root.id ? undefined : found.id };
    current = next;
    history.replaceState(next, '', toUrl(next));
    actions.showRuns(root.flowId);
    if (found.id === root.id) actions.select(root.id, { scroll: true });
  } else if (view.flow) {
    actions.showRuns(view.flow);
  } else {
    actions.showFlows();
  }
}

export function wireLinks() {
  window.addEventListener('popstate', () => show(fromUrl()));
  show(fromUrl());
}
