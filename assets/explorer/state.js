// What the explorer's modules share: the open run's model (`state`) and the
// actions one module asks of another (`actions`). Modules import this and
// the helpers below it (ui, api), never one another: `explorer.js` hands
// each module's actions in at start, so no two modules import each other.

export const state = {
  rootId: null, nodes: new Map(), expanded: new Set(), selected: null, rows: [],
  // The log's position before the tree was loaded, then the last event
  // applied: the live view resumes from it after any disconnect.
  cursor: null,
  gapsLoading: new Set(),
  // Gaps whose last load failed or brought nothing: loaded again only when
  // their row is clicked (no retry loop against a failing server).
  gapsStuck: new Set(),
  // Bumped when another run opens: answers for the previous one are dropped.
  generation: 0,
};

const missing = (name) => () => { throw new Error(`explorer action ${name} was not wired`); };

/// Filled in by `explorer.js`: links (navigate, followSelection), the tree
/// (openTree, reveal, select, applyEvent, render), the lists (showFlows,
/// showRuns, markOpenRun), find (showCounts), live (reconnectLive,
/// closeLive) and run control (controls).
export const actions = Object.fromEntries([
  'navigate', 'followSelection',
  'openTree', 'reveal', 'select', 'applyEvent', 'render',
  'showFlows', 'showRuns', 'markOpenRun',
  'showCounts',
  'reconnectLive', 'closeLive',
  'controls',
].map((name) => [name, missing(name)]));
