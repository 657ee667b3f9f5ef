package server

import "net"

// Addr returns the address the HTTP/WebSocket listener is bound to (the
// port chosen for a Listen of "127.0.0.1:0"), or nil until Ready is
// closed. Safe for concurrent use.
func (s *Server) Addr() net.Addr {
	select {
	case <-s.loopsUp:
		return s.httpLn.Addr()
	default:
		return nil
	}
}
