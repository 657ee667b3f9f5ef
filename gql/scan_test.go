package gql

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

func TestValueEnd(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{`"abc" x`, 5}, {`"a\"b"`, 6}, {`"a\\"b`, 5}, {`"unterminated`, -1}, {`"ends in \"`, -1},
		{`123,`, 3}, {`-0.5e+7]`, 7}, {`01`, 1}, {`-`, -1}, {`1.`, -1}, {`1e`, -1}, {`.5`, -1}, {`+1`, -1},
		{`true}`, 4}, {`tru`, -1}, {`false`, 5}, {`null`, 4}, {`nul`, -1},
		{`{"a":[1,"]}"]} x`, 14}, {`[[[]]]`, 6}, {`{"a":1`, -1}, {`[`, -1}, {``, -1}, {`x`, -1},
		{`"` + string(make([]byte, 100)) + `"`, 102},
	}
	for _, tt := range tests {
		if got := valueEnd(tt.in, 0); got != tt.want {
			t.Errorf("valueEnd(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestMemberAgreesWithGjson(t *testing.T) {
	docs := []string{
		`{"a":1,"b":{"c":[1,2,{"d":"x"}]},"e":"s\"t","f":null,"g":true,"h":[],"i":{},"j":-1.5e3}`,
		` { "a" : 1 , "b" : "two" , "a" : 3 } `,
		`{"long":"` + string(make([]byte, 0)) + `aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"aaaaaaaaaa","k":[{"x":1}]}`,
	}
	paths := [][]string{{"a"}, {"b"}, {"b", "c"}, {"b", "c", "2", "d"}, {"e"}, {"f"}, {"g"}, {"h"}, {"i"}, {"j"}, {"long"}, {"k", "0", "x"}, {"zz"}}
	for _, doc := range docs {
		for _, p := range paths {
			got, ok := lookupPath(rootValue(doc), p)
			want := gjson.Get(doc, joinPath(p))
			if ok != want.Exists() || got != want.Raw {
				t.Errorf("%s in %s: got %q %v, gjson %q %v", joinPath(p), doc, got, ok, want.Raw, want.Exists())
			}
		}
	}
}

// joinPath joins path steps as a gjson path.
func joinPath(p []string) string {
	out := ""
	for i, s := range p {
		if i > 0 {
			out += "."
		}
		out += s
	}
	return out
}

func TestContentEquals(t *testing.T) {
	tests := []struct {
		raw, want string
		eq        bool
	}{
		{`abc`, "abc", true}, {`abc`, "abd", false}, {`ab`, "abc", false}, {`abc`, "ab", false},
		{`a\nb`, "a\nb", true}, {`\u00e9`, "é", true}, {`\ud83d\ude00`, "😀", true}, {`\"\\\/`, `"\/`, true},
		{`\x`, "x", false}, {`\u12`, "", false}, {`\ud83d`, "\uFFFD", true},
	}
	for _, tt := range tests {
		if got := contentEquals(tt.raw, tt.want); got != tt.eq {
			t.Errorf("contentEquals(%q, %q) = %v", tt.raw, tt.want, got)
		}
	}
}

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
		if got := string(appendJSNumber(nil, tt.in)); got != tt.want {
			t.Errorf("appendJSNumber(%g) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestJSNumber(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"12", 12, true}, {" \t12\n", 12, true}, {"", 0, true}, {"   ", 0, true}, {"1e3", 1000, true}, {".5", 0.5, true},
		{"5.", 5, true}, {"+1", 1, true}, {"-1.5", -1.5, true}, {"0x1F", 31, true}, {"0b101", 5, true}, {"0o17", 15, true},
		{"Infinity", math.Inf(1), true}, {"-Infinity", math.Inf(-1), true}, {"1e999", math.Inf(1), true},
		{"abc", 0, false}, {"1_0", 0, false}, {"-0x10", 0, false}, {"inf", 0, false}, {"NaN", 0, false}, {"1e", 0, false},
		{".", 0, false}, {"0x", 0, false}, {"0xG", 0, false}, {"1 2", 0, false},
	}
	for _, tt := range tests {
		got, ok := jsNumber(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("jsNumber(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
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
		{"raw clean copied", `a\"b\u00e9\n`, `"a\"b\u00e9\n"`, true},
		{"raw bad escape", `a\qb`, `"a\\qb"`, true},
		{"raw short unicode escape", `\u12`, `"\\u12"`, true},
		{"raw control character", "a\x01b", `"a\u0001b"`, true},
		{"raw invalid utf-8", "a\xc3", `"a\ufffd"`, true},
	}
	for _, tt := range tests {
		var got []byte
		if tt.raw {
			got = appendRawString(nil, tt.in)
		} else {
			got = appendString(nil, tt.in)
		}
		if string(got) != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestPlainLeafEnds(t *testing.T) {
	tests := []struct {
		kind leafKind
		in   string
		want int
	}{
		{leafString, `"abc",`, 5}, {leafString, `""`, 2}, {leafString, `"0123456789abcdef012"}`, 21},
		{leafString, `"a\"b"`, -1}, {leafString, `"é"`, -1}, {leafString, "\"a\x01\"", -1}, {leafString, `"unterminated`, -1},
		{leafString, `"0123456789abcdef\n"`, -1}, {leafString, `"0123456789abcdefé"`, -1}, {leafString, `12`, -1},
		{leafID, `"u-42"}`, 6}, {leafCustom, `"x"`, 3}, {leafEnum, `"ACTIVE"`, -1},
		{leafInt, `0,`, 1}, {leafInt, `-12}`, 3}, {leafInt, `2147483647`, 10}, {leafInt, `-2147483648`, 11},
		{leafInt, `2147483648`, -1}, {leafInt, `-2147483649`, -1}, {leafInt, `12345678901`, -1}, {leafInt, `-0`, -1},
		{leafInt, `01`, -1}, {leafInt, `1.0`, -1}, {leafInt, `1e2`, -1}, {leafInt, `-`, -1}, {leafInt, `"1"`, -1},
		{leafFloat, `1732740000.123,`, 14}, {leafFloat, `-0.5]`, 4}, {leafFloat, `0`, 1}, {leafFloat, `7`, 1},
		{leafFloat, `1e3`, -1}, {leafFloat, `1.`, -1}, {leafFloat, `01`, 1}, {leafFloat, `-`, -1}, {leafFloat, `.5`, -1},
		{leafFloat, "1" + strings.Repeat("0", 400), -1},
		{leafBoolean, `true,`, 4}, {leafBoolean, `false`, 5}, {leafBoolean, `tru`, -1}, {leafBoolean, `1`, -1},
	}
	for _, tt := range tests {
		if got := plainLeafEnd(tt.kind, tt.in, 0); got != tt.want {
			t.Errorf("plainLeafEnd(%d, %q) = %d, want %d", tt.kind, tt.in, got, tt.want)
		}
	}
}

func TestCloseEnd(t *testing.T) {
	tests := []struct {
		in       string
		j, depth int
		want     int
	}{
		{`,"a":[1,"]"]} x`, 0, 1, 13}, {`]`, 0, 1, 1}, {`}]`, 0, 2, 2}, {`,"a":"}`, 0, 1, -1}, {`,[`, 0, 1, -1},
	}
	for _, tt := range tests {
		if got := closeEnd(tt.in, tt.j, tt.depth); got != tt.want {
			t.Errorf("closeEnd(%q, %d, %d) = %d, want %d", tt.in, tt.j, tt.depth, got, tt.want)
		}
	}
}

func TestRawStringCleanAgreesWithNextRune(t *testing.T) {
	// The reference: every escape must decode with nextRune.
	ref := func(s string) bool {
		for i := 0; i < len(s); {
			c := s[i]
			switch {
			case c == '\\':
				_, next, ok := nextRune(s, i)
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
