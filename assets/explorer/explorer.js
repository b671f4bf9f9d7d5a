// execstore's execution explorer: flows and their runs, a run's tree
// expanded level by level through `children` (windows loaded as they scroll
// into view), a waterfall with the slowest path, find-in-run by status,
// details, run control, live updates over /graphql/ws, and links that
// restore the view.
// Plain ES modules, no build step, nothing loaded from elsewhere:
//   ui.js (DOM helpers), api.js (the server), state.js (what the others
//   share), flows.js (home and runs), tree.js (the tree), waterfall.js,
//   find.js, details.js, controls.js (cancel, pause, resume, retry), live.js,
//   links.js (the URL).
// The modules import ui, api and state, never one another: this one hands
// each its actions (`state.actions`).

import { $, say } from './ui.js';
import { session } from './api.js';
import { actions } from './state.js';
import { showFlows, showRuns, markOpenRun, wireLists } from './flows.js';
import { openTree, reveal, select, applyEvent, render, wireTree } from './tree.js';
import { showCounts, wireFind } from './find.js';
import { reconnectLive, closeLive } from './live.js';
import { navigate, followSelection, wireLinks } from './links.js';
import { controls } from './controls.js';

Object.assign(actions, {
  navigate, followSelection,
  openTree, reveal, select, applyEvent, render,
  showFlows, showRuns, markOpenRun,
  showCounts,
  reconnectLive, closeLive,
  controls,
});

$('auth-form').addEventListener('submit', () => {
  session.token = $('auth-token').value.trim();
  $('auth-token').value = '';
  say('');
  reconnectLive();
  navigate(Object.fromEntries(new URLSearchParams(location.search)), { reload: true });
});

$('jump').addEventListener('submit', (e) => {
  e.preventDefault();
  const id = $('jump-id').value.trim();
  if (id) navigate({ execution: id });
});

wireLists();
wireTree();
wireFind();
wireLinks();
