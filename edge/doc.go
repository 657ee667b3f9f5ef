// Package edge admits client connections at the listener: an accept loop
// that survives descriptor exhaustion (EMFILE/ENFILE) by backing off, a
// global cap and a per-address cap on concurrent connections, and the
// trusted-proxy rules that say which client address a connection belongs
// to (X-Forwarded-For or Forwarded from a trusted proxy).
//
// Everything here runs when a connection opens or closes, never on the
// delivery path; the per-address counts are sharded so that accepts and
// closes on different event loops do not contend.
package edge
