// The GraphiQL page fraised embeds. Every operation (the schema's
// introspection query included) goes over graphql-transport-ws to the
// endpoint named by <meta name="fraised-endpoint">; the header editor's
// Authorization header goes into the connection_init payload, where
// fraised's authentication reads it (--auth-init-key, default
// "authorization"). A change of that header opens a new connection.
import React from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createClient } from 'graphql-ws';
import 'graphiql/graphiql.css';
import './page.css';

function meta(name, fallback) {
  const el = document.querySelector(`meta[name="${name}"]`);
  return (el && el.content) || fallback;
}

const endpoint = new URL(meta('fraised-endpoint', '/graphql'), location.href);
endpoint.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';
const initKey = meta('fraised-init-key', 'authorization');

// authorization returns the Authorization header of the header editor
// (any case), or undefined.
function authorization(headers) {
  if (!headers || typeof headers !== 'object') return undefined;
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === 'authorization' && typeof v === 'string') return v;
  }
  return undefined;
}

let client = null;
let clientAuth;

// socket returns the graphql-ws client for auth, replacing the open one
// when the header changed.
function socket(auth) {
  if (client && clientAuth === auth) return client;
  if (client) client.dispose();
  clientAuth = auth;
  client = createClient({
    url: endpoint.href,
    lazy: true,
    retryAttempts: 0,
    connectionParams: () => (auth ? { [initKey]: auth } : {}),
  });
  return client;
}

function fetcher(params, opts) {
  const c = socket(authorization(opts && opts.headers));
  return c.iterate({
    query: params.query,
    operationName: params.operationName || undefined,
    variables: params.variables || undefined,
  });
}

const defaultQuery = `# fraised: subscriptions and queries over graphql-transport-ws.
# Publish an event to see it here, for example:
#   redis-cli -p 4001 PUBLISH events.demo '{"seq":1,"ts":1.5,"body":"hello"}'
# With --auth, put {"Authorization": "Bearer <jwt>"} in the Headers tab.
subscription {
  events(topic: "events.demo") {
    seq
    body
  }
}
`;

createRoot(document.getElementById('graphiql')).render(
  React.createElement(GraphiQL, { fetcher, defaultQuery, isHeadersEditorEnabled: true }),
);
