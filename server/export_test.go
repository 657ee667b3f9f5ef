package server

import "time"

// Test hooks for the package's external tests.

// RingFull reports whether every slot of s's event ring is taken.
func RingFull(s *Server) bool { st := s.d.Stats(); return st.RingLen == st.RingCap }

// RingBytes returns the bytes of the events in s's ring, as counted against
// Options.RingBytes.
func RingBytes(s *Server) int64 { return s.d.Stats().RingBytes }

// WaitingPublishers returns how many publishers wait for ring space.
func WaitingPublishers(s *Server) int { return s.d.Stats().WaitingPublishers }

// Publishers returns the number of Redis-protocol publisher connections.
func Publishers(s *Server) int { return s.pubs.count() }

// SetMaxQueuedSubscribes lowers the control queue's subscribe cap
// (maxQueuedAdds) so a test can fill it with a few clients.
func SetMaxQueuedSubscribes(s *Server, n int) {
	s.d.SetMaxQueuedAdds(n)
}

// SetHTTPQueryTimeout shortens the deadline of GraphQL-over-HTTP queries.
func SetHTTPQueryTimeout(s *Server, d time.Duration) { s.routes.timeout.Store(int64(d)) }
