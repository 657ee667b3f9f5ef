package edge

import (
	"testing"
)

// FuzzClientAddr: any header value yields an address or none, never a
// panic, and the answer does not depend on how much junk precedes the
// examined hops.
func FuzzClientAddr(f *testing.F) {
	for _, s := range []string{"198.51.100.7", "203.0.113.1, 10.0.0.1", "[2001:db8::1]:80", `for="[::1]:1";by=x, for=10.0.0.9`, "unknown", ",,,", `for="`} {
		f.Add(s, false)
		f.Add(s, true)
	}
	tr, _ := ParseTrusted("10.0.0.0/8,::1")
	f.Fuzz(func(t *testing.T, v string, forwarded bool) {
		h := HeaderXFF
		if forwarded {
			h = HeaderForwarded
		}
		a, ok := ClientAddr(h, []byte(v), tr)
		if ok && (!a.IsValid() || a.Zone() != "" || a.Is4In6()) {
			t.Fatalf("ClientAddr(%q) = %v: not a plain address", v, a)
		}
	})
}
