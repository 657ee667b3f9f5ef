// Command floor-gnet runs the gnet floor server (see perf/README.md): the
// cost of the sockets with gnet event loops and no GraphQL.
package main

import (
	"context"
	"log/slog"

	"github.com/fraised/fraised/perf/internal/floorcmd"
	"github.com/fraised/fraised/perf/internal/gnetfloor"
)

func main() {
	floorcmd.Main("floor-gnet", func(ctx context.Context, f floorcmd.Flags, log *slog.Logger) error {
		return gnetfloor.Run(ctx, gnetfloor.Config{Listen: f.Listen, PublishListen: f.PublishListen,
			PublishUnix: f.PublishUnix, MaxPending: f.MaxPending, Logger: log})
	})
}
