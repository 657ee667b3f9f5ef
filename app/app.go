// Package app is the fraised command: flags and environment, logging,
// signals, and the publish subcommand. A program that compiles in its own
// resolvers calls Main from its own main package:
//
//	func main() {
//		os.Exit(app.Main(os.Args[1:], map[string]gql.ResolverFunc{
//			"Subscription.orderUpdated": resolveOrder,
//		}))
//	}
//
// Run takes every compiled-in hook, a custom token verifier included:
//
//	os.Exit(app.Run(os.Args[1:], app.Hooks{Verifier: myVerifier{}}))
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
	"strings"
	"syscall"
	"time"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/resolve"
	"github.com/fraised/fraised/server"
)

// Main runs the fraised command with args (without the program name) and
// the compiled-in resolvers, and returns the process exit code.
func Main(args []string, resolvers map[string]gql.ResolverFunc) int {
	return Run(args, Hooks{Resolvers: resolvers})
}

// Hooks are the compiled-in extensions of the fraised command.
type Hooks struct {
	// Resolvers are the field resolvers, keyed "Subscription.orderUpdated".
	// Each is taken to read the connection's identity (gql.Resolver); list
	// those that do not in FieldResolvers instead, so subscribers with
	// different identities share one call per event.
	Resolvers map[string]gql.ResolverFunc
	// FieldResolvers are field resolvers that declare what they read.
	FieldResolvers map[string]gql.Resolver
	// Verifier, when set, replaces the JWT verifier for --auth optional and
	// required (the --jwt-* key flags are then not needed). It must be safe
	// for concurrent use; if it also has a Reload() error method, SIGHUP
	// calls it.
	Verifier auth.Verifier
}

// Run runs the fraised command with args (without the program name) and
// hooks, and returns the process exit code.
func Run(args []string, hooks Hooks) int {
	if len(args) > 0 && args[0] == "publish" {
		return publishMain(args[1:], os.Stdout, os.Stderr)
	}
	if len(args) > 0 && args[0] == "pg" {
		return pgMain(args[1:], os.Stdout, os.Stderr)
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
	if cfg.version {
		printVersion(os.Stdout)
		return 0
	}
	if err := noArgsLeft(fs); err != nil {
		fmt.Fprintln(os.Stderr, "fraised:", err)
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
	if err := serve(&cfg, hooks, log); err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "fraised:", strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
			return 2
		}
		if errors.Is(err, gql.ErrSchema) {
			// One schema error per line, as a compiler prints them: a
			// log attribute would escape the newlines into one line.
			fmt.Fprintln(os.Stderr, err)
		}
		log.Error("fraised stopped", "err", err)
		return 1
	}
	return 0
}

// noArgsLeft refuses arguments left after the flags. Go's flag package
// stops at the first non-flag argument, so every flag after a stray word
// (`--allowed-origins a b --auth required`) would be silently ignored.
func noArgsLeft(fs *flag.FlagSet) error {
	if fs.NArg() == 0 {
		return nil
	}
	return fmt.Errorf("unexpected argument %q: fraised takes only flags, and every flag after it would be ignored "+
		"(quote a value that has spaces; lists are comma-separated); see fraised --help", fs.Arg(0))
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

func serve(cfg *config, hooks Hooks, log *slog.Logger) error {
	if cfg.schema == "" {
		return errors.New("--schema is required (try --schema examples/schema.graphql)")
	}
	fields, router, err := cfg.res.resolvers(hooks, log)
	if err != nil {
		return err
	}
	defer closeResolvers(router, cfg.drainTimeout)
	schema, err := gql.LoadSchemaFile(cfg.schema, cfg.ui.schemaOptions(gql.Options{Resolvers: hooks.Resolvers, FieldResolvers: fields, Logger: log, Limits: cfg.sec.gqlLimits()}))
	if err != nil {
		return err
	}
	opts := cfg.serverOptions()
	opts.Schema = schema
	opts.Resolvers = router
	opts.Logger = log
	cfg.ui.apply(&opts)
	if opts.Security, err = cfg.sec.security(hooks.Verifier, log); err != nil {
		return err
	}
	defer closeAudit(opts.Security.Audit, log)
	if opts.Sources, err = cfg.src.build(opts.MaxPayload, cfg.cluster.url != "", log); err != nil {
		return err
	}
	if err = cfg.cluster.apply(&opts, log); err != nil {
		return err
	}
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
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for {
		select {
		case err := <-runErr:
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reloadKeys(opts.Security.Verifier, log)
				continue
			}
			log.Info("draining", "signal", sig.String(), "deadline", cfg.drainTimeout)
			if err := srv.Shutdown(context.Background()); err != nil {
				log.Warn("shutdown incomplete", "err", err)
			}
			select {
			case <-runErr:
			case <-time.After(exitGrace):
				log.Warn("the network engine did not stop after the drain; exiting anyway", "waited", exitGrace)
			}
			log.Info("stopped")
			return nil
		}
	}
}

// exitGrace bounds the wait for the network engine to stop after
// Shutdown returned, so a stuck engine cannot keep the process past its
// drain deadline by more than this.
const exitGrace = 500 * time.Millisecond

// closeResolvers drains the resolver processes (their calls in flight
// answer, within limit) and stops them, after the server stopped.
func closeResolvers(r *resolve.Router, limit time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	r.Close(ctx)
}

// closedContext returns a context that is already done.
func closedContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// closeAudit flushes and closes the audit log, reporting lost records.
func closeAudit(l *audit.Log, log *slog.Logger) {
	if l == nil {
		return
	}
	if err := l.Close(); err != nil {
		log.Error("cannot flush the audit log", "err", err)
	}
	if n := l.Dropped(); n > 0 {
		log.Warn("audit records were dropped (queue full or write errors); raise --audit-queue or check the disk", "dropped", n)
	}
}
