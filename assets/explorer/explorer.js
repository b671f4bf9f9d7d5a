// execstore's execution explorer: flows and their runs, a run's tree
// expanded level by level through `children` (windows loaded as they scroll
// into view), a waterfall with the slowest path, find-in-run by status,
// details, live updates over /graphql/ws, and links that restore the view.
// Plain ES modules, no build step, nothing loaded from elsewhere:
//   api.js (the server), flows.js (home and runs), tree.js (the tree),
//   waterfall.js, find.js, details.js, live.js, links.js (the URL).

import { $, say } from './ui.js';
import { session } from './api.js';
import { wireLists } from './flows.js';
import { wireTree } from './tree.js';
import { wireFind } from './find.js';
import { reconnectLive } from './live.js';
import { navigate, wireLinks } from './links.js';

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
