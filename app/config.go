package app

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/fraised/fraised/edge"
	"github.com/fraised/fraised/history"
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
	maxOutTotal    int
	writeTimeout   time.Duration
	sendBuffer     int
	maxPayload     int
	maxMessage     int
	maxSubsPerConn int
	ringSize       int
	ringBytes      int64
	historyBytes   int64
	maxPublishers  int
	publishReadTO  time.Duration
	eventLoops     int
	drainTimeout   time.Duration
	edge           edgeConfig
	logFormat      string
	logLevel       string
	pprofListen    string
	version        bool
	sec            securityConfig
	cluster        clusterConfig
	ui             uiConfig
	src            sourceConfig
	res            resolverConfig
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
	fs.IntVar(&cfg.maxOutTotal, "max-outbound-total", 0, "unsent `bytes` across all connections; past it the clients holding the most are cut off as slow consumers (0 = a quarter of GOMEMLIMIT, else of the cgroup or physical memory, 64 MiB to 4 GiB)")
	fs.IntVar(&cfg.sendBuffer, "send-buffer", server.DefaultSendBuffer, "kernel send buffer (SO_SNDBUF) of each client connection in `bytes`: bounds what a client that does not read holds in the kernel (negative: kernel autotuning)")
	fs.DurationVar(&cfg.writeTimeout, "write-timeout", server.DefaultWriteTimeout, "cut off a client (1013) whose socket takes no byte for this `duration` while output waits")
	fs.IntVar(&cfg.maxPayload, "max-payload", server.DefaultMaxPayload, "largest event payload in `bytes`")
	fs.IntVar(&cfg.maxMessage, "max-message", server.DefaultMaxMessage, "largest client WebSocket message in `bytes` (close 1009 past it)")
	fs.IntVar(&cfg.maxSubsPerConn, "max-subscriptions", server.DefaultMaxSubsPerConn, "active operations per connection")
	fs.IntVar(&cfg.ringSize, "ring-size", server.DefaultRingSize, "event ring capacity (`events`); publishers wait when it is full")
	fs.Int64Var(&cfg.ringBytes, "ring-bytes", server.DefaultRingBytes, "byte budget of the events in the ring (`bytes`, payload + topic + 128 per event); publishers wait when it is spent")
	fs.Int64Var(&cfg.historyBytes, "history-max-bytes", history.DefaultMaxBytes, "memory cap (`bytes`) of the @history of all topics; past it the oldest events of the largest streams are dropped first")
	fs.IntVar(&cfg.maxPublishers, "max-publishers", server.DefaultMaxPublishers, "Redis-protocol publisher `connections` (TCP and Unix); past it: -ERR max number of clients reached")
	fs.DurationVar(&cfg.publishReadTO, "publish-read-timeout", server.DefaultPublishReadTimeout, "a publisher must send each command in full within this `duration` of its first byte, or be cut off")
	fs.IntVar(&cfg.eventLoops, "event-loops", 0, "number of network event loops (0 = GOMAXPROCS)")
	fs.DurationVar(&cfg.drainTimeout, "drain-timeout", server.DefaultDrainTimeout, "on SIGTERM/SIGINT, finish within this `duration`")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&cfg.pprofListen, "pprof-listen", "", "serve net/http/pprof on this `address` (empty disables; keep it on loopback)")
	fs.BoolVar(&cfg.version, "version", false, "print the fraised version, the Go version and the platform, and exit")
	addSecurityFlags(fs, &cfg.sec)
	addEdgeFlags(fs, &cfg.edge)
	addClusterFlags(fs, &cfg.cluster)
	addUIFlags(fs, &cfg.ui)
	addSourceFlags(fs, &cfg.src)
	addResolverFlags(fs, &cfg.res)
	return fs
}

// cliOnly names the flags that have no environment variable: a command,
// not a setting (FRAISED_VERSION left in an environment must not turn a
// server into a version printer).
var cliOnly = map[string]bool{"version": true}

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
		if !ok || set[f.Name] || cliOnly[f.Name] || err != nil {
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
  fraised pg install --source postgres://USER@HOST/DB
                                          install the PostgreSQL outbox schema (fraised.publish)
  fraised --version                       print the version and exit

Flags (each also read from the environment variable shown; a flag wins):
`)
		fs.VisitAll(func(f *flag.Flag) {
			name, u := flag.UnquoteUsage(f)
			if name != "" {
				name = " " + name
			}
			if cliOnly[f.Name] {
				fmt.Fprintf(w, "  --%s%s\n    \t%s\n", f.Name, name, u)
				return
			}
			fmt.Fprintf(w, "  --%s%s\n    \t%s (env %s", f.Name, name, u, envName(f.Name))
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
		MaxOutboundTotal:        cfg.maxOutTotal,
		WriteTimeout:            cfg.writeTimeout,
		SendBuffer:              cfg.sendBuffer,
		MaxPayload:              cfg.maxPayload,
		MaxMessage:              cfg.maxMessage,
		MaxSubscriptionsPerConn: cfg.maxSubsPerConn,
		RingSize:                cfg.ringSize,
		RingBytes:               cfg.ringBytes,
		HistoryMaxBytes:         cfg.historyBytes,
		MaxPublishers:           cfg.maxPublishers,
		PublishReadTimeout:      cfg.publishReadTO,
		EventLoops:              cfg.eventLoops,
		DrainTimeout:            cfg.drainTimeout,
		HTTPReadTimeout:         cfg.edge.readTimeout,
		HTTPIdleTimeout:         cfg.edge.idleTimeout,
		MaxConnections:          cfg.edge.maxConns,
		MaxConnectionsPerAddr:   cfg.edge.maxIPConns,
		TrustedProxies:          cfg.edge.trusted.t,
		ForwardedHeader:         cfg.edge.header.h,
		ProxyProtocol:           cfg.edge.proxyProtocol,
	}
}

// defaultMaxIPConns is the fraised command's cap on open connections per
// client address: a NAT'd office or a campus behind one address opens a
// socket per tab, hundreds at most, while one host flooding sockets is
// stopped long before the global cap.
const defaultMaxIPConns = 1000

// edgeConfig is the part of config about admitting connections: caps,
// HTTP deadlines, trusted proxies.
type edgeConfig struct {
	readTimeout, idleTimeout time.Duration
	maxConns, maxIPConns     int
	trusted                  trustedFlag
	header                   headerFlag
	proxyProtocol            bool
}

func addEdgeFlags(fs *flag.FlagSet, e *edgeConfig) {
	fs.DurationVar(&e.readTimeout, "http-read-timeout", server.DefaultHTTPReadTimeout, "deadline to read one HTTP request, head and body (a new connection's first request counts from the accept; 408 or close past it)")
	fs.DurationVar(&e.idleTimeout, "http-idle-timeout", server.DefaultHTTPIdleTimeout, "close a keep-alive HTTP connection idle this long between requests")
	fs.IntVar(&e.maxConns, "max-connections", 0, "open HTTP/WebSocket connections (503 with Retry-After past it; 0 = the open-files limit minus what publishers, listeners and files need)")
	fs.IntVar(&e.maxIPConns, "max-ip-connections", defaultMaxIPConns, "open connections per client address, IPv6 per /64 (503 with Retry-After past it; 0 = unlimited)")
	fs.Var(&e.trusted, "trusted-proxies", "comma-separated CIDR `list` of proxies whose forwarding header (and PROXY protocol header) names the client; empty trusts none")
	fs.Var(&e.header, "forwarded-header", "`header` trusted proxies name the client in: x-forwarded-for or forwarded (default x-forwarded-for)")
	fs.BoolVar(&e.proxyProtocol, "proxy-protocol", false, "connections from --trusted-proxies start with a PROXY protocol v1/v2 header naming the client")
}

// trustedFlag is --trusted-proxies, parsed when set.
type trustedFlag struct {
	t *edge.Trusted
}

func (f *trustedFlag) String() string { return f.t.String() }

func (f *trustedFlag) Set(s string) error {
	t, err := edge.ParseTrusted(s)
	if err != nil {
		return err
	}
	f.t = t
	return nil
}

// headerFlag is --forwarded-header.
type headerFlag struct {
	h edge.Header
}

func (f *headerFlag) String() string { return "" }

func (f *headerFlag) Set(s string) error {
	h, err := edge.ParseHeader(s)
	if err != nil {
		return err
	}
	f.h = h
	return nil
}
