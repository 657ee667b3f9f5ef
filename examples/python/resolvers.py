#!/usr/bin/env python3
"""The seed's example resolvers, written with fraised_resolvers.

Run by fraised:

    bin/fraised --schema examples/python/schema.graphql \
      --resolver 'Subscription.userUpdated=exec:python3 examples/python/resolvers.py' \
      --resolver 'Subscription.userStatus=exec:python3 examples/python/resolvers.py' \
      --resolver 'Subscription.greeting+identity=exec:python3 examples/python/resolvers.py' \
      --resolver 'Query.serverTime=exec:python3 examples/python/resolvers.py'

(the fields share one process), or on its own for --resolver '...=unix:/tmp/r.sock':

    python3 examples/python/resolvers.py --listen /tmp/r.sock
"""

import asyncio
import os
import time
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fraised_resolvers import ResolverError, resolver, run  # noqa: E402


@resolver("Subscription.userUpdated")
async def resolve_user_updated(event_data, variables) -> dict:
    """Enriches a users.{id} event: a display name, and an avatar URL the
    event does not carry. An await here could call a database or an API."""
    if "id" not in event_data:
        raise ResolverError("user event without id", code="BAD_EVENT")
    if event_data.get("slow"):
        await asyncio.sleep(float(event_data["slow"]))
    first, last = event_data.get("first", ""), event_data.get("last", "")
    return {
        "id": event_data["id"],
        "name": ("%s %s" % (first, last)).strip() or None,
        "avatar": "https://avatars.example/%s.png" % event_data["id"],
        "watchedBy": variables.get("id"),
    }


@resolver("Subscription.userStatus")
def resolve_user_status(event_data, variables):
    """A plain function: quick CPU work runs on the loop."""
    return "ONLINE" if event_data.get("online") else "OFFLINE"


@resolver("Subscription.greeting", identity=True)
def resolve_greeting(event_data, variables, identity):
    """Reads the subscriber's connection_init payload: declared with
    identity=True here and +identity in --resolver, so subscribers with
    different payloads get separate groups (and calls)."""
    user = (identity.get("init_payload") or {}).get("user", "stranger")
    return "%s, %s" % (event_data.get("text", "hello"), user)


@resolver("Query.serverTime")
def resolve_server_time(event_data, variables):
    """A query field: called once per query, with no event."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


if __name__ == "__main__":
    run()
