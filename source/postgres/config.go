package postgres

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Mode is how a source reads events from PostgreSQL.
type Mode string

const (
	// ModeOutbox reads the fraised.outbox table from a stored position:
	// at-least-once, in commit order, no payload limit, survives restarts.
	ModeOutbox Mode = "outbox"
	// ModeListen turns NOTIFYs on configured channels into events:
	// at-most-once (nothing is replayed while disconnected), payloads under
	// 8000 bytes.
	ModeListen Mode = "listen"
)

// Start says where an outbox source with no stored position begins.
type Start string

const (
	// StartLatest begins after the events already committed (a new node
	// does not replay the retained history to its subscribers).
	StartLatest Start = "latest"
	// StartEarliest begins with the oldest retained event.
	StartEarliest Start = "earliest"
)

// Limits and defaults of the URL parameters, each with the reason for it.
const (
	// DefaultBatch rows per read: big enough that a burst is read in few
	// round trips, small enough that a crash re-delivers little (at most
	// one batch of events is ever unstored, see storeEvery).
	DefaultBatch = 500
	// MaxBatch bounds the rows (and so the memory: rows times payload
	// size) one read holds.
	MaxBatch = 10000
	// DefaultPoll is how often an idle outbox source reads without a
	// NOTIFY: it bounds the delay of an event whose NOTIFY was lost, and
	// how long a silently dead connection goes unnoticed.
	DefaultPoll = time.Second
	// MinPoll keeps a misconfigured poll from turning into a busy loop.
	MinPoll = 10 * time.Millisecond
	// MaxPoll keeps dead-connection detection within a minute.
	MaxPoll = time.Minute
	// DefaultQueryTimeout is generous for the outbox reads and position
	// writes (index range scans), which take milliseconds.
	DefaultQueryTimeout = 30 * time.Second
	// DefaultRetainAge keeps a day of events: a node down for less than a
	// day catches up on everything.
	DefaultRetainAge = 24 * time.Hour
	// DefaultRetainCount caps the outbox at a million rows whatever their
	// age, so a publish storm cannot fill the disk.
	DefaultRetainCount = 1_000_000
	// DefaultMaxPayload matches the server's default --max-payload.
	DefaultMaxPayload = 1 << 20
	// MaxChannels bounds the LISTENs of one listen source.
	MaxChannels = 1000
	// maxNameLen bounds the source name stored with each position.
	maxNameLen = 200
	// maxChannelLen is PostgreSQL's identifier limit (NAMEDATALEN-1).
	maxChannelLen = 63
	// maxTopicLen matches the server's topic limit.
	maxTopicLen = 1024
	// maxPasswordFile bounds what is read from password_file.
	maxPasswordFile = 4096
)

// Channel maps one NOTIFY channel to the topic its notifications go to.
type Channel struct {
	Name  string // the LISTEN channel
	Topic string // the fraised topic
}

// Config is one --source: where to connect and how to read.
type Config struct {
	// Conn is the pgx connection configuration (the URL without fraised's
	// parameters, password already resolved).
	Conn *pgx.ConnConfig
	// Mode is outbox or listen.
	Mode Mode
	// Name keys the stored position (outbox): each node reading the same
	// database needs its own.
	Name string
	// Start applies when Name has no stored position yet.
	Start Start
	// Batch is the most rows read at once.
	Batch int
	// Poll is the read interval when no NOTIFY arrives.
	Poll time.Duration
	// RetainAge and RetainCount are the outbox retention (0 disables a rule).
	RetainAge   time.Duration
	RetainCount int64
	// QueryTimeout bounds every query of a running session (and so how
	// long a silently dead connection goes unnoticed: Poll + QueryTimeout).
	QueryTimeout time.Duration
	// Channels are the listen mode's channels.
	Channels []Channel
	// MaxPayload is the largest payload handed to the Sink (the server's
	// --max-payload; 0 means DefaultMaxPayload). A larger outbox row is
	// logged and skipped without being read into memory.
	MaxPayload int

	redacted string
}

func (c *Config) queryTimeout() time.Duration {
	if c.QueryTimeout <= 0 {
		return DefaultQueryTimeout
	}
	return c.QueryTimeout
}

func (c *Config) maxPayload() int {
	if c.MaxPayload <= 0 {
		return DefaultMaxPayload
	}
	return c.MaxPayload
}

// String returns the source URL with the password removed, for logs.
func (c *Config) String() string { return c.redacted }

// fraised's own URL parameters, removed before the rest reaches pgx (which
// would send unknown ones to the server as settings).
var ownParams = map[string]bool{
	"mode": true, "name": true, "start": true, "batch": true, "poll": true,
	"retain_age": true, "retain_count": true, "channels": true, "password_file": true,
	"query_timeout": true,
}

var channelRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

// ParseURL parses a --source value, postgres://user@host:port/db?params.
// fraised's parameters: mode=outbox|listen, name, start=latest|earliest,
// batch, poll, retain_age, retain_count (outbox); channels=ch[:topic],...
// (listen); password_file, query_timeout. The others go to pgx (sslmode, connect_timeout,
// application_name, ...). The password comes from the URL, password_file or
// the PGPASSWORD environment variable, in that order. Errors say what to change.
func ParseURL(raw string) (*Config, error) { return ParseURLMode(raw, ModeOutbox) }

// ParseURLMode is ParseURL with mode as the mode of a URL that has no
// mode= parameter (the --source-mode flag).
func ParseURLMode(raw string, mode Mode) (*Config, error) {
	if mode != ModeOutbox && mode != ModeListen {
		return nil, fmt.Errorf("postgres source: mode %q: use outbox (the default) or listen", mode)
	}
	if strings.Contains(raw, "#") {
		return nil, errors.New("postgres source: the URL has a #: write a # in a password or name as %23")
	}
	u, err := url.Parse(raw)
	if err != nil { // url's error quotes the URL, password and all: not repeated
		return nil, errors.New("postgres source: cannot parse URL: write postgres://user@host:5432/db?mode=outbox, percent-encoding @ : / ? # % in the password")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("postgres source: URL scheme is %q, write postgres://user@host:5432/db", u.Scheme)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("postgres source: cannot parse URL query: %w", err)
	}
	cfg := &Config{Mode: mode, Name: "default", Start: StartLatest, Batch: DefaultBatch,
		Poll: DefaultPoll, QueryTimeout: DefaultQueryTimeout, RetainAge: DefaultRetainAge, RetainCount: DefaultRetainCount}
	if err := cfg.applyParams(q); err != nil {
		return nil, fmt.Errorf("postgres source %s: %w", redactURL(u), err)
	}
	password, err := resolvePassword(u, q.Get("password_file"))
	if err != nil {
		return nil, fmt.Errorf("postgres source %s: %w", redactURL(u), err)
	}
	for k := range ownParams {
		q.Del(k)
	}
	u.RawQuery = q.Encode()
	cc, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("postgres source %s: %w", redactURL(u), redactErr(err, u.String()))
	}
	if password != "" {
		cc.Password = password
	}
	cfg.Conn, cfg.redacted = cc, redactURL(u)
	return cfg, nil
}

func (c *Config) applyParams(q url.Values) error {
	for k, v := range q {
		if ownParams[k] && len(v) > 1 {
			return fmt.Errorf("parameter %s is given %d times, give it once", k, len(v))
		}
	}
	var err error
	if v := q.Get("mode"); v != "" {
		switch Mode(v) {
		case ModeOutbox, ModeListen:
			c.Mode = Mode(v)
		default:
			return fmt.Errorf("mode=%q: use mode=outbox (the default) or mode=listen", v)
		}
	}
	if v := q.Get("name"); v != "" {
		if len(v) > maxNameLen {
			return fmt.Errorf("name is %d bytes, the limit is %d", len(v), maxNameLen)
		}
		c.Name = v
	}
	if v := q.Get("start"); v != "" {
		if Start(v) != StartLatest && Start(v) != StartEarliest {
			return fmt.Errorf("start=%q: use start=latest (the default) or start=earliest", v)
		}
		c.Start = Start(v)
	}
	if c.Batch, err = intParam(q, "batch", c.Batch, 1, MaxBatch); err != nil {
		return err
	}
	if c.RetainCount, err = int64Param(q, "retain_count", c.RetainCount); err != nil {
		return err
	}
	if c.Poll, err = durationParam(q, "poll", c.Poll, MinPoll, MaxPoll); err != nil {
		return err
	}
	if c.QueryTimeout, err = durationParam(q, "query_timeout", c.QueryTimeout, 100*time.Millisecond, 10*time.Minute); err != nil {
		return err
	}
	if c.RetainAge, err = durationParam(q, "retain_age", c.RetainAge, 0, 100*365*24*time.Hour); err != nil {
		return err
	}
	if c.Mode == ModeListen {
		for _, k := range outboxOnly {
			if q.Has(k) {
				return fmt.Errorf("%s= is for mode=outbox; remove it (listen mode reads no table)", k)
			}
		}
	}
	return c.applyChannels(q.Get("channels"))
}

// outboxOnly are the parameters that mean nothing in listen mode.
var outboxOnly = []string{"name", "start", "batch", "retain_age", "retain_count"}

func (c *Config) applyChannels(v string) error {
	switch {
	case c.Mode == ModeOutbox && v != "":
		return errors.New("channels= is for mode=listen; remove it or add mode=listen")
	case c.Mode == ModeListen && v == "":
		return errors.New("mode=listen needs channels=channel[:topic],... (for example channels=orders:orders.all)")
	case c.Mode == ModeOutbox:
		return nil
	}
	seen := map[string]bool{}
	for item := range strings.SplitSeq(v, ",") {
		name, topic, hasTopic := strings.Cut(item, ":")
		if !hasTopic {
			topic = name
		}
		if !channelRE.MatchString(name) || len(name) > maxChannelLen {
			return fmt.Errorf("channel %q: a channel is a letter or _ then letters, digits, _ or $, at most %d bytes", name, maxChannelLen)
		}
		if topic == "" || len(topic) > maxTopicLen {
			return fmt.Errorf("channel %s: topic must be 1 to %d bytes", name, maxTopicLen)
		}
		if seen[name] {
			return fmt.Errorf("channel %s is listed twice", name)
		}
		seen[name] = true
		c.Channels = append(c.Channels, Channel{Name: name, Topic: topic})
	}
	if len(c.Channels) > MaxChannels {
		return fmt.Errorf("%d channels, the limit is %d; use more sources", len(c.Channels), MaxChannels)
	}
	return nil
}

func intParam(q url.Values, key string, def, lo, hi int) (int, error) {
	v := q.Get(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%q: give a whole number from %d to %d", key, v, lo, hi)
	}
	return n, nil
}

func int64Param(q url.Values, key string, def int64) (int64, error) {
	v := q.Get(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: give a whole number, 0 or more (0 disables)", key, v)
	}
	return n, nil
}

func durationParam(q url.Values, key string, def, lo, hi time.Duration) (time.Duration, error) {
	v := q.Get(key)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		return 0, fmt.Errorf("%s=%q: give a duration from %s to %s (for example 500ms, 24h)", key, v, lo, hi)
	}
	return d, nil
}

// resolvePassword returns the password_file's password, or "" when the URL
// (or, later in pgx, PGPASSWORD or a .pgpass file) provides it.
func resolvePassword(u *url.URL, file string) (string, error) {
	if file == "" {
		return "", nil
	}
	if _, has := u.User.Password(); has {
		return "", errors.New("the URL has a password and password_file is set: give the password once")
	}
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("cannot read password_file: %w", err)
	}
	defer f.Close()
	buf, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	if err != nil {
		return "", fmt.Errorf("cannot read password_file: %w", err)
	}
	if len(buf) > maxPasswordFile {
		return "", fmt.Errorf("password_file %s is longer than %d bytes: it should hold only the password", file, maxPasswordFile)
	}
	pw := strings.TrimRight(string(buf), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("password_file %s is empty", file)
	}
	return pw, nil
}

// redactURL is u with its password replaced by xxxxx.
func redactURL(u *url.URL) string { return u.Redacted() }

// redactErr keeps a URL's password out of an error that may quote it.
func redactErr(err error, raw string) error {
	u, perr := url.Parse(raw)
	if perr != nil {
		return errors.New(strings.ReplaceAll(err.Error(), raw, "(the URL)"))
	}
	if pw, has := u.User.Password(); has && pw != "" {
		return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
	}
	return err
}
