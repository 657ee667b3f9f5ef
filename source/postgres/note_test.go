package postgres

import (
	"strconv"
	"testing"
)

func TestParseNote(t *testing.T) {
	for _, c := range []struct {
		in   string
		ok   bool
		want note
	}{
		{"3", true, note{shard: 3}},
		{"3:17:1:t{}", true, note{shard: 3, carried: true, id: 17, topic: "t", payload: "{}"}},
		{"0:9:5:a:b:c{\"k\": \":\"}", true, note{shard: 0, carried: true, id: 9, topic: "a:b:c", payload: `{"k": ":"}`}},
		{"", false, note{}},
		{"+3", false, note{}},
		{"03", false, note{}},
		{"-1", false, note{}},
		{"3:", false, note{}},
		{"3:17", false, note{}},
		{"3:17:1", false, note{}},
		{"3:17:1:t", false, note{}},   // no payload
		{"3:17:9:t{}", false, note{}}, // topic longer than the rest
		{"3:0:1:t{}", false, note{}},  // ids start at 1
		{"3:17:0:{}", false, note{}},  // empty topic
		{"3:x:1:t{}", false, note{}},
		{"99999999999999999999", false, note{}},
		{strconv.Itoa(maxShards + 1), false, note{}},
	} {
		got, ok := parseNote(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("parseNote(%q) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// FuzzParseNote: no payload panics parseNote, and what it accepts as a
// carried event is exactly what fraised.publish would have written for it.
func FuzzParseNote(f *testing.F) {
	for _, s := range []string{"3", "3:17:1:t{}", "0:9:5:a:b:c{}", "", "3:17:9:t{}", "15:1:3:x.y{\"a\":[1]}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		n, ok := parseNote(p)
		if !ok {
			return
		}
		if n.shard < 0 || n.shard > maxShards {
			t.Fatalf("%q: shard %d", p, n.shard)
		}
		back := strconv.Itoa(n.shard)
		if n.carried {
			back += ":" + strconv.FormatInt(n.id, 10) + ":" + strconv.Itoa(len(n.topic)) + ":" + n.topic + n.payload
			if n.id < 1 || n.topic == "" || n.payload == "" {
				t.Fatalf("%q read as %+v", p, n)
			}
		}
		if back != p {
			t.Fatalf("%q read as %+v, which fraised.publish writes as %q", p, n, back)
		}
	})
}
