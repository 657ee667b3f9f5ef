package proxyproto

import (
	"net/netip"
	"testing"
)

// FuzzParse: Parse never panics, never reads past what it reports, and
// gives the same answer when the input arrives in two halves (the first
// half is incomplete or the same header).
func FuzzParse(f *testing.F) {
	src, dst := netip.MustParseAddrPort("198.51.100.1:5000"), netip.MustParseAddrPort("192.0.2.1:443")
	f.Add(AppendV1(nil, src, dst))
	f.Add(AppendV2(nil, src, dst))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := Parse(b)
		if n < 0 || n > len(b) || (err != nil && n != 0) {
			t.Fatalf("Parse(%q) = %d, %v", b, n, err)
		}
		if n > MaxLength {
			t.Fatalf("header of %d bytes accepted, past MaxLength", n)
		}
		if err == nil && n > 0 && !h.Local && !h.Source.IsValid() {
			t.Fatalf("Parse(%q): no source and not local", b)
		}
		for cut := 0; cut <= len(b); cut += max(1, len(b)/7) {
			h1, n1, err1 := Parse(b[:cut])
			switch {
			case err != nil && n1 > 0:
				t.Fatalf("prefix %q parsed as a header, the whole %q did not", b[:cut], b)
			case err == nil && n > 0 && cut >= n && (h1 != h || n1 != n || err1 != nil):
				t.Fatalf("prefix %q holding the header parsed differently", b[:cut])
			case err == nil && cut < n && (n1 != 0 || err1 != nil):
				t.Fatalf("prefix %q of a header: %d, %v; want incomplete", b[:cut], n1, err1)
			}
		}
	})
}
