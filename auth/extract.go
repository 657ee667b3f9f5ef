package auth

import (
	"strings"

	"github.com/tidwall/gjson"
)

// DefaultInitKey is the connection_init payload key that carries the token
// when none is configured.
const DefaultInitKey = "authorization"

// TokenFromInitPayload returns the bearer token in a graphql-transport-ws
// connection_init payload such as {"authorization":"Bearer x"}. key is the
// payload key ("" means DefaultInitKey); an exact match wins, otherwise the
// first key equal under case folding ("Authorization") is used. The value
// must be a JSON string, either "Bearer <token>" (scheme case-insensitive) or
// the bare token; any other scheme yields false. The result is a copy: it
// stays valid after payload is reused. Safe for concurrent use.
func TokenFromInitPayload(payload []byte, key string) (string, bool) {
	if key == "" {
		key = DefaultInitKey
	}
	if !gjson.ValidBytes(payload) {
		return "", false
	}
	root := gjson.ParseBytes(payload)
	if !root.IsObject() {
		return "", false
	}
	var exact, folded gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		switch {
		case k.Str == key:
			exact = v
			return false
		case !folded.Exists() && strings.EqualFold(k.Str, key):
			folded = v
		}
		return true
	})
	v := exact
	if !v.Exists() {
		v = folded
	}
	if v.Type != gjson.String {
		return "", false
	}
	return bearer(v.Str, true)
}

// TokenFromHeader returns the token in an Authorization header value
// "Bearer <token>" (scheme case-insensitive, RFC 6750). The result is a
// substring of value. Safe for concurrent use.
func TokenFromHeader(value string) (string, bool) {
	return bearer(value, false)
}

// TokenFromCookie returns the value of the cookie called name in a Cookie
// request header ("a=1; token=x"), with surrounding double quotes removed.
// An empty name disables the cookie source and returns false. The result is
// a substring of cookieHeader. Safe for concurrent use.
func TokenFromCookie(cookieHeader, name string) (string, bool) {
	if name == "" {
		return "", false
	}
	for part := range strings.SplitSeq(cookieHeader, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || k != name {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if !validToken(v) {
			return "", false
		}
		return v, true
	}
	return "", false
}

// bearer parses "Bearer <token>"; when bare is set a value without a scheme
// is the token itself.
func bearer(value string, bare bool) (string, bool) {
	value = strings.TrimSpace(value)
	scheme, rest, ok := strings.Cut(value, " ")
	switch {
	case ok && strings.EqualFold(scheme, "bearer"):
		value = strings.TrimSpace(rest)
	case ok || !bare || strings.EqualFold(value, "bearer"):
		return "", false
	}
	if !validToken(value) {
		return "", false
	}
	return value, true
}

// validToken rejects empty values and values with whitespace or control
// characters, which no JWT (or other RFC 6750 token) contains.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}
