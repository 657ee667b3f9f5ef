#!/usr/bin/env python3
"""Publishes to fraised with redis-py, as a backend would, and prints the
reply of every PUBLISH (in order) as JSON for e2e/redisclients_test.go.

Each round: one plain publish, a default pipeline() (transactional:
MULTI/EXEC) of 5, a pipeline(transaction=False) of 5, and a PING. With
redis-py 5 or later, the rounds run over RESP2 and then RESP3 (HELLO 3).
"""
import argparse
import json
import sys

import redis


def rounds(client, topic, n, seq, replies):
    for _ in range(n):
        replies.append(client.publish(topic, json.dumps({"seq": seq})))
        seq += 1
        for transaction in (True, False):
            pipe = client.pipeline(transaction=transaction)
            for _ in range(5):
                pipe.publish(topic, json.dumps({"seq": seq}))
                seq += 1
            replies.extend(pipe.execute())
        if client.ping() is not True:
            raise SystemExit("PING did not answer PONG (a stale reply?)")
    return seq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=4001)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()

    protocols = [2]
    if int(redis.__version__.split(".")[0]) >= 5:
        protocols.append(3)
    replies, steps, seq = [], [], 0
    for proto in protocols:
        kw = {"protocol": proto} if proto == 3 else {}
        client = redis.Redis(host=args.host, port=args.port, socket_timeout=10, **kw)
        seq = rounds(client, args.topic, args.rounds, seq, replies)
        client.close()
        steps.append("redis-py %s RESP%d: %d rounds" % (redis.__version__, proto, args.rounds))
    json.dump({"replies": replies, "steps": steps}, sys.stdout)


if __name__ == "__main__":
    main()
