package edge

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
)

// maxForwardedHops bounds how many entries of a forwarding header are
// examined, from the right. A real chain has a handful of proxies; a
// header with thousands of entries is an attack on the parser.
const maxForwardedHops = 32

// Header is the request header trusted proxies report the client in.
type Header uint8

const (
	// HeaderXFF is X-Forwarded-For: a comma-separated list of addresses,
	// set by nginx, HAProxy, Envoy and the cloud load balancers.
	HeaderXFF Header = iota
	// HeaderForwarded is RFC 7239 Forwarded: for=... elements.
	HeaderForwarded
)

// ParseHeader parses a header name: "x-forwarded-for" or "forwarded".
func ParseHeader(s string) (Header, error) {
	switch strings.ToLower(s) {
	case "x-forwarded-for", "":
		return HeaderXFF, nil
	case "forwarded":
		return HeaderForwarded, nil
	}
	return 0, fmt.Errorf("unknown forwarding header %q: use x-forwarded-for or forwarded", s)
}

// Name returns the header's canonical name.
func (h Header) Name() string {
	if h == HeaderForwarded {
		return "Forwarded"
	}
	return "X-Forwarded-For"
}

// ClientAddr returns the client address a chain of proxies reported in
// value (every line of the header, joined by ", "). Each proxy appends
// the address it received the request from, so entries are read from the
// right: the first one that is not a trusted proxy is the client; all
// entries to its left were written by the client and are not believed.
// If every entry is trusted, the leftmost examined one is the client.
// ok is false when the header is empty or the deciding entry is not an
// address ("unknown", an obfuscated name, junk): the caller then keeps
// the proxy's own address.
func ClientAddr(h Header, value []byte, t *Trusted) (addr netip.Addr, ok bool) {
	for hops := 0; hops < maxForwardedHops && len(bytes.TrimSpace(value)) > 0; hops++ {
		var elem []byte
		if i := bytes.LastIndexByte(value, ','); i >= 0 {
			elem, value = value[i+1:], value[:i]
		} else {
			elem, value = value, nil
		}
		if h == HeaderForwarded {
			elem = forwardedFor(elem)
		}
		a, good := parseNodeAddr(bytes.TrimSpace(elem))
		if !good {
			return netip.Addr{}, false
		}
		addr, ok = a, true
		if !t.Contains(a) {
			return a, true
		}
	}
	return addr, ok
}

// forwardedFor returns the value of the for= parameter of one Forwarded
// element ("for=192.0.2.1;proto=https"), unquoted; nil when absent.
func forwardedFor(elem []byte) []byte {
	for len(elem) > 0 {
		var pair []byte
		if i := bytes.IndexByte(elem, ';'); i >= 0 {
			pair, elem = elem[:i], elem[i+1:]
		} else {
			pair, elem = elem, nil
		}
		pair = bytes.TrimSpace(pair)
		eq := bytes.IndexByte(pair, '=')
		if eq < 0 || !bytes.EqualFold(bytes.TrimSpace(pair[:eq]), []byte("for")) {
			continue
		}
		v := bytes.TrimSpace(pair[eq+1:])
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		return v
	}
	return nil
}

// parseNodeAddr parses an address as proxies write it: "192.0.2.1",
// "192.0.2.1:4711", "2001:db8::1", "[2001:db8::1]" or "[2001:db8::1]:4711".
func parseNodeAddr(b []byte) (netip.Addr, bool) {
	s := string(b)
	if len(s) == 0 || len(s) > len("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%zone]:65535") {
		return netip.Addr{}, false
	}
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 || (end+1 < len(s) && s[end+1] != ':') {
			return netip.Addr{}, false
		}
		s = s[1:end]
	} else if strings.Count(s, ":") == 1 {
		s = s[:strings.IndexByte(s, ':')]
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
