package jsonx

import "testing"

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
		if got := ValueEnd(tt.in, 0); got != tt.want {
			t.Errorf("ValueEnd(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
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
		if got := ContentEquals(tt.raw, tt.want); got != tt.eq {
			t.Errorf("ContentEquals(%q, %q) = %v", tt.raw, tt.want, got)
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
		if got := CloseEnd(tt.in, tt.j, tt.depth); got != tt.want {
			t.Errorf("CloseEnd(%q, %d, %d) = %d, want %d", tt.in, tt.j, tt.depth, got, tt.want)
		}
	}
}

func TestNumberEnds(t *testing.T) {
	long := "1." // a mantissa past 300 characters: too long to be a plain float
	for range 300 {
		long += "5"
	}
	tests := []struct {
		in          string
		number, flt int // NumberEnd, PlainFloatEnd
	}{
		{`0`, 1, 1}, {`-0`, 2, 2}, {`12,`, 2, 2}, {`-1.25]`, 5, 5}, {`0.5e3`, 5, -1}, {`1E-2`, 4, -1},
		{`1e+`, -1, -1}, {`01`, 1, 1}, {`-`, -1, -1}, {`1.`, -1, -1}, {`1.x`, -1, -1}, {`.5`, -1, -1},
		{`+1`, -1, -1}, {`-x`, -1, -1}, {long, len(long), -1},
	}
	for _, tt := range tests {
		if got := NumberEnd(tt.in, 0); got != tt.number {
			t.Errorf("NumberEnd(%q) = %d, want %d", tt.in, got, tt.number)
		}
		if got := PlainFloatEnd(tt.in, 0); got != tt.flt {
			t.Errorf("PlainFloatEnd(%q) = %d, want %d", tt.in, got, tt.flt)
		}
	}
}
