package server

import (
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/fraised/fraised/broker"
	"github.com/fraised/fraised/edge"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/resolve"
	"github.com/fraised/fraised/source"
)

// Options configures a Server. A zero field means the documented default.
type Options struct {
	// Schema is the compiled schema subscriptions and queries run against. Required.
	Schema *gql.Schema
	// Listen is the HTTP and WebSocket address (endpoint /graphql). Default 127.0.0.1:4000.
	Listen string
	// PublishListen is the Redis-protocol publish address on TCP; "-" disables it.
	// Default 127.0.0.1:4001 (loopback: publishers are trusted backends).
	PublishListen string
	// PublishUnix is the path of a Redis-protocol publish Unix socket; empty disables it.
	PublishUnix string
	// PublishToken enables POST /publish/{topic} on Listen for callers that
	// present it as a bearer token. Empty disables the endpoint.
	PublishToken string
	// Sources are event sources (source/postgres) run with the server:
	// each starts with Run on its own goroutine, publishes through
	// Server.Publish, is stopped first on Shutdown (it stores its
	// position while the drain delivers what it pushed), and makes
	// /readyz answer 503 while its Healthy reports an error.
	Sources []source.Source
	// InitTimeout is how long a WebSocket may stay open without
	// connection_init before it is closed with 4408. Default 3s.
	InitTimeout time.Duration
	// KeepAlive is the interval of WebSocket ping frames; a connection that
	// sends nothing for two intervals is closed. Default 12s; negative disables.
	KeepAlive time.Duration
	// MaxOutbound is the cap on a connection's unsent bytes; past it the
	// client is a slow consumer and is disconnected. Default 4 MiB.
	MaxOutbound int
	// MaxOutboundTotal is the global budget of unsent bytes across all
	// connections; past it, the connections holding the most are cut as
	// slow consumers (1013) until the total is back under 7/8 of it.
	// Default: a quarter of GOMEMLIMIT if set, else of the cgroup memory
	// limit, else of physical memory, at least 64 MiB and at most 4 GiB.
	MaxOutboundTotal int
	// WriteTimeout is how long a socket may take no byte while output
	// waits for it; past it the client is cut as a slow consumer (and a
	// close frame that cannot be written either is abandoned after another
	// WriteTimeout). Default 10s.
	WriteTimeout time.Duration
	// SendBuffer is the kernel send buffer (SO_SNDBUF) of each HTTP and
	// WebSocket connection, in bytes. It bounds what a client that does not
	// read holds in the kernel, besides MaxOutbound in fraised: without it
	// Linux grows each buffer up to net.ipv4.tcp_wmem's maximum (4 MiB), so
	// a fan-out to thousands of clients that stopped reading spends the
	// dispatcher's time and the host's memory filling kernel buffers before
	// anyone is cut. Default 256 KiB; negative leaves the kernel's
	// autotuning.
	SendBuffer int
	// MaxPayload is the largest event payload a publisher may send. Default 1 MiB.
	MaxPayload int
	// MaxMessage is the largest WebSocket message a client may send. Default 64 KiB.
	MaxMessage int
	// MaxSubscriptionsPerConn bounds a connection's active operations. Default 100.
	MaxSubscriptionsPerConn int
	// RingSize is the capacity of the event ring between publishers and the
	// dispatcher. Default 65536 events.
	RingSize int
	// RingBytes is the byte budget of the events in the ring (payload,
	// topic and a fixed overhead per event); publishers wait when it is
	// spent. Default 16 MiB. Count it in GOMEMLIMIT's headroom.
	RingBytes int64
	// HistoryMaxBytes caps the memory of the @history of all topics
	// (payloads, entries and per-stream overhead); past it the oldest
	// events of the largest streams are dropped first. Default
	// history.DefaultMaxBytes (128 MiB). Count it in GOMEMLIMIT's headroom.
	HistoryMaxBytes int64
	// MaxPublishers caps Redis-protocol publisher connections (TCP and Unix
	// together); past it a new one gets "-ERR max number of clients
	// reached" and is closed, as Redis does. Default 256.
	MaxPublishers int
	// PublishReadTimeout is how long a publisher may take to send one
	// command, from its first byte to its last; a publisher that stalls
	// mid-command is cut off. Idle publishers stay connected. Default 10s.
	PublishReadTimeout time.Duration
	// EventLoops is the number of gnet event loops. Default GOMAXPROCS.
	EventLoops int
	// HTTPReadTimeout bounds the reading of one HTTP request, head and
	// body; for a connection's first request it counts from the accept, so
	// a connection that never sends a byte is closed after it. Past it:
	// 408 if part of a request arrived, else a plain close. Default 10s.
	HTTPReadTimeout time.Duration
	// HTTPIdleTimeout closes a keep-alive HTTP connection that sends no new
	// request for this long after its last response. Default 60s.
	HTTPIdleTimeout time.Duration
	// MaxConnections caps the open HTTP/WebSocket connections of the
	// listener and the WebSockets of Handler; past it new ones get 503
	// with Retry-After. Default (0): the open-files limit
	// minus the descriptors everything else needs (MaxConnectionsFor), so
	// client connections alone never exhaust the descriptors.
	MaxConnections int
	// MaxConnectionsPerAddr caps the open connections (Handler's
	// WebSockets included) of one client address (IPv6: one /64); past it
	// new ones get 503 with Retry-After.
	// Connections from TrustedProxies are counted under the client address
	// they carry. Default 0: unlimited (the fraised command sets 1000).
	MaxConnectionsPerAddr int
	// TrustedProxies are the proxies whose word about the client address
	// is believed: ForwardedHeader on upgrade requests, and the PROXY
	// protocol header when ProxyProtocol is set. Nil trusts no one.
	TrustedProxies *edge.Trusted
	// ForwardedHeader is the header trusted proxies name the client in:
	// X-Forwarded-For (default) or Forwarded.
	ForwardedHeader edge.Header
	// ProxyProtocol makes connections from TrustedProxies start with a
	// PROXY protocol (v1 or v2) header, which names the client.
	ProxyProtocol bool
	// Resolvers routes subscription resolver calls to their backends (a
	// pool of Go workers, resolver processes) with their deadline. Nil: a
	// resolve.Router with the defaults. The server does not close it.
	Resolvers *resolve.Router
	// DrainTimeout bounds graceful shutdown. Default 10s.
	DrainTimeout time.Duration
	// Security configures authentication, authorization, rate limits,
	// audit and the Origin allowlist. The zero value: auth off, no
	// limits, no audit, same-origin browsers and non-browser clients.
	Security Security
	// DisableGraphiQL stops serving the embedded GraphiQL page at
	// /graphiql (and /). The zero value serves it.
	DisableGraphiQL bool
	// DisableGraphiQLRoot serves GraphiQL at /graphiql only; / answers
	// 404. The zero value serves the page at / too.
	DisableGraphiQLRoot bool
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
	// Cluster, when set, is the broker every publish goes through (the
	// Redis broker of a cluster: see cluster.go); nil: single node, the
	// dispatcher is the ordering authority and publishes go straight to it.
	Cluster broker.Broker
	// LivenessStall is how long the dispatcher may hold events without
	// finishing a batch before GET /livez answers 503. Default
	// DefaultLivenessStall (30s).
	LivenessStall time.Duration
}

// Defaults, each chosen for a production deployment on one host.
const (
	DefaultListen         = "127.0.0.1:4000"
	DefaultPublishListen  = "127.0.0.1:4001"
	DefaultInitTimeout    = 3 * time.Second // graphql-ws's default connectionInitWaitTimeout
	DefaultKeepAlive      = 12 * time.Second
	DefaultMaxOutbound    = 4 << 20  // ~20k frames of 200 bytes: seconds of backlog at high rates
	DefaultMaxPayload     = 1 << 20  // matches typical broker limits
	DefaultMaxMessage     = 64 << 10 // a subscribe message with a large document
	DefaultMaxSubsPerConn = 100
	DefaultRingSize       = 1 << 16
	DefaultDrainTimeout   = 10 * time.Second
	// DefaultSendBuffer holds 100 ms of a 20 Mbit/s stream: the
	// bandwidth-delay product of a good mobile or home link, so a reading
	// client never waits on it.
	DefaultSendBuffer   = 256 << 10
	DefaultWriteTimeout = 10 * time.Second // nats' write deadline; a live client reads within seconds even on a bad link
	// DefaultHTTPReadTimeout: a request head and body are a few KiB to a
	// MiB; 10 s is ample on a slow mobile link and short enough that
	// slowloris connections cost little.
	DefaultHTTPReadTimeout = 10 * time.Second
	// DefaultHTTPIdleTimeout: above the 30-60 s idle timeouts of common
	// proxies' upstream pools, so the proxy closes first and never reuses a
	// connection we are closing.
	DefaultHTTPIdleTimeout = 60 * time.Second
	// DefaultRingBytes bounds the events in flight to 16 MiB: more than
	// the ring's 65,536 slots of typical (~200-byte) events, or 16 events
	// of 1 MiB. The ring is a queue in front of one dispatcher: past what
	// keeps the dispatcher busy, more of it adds only latency (an event
	// waits behind every byte ahead of it: with 64 MiB of 1 MiB events the
	// soak's canary waited up to 1.9 s).
	DefaultRingBytes = 16 << 20
	// DefaultMaxPublishers: publishers are a few trusted backends; 256
	// connections leaves room for pools of several per backend.
	DefaultMaxPublishers = 256
	// DefaultPublishReadTimeout gives a 1 MiB command 10 s (100 KiB/s).
	DefaultPublishReadTimeout = 10 * time.Second
)

func (o *Options) setDefaults() error {
	setDefault(&o.Listen, DefaultListen)
	setDefault(&o.PublishListen, DefaultPublishListen)
	setDefault(&o.InitTimeout, DefaultInitTimeout)
	setDefault(&o.KeepAlive, DefaultKeepAlive)
	setDefault(&o.MaxOutbound, DefaultMaxOutbound)
	setDefault(&o.MaxOutboundTotal, defaultOutboundTotal())
	setDefault(&o.WriteTimeout, DefaultWriteTimeout)
	setDefault(&o.MaxPayload, DefaultMaxPayload)
	setDefault(&o.MaxMessage, DefaultMaxMessage)
	setDefault(&o.MaxSubscriptionsPerConn, DefaultMaxSubsPerConn)
	setDefault(&o.RingSize, DefaultRingSize)
	setDefault(&o.RingBytes, DefaultRingBytes)
	setDefault(&o.MaxPublishers, DefaultMaxPublishers)
	setDefault(&o.PublishReadTimeout, DefaultPublishReadTimeout)
	setDefault(&o.EventLoops, runtime.GOMAXPROCS(0))
	setDefault(&o.DrainTimeout, DefaultDrainTimeout)
	setDefault(&o.SendBuffer, DefaultSendBuffer)
	setDefault(&o.HTTPReadTimeout, DefaultHTTPReadTimeout)
	setDefault(&o.HTTPIdleTimeout, DefaultHTTPIdleTimeout)
	setDefault(&o.LivenessStall, DefaultLivenessStall)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxConnections <= 0 {
		nofile, err := openFilesLimit()
		if err != nil {
			return fmt.Errorf("%w; set Options.MaxConnections (--max-connections) explicitly", err)
		}
		o.MaxConnections = MaxConnectionsFor(nofile, o.MaxPublishers)
	}
	return nil
}

// checkPublish rejects publish-side options that cannot work.
func (o *Options) checkPublish() error {
	switch {
	case o.RingBytes < 0:
		return fmt.Errorf("ring byte budget %d is negative: set --ring-bytes to a positive size (0 means %d)", o.RingBytes, DefaultRingBytes)
	case o.MaxPublishers < 0:
		return fmt.Errorf("max publishers %d is negative: set --max-publishers to a positive count (0 means %d)", o.MaxPublishers, DefaultMaxPublishers)
	case o.PublishReadTimeout < 0:
		return fmt.Errorf("publish read timeout %s is negative: set --publish-read-timeout to a positive duration (0 means %s)", o.PublishReadTimeout, DefaultPublishReadTimeout)
	}
	return nil
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}
