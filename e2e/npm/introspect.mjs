// Sends graphql-js's getIntrospectionQuery() (every option on) to fraised
// over graphql-transport-ws with the real graphql-ws client, rebuilds the
// schema with buildClientSchema and prints it, and prints the SDL file the
// server loaded as graphql-js prints it (fraised's directives are applied
// directives, which printSchema never prints). Output: one JSON line
// {"got": "...", "want": "..."}; the Go test compares them.
//
//   node introspect.mjs --url ws://127.0.0.1:4000/graphql schema.graphql
//   node introspect.mjs --url http://127.0.0.1:4000/graphql schema.graphql
//
// With an http:// URL the query goes as GraphQL over HTTP instead (POST,
// application/json, as GraphiQL, codegen tools and IDE plugins send it).
import { readFileSync } from 'node:fs';
import { buildClientSchema, buildSchema, getIntrospectionQuery, printSchema } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const args = process.argv.slice(2);
let url = 'ws://127.0.0.1:4000/graphql';
if (args[0] === '--url') { url = args[1]; args.splice(0, 2); }
const sdl = readFileSync(args[0], 'utf8');

const query = getIntrospectionQuery({
  descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true,
  schemaDescription: true, inputValueDeprecation: true, oneOf: true,
});
const result = url.startsWith('http') ? await overHTTP() : await overWebSocket();
if (result.errors) {
  console.error(JSON.stringify(result.errors));
  process.exit(1);
}
const got = printSchema(buildClientSchema(result.data));
const want = printSchema(buildSchema(sdl, { assumeValidSDL: true }));
console.log(JSON.stringify({ got, want }));

async function overWebSocket() {
  const client = createClient({ url, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0 });
  const value = await new Promise((resolve, reject) => {
    let v;
    client.subscribe({ query }, {
      next: (x) => { v = x; },
      error: (e) => reject(e instanceof Error ? e : new Error(JSON.stringify(e))),
      complete: () => resolve(v),
    });
  });
  await client.dispose();
  return value;
}

async function overHTTP() {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query }),
  });
  const type = res.headers.get('content-type') || '';
  if (res.status !== 200 || !type.startsWith('application/graphql-response+json')) {
    console.error(`HTTP ${res.status} ${type}: ${await res.text()}`);
    process.exit(1);
  }
  return res.json();
}
