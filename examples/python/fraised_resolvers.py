"""Resolvers for fraised in Python: the standard library only.

fraised sends resolver calls over a Unix socket (README, "Resolvers in any
language"); this module is the other end. Register a function per field
with @resolver and call run():

    from fraised_resolvers import resolver, ResolverError, run

    @resolver("Subscription.userUpdated")
    async def resolve_user_updated(event_data, variables):
        return {"id": event_data["id"], "name": event_data["name"].title()}

    run()

A resolver is an ``async def`` or a plain function taking (event, args) or,
registered with identity=True (and declared to fraised with
``--resolver 'Subscription.field+identity=...'``), (event, args, identity)
where identity is {"init_payload": ..., "claims": ...}. It returns any JSON
value, which fraised projects through each subscriber's selection set.
Raise ResolverError(message, code=...) for a GraphQL error with
extensions.code; any other exception becomes an INTERNAL_SERVER_ERROR error
(the traceback goes to stderr, never to subscribers).

Plain functions run on the event loop: keep them quick (CPU work, no I/O),
or make them async. Calls arrive many per frame and are answered in one
frame per loop turn, so a batch of plain calls costs one read and one write.

run() serves the socket fraised gave (exec: in --resolver, the
FRAISED_RESOLVER_FD environment variable), or listens on the path given
with --listen PATH (unix: in --resolver) for any number of fraised
processes.
"""

import argparse
import asyncio
import inspect
import json
import os
import socket
import struct
import sys
import traceback

__all__ = ["resolver", "ResolverError", "run", "serve_connection"]

# MAX_FRAME matches fraised's resolve.MaxFrame: a longer frame is a
# protocol error.
MAX_FRAME = 32 << 20

_HEADER = struct.Struct(">I")
_resolvers = {}


class ResolverError(Exception):
    """A GraphQL error in the field's result: message and extensions.code."""

    def __init__(self, message, code=None, extensions=None):
        super().__init__(message)
        self.message = message
        self.extensions = dict(extensions or {})
        if code is not None:
            self.extensions["code"] = code

    def to_wire(self):
        err = {"message": self.message}
        if self.extensions:
            err["extensions"] = self.extensions
        return err


class _Entry:
    __slots__ = ("fn", "is_async", "identity")

    def __init__(self, fn, identity):
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        self.identity = identity


def resolver(field, identity=False):
    """Register the decorated function as the resolver of field
    ("Subscription.userUpdated"). With identity=True it gets a third
    argument, the subscriber's init payload and claims."""

    def register(fn):
        if field in _resolvers:
            raise ValueError("a resolver for %s is already registered" % field)
        _resolvers[field] = _Entry(fn, identity)
        return fn

    return register


_INTERNAL = {"message": "internal error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}


def _failure(field, exc):
    if isinstance(exc, ResolverError):
        return exc.to_wire()
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    print("fraised_resolvers: resolver of %s raised; reported as INTERNAL_SERVER_ERROR" % field, file=sys.stderr)
    return _INTERNAL


def _args(entry, call):
    args = (call.get("event"), call.get("args") or {})
    if entry.identity:
        args += (call.get("identity") or {},)
    return args


class _Connection:
    """One fraised connection: reads call frames, answers in frames."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.out = []
        self.flush_soon = False
        self.tasks = set()
        self.loop = asyncio.get_running_loop()

    def answer(self, result):
        self.out.append(result)
        if not self.flush_soon:
            self.flush_soon = True
            self.loop.call_soon(self.flush)

    def flush(self):
        self.flush_soon = False
        if not self.out or self.writer.is_closing():
            self.out.clear()
            return
        body = json.dumps({"results": self.out}, separators=(",", ":")).encode()
        self.out.clear()
        self.writer.write(_HEADER.pack(len(body)) + body)

    def call(self, call):
        cid, field = call.get("id"), call.get("field")
        entry = _resolvers.get(field)
        if entry is None:
            self.answer({"id": cid, "error": {"message": "no resolver registered for %s" % field,
                                              "extensions": {"code": "INTERNAL_SERVER_ERROR"}}})
            return
        if entry.is_async:
            task = self.loop.create_task(self.call_async(cid, field, entry, call))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            return
        try:
            self.answer({"id": cid, "data": entry.fn(*_args(entry, call))})
        except Exception as exc:  # noqa: BLE001 - every failure is answered
            self.answer({"id": cid, "error": _failure(field, exc)})

    async def call_async(self, cid, field, entry, call):
        try:
            data = await entry.fn(*_args(entry, call))
        except Exception as exc:  # noqa: BLE001
            self.answer({"id": cid, "error": _failure(field, exc)})
            return
        self.answer({"id": cid, "data": data})

    async def serve(self):
        try:
            while True:
                try:
                    header = await self.reader.readexactly(_HEADER.size)
                except asyncio.IncompleteReadError:
                    return  # fraised closed the connection: drained
                (n,) = _HEADER.unpack(header)
                if n > MAX_FRAME:
                    raise ValueError("frame of %d bytes is past MAX_FRAME" % n)
                frame = json.loads(await self.reader.readexactly(n))
                for call in frame.get("calls", ()):
                    self.call(call)
                await self.writer.drain()
        finally:
            for task in list(self.tasks):
                task.cancel()
            self.writer.close()


async def serve_connection(reader, writer):
    """Serve one fraised connection on an asyncio stream pair."""
    await _Connection(reader, writer).serve()


async def _serve_fd(fd):
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    await serve_connection(reader, writer)


async def _serve_path(path):
    if os.path.exists(path):
        os.unlink(path)  # a stale socket from an earlier run
    server = await asyncio.start_unix_server(serve_connection, path)
    print("fraised_resolvers: listening on %s" % path, file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


def run(argv=None):
    """Serve the registered resolvers: on FRAISED_RESOLVER_FD when fraised
    started this process (exec:), else on --listen PATH (unix:)."""
    parser = argparse.ArgumentParser(description="fraised resolvers")
    parser.add_argument("--listen", metavar="PATH", help="listen on this Unix socket path (for unix: in --resolver)")
    opts = parser.parse_args(argv)
    fd = os.environ.get("FRAISED_RESOLVER_FD")
    try:
        if opts.listen:
            asyncio.run(_serve_path(opts.listen))
        elif fd:
            asyncio.run(_serve_fd(int(fd)))
        else:
            parser.error("started without FRAISED_RESOLVER_FD (fraised's exec:) or --listen PATH (unix:)")
    except KeyboardInterrupt:
        pass
