// Runs graphql-http's server audit suite (the GraphQL-over-HTTP
// specification's MUST and SHOULD rules) against a GraphQL endpoint and
// prints one JSON line per audit: {"id", "name", "status", "reason"}.
//
//   node audit.mjs http://127.0.0.1:8080/graphql
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
for (const audit of serverAudits({ url })) {
  let result;
  try {
    result = await audit.fn();
  } catch (e) {
    result = { status: 'error', reason: String(e) };
  }
  console.log(JSON.stringify({ id: audit.id, name: audit.name, status: result.status, reason: result.reason || '' }));
}
