// Package ratelimit holds the O(1) limiters fraised checks before doing any
// work for a client: token buckets for rates and counters for concurrent
// holdings.
//
// # Pieces
//
//   - Bucket: one token bucket (GCRA, 8 bytes, zero value full), owned by a
//     connection and touched only by its event loop: inbound messages per
//     connection, subscribe operations per connection, publish commands per
//     publisher connection. No lock, no allocation, about 3 ns.
//   - Keyed: buckets keyed by a string, shared between event loops: new
//     connections per source IP, subscribe operations per identity. 64
//     shards picked by xxhash, a mutex each; no allocation on a known key.
//   - Counter: concurrent holdings per key against a maximum: connections
//     per identity, subscriptions per identity. Acquire on open, Release on
//     close, exactly once each.
//
// All times are unixnano passed by the caller (an event loop reads the
// clock once per turn), which also makes every limiter testable with a fake
// clock.
//
// # Configuration
//
// Limit{Rate, Burst}: Rate tokens per second refill a bucket of Burst
// tokens; Rate 0 (the zero Limit) means unlimited and costs nothing. A
// Burst below 1 means 1. Counter max 0 means unlimited. The server maps
// each exceeded limit to the protocol's own answer (an error message for a
// refused subscribe, close 4429 for a connection that keeps flooding, -ERR
// for a publisher) and counts it.
//
// # Memory bound
//
// A Keyed tracks at most DefaultMaxKeys keys (65,536, about 6 MiB;
// NewKeyedSize to change), at most 1/64 of them per shard. A key whose
// bucket has refilled carries no state, so Sweep (run it from a timer every
// few seconds to a minute) drops it losslessly. When a shard is full, an
// insert drops a refilled key among the few it inspects, else an arbitrary
// one. Under an address-spraying attack memory therefore stays bounded; the
// cost is that an evicted key may get a fresh burst, which is why the
// per-IP limit sits in front of, not instead of, the per-connection and
// per-identity limits. A Counter tracks a key only while it holds
// something, so its size is bounded by the connections and subscriptions
// that exist.
//
// # Threat model
//
// Defended: connection floods from one address, message and subscribe
// floods on one socket, one identity opening unbounded sockets or
// subscriptions, publisher floods, and memory exhaustion through many
// source addresses. Left to the proxy or network in front: volumetric
// (bandwidth) attacks, SYN floods, and attackers who control very many
// addresses and identities at once. Behind a proxy, key by the real client
// address only if the proxy is trusted to set it.
package ratelimit
