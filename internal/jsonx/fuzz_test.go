package jsonx

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzAppendString checks that any text encodes to one valid JSON string
// that decodes back to the text (each invalid UTF-8 byte replaced) and
// holds no byte that could end a line or a string early.
func FuzzAppendString(f *testing.F) {
	f.Add("plain")
	f.Add("x\"}\n{\"event\":\"auth.ok\"\\")
	f.Add("\x00\x1f\x7f bad\xff\xfe \u2028\u2029 é😀")
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendString([]byte("prefix"), s)
		if !bytes.HasPrefix(out, []byte("prefix")) {
			t.Fatalf("dst overwritten: %q", out)
		}
		out = out[len("prefix"):]
		var got string
		if err := json.Unmarshal(out, &got); err != nil || !utf8.Valid(out) {
			t.Fatalf("AppendString(%q) = %q: not a valid JSON string (%v)", s, out, err)
		}
		if want := string([]rune(s)); got != want {
			t.Fatalf("AppendString(%q) decodes to %q, want %q", s, got, want)
		}
		for _, bad := range []string{"\n", "\r", "\u2028", "\u2029"} {
			if strings.Contains(string(out), bad) {
				t.Fatalf("AppendString(%q) = %q holds a raw %q", s, out, bad)
			}
		}
	})
}

// FuzzAppendRawString checks that any raw string content the reader can
// return (text between quotes that holds no unescaped quote) becomes valid
// JSON and valid UTF-8, copied unchanged when it already was a valid JSON
// string's content.
func FuzzAppendRawString(f *testing.F) {
	f.Add(`plain`)
	f.Add(`a\"b\u00e9\n\ud83d\ude00\/`)
	f.Add("bad \\q \\u12 \x01 \xc3 \u2028")
	f.Fuzz(func(t *testing.T, s string) {
		if e, _ := StringEnd(`"`+s+`"`, 0); e != len(s)+2 {
			return // not what StringEnd finds between quotes
		}
		out := AppendRawString(nil, s)
		var got string
		if err := json.Unmarshal(out, &got); err != nil || !utf8.Valid(out) {
			t.Fatalf("AppendRawString(%q) = %q: not a valid JSON string (%v)", s, out, err)
		}
		quoted := `"` + s + `"`
		if json.Valid([]byte(quoted)) && utf8.ValidString(s) && string(out) != quoted {
			t.Fatalf("AppendRawString(%q) = %q, want it copied as is", s, out)
		}
	})
}

// FuzzScan checks the reader against encoding/json: a valid document is
// read to its end, and iterating a valid object or array yields every
// member or element, rebuilt to the same compact text. On any input the
// reader stays in bounds and terminates.
func FuzzScan(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":{"c":[1,2,{"d":"x"}]},"e":"s\"t","f":null,"g":true,"h":[],"i":{},"j":-1.5e3}`,
		` [ 1 , "two" , [3] , {"k" : "}"} ] `, `"\u00e9\\"`, `-0.5e+7`, `{"a":1`, `[1,]`, `{"a" 1}`, `tru`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		i := SkipWS(s, 0)
		end := ValueEnd(s, i)
		if end > len(s) || end < -1 || end == i && i < len(s) {
			t.Fatalf("ValueEnd(%q, %d) = %d", s, i, end)
		}
		root := RootValue(s)
		if !json.Valid([]byte(s)) {
			scanAll(root) // must terminate without panicking
			return
		}
		if end < 0 || SkipWS(s, end) != len(s) {
			t.Fatalf("valid %q: ValueEnd = %d, want the end of the value", s, end)
		}
		if root == "" || (root[0] != '{' && root[0] != '[') {
			return
		}
		rebuilt := scanAll(root)
		var want, got bytes.Buffer
		_ = json.Compact(&want, []byte(s))
		if err := json.Compact(&got, rebuilt); err != nil || got.String() != want.String() {
			t.Fatalf("iterating %q rebuilt %q (%v)", s, rebuilt, err)
		}
	})
}

// scanAll rebuilds the object or array raw from what Members or Elements
// yield, recursively, stopping where the iteration stops.
func scanAll(raw string) []byte {
	if raw == "" {
		return nil
	}
	out := []byte{raw[0]}
	switch raw[0] {
	case '{':
		m := NewMembers(raw)
		for n := 0; ; n++ {
			k, _, v, ok := m.Next()
			if !ok {
				break
			}
			if n > 0 {
				out = append(out, ',')
			}
			out = append(out, '"')
			out = append(out, k...)
			out = append(out, '"', ':')
			out = append(out, scanValue(v)...)
		}
		return append(out, '}')
	case '[':
		e := NewElements(raw)
		for n := 0; ; n++ {
			v, ok := e.Next()
			if !ok {
				break
			}
			if n > 0 {
				out = append(out, ',')
			}
			out = append(out, scanValue(v)...)
		}
		return append(out, ']')
	}
	return []byte(raw)
}

// scanValue is scanAll for containers and v itself for other values.
func scanValue(v string) []byte {
	if v[0] == '{' || v[0] == '[' {
		return scanAll(v)
	}
	return []byte(v)
}
