package server

// SetMaxQueuedSubscribes lowers the control queue's subscribe cap
// (maxQueuedAdds) so a test can fill it with a few clients.
func SetMaxQueuedSubscribes(s *Server, n int) {
	s.d.ctlMu.Lock()
	s.d.maxCtlAdds = n
	s.d.ctlMu.Unlock()
}
