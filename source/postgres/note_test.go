package postgres

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"testing"
)

const mac = "0123456789abcdef0123456789abcdef"

func TestParseNote(t *testing.T) {
	for _, c := range []struct {
		in   string
		ok   bool
		want note
	}{
		{"3", true, note{shard: 3}},
		{"3:17:1:" + mac + ":t{}", true, note{shard: 3, carried: true, id: 17, head: "3:17:1:", mac: mac, topic: "t", payload: "{}"}},
		{"0:9:5:" + mac + ":a:b:c{\"k\": \":\"}", true, note{shard: 0, carried: true, id: 9, head: "0:9:5:", mac: mac, topic: "a:b:c", payload: `{"k": ":"}`}},
		{"3:17:1:t{}", false, note{}},                 // no mac
		{"3:17:1:" + mac[1:] + ":t{}", false, note{}}, // a short one
		{"", false, note{}},
		{"+3", false, note{}},
		{"03", false, note{}},
		{"-1", false, note{}},
		{"3:", false, note{}},
		{"3:17", false, note{}},
		{"3:17:1", false, note{}},
		{"3:17:1:" + mac + ":t", false, note{}},   // no payload
		{"3:17:9:" + mac + ":t{}", false, note{}}, // topic longer than the rest
		{"3:0:1:" + mac + ":t{}", false, note{}},  // ids start at 1
		{"3:17:0:" + mac + ":{}", false, note{}},  // empty topic
		{"3:x:1:" + mac + ":t{}", false, note{}},
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
	for _, s := range []string{"3", "3:17:1:" + mac + ":t{}", "0:9:5:" + mac + ":a:b:c{}", "", "3:17:9:t{}", "15:1:3:" + mac + ":x.y{\"a\":[1]}"} {
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
			back += ":" + strconv.FormatInt(n.id, 10) + ":" + strconv.Itoa(len(n.topic)) + ":"
			if n.head != back || len(n.mac) != 2*macBytes {
				t.Fatalf("%q read as %+v: head %q, want %q", p, n, n.head, back)
			}
			back += n.mac + ":" + n.topic + n.payload
			if n.id < 1 || n.topic == "" || n.payload == "" {
				t.Fatalf("%q read as %+v", p, n)
			}
		}
		if back != p {
			t.Fatalf("%q read as %+v, which fraised.publish writes as %q", p, n, back)
		}
	})
}

// TestSignedBy: the mac is sha256(key || head || topic || payload), its
// first 16 bytes, as fraised.publish writes it; another key, a changed
// byte or no key fails.
func TestSignedBy(t *testing.T) {
	const key = "k"
	sum := sha256.Sum256([]byte(key + "3:17:1:" + "t{}"))
	n, ok := parseNote("3:17:1:" + hex.EncodeToString(sum[:macBytes]) + ":t{}")
	if !ok {
		t.Fatal("parse")
	}
	if ok, _ := n.signedBy(key, nil); !ok {
		t.Fatal("a note signed with the key is refused")
	}
	for _, k := range []string{"", "other"} {
		if ok, _ := n.signedBy(k, nil); ok {
			t.Fatalf("key %q accepted", k)
		}
	}
	n.payload = "{ }"
	if ok, _ := n.signedBy(key, nil); ok {
		t.Fatal("a changed payload is accepted")
	}
}
