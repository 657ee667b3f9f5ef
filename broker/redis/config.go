package redis

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fraised/fraised/history"
)

// Defaults of Config. Each says why that number.
const (
	// DefaultRepairWindow is how many recent events Redis keeps per topic
	// for a node to repair a gap from (a pub/sub reconnect or a dropped
	// message): a reconnect takes well under a second, and 1000 events
	// cover that at 1,000 events/s per topic.
	DefaultRepairWindow = 1000
	// DefaultRepairTTL is how long a topic's repair stream outlives its
	// last publish: long enough to ride out a Redis failover (tens of
	// seconds), short enough that idle topics free their memory.
	DefaultRepairTTL = time.Minute
	// MetaTTL is how long a topic's epoch and offset outlive its last
	// publish: a day, so an idle topic keeps its numbering across nights
	// and weekends of light traffic, while topics that are never used
	// again do not pin memory forever. (A topic idle past it starts a new
	// epoch, which nodes report as lost history.)
	MetaTTL = 24 * time.Hour
	// DefaultProbeIdle is the silence after which a node publishes a probe
	// to its own channel: a few seconds, so a connection that carries
	// nothing any more is noticed within ten.
	DefaultProbeIdle = 2 * time.Second
	// DefaultProbeTimeout is how long the probe may take to come back
	// before the pub/sub connection is declared dead (Redis answers within
	// a millisecond; 3 s allows for a loaded server).
	DefaultProbeTimeout = 3 * time.Second
	// commandTimeout bounds each command to Redis (a publish, a repair
	// read, a subscribe): past it the node treats Redis as unreachable.
	commandTimeout = 2 * time.Second
	// dialTimeout bounds connecting to Redis.
	dialTimeout = time.Second
)

// Config is what a Broker is built with.
type Config struct {
	// URL is redis://[user:password@]host:port[/db] or rediss:// (TLS).
	URL string
	// Password, when set, overrides the URL's (FRAISED_CLUSTER_PASSWORD).
	Password string
	// CAFile is a PEM bundle of the CAs that may sign the Redis server's
	// certificate (rediss:// only); empty: the system's roots.
	CAFile string
	// RepairWindow is the events kept per topic for gap repair (0: the
	// default; negative: none, so gaps are reported, not repaired).
	RepairWindow int
	// RepairTTL is how long a repair stream outlives its topic's last
	// publish (0: the default).
	RepairTTL time.Duration
	// ProbeIdle and ProbeTimeout tune the pub/sub liveness probe (0: the
	// defaults).
	ProbeIdle, ProbeTimeout time.Duration
	Log                     *slog.Logger
	// History says which topics keep a history (@history: the schema's
	// HistoryOf): their Redis stream keeps at least that many events for
	// at least that long, so every node reads the same history. Nil: none.
	History func(topic []byte) (history.Spec, bool)
	// OnLoss, when set, is told of events this node could not deliver
	// (a gap the repair stream no longer covers, or an epoch that
	// changed), on the receiver goroutine; it must not block.
	OnLoss func(Loss)
}

// Loss describes events a node could not deliver in order.
type Loss struct {
	Topic  string
	Reason string // "trimmed", "epoch_changed", "offset_regressed"
	Epoch  string // the epoch the node had
	After  uint64 // the last offset it delivered in that epoch
	Now    uint64 // the offset it continues from (in NewEpoch)
	// NewEpoch is the epoch events continue in.
	NewEpoch string
}

// options returns the go-redis options for cfg.
func (cfg *Config) options() (*goredis.Options, error) {
	if cfg.URL == "" {
		return nil, errors.New("--cluster is empty: give redis://HOST:PORT[/DB] or rediss://")
	}
	if u, err := url.Parse(cfg.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return nil, fmt.Errorf("--cluster %q: use redis://HOST:PORT[/DB] or rediss://HOST:PORT[/DB]", redact(cfg.URL))
	}
	o, err := goredis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("--cluster %q: %w", redact(cfg.URL), err)
	}
	if cfg.Password != "" {
		o.Password = cfg.Password
	}
	if cfg.CAFile != "" {
		if o.TLSConfig == nil {
			return nil, fmt.Errorf("--cluster-tls-ca %q is set but --cluster %q is not rediss:// (TLS)", cfg.CAFile, redact(cfg.URL))
		}
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--cluster-tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cluster-tls-ca %q holds no PEM certificate", cfg.CAFile)
		}
		o.TLSConfig.RootCAs = pool
	}
	o.DialTimeout = dialTimeout
	o.ReadTimeout = commandTimeout
	o.WriteTimeout = commandTimeout
	o.PoolTimeout = commandTimeout
	// A publish must never be retried: a command that timed out may have
	// run, and a retry would publish the event twice.
	o.MaxRetries = -1
	o.ContextTimeoutEnabled = true
	o.Protocol = 2 // pub/sub messages as plain arrays, on any Redis 7
	o.DisableIdentity = true
	return o, nil
}

func (cfg *Config) withDefaults() Config {
	c := *cfg
	if c.RepairWindow == 0 {
		c.RepairWindow = DefaultRepairWindow
	}
	if c.RepairWindow < 0 {
		c.RepairWindow = 0
	}
	if c.RepairTTL <= 0 {
		c.RepairTTL = DefaultRepairTTL
	}
	if c.ProbeIdle <= 0 {
		c.ProbeIdle = DefaultProbeIdle
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Redact hides the password of a Redis URL, for logs and errors.
func Redact(raw string) string { return redact(raw) }

// redact hides the password of a Redis URL for logs and errors.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if i := strings.Index(raw, "@"); i >= 0 {
			return "redis://REDACTED" + raw[i:]
		}
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	return u.String()
}
