package server

// notReady returns why GET /readyz must answer 503 (draining, or the
// first failing Options.ReadyChecks entry: the cluster broker while Redis
// is unreachable, its probe fails or it resubscribes), or "" when the
// server is ready. Called on an event loop: every check only loads state.
func (s *Server) notReady() string {
	if s.draining.Load() {
		return "draining"
	}
	for _, check := range s.opts.ReadyChecks {
		if err := check(); err != nil {
			return err.Error()
		}
	}
	if s.opts.Cluster != nil {
		if err := s.opts.Cluster.Ready(); err != nil {
			return err.Error()
		}
	}
	return ""
}
