package auth

import (
	"fmt"
	"strings"
)

// Mode says whether a connection needs an identity. The zero value is ModeOff.
type Mode uint8

const (
	// ModeOff ignores tokens entirely: every connection is anonymous.
	ModeOff Mode = iota
	// ModeOptional verifies a token when one is presented and refuses a bad
	// one; a connection without a token is anonymous.
	ModeOptional
	// ModeRequired refuses connections without a valid token.
	ModeRequired
)

var modeNames = [...]string{ModeOff: "off", ModeOptional: "optional", ModeRequired: "required"}

// ParseMode parses "off", "optional" or "required" (case-insensitive; ""
// means off). Safe for concurrent use.
func ParseMode(s string) (Mode, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return ModeOff, nil
	}
	for m, name := range modeNames {
		if strings.EqualFold(s, name) {
			return Mode(m), nil
		}
	}
	return ModeOff, fmt.Errorf("cannot parse auth mode %q: use off, optional or required", s)
}

// String returns the flag spelling of m.
func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Set implements flag.Value so a Mode can be a command-line flag.
func (m *Mode) Set(s string) error {
	v, err := ParseMode(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}
