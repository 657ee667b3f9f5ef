package app

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/resolve"
)

// resolverConfig is the part of config about resolvers: the worker pool,
// the deadline, resolver processes and Go plugins.
type resolverConfig struct {
	workers int
	timeout time.Duration
	procs   listFlag // --resolver
	plugins listFlag // --plugin
}

func addResolverFlags(fs *flag.FlagSet, r *resolverConfig) {
	fs.IntVar(&r.workers, "resolver-workers", resolve.DefaultWorkers, "goroutines running Go resolvers (compiled in or from plugins); a resolver call never runs on the dispatcher")
	fs.DurationVar(&r.timeout, "resolver-timeout", resolve.DefaultTimeout, "deadline of one resolver call (subscriptions, their replays and queries); past it the event's next, or the query's field, carries an error with extensions.code RESOLVER_TIMEOUT")
	fs.Var(&r.procs, "resolver", "`spec` Type.field[+identity]=exec:COMMAND ARGS (fraised starts and supervises the process) or Type.field[+identity]=unix:/path (a process listening there): resolve the field over the socket protocol; repeatable (in the environment, one per line); +identity also sends the init payload and claims")
	fs.Var(&r.plugins, "plugin", "Go plugin `file` (.so) registering resolvers, loaded at start (needs fraised-dyn: make build-dyn); repeatable (in the environment, one per line)")
}

// listFlag is a repeatable flag; one value may hold several, one per line
// (how the environment variable lists them).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, "\n") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, "\n") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// errUsage marks an error the fraised command exits 2 for: the command
// line asks for something this binary cannot do (a plugin it cannot
// load, a flag value it cannot use).
var errUsage = errors.New("usage")

// usageError wraps err so that Run exits with status 2.
func usageError(err error) error { return fmt.Errorf("%w: %w", errUsage, err) }

// resolvers builds the field resolvers and the router: compiled-in ones
// (hooks), plugins and resolver processes. A field may have one resolver.
func (r *resolverConfig) resolvers(hooks Hooks, log *slog.Logger) (map[string]gql.Resolver, *resolve.Router, error) {
	if r.workers < 1 {
		return nil, nil, usageError(fmt.Errorf("invalid --resolver-workers %d: at least 1", r.workers))
	}
	if r.timeout <= 0 {
		return nil, nil, usageError(fmt.Errorf("invalid --resolver-timeout %v: must be positive", r.timeout))
	}
	router := resolve.NewRouter(resolve.Options{Workers: r.workers, Timeout: r.timeout, Log: log})
	fields := map[string]gql.Resolver{}
	from := map[string]string{}
	add := func(key, src string, res gql.Resolver) error {
		if _, ok := hooks.Resolvers[key]; ok {
			return usageError(fmt.Errorf("%s has two resolvers: a compiled-in one and %s", key, src))
		}
		if prev, ok := from[key]; ok {
			return usageError(fmt.Errorf("%s has two resolvers: %s and %s", key, prev, src))
		}
		fields[key], from[key] = res, src
		return nil
	}
	for k, res := range hooks.FieldResolvers {
		if err := add(k, "a compiled-in one", res); err != nil {
			return nil, nil, err
		}
	}
	loaded, err := loadPlugins(r.plugins, log)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range loaded {
		for k, res := range p.resolvers {
			if err := add(k, "plugin "+p.path, res); err != nil {
				return nil, nil, err
			}
		}
	}
	if err := r.openProcesses(router, add, log); err != nil {
		router.Close(closedContext())
		return nil, nil, err
	}
	return fields, router, nil
}

// openProcesses starts (or dials) each --resolver target once, however
// many fields it resolves, and routes the fields to it.
func (r *resolverConfig) openProcesses(router *resolve.Router, add func(string, string, gql.Resolver) error, log *slog.Logger) error {
	clients := map[string]*resolve.Client{}
	for _, v := range r.procs {
		spec, err := resolve.ParseSpec(v)
		if err != nil {
			return usageError(err)
		}
		cl := clients[spec.Target()]
		if cl == nil {
			cl = resolve.Open(spec, r.timeout, log)
			clients[spec.Target()] = cl
		}
		if err := add(spec.Key, "--resolver "+spec.Target(), gql.Resolver{Func: cl.Func(spec.Key, spec.Identity), Identity: spec.Identity}); err != nil {
			for _, c := range clients {
				c.Close(closedContext())
			}
			return err
		}
		router.Route(spec.Key, cl)
	}
	return nil
}
