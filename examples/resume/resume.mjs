// fraised resume recipe: a graphql-ws client whose subscriptions resume
// exactly where they left off after a reconnect. One file, no
// dependency besides the graphql-ws you already use.
//
//   import { createClient } from 'graphql-ws';
//   import { createResumableClient } from './resume.mjs';
//   const client = createResumableClient(createClient, { url: 'wss://example.com/graphql' });
//
// Use `client` wherever a graphql-ws client goes: Apollo Client's
// GraphQLWsLink(client), urql's subscriptionExchange({ forwardSubscription }).
//
// How: every `next` of a topic with @history carries
// payload.extensions.fraised = {offset, epoch}. The wrapper remembers
// the last position of each active operation, by its id, and sends them
// all in connection_init ({"fraised":{"resume":{"<id>":{"epoch","offset"}}}}).
// graphql-ws asks connectionParams for that payload at every (re)connect
// and re-sends each active subscription with its original id, so fraised
// replays what each one missed, in order, then goes live.
//
// When a position cannot be served (history trimmed, server restarted,
// ...), the operation ends with an error whose extensions.code is
// FRAISED_RESUME_UNAVAILABLE: reload your state, then subscribe again
// (isResumeUnavailable tells such errors apart).

/** The error code of a position fraised cannot resume from. */
export const RESUME_UNAVAILABLE = 'FRAISED_RESUME_UNAVAILABLE';

/**
 * Reports whether a subscription error means "reload, then subscribe
 * again": the server could not resume from the last position.
 */
export function isResumeUnavailable(err) {
  return Array.isArray(err) && err.some((e) => e?.extensions?.code === RESUME_UNAVAILABLE);
}

/**
 * Returns a graphql-ws client (made by createClient with options) whose
 * subscriptions resume after reconnects. options.connectionParams (an
 * object or a function, as graphql-ws takes it) is kept and merged.
 */
export function createResumableClient(createClient, options = {}) {
  const positions = new Map(); // operation id -> {epoch, offset}
  const userParams = options.connectionParams;
  const userGenerateID = options.generateID;
  let lastID;
  const client = createClient({
    ...options,
    generateID(payload) {
      lastID = userGenerateID ? userGenerateID(payload) : randomID();
      return lastID;
    },
    async connectionParams() {
      const base = (typeof userParams === 'function' ? await userParams() : userParams) ?? {};
      if (positions.size === 0) return base;
      return { ...base, fraised: { ...base.fraised, resume: Object.fromEntries(positions) } };
    },
  });
  function subscribe(payload, sink) {
    let id;
    const forget = () => { if (id !== undefined) positions.delete(id); };
    const dispose = client.subscribe(payload, {
      next(result) {
        const at = result?.extensions?.fraised;
        if (id !== undefined && at && typeof at.epoch === 'string' && Number.isInteger(at.offset)) {
          positions.set(id, { epoch: at.epoch, offset: at.offset });
        }
        sink.next(result);
      },
      error(err) { forget(); sink.error(err); },
      complete() { forget(); sink.complete(); },
    });
    id = lastID; // generateID ran inside client.subscribe, before any result
    return () => { forget(); dispose(); };
  }
  return { ...client, subscribe };
}

function randomID() {
  return globalThis.crypto?.randomUUID?.() ??
    'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (c) => {
      const r = (Math.random() * 16) | 0;
      return (c === 'x' ? r : (r & 0x3) | 0x8).toString(16);
    });
}
