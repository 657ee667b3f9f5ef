package auth

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Identity is who is on a connection. Immutable after creation; safe to share
// between goroutines. Do not modify Claims, Roles or Scopes.
type Identity struct {
	// Subject is the "sub" claim ("" when absent).
	Subject string
	// Claims holds every claim of the token; JSON numbers are json.Number.
	Claims map[string]any
	// Roles comes from the configured roles claim.
	Roles []string
	// Scopes comes from the configured scope claim.
	Scopes []string
	// Expiry is the "exp" claim; zero means the token does not expire.
	Expiry time.Time
}

// HasRole reports whether role is among id.Roles. A nil Identity (an
// anonymous connection) has no roles.
func (id *Identity) HasRole(role string) bool {
	return id != nil && slices.Contains(id.Roles, role)
}

// HasScope reports whether scope is among id.Scopes. A nil Identity has no
// scopes.
func (id *Identity) HasScope(scope string) bool {
	return id != nil && slices.Contains(id.Scopes, scope)
}

// ClaimString returns the claim called name as a string, for row-level
// filters: a string as is, a number in its JSON spelling, a bool as
// "true"/"false". Objects, arrays, null and absent claims return false, so
// a missing claim can never match anything. A name is looked up as is first,
// then as a dotted path into nested objects ("realm_access.tenant").
func (id *Identity) ClaimString(name string) (string, bool) {
	if id == nil {
		return "", false
	}
	v, ok := lookupClaim(id.Claims, name)
	if !ok {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		if v {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

// lookupClaim finds name in claims, first as a plain key (namespaced claims
// such as "https://example.com/roles" contain dots), then as a dotted path.
func lookupClaim(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// stringList reads a roles or scope claim: an array of strings (other
// elements are ignored), or one string, split on spaces when split is set.
func stringList(v any, split bool) []string {
	switch v := v.(type) {
	case string:
		if split {
			return strings.Fields(v)
		}
		if v == "" {
			return nil
		}
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// tokenOnlyClaims are the claims that describe one token rather than the
// principal it stands for: a renewed token differs in them by design.
var tokenOnlyClaims = map[string]bool{"exp": true, "iat": true, "nbf": true, "jti": true, "auth_time": true}

// SameGrants reports whether b grants exactly what a grants: the same
// subject, roles, scopes and claims, ignoring the claims that describe the
// token itself (exp, iat, nbf, jti, auth_time). A connection renewing its
// token must keep its grants, because the subscriptions it already runs
// were admitted (@auth) and filtered (claim @filter) with the old ones.
func SameGrants(a, b *Identity) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Subject != b.Subject || !sameSet(a.Roles, b.Roles) || !sameSet(a.Scopes, b.Scopes) {
		return false
	}
	for k, v := range a.Claims {
		if w, ok := b.Claims[k]; !tokenOnlyClaims[k] && (!ok || !reflect.DeepEqual(v, w)) {
			return false
		}
	}
	for k := range b.Claims {
		if _, ok := a.Claims[k]; !ok && !tokenOnlyClaims[k] {
			return false
		}
	}
	return true
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	for _, s := range b {
		if !slices.Contains(a, s) {
			return false
		}
	}
	return true
}
