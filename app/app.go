// Package app is the fraised command: flags and environment, logging,
// signals, and the publish subcommand. A program that compiles in its own
// resolvers calls Main from its own main package:
//
//	func main() {
//		os.Exit(app.Main(os.Args[1:], map[string]gql.ResolverFunc{
//			"Subscription.orderUpdated": resolveOrder,
//		}))
//	}
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only with --pprof-listen
	"os"
	"os/signal"
	"syscall"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/server"
)

// Main runs the fraised command with args (without the program name) and
// the compiled-in resolvers, and returns the process exit code.
func Main(args []string, resolvers map[string]gql.ResolverFunc) int {
	if len(args) > 0 && args[0] == "publish" {
		return publishMain(args[1:], os.Stdout, os.Stderr)
	}
	var cfg config
	fs := newFlagSet(&cfg)
	fs.Usage = usage(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := applyEnv(fs); err != nil {
		fmt.Fprintln(os.Stderr, "fraised:", err)
		return 2
	}
	log, err := newLogger(os.Stderr, cfg.logFormat, cfg.logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fraised:", err)
		return 2
	}
	if err := serve(&cfg, resolvers, log); err != nil {
		log.Error("fraised stopped", "err", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid --log-format %q: use text or json", format)
}

func serve(cfg *config, resolvers map[string]gql.ResolverFunc, log *slog.Logger) error {
	if cfg.schema == "" {
		return errors.New("--schema is required (try --schema examples/schema.graphql)")
	}
	schema, err := gql.LoadSchemaFile(cfg.schema, gql.Options{Resolvers: resolvers, Logger: log})
	if err != nil {
		return err
	}
	opts := cfg.serverOptions()
	opts.Schema = schema
	opts.Logger = log
	srv, err := server.New(opts)
	if err != nil {
		return err
	}
	if cfg.pprofListen != "" {
		go func() {
			log.Info("pprof listening", "addr", cfg.pprofListen)
			if err := http.ListenAndServe(cfg.pprofListen, nil); err != nil {
				log.Error("pprof listener stopped", "err", err)
			}
		}()
	}
	runErr := make(chan error, 1)
	go func() { runErr <- srv.Run() }()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-runErr:
		return err
	case sig := <-sigs:
		log.Info("draining", "signal", sig.String(), "deadline", cfg.drainTimeout)
		if err := srv.Shutdown(context.Background()); err != nil {
			log.Warn("shutdown incomplete", "err", err)
		}
		<-runErr
		log.Info("stopped")
		return nil
	}
}
