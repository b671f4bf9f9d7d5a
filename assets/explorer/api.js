// Talking to the server: one POST per query, with the tab's bearer token.
// Every query the explorer sends is one of the strings below (or built from
// them), so the browser tests see each of them answered without an error.

import { $, say } from './ui.js';

/// The fields of a tree row.
export const NODE_FIELDS = `id status flowId parentExecutionId rootExecutionId executionDepth createdAt
  startedAt completedAt errorMessage errorNodeId cursor runAt priority`;
export const NODE = `${NODE_FIELDS} childCount`;

export const session = {
  get token() { return sessionStorage.getItem('execstore.token') || ''; },
  set token(t) { sessionStorage.setItem('execstore.token', t); },
};

// What the browser tests read: requests sent, errors answered, events
// applied (kind:id:cursor), timings.
window.explorer = { requests: 0, errors: [], events: [] };

export class AuthNeeded extends Error {}

export async function gql(query, variables = {}) {
  const headers = { 'content-type': 'application/json' };
  if (session.token) headers.authorization = `Bearer ${session.token}`;
  window.explorer.requests += 1;
  const response = await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  if (response.status === 401) {
    askForToken(session.token ? 'The server refused this token (401). Paste another one.' : 'This server needs a bearer token.');
    throw new AuthNeeded('unauthenticated');
  }
  const body = await response.json();
  if (body.errors && body.errors.length) {
    const first = body.errors[0];
    const code = first.extensions && first.extensions.code;
    window.explorer.errors.push(`${code || 'ERROR'}: ${first.message}`);
    if (code === 'FORBIDDEN') say(`Not allowed with this token (403): ${first.message}`, true);
    throw new Error(`${code || 'ERROR'}: ${first.message}`);
  }
  return body.data;
}

/// Shows a failure, unless it is the token dialog's business.
export function failed(e) {
  if (!(e instanceof AuthNeeded)) say(e.message, true);
}

export function askForToken(why) {
  $('auth-why').textContent = why;
  const dialog = $('auth');
  if (!dialog.open) dialog.showModal();
  $('auth-token').focus();
}
