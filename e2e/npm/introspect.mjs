// Sends graphql-js's getIntrospectionQuery() (every option on) to fraised
// over graphql-transport-ws with the real graphql-ws client, rebuilds the
// schema with buildClientSchema and prints it, and prints the SDL file the
// server loaded as graphql-js prints it (fraised's directives are applied
// directives, which printSchema never prints). Output: one JSON line
// {"got": "...", "want": "..."}; the Go test compares them.
//
//   node introspect.mjs --url ws://127.0.0.1:4000/graphql schema.graphql
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
const client = createClient({ url, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0 });
const result = await new Promise((resolve, reject) => {
  let value;
  client.subscribe({ query }, {
    next: (v) => { value = v; },
    error: (e) => reject(e instanceof Error ? e : new Error(JSON.stringify(e))),
    complete: () => resolve(value),
  });
});
await client.dispose();
if (result.errors) {
  console.error(JSON.stringify(result.errors));
  process.exit(1);
}
const got = printSchema(buildClientSchema(result.data));
const want = printSchema(buildSchema(sdl, { assumeValidSDL: true }));
console.log(JSON.stringify({ got, want }));
