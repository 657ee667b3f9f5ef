package app

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/fraised/fraised/server"
)

// config is everything the fraised command can be told, from flags and
// FRAISED_* environment variables (a flag on the command line wins).
type config struct {
	schema         string
	listen         string
	publishListen  string
	publishUnix    string
	publishToken   string
	initTimeout    time.Duration
	keepAlive      time.Duration
	maxOutbound    int
	maxPayload     int
	maxMessage     int
	maxSubsPerConn int
	ringSize       int
	ringBytes      int64
	maxPublishers  int
	publishReadTO  time.Duration
	eventLoops     int
	drainTimeout   time.Duration
	logFormat      string
	logLevel       string
	pprofListen    string
	sec            securityConfig
}

func newFlagSet(cfg *config) *flag.FlagSet {
	fs := flag.NewFlagSet("fraised", flag.ContinueOnError)
	fs.StringVar(&cfg.schema, "schema", "", "GraphQL SDL schema `file` (required); Subscription fields name topics with @topic")
	fs.StringVar(&cfg.listen, "listen", server.DefaultListen, "HTTP and WebSocket `address` (endpoint /graphql)")
	fs.StringVar(&cfg.publishListen, "publish-listen", server.DefaultPublishListen, "Redis-protocol publish TCP `address` (\"-\" disables)")
	fs.StringVar(&cfg.publishUnix, "publish-unix", "", "Redis-protocol publish Unix socket `path` (empty disables)")
	fs.StringVar(&cfg.publishToken, "publish-token", "", "bearer `token` enabling POST /publish/{topic} on --listen (empty disables)")
	fs.DurationVar(&cfg.initTimeout, "init-timeout", server.DefaultInitTimeout, "close a WebSocket (4408) that sends no connection_init within this `duration`")
	fs.DurationVar(&cfg.keepAlive, "keepalive", server.DefaultKeepAlive, "WebSocket ping `interval`; silent peers are dropped after two (negative disables)")
	fs.IntVar(&cfg.maxOutbound, "max-outbound", server.DefaultMaxOutbound, "per-connection unsent `bytes` before the client is cut off as a slow consumer")
	fs.IntVar(&cfg.maxPayload, "max-payload", server.DefaultMaxPayload, "largest event payload in `bytes`")
	fs.IntVar(&cfg.maxMessage, "max-message", server.DefaultMaxMessage, "largest client WebSocket message in `bytes` (close 1009 past it)")
	fs.IntVar(&cfg.maxSubsPerConn, "max-subscriptions", server.DefaultMaxSubsPerConn, "active operations per connection")
	fs.IntVar(&cfg.ringSize, "ring-size", server.DefaultRingSize, "event ring capacity (`events`); publishers wait when it is full")
	fs.Int64Var(&cfg.ringBytes, "ring-bytes", server.DefaultRingBytes, "byte budget of the events in the ring (`bytes`, payload + topic + 128 per event); publishers wait when it is spent")
	fs.IntVar(&cfg.maxPublishers, "max-publishers", server.DefaultMaxPublishers, "Redis-protocol publisher `connections` (TCP and Unix); past it: -ERR max number of clients reached")
	fs.DurationVar(&cfg.publishReadTO, "publish-read-timeout", server.DefaultPublishReadTimeout, "a publisher must send each command in full within this `duration` of its first byte, or be cut off")
	fs.IntVar(&cfg.eventLoops, "event-loops", 0, "number of network event loops (0 = GOMAXPROCS)")
	fs.DurationVar(&cfg.drainTimeout, "drain-timeout", server.DefaultDrainTimeout, "on SIGTERM/SIGINT, finish within this `duration`")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&cfg.pprofListen, "pprof-listen", "", "serve net/http/pprof on this `address` (empty disables; keep it on loopback)")
	addSecurityFlags(fs, &cfg.sec)
	return fs
}

// envName is the environment variable for a flag: FRAISED_ and the flag
// name in upper snake case.
func envName(flagName string) string {
	return "FRAISED_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its
// environment variable.
func applyEnv(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok || set[f.Name] || err != nil {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("invalid %s=%q: %w", envName(f.Name), v, e)
		}
	})
	return err
}

// usage prints the commands, every flag with its environment variable.
func usage(fs *flag.FlagSet) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintf(w, `fraised: GraphQL subscriptions over WebSocket (graphql-transport-ws), fed by the Redis protocol.

Usage:
  fraised --schema FILE [flags]           serve
  fraised publish [--addr HOST:PORT | --unix PATH] TOPIC JSON
                                          publish one event (like redis-cli PUBLISH)

Flags (each also read from the environment variable shown; a flag wins):
`)
		fs.VisitAll(func(f *flag.Flag) {
			name, u := flag.UnquoteUsage(f)
			fmt.Fprintf(w, "  --%s %s\n    \t%s (env %s", f.Name, name, u, envName(f.Name))
			if f.DefValue != "" && f.DefValue != "0" {
				fmt.Fprintf(w, ", default %s", f.DefValue)
			}
			fmt.Fprintln(w, ")")
		})
		fmt.Fprintln(w, "\nGo runtime settings such as GOGC and GOMEMLIMIT are honoured as usual (see README).")
	}
}

func (cfg *config) serverOptions() server.Options {
	return server.Options{
		Listen:                  cfg.listen,
		PublishListen:           cfg.publishListen,
		PublishUnix:             cfg.publishUnix,
		PublishToken:            cfg.publishToken,
		InitTimeout:             cfg.initTimeout,
		KeepAlive:               cfg.keepAlive,
		MaxOutbound:             cfg.maxOutbound,
		MaxPayload:              cfg.maxPayload,
		MaxMessage:              cfg.maxMessage,
		MaxSubscriptionsPerConn: cfg.maxSubsPerConn,
		RingSize:                cfg.ringSize,
		RingBytes:               cfg.ringBytes,
		MaxPublishers:           cfg.maxPublishers,
		PublishReadTimeout:      cfg.publishReadTO,
		EventLoops:              cfg.eventLoops,
		DrainTimeout:            cfg.drainTimeout,
	}
}
