package server_test

import (
	"time"

	"github.com/fraised/fraised/resolve"
)

// inlineBackend runs resolver calls on the dispatcher's own goroutine.
// fraised never does (resolvers run on their backends), so a resolver
// cannot stall delivery; tests that must stall the dispatcher on purpose
// (to fill the ring or the control queue) route a blocking resolver here.
type inlineBackend struct{}

var _ resolve.Backend = inlineBackend{}

func (inlineBackend) Start(c *resolve.Call) {
	c.Payload = c.Op.AppendResultContext(c.Context(), nil, c.Event)
	c.Finish()
}

func (inlineBackend) Flush() {}

func (inlineBackend) Abandon(*resolve.Call, bool) {}

// stallingResolvers returns a router that runs the resolvers of keys
// inline on the dispatcher (inlineBackend).
func stallingResolvers(keys ...string) *resolve.Router {
	r := resolve.NewRouter(resolve.Options{Timeout: time.Hour})
	for _, k := range keys {
		r.Route(k, inlineBackend{})
	}
	return r
}
