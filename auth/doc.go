// Package auth authenticates fraised connections: it extracts a bearer token
// from where a browser or service can put it, verifies it as a JWT, and
// returns the Identity (subject, roles, scopes, claims, expiry) that
// authorization and row-level filters run against.
//
// # Modes
//
// ModeOff (default) ignores tokens. ModeOptional verifies a token when one
// is presented (a bad token is refused, never downgraded to anonymous) and
// treats a connection without one as anonymous (nil *Identity: no roles, no
// scopes, no claims, so @auth fields are refused and @filter rows never
// match). ModeRequired refuses connections without a valid token; per
// graphql-transport-ws the server closes with 4403 after connection_init.
//
// # Token sources
//
// TokenFromInitPayload reads the connection_init payload
// ({"authorization":"Bearer <jwt>"}; key configurable, matched
// case-insensitively; "Bearer " optional). TokenFromHeader reads the upgrade
// request's Authorization header. TokenFromCookie reads a named cookie
// (disabled when the name is empty). No extractor or verifier ever puts
// token text in an error or a log line; refusals carry a Reason
// ("expired", "bad signature", ...) meant for the audit log.
//
// # JWT verification
//
// NewJWTVerifier accepts keys from up to three sources, combinable:
//   - Secret: HS256/384/512, at least 32 bytes (RFC 7518 §3.2).
//   - PublicKeyFile: PEM public keys or certificates; RSA (RS*, PS*; at
//     least 2048 bits), EC (ES256/384/512 by curve), Ed25519 (EdDSA).
//     Private keys are refused: give fraised only what it needs.
//   - JWKSFile: a JWKS document; a token's kid selects the key, a JWK's
//     "alg" restricts it, "use":"enc" and "oct" keys are ignored.
//
// The accepted algorithms are exactly those of the configured key types
// (jwt.WithValidMethods), and each algorithm is only ever checked against
// keys of its own type, so alg "none" and the HS256-signed-with-the-public-
// key confusion attack both fail with ReasonBadAlg. exp and nbf are always
// checked with Leeway of clock skew; aud and iss when configured; exp is
// optional unless RequireExpiration is set (set it when every issuer sets
// exp, so a leaked token cannot live forever). Tokens longer than
// MaxTokenSize are refused before parsing.
//
// Reload re-reads the PEM and JWKS files (fraised calls it on SIGHUP); a
// file that fails to load leaves the previous keys in force and the error
// names the file and what to fix. Key rotation: publish the new key next to
// the old one, reload, switch the issuer, then drop the old key and reload.
//
// # Custom verifiers
//
// Any type implementing Verifier can replace JWTVerifier (compiled in). It
// must be safe for concurrent use, return ErrNoToken or an
// *InvalidTokenError (for example &InvalidTokenError{Reason:
// ReasonRejected}) and keep token text out of errors. A verifier that does
// I/O must honour its context; the server must then call it off the event
// loops.
//
// # Threat model
//
// Defended: forged, tampered, expired, not-yet-valid, wrong-audience and
// wrong-issuer tokens; algorithm substitution (none, HS/RS confusion); key
// rotation without restart; token leakage through logs and errors; oversize
// tokens. Not defended here: token theft from the client or the wire (use
// TLS at the proxy, short exp, cookies with Secure/HttpOnly/SameSite), and
// revocation before exp (keep exp short; the server closes a socket whose
// token expires unless the client renews it).
package auth
