package session

import (
	"testing"

	"github.com/fraised/fraised/history"
)

// FuzzResumeInput feeds arbitrary JSON to both resume parsers (the
// connection_init payload and a subscribe's extensions): they never
// panic, and whatever they accept is a position the dispatcher can use
// as is (a valid epoch, at most the entries allowed).
func FuzzResumeInput(f *testing.F) {
	for _, s := range []string{
		`{"fraised":{"resume":{"1":{"epoch":"AbC123xyz789","offset":4}}}}`,
		`{"fraised":{"resume":{"a":{"epoch":"e","offset":0},"b":{"epoch":"e","offset":18446744073709551615}}}}`,
		`{"fraised":{"resume":{"epoch":"AbC123xyz789","offset":4}}}`,
		`{"fraised":{"resume":[]}}`,
		`{"fraised":{"resume":{"1":{"epoch":"a\"b","offset":1}}}}`,
		`{"fraised":{"resume":{"epoch":"x","offset":1e3}}}`,
		`{"fraised":{"resume":null}}`,
		`{"authorization":"Bearer x"}`,
		`{"fraised":{"resume":{"\u0000":{"epoch":"e","offset":-1}}}}`,
		`not json`,
	} {
		f.Add([]byte(s))
	}
	const maxEntries = 4
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseInitResume(b, maxEntries)
		if err == nil && len(m) > maxEntries {
			t.Fatalf("%d entries accepted, max %d", len(m), maxEntries)
		}
		for _, p := range m {
			if !history.ValidEpoch(p.Epoch) {
				t.Fatalf("init accepted epoch %q", p.Epoch)
			}
		}
		p, err := parseSubscribeResume(b)
		if err == nil && p != nil && !history.ValidEpoch(p.Epoch) {
			t.Fatalf("subscribe accepted epoch %q", p.Epoch)
		}
	})
}
