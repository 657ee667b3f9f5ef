package session

// Operations outside a session (GraphQL over HTTP) obey the same
// per-identity limits and are counted with the sessions'.

// AllowOperation applies the per-identity operation rate
// (Limits.SubscribesPerIdentity) to an operation of subject run outside a
// session, at now (unix nanoseconds); a refusal counts as a rate trip.
// Safe for concurrent use.
func (h *Shared) AllowOperation(subject string, now int64) bool {
	if h.Limits.SubscribesPerIdentity.Unlimited() || h.subsPerIdent.Allow(subject, now) {
		return true
	}
	h.rateTrips.Add(1)
	return false
}

// CountAuthFailure counts a token refused outside a session. Safe for
// concurrent use.
func (h *Shared) CountAuthFailure() { h.authFailures.Add(1) }
