// The GraphQL-over-HTTP spec's server audits (the `graphql-http` package),
// against the server at EXECSTORE_URL (its /graphql endpoint). Prints one
// line per audit that is not `ok` and a JSON summary last; exits 1 unless
// every audit is ok.
import { auditServer } from 'graphql-http';

const url = process.env.EXECSTORE_URL;
if (!url) {
  console.error('EXECSTORE_URL is not set');
  process.exit(2);
}
const token = process.env.EXECSTORE_TOKEN;
const fetchFn = token
  ? (input, init = {}) => {
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${token}`);
      return fetch(input, { ...init, headers });
    }
  : fetch;
const results = await auditServer({ url, fetchFn });
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const result of results) {
  counts[result.status] += 1;
  if (result.status !== 'ok') {
    console.log(`${result.status} ${result.id} ${result.name}: ${result.reason}`);
  }
}
console.log(JSON.stringify({ total: results.length, ...counts }));
process.exit(counts.ok === results.length ? 0 : 1);
