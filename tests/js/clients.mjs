// Real clients against the server at EXECSTORE_URL (its /graphql):
// urql with its persisted-queries exchange and GET for queries, and the
// graphql-ws client resuming a subscription from a cursor. Throws (exit 1)
// on the first thing that is not as it should be.
import assert from 'node:assert/strict';
import { Client, fetchExchange, gql } from '@urql/core';
import { persistedExchange } from '@urql/exchange-persisted';
import { createClient as createWsClient } from 'graphql-ws';
import WebSocket from 'ws';

const url = process.env.EXECSTORE_URL;
assert.ok(url, 'EXECSTORE_URL is not set');

// Every request urql makes, as "METHOD what-it-carried".
const sent = [];
const recordingFetch = async (input, init = {}) => {
  const method = init.method ?? 'GET';
  const target = new URL(typeof input === 'string' ? input : input.url);
  const params = method === 'GET' ? Object.fromEntries(target.searchParams) : JSON.parse(init.body);
  sent.push(`${method} ${params.query ? 'document' : 'hash'}`);
  return fetch(input, init);
};

const client = new Client({
  url,
  fetch: recordingFetch,
  preferGetMethod: true,
  requestPolicy: 'network-only',
  exchanges: [persistedExchange({ preferGetForPersistedQueries: true }), fetchExchange],
});

const CREATE = gql`
  mutation Create($input: CreateExecutionInput!) {
    createExecution(input: $input) { id status }
  }
`;
const suffix = `${Date.now()}`;
// (Named for this run: a server that ran the script before knows the
// document of that run, not this one's.)
const READ = gql(`
  query Read${suffix}($id: ID!) {
    execution(id: $id) { id status childCount }
  }
`);
const root = `urql-root-${suffix}`;
const input = (id, parent) => ({ id, flowId: 'flow-clients', ownerId: 'owner-1', parentExecutionId: parent });

const created = await client.mutation(CREATE, { input: input(root, null) }).toPromise();
assert.equal(created.error, undefined, String(created.error));
assert.equal(created.data.createExecution.id, root);

// First read: the hash alone by GET, refused as unknown, then the document
// with its hash; the second read: the hash alone, answered.
sent.length = 0;
const first = await client.query(READ, { id: root }).toPromise();
assert.equal(first.error, undefined, String(first.error));
assert.equal(first.data.execution.status, 'CREATED');
assert.deepEqual(sent, ['GET hash', 'GET document']);
sent.length = 0;
const second = await client.query(READ, { id: root }).toPromise();
assert.equal(second.error, undefined, String(second.error));
assert.equal(second.data.execution.id, root);
assert.deepEqual(sent, ['GET hash']);

// A subscription over graphql-ws, dropped and resumed from its cursor: the
// event of a change made while it was away arrives first, nothing repeated.
const EVENTS = `subscription Events($root: ID!, $after: String) {
  executionEvents(rootExecutionId: $root, after: $after) { kind executionId cursor }
}`;
const wsUrl = url.replace(/^http/, 'ws') + '/ws';
// A subscription from `after` (null: from now on), until `until` says an
// event is the last wanted; its events.
function events(after, until) {
  const ws = createWsClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
  const seen = [];
  const done = new Promise((resolve, reject) => {
    const stop = ws.subscribe(
      { query: EVENTS, variables: { root, after } },
      {
        next: (message) => {
          if (message.errors) return reject(new Error(JSON.stringify(message.errors)));
          seen.push(message.data.executionEvents);
          if (until(message.data.executionEvents)) {
            stop();
            resolve(seen);
          }
        },
        error: reject,
        complete: () => resolve(seen),
      },
    );
  });
  return { ws, done };
}
const createdChildren = [];
async function createChild() {
  const id = `${root}-c${createdChildren.length}`;
  const result = await client.mutation(CREATE, { input: input(id, root) }).toPromise();
  assert.equal(result.error, undefined, String(result.error));
  createdChildren.push(id);
}
// Live from now on: children are created until the subscription (whose
// start the server does not announce) has seen one; bounded.
const live = events(null, (e) => e.kind === 'CREATED');
let liveSeen = null;
live.done.then((got) => { liveSeen = got; });
for (let i = 0; i < 200 && liveSeen === null; i += 1) {
  await createChild();
  await new Promise((resolve) => setImmediate(resolve));
}
const [seen] = await live.done;
await live.ws.dispose();
assert.ok(createdChildren.includes(seen.executionId), JSON.stringify(seen));

// Away: one more child. Resumed from the cursor: every child created after
// the one seen, in order, the one made while away last; nothing repeated.
await createChild();
const away = createdChildren.at(-1);
const resumed = events(seen.cursor, (e) => e.executionId === away && e.kind === 'CREATED');
const after = await resumed.done;
await resumed.ws.dispose();
const cursors = new Set(after.map((e) => e.cursor));
assert.equal(cursors.size, after.length, 'no event twice');
assert.ok(!cursors.has(seen.cursor), 'the seen event is not repeated');
const expected = createdChildren.slice(createdChildren.indexOf(seen.executionId) + 1);
assert.deepEqual(after.filter((e) => e.kind === 'CREATED').map((e) => e.executionId), expected);

console.log(JSON.stringify({ ok: true, persisted: 'GET hash, document, hash', resumedWith: after.length }));
