package jsonx

import (
	"math"
	"testing"
	"unicode/utf8"
)

func TestAppendJSNumber(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {1, "1"}, {-2.5, "-2.5"}, {0.1, "0.1"}, {1e21, "1e+21"}, {1e20, "100000000000000000000"},
		{1e-6, "0.000001"}, {1e-7, "1e-7"}, {1.5e-7, "1.5e-7"}, {-1e-7, "-1e-7"}, {1e100, "1e+100"}, {5e-324, "5e-324"},
		{123456789012345680000, "123456789012345680000"}, {1.7976931348623157e308, "1.7976931348623157e+308"},
	}
	for _, tt := range tests {
		if got := string(AppendJSNumber(nil, tt.in)); got != tt.want {
			t.Errorf("AppendJSNumber(%g) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestAppendStrings(t *testing.T) {
	tests := []struct {
		name, in, want string
		raw            bool
	}{
		{"plain", "abc", `"abc"`, false},
		{"escapes", "a\"b\\c\n\r\t\x00\x1f", `"a\"b\\c\n\r\t\u0000\u001f"`, false},
		{"utf-8 kept, invalid replaced", "é\xff😀", `"é\ufffd😀"`, false},
		{"line separators escaped", "a\u2028b\u2029c\u2027\u202a", `"a\u2028b\u2029c` + "\u2027\u202a" + `"`, false},
		{"other controls", "\b\f\x7f\ufffd", `"\u0008\u000c` + "\x7f\ufffd" + `"`, false},
		{"truncated and overlong utf-8", "\xe2\x80\xc0\xafz", `"\ufffd\ufffd\ufffd\ufffdz"`, false},
		{"raw line separators copied", "a\u2028b", "\"a\u2028b\"", true},
		{"raw clean copied", `a\"b\u00e9\n`, `"a\"b\u00e9\n"`, true},
		{"raw bad escape", `a\qb`, `"a\\qb"`, true},
		{"raw short unicode escape", `\u12`, `"\\u12"`, true},
		{"raw control character", "a\x01b", `"a\u0001b"`, true},
		{"raw invalid utf-8", "a\xc3", `"a\ufffd"`, true},
	}
	for _, tt := range tests {
		var got []byte
		if tt.raw {
			got = AppendRawString(nil, tt.in)
		} else {
			got = AppendString(nil, tt.in)
		}
		if string(got) != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestRawStringCleanAgreesWithNextRune(t *testing.T) {
	// The reference: every escape must decode with NextRune.
	ref := func(s string) bool {
		for i := 0; i < len(s); {
			c := s[i]
			switch {
			case c == '\\':
				_, next, ok := NextRune(s, i)
				if !ok {
					return false
				}
				i = next
			case c < 0x20:
				return false
			default:
				r, n := utf8.DecodeRuneInString(s[i:])
				if r == utf8.RuneError && n == 1 {
					return false
				}
				i += n
			}
		}
		return true
	}
	ins := []string{
		``, `plain ascii text longer than eight`, `a\"b\\c\/d\be\ff\ng\rh\ti`, `\u00e9\uD83D\uDE00`, `\ud83d`, `\ud83d\u12`,
		`\u12`, `\x`, `abc\`, "tab\tin", "é and \xff", `0123456789\u004`, "0123456789abcdef\x7f", `\uDE00\uD800x`,
	}
	for _, in := range ins {
		if got, want := rawStringClean(in), ref(in); got != want {
			t.Errorf("rawStringClean(%q) = %v, want %v", in, got, want)
		}
	}
}
