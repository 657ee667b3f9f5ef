package session

import (
	"context"
	"time"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/proto"
)

// tokenFor finds the connection's token: the init payload first, then
// the upgrade request's Authorization header or cookie.
func (s *Session) tokenFor(initPayload []byte) string {
	if t, ok := auth.TokenFromInitPayload(initPayload, s.h.InitKey); ok {
		return t
	}
	return s.peer.Token
}

// verifyTimeout bounds one token verification (a custom verifier may do
// I/O, a JWKS verifier never does): a stuck verifier costs the connection
// its init or renewal, never a goroutine forever.
const verifyTimeout = 10 * time.Second

// authenticate verifies token off the input goroutine and acks or closes
// the connection. Called on its own goroutine.
func (s *Session) authenticate(token string) {
	h := s.h
	ctx, cancel := context.WithTimeout(context.Background(), verifyTimeout)
	defer cancel()
	id, err := h.Verifier.Verify(ctx, token)
	if err != nil {
		h.authFailures.Add(1)
		reason := auth.ReasonOf(err).String()
		s.audit(audit.EventAuthFailed, audit.Record{Reason: reason})
		s.refused("auth", "token refused (closed 4403): "+reason, authFix)
		s.conn.Close(proto.CloseForbidden, "Forbidden")
		return
	}
	if !h.identConns.Acquire(id.Subject) {
		h.rateTrips.Add(1)
		s.audit(audit.EventRateLimit, audit.Record{Subject: id.Subject, Reason: "too many connections for this identity"})
		s.refused("identity_connections", "too many connections for this identity (closed 4429)",
			"raise --max-identity-connections (FRAISED_MAX_IDENTITY_CONNECTIONS)")
		s.conn.Close(proto.CloseTooManyInitRequests, "too many connections for this identity")
		return
	}
	s.identity.Store(id)
	s.holdsConnSlot.Store(true)
	if s.releaseIfEnded() {
		return
	}
	s.audit(audit.EventAuthOK, audit.Record{})
	s.ackInit()
}

// authFix is what an operator checks when tokens are refused.
const authFix = "check the client's token against the verifier: --jwt-secret-file/--jwt-public-key/--jwks, --jwt-audience, --jwt-issuer, --jwt-leeway"

// releaseIfEnded gives back the identity's connection slot when the
// connection closed while its token was being verified: End ran before
// the slot was taken and could not release it. End marks the session
// ended before it swaps holdsConnSlot, and this runs after the slot is
// marked held, so exactly one of them releases it.
func (s *Session) releaseIfEnded() bool {
	ended := s.ended.Load()
	if ended && s.holdsConnSlot.Swap(false) {
		s.h.identConns.Release(s.identity.Load().Subject)
	}
	return ended
}

// queueRenewal renews the connection's token with token, after the
// renewal in progress if there is one: one goroutine per session
// verifies the tokens of a burst of pings one at a time, skipping to the
// newest, so a peer cannot make the server verify tokens in parallel
// without bound, and an older token never replaces a newer one. Called
// on the input goroutine.
func (s *Session) queueRenewal(token string) {
	if s.renewal.Swap(&token) == nil {
		go s.renewLoop()
	}
}

// renewLoop renews with the newest queued token until no newer one came
// meanwhile (or one was refused: the session is closing). Called on its
// own goroutine, by queueRenewal only.
func (s *Session) renewLoop() {
	for {
		t := s.renewal.Load()
		if !s.renew(*t) || s.renewal.CompareAndSwap(t, nil) {
			return
		}
	}
}

// renew replaces the connection's token after a ping carrying a new one,
// and reports whether it did. The new token must keep the grants of the
// old one (auth.SameGrants): running subscriptions were admitted and
// filtered with them; a refusal closes the session with 4403. Called on
// renewLoop's goroutine.
func (s *Session) renew(token string) bool {
	h := s.h
	old := s.identity.Load()
	ctx, cancel := context.WithTimeout(context.Background(), verifyTimeout)
	defer cancel()
	id, err := h.Verifier.Verify(ctx, token)
	if err != nil || old == nil || !auth.SameGrants(old, id) {
		reason := "subject changed"
		switch {
		case err != nil:
			reason = auth.ReasonOf(err).String()
		case old != nil && id.Subject == old.Subject:
			reason = "roles, scopes or claims changed (reconnect to change them)"
		}
		s.audit(audit.EventAuthFailed, audit.Record{Reason: "renewal: " + reason})
		s.refused("auth", "token renewal refused (closed 4403): "+reason, authFix)
		s.conn.Close(proto.CloseForbidden, "Forbidden")
		return false
	}
	s.identity.Store(id)
	s.audit(audit.EventTokenRenewed, audit.Record{})
	return true
}

// ExpireToken closes the session (4403) when its token expired before
// now, past the configured leeway, and reports whether it did. The
// housekeeper calls it about once a second. Safe for concurrent use.
func (s *Session) ExpireToken(now time.Time) bool {
	id := s.identity.Load()
	if id == nil || id.Expiry.IsZero() || now.Before(id.Expiry.Add(s.h.Leeway)) {
		return false
	}
	s.audit(audit.EventTokenExpired, audit.Record{})
	s.conn.Close(proto.CloseForbidden, "Forbidden: token expired")
	return true
}
