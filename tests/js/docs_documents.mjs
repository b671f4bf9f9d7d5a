// Every ```graphql block of README.md and docs/*.md is a valid document
// against schema.graphql (graphql-js `parse` and `validate`): what a reader
// copies into GraphiQL or a client runs. Exits 1 naming each invalid block.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildSchema, parse, validate } from 'graphql';

const root = new URL('../..', import.meta.url).pathname;
const schema = buildSchema(readFileSync(join(root, 'schema.graphql'), 'utf8'));
const files = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];
let blocks = 0;
const failures = [];
for (const file of files) {
  const text = readFileSync(join(root, file), 'utf8');
  const fence = /^```graphql\n([\s\S]*?)^```/gm;
  for (const match of text.matchAll(fence)) {
    blocks += 1;
    const line = text.slice(0, match.index).split('\n').length;
    try {
      const errors = validate(schema, parse(match[1]));
      for (const error of errors) failures.push(`${file}:${line}: ${error.message}`);
    } catch (error) {
      failures.push(`${file}:${line}: ${error.message}`);
    }
  }
}
for (const failure of failures) console.log(failure);
console.log(JSON.stringify({ blocks, invalid: failures.length }));
process.exit(failures.length === 0 && blocks > 0 ? 0 : 1);
