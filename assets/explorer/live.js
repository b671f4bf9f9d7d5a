// Live updates of the open run over /graphql/ws. A closed socket (a
// restart, a deploy, a sleeping tab, a proxy's idle timeout) retries with
// backoff and resumes from the last event applied: nothing missed, nothing
// twice. EVENTS_EXPIRED (away longer than the server keeps events) reloads
// the tree.

import { $, say } from './ui.js';
import { session, NODE_FIELDS } from './api.js';
import { state, actions } from './state.js';
import { showDetails } from './details.js';

const live = { socket: null, retry: null, attempt: 0, pending: [] };

export function reconnectLive() {
  closeLive();
  live.attempt = 0;
  if (state.rootId) connectLive();
}

export function closeLive() {
  clearTimeout(live.retry);
  live.pending = [];
  if (live.socket) { live.socket.onclose = null; live.socket.close(); live.socket = null; }
  showLive(null);
}

function showLive(text) {
  const badge = $('live');
  badge.hidden = !text;
  badge.textContent = text || '';
  badge.classList.toggle('reconnecting', text !== '● live');
}

function connectLive() {
  const root = state.nodes.get(state.rootId);
  const treeRoot = root ? root.data.rootExecutionId || state.rootId : state.rootId;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(`${scheme}://${location.host}/graphql/ws`, 'graphql-transport-ws');
  live.socket = socket;
  socket.onopen = () => socket.send(JSON.stringify({ type: 'connection_init', payload: session.token ? { Authorization: `Bearer ${session.token}` } : {} }));
  socket.onmessage = (message) => {
    const m = JSON.parse(message.data);
    if (m.type === 'connection_ack') {
      socket.send(JSON.stringify({ id: 'tree', type: 'subscribe', payload: {
        // No childCount: a created execution has none, an update does not
        // change it, and leaving it out spares the server a count per event.
        query: `subscription($root: ID!, $after: String) { executionEvents(rootExecutionId: $root, after: $after) { kind executionId cursor execution { ${NODE_FIELDS} } } }`,
        variables: { root: treeRoot, after: state.cursor },
      } }));
      live.attempt = 0;
      showLive('● live');
    } else if (m.type === 'next' && m.payload.data) {
      const event = m.payload.data.executionEvents;
      state.cursor = event.cursor;
      live.pending.push(event);
      if (live.pending.length === 1) requestAnimationFrame(applyEvents);
    } else if ((m.type === 'next' && m.payload.errors) || m.type === 'error') {
      const errors = m.payload.errors || m.payload;
      if (errors.some((e) => e.extensions && e.extensions.code === 'EVENTS_EXPIRED')) {
        say('Away longer than the server keeps events: the tree was reloaded.');
        actions.openTree(state.rootId);
      } else {
        say(`Live updates stopped: ${errors[0].message}`, true);
        closeLive();
      }
    } else if (m.type === 'ping') {
      socket.send(JSON.stringify({ type: 'pong' }));
    }
  };
  socket.onclose = () => {
    if (live.socket !== socket) return;
    live.socket = null;
    showLive('reconnecting…');
    const delay = Math.min(10000, 250 * 2 ** live.attempt);
    live.attempt += 1;
    live.retry = setTimeout(connectLive, delay);
  };
}

/// Applies every event that arrived since the last frame, then draws once.
function applyEvents() {
  const events = live.pending; live.pending = [];
  for (const event of events) {
    window.explorer.events.push(`${event.kind}:${event.executionId}:${event.cursor}`);
    actions.applyEvent(event);
  }
  actions.render();
  if (state.selected && events.some((e) => e.executionId === state.selected)) showDetails(state.selected);
}
