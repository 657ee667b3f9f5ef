// Subscribes to fraised with the graphql-ws client (the client Apollo
// Client and urql use) and prints every result as a JSON line.
//
//   node e2e/npm/subscribe.mjs [--url ws://127.0.0.1:4000/graphql] [--count N] TOPIC
//
// With --count it exits 0 after N events (used by the end-to-end test).
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const args = process.argv.slice(2);
let url = 'ws://127.0.0.1:4000/graphql';
let count = Infinity;
let topic = 'events.demo';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--url') url = args[++i];
  else if (args[i] === '--count') count = Number(args[++i]);
  else topic = args[i];
}

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { client: 'graphql-ws e2e' },
  retryAttempts: 0,
});

// A query over the socket first: one result, then complete.
const typename = await new Promise((resolve, reject) => {
  let result;
  client.subscribe({ query: '{ __typename }' }, {
    next: (r) => { result = r; },
    error: reject,
    complete: () => resolve(result),
  });
});
console.log(JSON.stringify({ query: typename }));

let seen = 0;
await new Promise((resolve, reject) => {
  const dispose = client.subscribe(
    {
      query: `subscription Events($topic: String!) {
        events(topic: $topic) { seq body ...A tags }
      }
      fragment A on Event { author { name } }`,
      variables: { topic },
      operationName: 'Events',
    },
    {
      next: (r) => {
        console.log(JSON.stringify(r));
        if (++seen >= count) { dispose(); resolve(); }
      },
      error: (e) => reject(e instanceof Error ? e : new Error(JSON.stringify(e))),
      complete: resolve,
    },
  );
  console.error(`subscribed to ${topic} at ${url}`);
});
await client.dispose();
process.exit(0);
