package auth

import (
	"errors"
)

var (
	// ErrNoToken means no bearer token was presented. In ModeOptional the
	// connection is anonymous; in ModeRequired it is refused.
	ErrNoToken = errors.New("auth: no token")
	// ErrInvalidToken is matched (errors.Is) by every *InvalidTokenError.
	ErrInvalidToken = errors.New("auth: invalid token")
)

// Reason says why a token was refused, in words safe to audit: it never
// contains token text.
type Reason uint8

const (
	// ReasonUnknown is used when a verifier gives no reason.
	ReasonUnknown Reason = iota
	// ReasonMalformed: not a compact JWS, bad base64 or JSON, or too long.
	ReasonMalformed
	// ReasonBadAlg: the alg header is none, unknown, or has no configured key
	// of its type (this is how HS256-with-a-public-key confusion fails).
	ReasonBadAlg
	// ReasonUnknownKID: the kid header names no key in the JWKS.
	ReasonUnknownKID
	// ReasonBadSignature: the signature does not match any candidate key.
	ReasonBadSignature
	// ReasonExpired: exp is in the past (beyond the leeway).
	ReasonExpired
	// ReasonNotYetValid: nbf is in the future (beyond the leeway).
	ReasonNotYetValid
	// ReasonWrongAudience: aud does not contain the configured audience.
	ReasonWrongAudience
	// ReasonWrongIssuer: iss differs from the configured issuer.
	ReasonWrongIssuer
	// ReasonMissingClaim: a required claim (exp when required) is absent.
	ReasonMissingClaim
	// ReasonBadClaims: a registered claim has the wrong JSON type.
	ReasonBadClaims
	// ReasonRejected: a custom verifier refused the token.
	ReasonRejected
)

var reasonNames = [...]string{
	ReasonUnknown:       "unknown",
	ReasonMalformed:     "malformed",
	ReasonBadAlg:        "bad alg",
	ReasonUnknownKID:    "unknown kid",
	ReasonBadSignature:  "bad signature",
	ReasonExpired:       "expired",
	ReasonNotYetValid:   "not yet valid",
	ReasonWrongAudience: "wrong audience",
	ReasonWrongIssuer:   "wrong issuer",
	ReasonMissingClaim:  "missing claim",
	ReasonBadClaims:     "bad claims",
	ReasonRejected:      "rejected",
}

// String returns the audit spelling of r, for example "expired".
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return reasonNames[ReasonUnknown]
}

// InvalidTokenError is the error every verifier should return for a refused
// token. It matches ErrInvalidToken with errors.Is. Its text is
// "auth: invalid token: <reason>" and never contains the token. Custom
// verifiers return it as &auth.InvalidTokenError{Reason: auth.ReasonRejected}.
type InvalidTokenError struct {
	Reason Reason
}

// Error implements error.
func (e *InvalidTokenError) Error() string {
	return "auth: invalid token: " + e.Reason.String()
}

// Is reports whether target is ErrInvalidToken.
func (e *InvalidTokenError) Is(target error) bool {
	return target == ErrInvalidToken
}

// ReasonOf returns the Reason carried by err, or ReasonUnknown when err is
// not (and does not wrap) an *InvalidTokenError. Safe for concurrent use.
func ReasonOf(err error) Reason {
	var ite *InvalidTokenError
	if errors.As(err, &ite) {
		return ite.Reason
	}
	return ReasonUnknown
}

// invalid returns a refused-token error with reason r.
func invalid(r Reason) error {
	return &InvalidTokenError{Reason: r}
}
