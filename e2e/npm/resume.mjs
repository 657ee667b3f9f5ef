// Drives the resume recipe (examples/resume/resume.mjs) with the stock
// graphql-ws client: subscribes to feed(room) and prints each event's
// seq and position as a JSON line, reconnecting (fast) whenever the
// connection is cut, until it has --count events.
//
//   node e2e/npm/resume.mjs --url ws://127.0.0.1:4000/graphql --count N ROOM
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { createResumableClient, isResumeUnavailable } from '../../examples/resume/resume.mjs';

const args = process.argv.slice(2);
let url = 'ws://127.0.0.1:4000/graphql';
let count = Infinity;
let room = 'demo';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--url') url = args[++i];
  else if (args[i] === '--count') count = Number(args[++i]);
  else room = args[i];
}

let connects = 0;
const client = createResumableClient(createClient, {
  url,
  webSocketImpl: WebSocket,
  connectionParams: { client: 'resume e2e' },
  retryAttempts: 1000,
  retryWait: () => new Promise((r) => setTimeout(r, 20)),
  shouldRetry: () => true,
  on: { connected: () => { connects++; } },
});

let seen = 0;
await new Promise((resolve, reject) => {
  const dispose = client.subscribe(
    { query: 'subscription($room: String!) { feed(room: $room) { seq } }', variables: { room } },
    {
      next(r) {
        const at = r.extensions?.fraised ?? {};
        console.log(JSON.stringify({ seq: r.data?.feed?.seq, offset: at.offset, epoch: at.epoch }));
        if (++seen >= count) { dispose(); resolve(); }
      },
      error(err) {
        reject(new Error((isResumeUnavailable(err) ? 'resume unavailable: ' : '') + JSON.stringify(err)));
      },
      complete: resolve,
    },
  );
});
console.error(`connected ${connects} times`);
await client.dispose();
