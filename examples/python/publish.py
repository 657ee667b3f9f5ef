#!/usr/bin/env python3
"""A backend publishing user events to fraised with redis-py (Debian's
python3-redis), as the services feeding examples/python/resolvers.py would.

    python3 examples/python/publish.py --port 4001 --user 42 --count 3

Each PUBLISH answers with the number of subscriptions the event reached;
the script prints one line per publish: the reply.
"""

import argparse
import json

import redis


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4001)
    parser.add_argument("--user", default="42")
    parser.add_argument("--count", type=int, default=1)
    opts = parser.parse_args()
    client = redis.Redis(host=opts.host, port=opts.port)
    for i in range(opts.count):
        event = {"id": opts.user, "first": "Ada", "last": "Lovelace %d" % i, "online": i % 2 == 0}
        print(client.publish("users.%s" % opts.user, json.dumps(event)), flush=True)


if __name__ == "__main__":
    main()
