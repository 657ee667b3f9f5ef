package proxyproto

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

func TestParseV1(t *testing.T) {
	f := func(in, src string, local bool, n int) {
		t.Helper()
		h, got, err := Parse([]byte(in))
		if err != nil || got != n || h.Local != local || (src != "" && h.Source.String() != src) || h.Version != 1 {
			t.Errorf("Parse(%q) = %+v, %d, %v; want source %s local %v n %d", in, h, got, err, src, local, n)
		}
	}
	f("PROXY TCP4 198.51.100.1 192.0.2.1 5000 443\r\nGET /", "198.51.100.1:5000", false, 44)
	f("PROXY TCP6 2001:db8::9 2001:db8::1 6000 443\r\n", "[2001:db8::9]:6000", false, 45)
	f("PROXY UNKNOWN\r\n", "", true, 15)
	f("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", "", true, 35)
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"GET / HTTP/1.1\r\n",
		"PROXY TCP4 198.51.100.1 192.0.2.1 5000\r\n",
		"PROXY TCP4 2001:db8::1 192.0.2.1 5000 443\r\n",
		"PROXY TCP6 198.51.100.1 192.0.2.1 5000 443\r\n",
		"PROXY TCP4 198.51.100.1 192.0.2.1 65536 443\r\n",
		"PROXY TCP4 198.51.100.1 192.0.2.1 05000 443\r\n",
		"PROXY TCP4 198.51.100.1  192.0.2.1 5000 443\r\n",
		"PROXY UDP4 198.51.100.1 192.0.2.1 5000 443\r\n",
		"PROXY TCP4 " + strings.Repeat("1", 120),
		"\r\n\r\n\x00\r\nQUIT\n\x11\x11\x00\x0c",         // version 1 in the v2 format
		"\r\n\r\n\x00\r\nQUIT\n\x22\x11\x00\x0c",         // command 2
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x04abcd",     // TCP4 addresses truncated
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff" + "abc", // longer than MaxV2Length
	} {
		if _, n, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q) = n %d, nil error; want an error", in, n)
		}
	}
}

func TestParseIncomplete(t *testing.T) {
	full := AppendV2(nil, netip.MustParseAddrPort("198.51.100.1:5000"), netip.MustParseAddrPort("192.0.2.1:443"))
	v1 := AppendV1(nil, netip.MustParseAddrPort("198.51.100.1:5000"), netip.MustParseAddrPort("192.0.2.1:443"))
	for _, b := range [][]byte{full, v1} {
		for i := 1; i < len(b); i++ {
			if _, n, err := Parse(b[:i]); n != 0 || err != nil {
				t.Fatalf("Parse(%q) (a prefix) = %d, %v; want incomplete", b[:i], n, err)
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, c := range []struct{ src, dst string }{
		{"198.51.100.1:5000", "192.0.2.1:443"},
		{"[2001:db8::9]:6000", "[2001:db8::1]:443"},
	} {
		src, dst := netip.MustParseAddrPort(c.src), netip.MustParseAddrPort(c.dst)
		for _, b := range [][]byte{AppendV1(nil, src, dst), AppendV2(nil, src, dst)} {
			h, n, err := Parse(append(b, "GET"...))
			if err != nil || n != len(b) || h.Source != src || h.Dest != dst || h.Local {
				t.Errorf("Parse(%q) = %+v, %d, %v", b, h, n, err)
			}
		}
	}
}

func TestV2LocalAndTLVs(t *testing.T) {
	local := []byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00")
	if h, n, err := Parse(local); err != nil || n != 16 || !h.Local {
		t.Fatalf("LOCAL: %+v %d %v", h, n, err)
	}
	b := AppendV2(nil, netip.MustParseAddrPort("198.51.100.1:5000"), netip.MustParseAddrPort("192.0.2.1:443"))
	b[15] += 7 // a 7-byte TLV after the addresses
	b = append(b, 0x01, 0x00, 0x04, 'h', 't', 't', 'p')
	if h, n, err := Parse(b); err != nil || n != len(b) || h.Source.String() != "198.51.100.1:5000" {
		t.Fatalf("with TLV: %+v %d %v", h, n, err)
	}
	unix := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x31\x00\x00")
	if h, _, err := Parse(unix); err != nil || !h.Local {
		t.Fatalf("AF_UNIX: %+v %v", h, err)
	}
}

func TestHasSignature(t *testing.T) {
	if !HasSignature([]byte("PROXY TCP4")) || !HasSignature(sigV2) || HasSignature([]byte("PROX")) || HasSignature([]byte("PROPFIND / HTTP/1.1")) {
		t.Fatal("HasSignature")
	}
	if !bytes.Equal(sigV2[:4], []byte("\r\n\r\n")) {
		t.Fatal("signature")
	}
}
