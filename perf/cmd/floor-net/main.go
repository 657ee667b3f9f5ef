// Command floor-net runs the goroutines+net floor server (see
// perf/README.md): the cost of the sockets with the standard library and no
// GraphQL.
package main

import (
	"context"
	"log/slog"

	"github.com/fraised/fraised/perf/internal/floorcmd"
	"github.com/fraised/fraised/perf/internal/netfloor"
)

func main() {
	floorcmd.Main("floor-net", func(ctx context.Context, f floorcmd.Flags, log *slog.Logger) error {
		return netfloor.Run(ctx, netfloor.Config{Listen: f.Listen, PublishListen: f.PublishListen,
			PublishUnix: f.PublishUnix, MaxPending: f.MaxPending, Logger: log})
	})
}
