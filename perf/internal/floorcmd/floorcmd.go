// Package floorcmd is the shared command line of the floor servers: flags,
// logging, the optional pprof listener and signal handling.
package floorcmd

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only on --pprof-listen
	"os"
	"os/signal"
	"syscall"
)

// Flags are the floor servers' flags.
type Flags struct {
	Listen, PublishListen, PublishUnix, PprofListen, LogLevel string
	MaxPending                                                int
}

// Main parses flags, then runs serve until SIGINT/SIGTERM; it exits the
// process with status 1 if serve fails.
func Main(name string, serve func(ctx context.Context, f Flags, log *slog.Logger) error) {
	var f Flags
	flag.StringVar(&f.Listen, "listen", "127.0.0.1:8080", "WebSocket listener host:port (any path)")
	flag.StringVar(&f.PublishListen, "publish-listen", "127.0.0.1:4001", "RESP publish listener host:port (empty: none)")
	flag.StringVar(&f.PublishUnix, "publish-unix", "", "RESP publish Unix socket path (empty: none)")
	flag.StringVar(&f.PprofListen, "pprof-listen", "", "net/http/pprof listener host:port (empty: none)")
	flag.StringVar(&f.LogLevel, "log-level", "warn", "debug, info, warn or error")
	flag.IntVar(&f.MaxPending, "max-pending", 0, "outbound bytes queued per connection before it is cut off (0: 4 MiB)")
	flag.Parse()
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.LogLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "%s: bad --log-level %q: %v\n", name, f.LogLevel, err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	if f.PprofListen != "" {
		go func() {
			if err := http.ListenAndServe(f.PprofListen, nil); err != nil {
				log.Error("pprof listener stopped", "err", err)
			}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, f, log); err != nil {
		log.Error(name+" stopped", "err", err)
		os.Exit(1)
	}
}
