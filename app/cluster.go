package app

import (
	"flag"
	"log/slog"
	"time"

	redisbroker "github.com/fraised/fraised/broker/redis"
	"github.com/fraised/fraised/server"
)

// clusterConfig is the --cluster flags: several fraised nodes sharing one
// Redis as the ordering authority (README, "Scaling out").
type clusterConfig struct {
	url          string
	password     string
	caFile       string
	repairWindow int
	repairTTL    time.Duration
}

func addClusterFlags(fs *flag.FlagSet, c *clusterConfig) {
	fs.StringVar(&c.url, "cluster", "", "run as one node of a cluster: Redis `URL` redis://HOST:PORT[/DB] or rediss:// (TLS) that orders and carries every publish (empty: single node)")
	fs.StringVar(&c.password, "cluster-password", "", "Redis `password` for --cluster (overrides the URL's; prefer the environment variable)")
	fs.StringVar(&c.caFile, "cluster-tls-ca", "", "PEM `file` of the CAs that sign the Redis server's certificate for a rediss:// --cluster (empty: the system's roots)")
	fs.IntVar(&c.repairWindow, "cluster-repair-window", redisbroker.DefaultRepairWindow, "recent `events` Redis keeps per topic so a node repairs a gap after a pub/sub drop (negative: none, gaps are reported)")
	fs.DurationVar(&c.repairTTL, "cluster-repair-ttl", redisbroker.DefaultRepairTTL, "how long a topic's repair events outlive its last publish (`duration`)")
}

// apply sets opts.Cluster to a Redis broker when --cluster is given.
func (c *clusterConfig) apply(opts *server.Options, log *slog.Logger) error {
	if c.url == "" {
		return nil
	}
	cfg := redisbroker.Config{URL: c.url, Password: c.password, CAFile: c.caFile,
		RepairWindow: c.repairWindow, RepairTTL: c.repairTTL, Log: log}
	if opts.Schema != nil {
		cfg.History = opts.Schema.HistoryOf
	}
	b, err := redisbroker.New(cfg)
	if err != nil {
		return err
	}
	opts.Cluster = b
	log.Info("cluster mode", "redis", redisbroker.Redact(c.url), "node", b.Node())
	return nil
}
