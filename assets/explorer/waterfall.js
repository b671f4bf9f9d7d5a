// The waterfall: each execution's bar from its start to its end (now for
// what still runs) on one axis, and the slowest path.

import { ms } from './ui.js';

const start = (x) => ms(x.startedAt) ?? ms(x.createdAt);
const end = (x) => ms(x.completedAt) ?? Date.now();

/// The axis: from the earliest start to the latest end among `nodes`.
export function axis(nodes) {
  let from = Infinity; let to = -Infinity;
  for (const { data } of nodes) {
    from = Math.min(from, start(data));
    to = Math.max(to, end(data));
  }
  if (!(to > from)) to = from + 1;
  return { from, to };
}

/// A bar's place on the axis, in percent.
export function bar(x, span) {
  const width = span.to - span.from;
  const left = ((start(x) - span.from) / width) * 100;
  const right = ((end(x) - span.from) / width) * 100;
  return { left, width: Math.max(0, right - left), start: start(x) };
}

/// The chain from the run's root to the loaded execution that finished
/// last (or still runs): what made the run as long as it is, as far as the
/// loaded executions tell.
export function slowestPath(nodes, rootId) {
  let last = null;
  for (const node of nodes.values()) {
    if (node.id === rootId) continue;
    if (!last || end(node.data) > end(last.data)) last = node;
  }
  const path = new Set();
  for (let at = last; at; at = nodes.get(at.parentId)) {
    path.add(at.id);
    if (at.id === rootId) break;
  }
  return last ? path : new Set();
}
