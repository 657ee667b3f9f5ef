// Package audit writes fraised's security audit trail: an append-only JSON
// Lines file (or standard output) with one line per security-relevant
// event, written without ever blocking the network event loops.
//
// # Configuration
//
// Open(path, queue) appends to path, creating it with mode 0600 ("-" or
// "stdout" for standard output); New(w, queue) writes to any io.Writer.
// queue (default DefaultQueue, 4096 records, about 650 KiB) is how many
// records may wait for the disk. Rotate the file with copytruncate (the
// file is opened O_APPEND, so writes continue at the new end) or restart.
//
// # Records
//
// One JSON object per line: "time" (RFC3339Nano, UTC), "event", and, when
// set, "conn_id", "remote", "subject", "reason", "operation", "field",
// "doc_hash", "topic". Events fraised writes: conn.accepted, conn.refused
// (with the reason), auth.ok, auth.failed (the reason, never the token),
// subscribe.accepted and subscribe.refused (operation name, field, a hash of
// the document, the subject), ratelimit (which limit), slow_consumer,
// token.expired, token.renewed. Never put tokens, secrets or event payloads
// in a Record.
//
// # Never blocking, and what is lost
//
// Write copies the record (its strings too, so they may view a buffer the
// caller reuses) into a bounded channel and returns; one goroutine
// encodes and writes, flushing at least every 100 ms, whenever 64 KiB are
// pending, and on Close (which drains the queue, then fsyncs and closes a
// file it opened). If the disk cannot keep up and the queue is full, or a
// write fails, records are dropped, never waited for: Dropped() returns
// the running count (export it as a metric and alert on it), and write
// failures are logged at most every 10 s. This trades completeness under
// overload for the availability of the server; size the queue for the
// bursts you expect.
//
// # Threat model
//
// Every string is JSON-escaped (control characters, quotes, U+2028/U+2029;
// invalid UTF-8 becomes U+FFFD), so attacker-chosen text such as an
// operation name cannot forge or split lines. The log is append-only from
// fraised's side; protecting it from tampering by someone with access to
// the host (shipping it off-host, immutable storage) is left to the
// deployment.
package audit
