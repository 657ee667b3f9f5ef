#!/usr/bin/env python3
"""Resolvers for resolve's benchmarks: Subscription.item echoes the event,
a plain function, so a benchmark measures the protocol, not the work."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "python"))

from fraised_resolvers import resolver, run  # noqa: E402


@resolver("Subscription.item")
def item(event, args):
    return event


if __name__ == "__main__":
    run()
