package server

import (
	"log/slog"
	"runtime"
	"time"

	"github.com/fraised/fraised/gql"
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
	// MaxPayload is the largest event payload a publisher may send. Default 1 MiB.
	MaxPayload int
	// MaxMessage is the largest WebSocket message a client may send. Default 64 KiB.
	MaxMessage int
	// MaxSubscriptionsPerConn bounds a connection's active operations. Default 100.
	MaxSubscriptionsPerConn int
	// RingSize is the capacity of the event ring between publishers and the
	// dispatcher. Default 65536 events.
	RingSize int
	// EventLoops is the number of gnet event loops. Default GOMAXPROCS.
	EventLoops int
	// DrainTimeout bounds graceful shutdown. Default 10s.
	DrainTimeout time.Duration
	// Security configures authentication, authorization, rate limits,
	// audit and the Origin allowlist. The zero value: auth off, no
	// limits, no audit, same-origin browsers and non-browser clients.
	Security Security
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
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
	DefaultWriteTimeout   = 10 * time.Second // nats' write deadline; a live client reads within seconds even on a bad link
)

func (o *Options) setDefaults() {
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
	setDefault(&o.EventLoops, runtime.GOMAXPROCS(0))
	setDefault(&o.DrainTimeout, DefaultDrainTimeout)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}
