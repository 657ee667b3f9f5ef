package server

import (
	"github.com/fraised/fraised/resolve"
)

// queryRunner returns what runs the resolvers of queries, over WebSocket
// and HTTP alike: with the subscription resolvers' deadline (the
// Resolvers router's --resolver-timeout, else resolve.DefaultTimeout),
// so a query field past it carries RESOLVER_TIMEOUT and the query still
// answers.
func queryRunner(opts Options) *resolve.Queries {
	timeout := resolve.DefaultTimeout
	if opts.Resolvers != nil {
		timeout = opts.Resolvers.Timeout()
	}
	return resolve.NewQueries(timeout, opts.Logger)
}
