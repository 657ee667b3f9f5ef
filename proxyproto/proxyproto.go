// Package proxyproto parses the PROXY protocol header (versions 1 and 2,
// https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt) that a
// load balancer sends first on a connection to say which client it
// carries. It only parses: whether to believe the header is the caller's
// decision (only from trusted proxies).
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
)

// maxV1Length is the longest version 1 header the specification allows
// ("PROXY TCP6" with two full IPv6 addresses and ports, CRLF included).
const maxV1Length = 107

// MaxV2Length caps a version 2 header with its TLVs. The addresses take
// at most 216 bytes (AF_UNIX); the TLVs proxies send (ALPN, authority,
// TLS version and client-certificate names, cloud endpoint IDs) take a few
// hundred more. 4 KiB is ample and bounds what a connection may make us
// buffer before the header is complete.
const MaxV2Length = 4 << 10

// MaxLength is the most bytes a header may take, in either version.
const MaxLength = MaxV2Length

var (
	sigV1 = []byte("PROXY ")
	sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// ErrNotProxy means the bytes do not start with a PROXY protocol header.
var ErrNotProxy = errors.New("proxyproto: no PROXY protocol header")

// Header is a parsed PROXY protocol header.
type Header struct {
	// Version is 1 or 2.
	Version int
	// Local is true for a connection the proxy made on its own behalf
	// (v2 LOCAL, v1 UNKNOWN, or an address family other than TCP over
	// IPv4/IPv6): Source and Dest are unset, use the peer's address.
	Local bool
	// Source is the client's address; Dest the address it connected to.
	Source, Dest netip.AddrPort
}

// Parse parses the header at the start of b. It returns the header and
// its length; n == 0 with a nil error means b is a valid beginning of a
// header that is not complete yet. ErrNotProxy (or another error) means
// the connection does not speak the protocol correctly.
func Parse(b []byte) (h Header, n int, err error) {
	switch {
	case len(b) == 0:
		return Header{}, 0, nil
	case hasPrefix(b, sigV1):
		return parseV1(b)
	case hasPrefix(b, sigV2):
		return parseV2(b)
	}
	return Header{}, 0, ErrNotProxy
}

// HasSignature reports whether b starts with a complete version 1 or 2
// signature: the peer is speaking the PROXY protocol.
func HasSignature(b []byte) bool {
	return bytes.HasPrefix(b, sigV1) || bytes.HasPrefix(b, sigV2)
}

// hasPrefix reports whether b and sig agree on their common length (b may
// be a part of sig still arriving).
func hasPrefix(b, sig []byte) bool {
	n := min(len(b), len(sig))
	return n > 0 && bytes.Equal(b[:n], sig[:n])
}

func parseV1(b []byte) (Header, int, error) {
	if len(b) < len(sigV1) {
		return Header{}, 0, nil
	}
	end := bytes.Index(b[:min(len(b), maxV1Length)], []byte("\r\n"))
	if end < 0 {
		if len(b) >= maxV1Length {
			return Header{}, 0, errors.New("proxyproto: v1 header longer than 107 bytes")
		}
		return Header{}, 0, nil
	}
	n := end + 2
	f := bytes.Split(b[len(sigV1):end], []byte(" "))
	if string(f[0]) == "UNKNOWN" {
		return Header{Version: 1, Local: true}, n, nil
	}
	if len(f) != 5 || (string(f[0]) != "TCP4" && string(f[0]) != "TCP6") {
		return Header{}, 0, errors.New("proxyproto: malformed v1 header: want PROXY TCP4|TCP6 SRC DST SPORT DPORT")
	}
	src, err1 := parseV1Addr(f[1], f[3], string(f[0]) == "TCP4")
	dst, err2 := parseV1Addr(f[2], f[4], string(f[0]) == "TCP4")
	if err := errors.Join(err1, err2); err != nil {
		return Header{}, 0, err
	}
	return Header{Version: 1, Source: src, Dest: dst}, n, nil
}

func parseV1Addr(ip, port []byte, v4 bool) (netip.AddrPort, error) {
	a, err := netip.ParseAddr(string(ip))
	if err != nil || a.Is4() != v4 || a.Zone() != "" {
		return netip.AddrPort{}, errors.New("proxyproto: malformed v1 address " + strconv.Quote(string(ip)))
	}
	if len(port) == 0 || len(port) > 5 || (len(port) > 1 && port[0] == '0') {
		return netip.AddrPort{}, errors.New("proxyproto: malformed v1 port " + strconv.Quote(string(port)))
	}
	p, err := strconv.ParseUint(string(port), 10, 16)
	if err != nil {
		return netip.AddrPort{}, errors.New("proxyproto: malformed v1 port " + strconv.Quote(string(port)))
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

// v2 header fields.
const (
	v2FixedLen = 16 // signature, version/command, family/transport, length
	cmdLocal   = 0x0
	cmdProxy   = 0x1
	famTCP4    = 0x11 // AF_INET, STREAM
	famTCP6    = 0x21 // AF_INET6, STREAM
)

func parseV2(b []byte) (Header, int, error) {
	if len(b) < v2FixedLen {
		return Header{}, 0, nil
	}
	verCmd, fam := b[12], b[13]
	if verCmd>>4 != 2 {
		return Header{}, 0, errors.New("proxyproto: unsupported v2 version " + strconv.Itoa(int(verCmd>>4)))
	}
	if cmd := verCmd & 0xf; cmd != cmdLocal && cmd != cmdProxy {
		return Header{}, 0, errors.New("proxyproto: unknown v2 command " + strconv.Itoa(int(cmd)))
	}
	n := v2FixedLen + int(binary.BigEndian.Uint16(b[14:16]))
	if n > MaxV2Length {
		return Header{}, 0, errors.New("proxyproto: v2 header longer than " + strconv.Itoa(MaxV2Length) + " bytes")
	}
	if len(b) < n {
		return Header{}, 0, nil
	}
	body := b[v2FixedLen:n]
	if verCmd&0xf == cmdLocal {
		return Header{Version: 2, Local: true}, n, nil
	}
	switch fam {
	case famTCP4:
		if len(body) < 12 {
			return Header{}, 0, errors.New("proxyproto: v2 TCP4 addresses truncated")
		}
		src := netip.AddrFrom4([4]byte(body[0:4]))
		dst := netip.AddrFrom4([4]byte(body[4:8]))
		return Header{Version: 2, Source: netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[8:10])),
			Dest: netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[10:12]))}, n, nil
	case famTCP6:
		if len(body) < 36 {
			return Header{}, 0, errors.New("proxyproto: v2 TCP6 addresses truncated")
		}
		src := netip.AddrFrom16([16]byte(body[0:16])).Unmap()
		dst := netip.AddrFrom16([16]byte(body[16:32])).Unmap()
		return Header{Version: 2, Source: netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[32:34])),
			Dest: netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[34:36]))}, n, nil
	}
	// UDP, Unix sockets or unspecified: no client IP to take.
	return Header{Version: 2, Local: true}, n, nil
}

// AppendV1 appends a version 1 header for src → dst (for tests and tools).
func AppendV1(dst []byte, src, to netip.AddrPort) []byte {
	proto := "TCP4"
	if src.Addr().Is6() {
		proto = "TCP6"
	}
	dst = append(dst, "PROXY "+proto+" "...)
	dst = append(dst, src.Addr().String()+" "+to.Addr().String()+" "...)
	dst = strconv.AppendUint(dst, uint64(src.Port()), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(to.Port()), 10)
	return append(dst, "\r\n"...)
}

// AppendV2 appends a version 2 PROXY header for src → dst (for tests and
// tools); both must be the same family.
func AppendV2(dst []byte, src, to netip.AddrPort) []byte {
	dst = append(dst, sigV2...)
	dst = append(dst, 0x20|cmdProxy)
	if src.Addr().Is4() {
		dst = append(dst, famTCP4, 0, 12)
		s, d := src.Addr().As4(), to.Addr().As4()
		dst = append(append(dst, s[:]...), d[:]...)
	} else {
		dst = append(dst, famTCP6, 0, 36)
		s, d := src.Addr().As16(), to.Addr().As16()
		dst = append(append(dst, s[:]...), d[:]...)
	}
	dst = binary.BigEndian.AppendUint16(dst, src.Port())
	return binary.BigEndian.AppendUint16(dst, to.Port())
}
