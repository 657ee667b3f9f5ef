package app

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"github.com/fraised/fraised/source"
	"github.com/fraised/fraised/source/postgres"
)

// maxSources bounds --source: each is one database connection and one
// goroutine; a deployment reading more databases than this splits them
// over several fraised nodes.
const maxSources = 64

// sourceConfig is the part of config about event sources (--source).
type sourceConfig struct {
	urls urlList
	mode string
}

func addSourceFlags(fs *flag.FlagSet, c *sourceConfig) {
	fs.Var(&c.urls, "source", "PostgreSQL event source `URL`, postgres://USER@HOST:PORT/DB?mode=outbox|listen&... (repeatable; several URLs in one value or in the environment variable are separated by spaces; password in the URL, password_file=, or PGPASSWORD; see README \"Events from PostgreSQL\")")
	fs.StringVar(&c.mode, "source-mode", string(postgres.ModeOutbox), "`mode` of each --source whose URL has no mode=: outbox (rows of fraised.outbox, none lost) or listen (NOTIFY, at-most-once)")
}

// build parses every --source into a source, its payload limit the
// server's --max-payload. With clustered (--cluster) each source is
// wrapped in a forwarder election (postgres.NewExclusive, keyed by
// Config.ElectionKey), so exactly one node of the cluster reads it and
// publishes its events through Redis. Errors name the source and hide its
// password.
func (c *sourceConfig) build(maxPayload int, clustered bool, log *slog.Logger) ([]source.Source, error) {
	if len(c.urls) > maxSources {
		return nil, fmt.Errorf("%d --source values, the limit is %d: run more fraised nodes", len(c.urls), maxSources)
	}
	var out []source.Source
	for i, raw := range c.urls {
		cfg, err := postgres.ParseURLMode(raw, postgres.Mode(c.mode))
		if err != nil {
			return nil, fmt.Errorf("--source %d: %w", i+1, err)
		}
		cfg.MaxPayload = maxPayload
		var src source.Source = postgres.New(cfg, log)
		if clustered {
			src = postgres.NewExclusive(cfg, cfg.ElectionKey(), src, log)
		}
		out = append(out, src)
	}
	return out, nil
}

// urlList is a repeatable flag of URLs; one value may hold several,
// separated by white space (a URL has none: it would be percent-encoded).
// String prints nothing, so --help and errors never show a password.
type urlList []string

func (l *urlList) String() string { return "" }

func (l *urlList) Set(v string) error {
	fields := strings.Fields(v)
	if len(fields) == 0 {
		return errors.New("empty: give a URL such as postgres://app@127.0.0.1:5432/appdb")
	}
	*l = append(*l, fields...)
	return nil
}
