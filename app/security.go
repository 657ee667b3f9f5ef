package app

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/ratelimit"
	"github.com/fraised/fraised/server"
)

// Default rate limits and caps of the fraised command. They are per
// second, checked in O(1), and chosen so that a well-behaved client never
// meets them while one abusive client or account cannot take the server
// down. (server.Options itself defaults to unlimited, for embedding.)
var (
	// A browser opens one socket per tab and reconnects with backoff; 100
	// new connections per second per address (burst 200) stops a one-host
	// connect flood (tens of thousands per second) yet lets a NAT'd office
	// reconnect at once. Behind a reverse proxy every client has the
	// proxy's address: raise this or set 0 and limit at the proxy.
	defaultLimitIPConns = ratelimit.Limit{Rate: 100, Burst: 200}
	// A client sends init, its subscribes and a ping every few seconds;
	// 100 messages per second (burst 200) is far above that, and a socket
	// past it is flooding (close 4429).
	defaultLimitMessages = ratelimit.Limit{Rate: 100, Burst: 200}
	// A page subscribes to everything at load, then rarely: a burst the
	// size of the per-connection cap (100) then 10 per second.
	defaultLimitSubscribes = ratelimit.Limit{Rate: 10, Burst: server.DefaultMaxSubsPerConn}
	// One account across all its tabs: 20 subscribes per second, burst 200.
	defaultLimitIdentitySubscribes = ratelimit.Limit{Rate: 20, Burst: 200}
)

const (
	// defaultMaxIdentityConns: 20 tabs or devices per account. Service
	// accounts that share one subject across many clients need more.
	defaultMaxIdentityConns = 20
	// defaultMaxIdentitySubs: 10 connections' worth of the per-connection
	// cap (100).
	defaultMaxIdentitySubs = 1000
)

// securityConfig is the part of config that sets the security modules.
type securityConfig struct {
	auth          auth.Mode
	jwtSecret     string
	jwtSecretFile string
	jwtPublicKey  string
	jwks          string
	jwtAudience   string
	jwtIssuer     string
	jwtLeeway     time.Duration
	jwtRequireExp bool
	rolesClaim    string
	scopeClaim    string
	initKey       string
	cookie        string
	origins       string
	auditLog      string
	auditQueue    int

	limitIPConns, limitMessages, limitSubscribes, limitIdentitySubscribes, limitPublishes limitFlag

	maxIdentitySubs, maxIdentityConns int

	maxDocumentBytes, maxDepth, maxAliases, maxRootFields, maxFragmentSpreads, maxComplexity int
}

// addSecurityFlags registers the security flags on fs with their defaults.
func addSecurityFlags(fs *flag.FlagSet, s *securityConfig) {
	fs.Var(&s.auth, "auth", "authentication `mode`: off, optional (anonymous allowed) or required (close 4403 without a valid token)")
	fs.StringVar(&s.jwtSecret, "jwt-secret", "", "HS256/384/512 shared `secret` (at least 32 bytes; prefer --jwt-secret-file or the environment: arguments are visible in ps)")
	fs.StringVar(&s.jwtSecretFile, "jwt-secret-file", "", "`file` holding the HS256/384/512 secret (surrounding whitespace is trimmed)")
	fs.StringVar(&s.jwtPublicKey, "jwt-public-key", "", "PEM `file` of public keys or certificates (RSA, EC, Ed25519); re-read on SIGHUP")
	fs.StringVar(&s.jwks, "jwks", "", "JWKS `file`; a token's kid selects the key; re-read on SIGHUP")
	fs.StringVar(&s.jwtAudience, "jwt-audience", "", "required aud claim (empty: not checked)")
	fs.StringVar(&s.jwtIssuer, "jwt-issuer", "", "required iss claim (empty: not checked)")
	fs.DurationVar(&s.jwtLeeway, "jwt-leeway", 30*time.Second, "clock skew allowed on exp and nbf; an open socket is closed this long after its token's exp")
	fs.BoolVar(&s.jwtRequireExp, "jwt-require-exp", false, "refuse tokens without exp")
	fs.StringVar(&s.rolesClaim, "jwt-roles-claim", auth.DefaultRolesClaim, "claim holding the roles (an array or a string; dotted names walk nested objects)")
	fs.StringVar(&s.scopeClaim, "jwt-scope-claim", auth.DefaultScopeClaim, "claim holding the scopes (a space-separated string or an array)")
	fs.StringVar(&s.initKey, "auth-init-key", auth.DefaultInitKey, "connection_init payload `key` holding \"Bearer <jwt>\" (also read from ping payloads to renew)")
	fs.StringVar(&s.cookie, "auth-cookie", "", "cookie `name` holding the token on the upgrade request (empty disables)")
	fs.StringVar(&s.origins, "allowed-origins", "", "comma-separated Origin `list` browsers may connect from; \"*\" allows any; empty: same-origin browsers and clients without Origin")
	fs.StringVar(&s.auditLog, "audit-log", "", "append the JSON Lines audit log to this `path` (\"-\" for stdout; empty disables)")
	fs.IntVar(&s.auditQueue, "audit-queue", audit.DefaultQueue, "audit `records` that may wait for the disk; past it records are dropped and counted")
	s.limitIPConns = limitFlag(defaultLimitIPConns)
	s.limitMessages = limitFlag(defaultLimitMessages)
	s.limitSubscribes = limitFlag(defaultLimitSubscribes)
	s.limitIdentitySubscribes = limitFlag(defaultLimitIdentitySubscribes)
	fs.Var(&s.limitIPConns, "limit-ip-connections", "`RATE[,BURST]`: new connections per second per source address (0 = unlimited; HTTP 429 past it)")
	fs.Var(&s.limitMessages, "limit-messages", "`RATE[,BURST]`: inbound WebSocket messages per second per connection (close 4429 past it)")
	fs.Var(&s.limitSubscribes, "limit-subscribes", "`RATE[,BURST]`: subscribe operations per second per connection (error message past it)")
	fs.Var(&s.limitIdentitySubscribes, "limit-identity-subscribes", "`RATE[,BURST]`: subscribe operations per second per identity")
	fs.Var(&s.limitPublishes, "limit-publishes", "`RATE[,BURST]`: commands per second per publisher connection (-ERR past it; publishers are trusted backends: default unlimited)")
	fs.IntVar(&s.maxIdentitySubs, "max-identity-subscriptions", defaultMaxIdentitySubs, "active operations per identity (0 = unlimited)")
	fs.IntVar(&s.maxIdentityConns, "max-identity-connections", defaultMaxIdentityConns, "open connections per identity (0 = unlimited; close 4429 past it)")
	fs.IntVar(&s.maxDocumentBytes, "max-document-bytes", gql.DefaultMaxDocumentBytes, "largest GraphQL document in `bytes` (0 = unlimited)")
	fs.IntVar(&s.maxDepth, "max-depth", gql.DefaultMaxDepth, "deepest selection (0 = unlimited)")
	fs.IntVar(&s.maxAliases, "max-aliases", gql.DefaultMaxAliases, "aliases per operation (0 = unlimited)")
	fs.IntVar(&s.maxRootFields, "max-root-fields", gql.DefaultMaxRootFields, "root fields per operation (0 = unlimited)")
	fs.IntVar(&s.maxFragmentSpreads, "max-fragment-spreads", gql.DefaultMaxFragmentSpreads, "fragment spreads per operation, counted at every expansion (0 = unlimited)")
	fs.IntVar(&s.maxComplexity, "max-complexity", gql.DefaultMaxComplexity, "complexity score per operation: 1 per field, x10 per list level (0 = unlimited)")
}

// gqlLimits returns the validation limits for gql.Options; 0 (and any
// negative value) on the command line means unlimited.
func (s *securityConfig) gqlLimits() gql.Limits {
	unlimitedIfZero := func(v int) int {
		if v <= 0 {
			return -1
		}
		return v
	}
	return gql.Limits{
		MaxDocumentBytes:   unlimitedIfZero(s.maxDocumentBytes),
		MaxDepth:           unlimitedIfZero(s.maxDepth),
		MaxAliases:         unlimitedIfZero(s.maxAliases),
		MaxRootFields:      unlimitedIfZero(s.maxRootFields),
		MaxFragmentSpreads: unlimitedIfZero(s.maxFragmentSpreads),
		MaxComplexity:      unlimitedIfZero(s.maxComplexity),
	}
}

// security builds the server's security options: it loads the JWT keys
// (unless custom, a compiled-in verifier, is set) and opens the audit log.
// The caller closes the returned Audit (nil when disabled) after the
// server stopped.
func (s *securityConfig) security(custom auth.Verifier, log *slog.Logger) (server.Security, error) {
	sec := server.Security{
		Auth:           s.auth,
		InitKey:        s.initKey,
		Cookie:         s.cookie,
		AllowedOrigins: splitList(s.origins),
		Leeway:         s.jwtLeeway,
		Limits: server.Limits{
			ConnsPerIP:            ratelimit.Limit(s.limitIPConns),
			MessagesPerConn:       ratelimit.Limit(s.limitMessages),
			SubscribesPerConn:     ratelimit.Limit(s.limitSubscribes),
			SubscribesPerIdentity: ratelimit.Limit(s.limitIdentitySubscribes),
			PublishesPerConn:      ratelimit.Limit(s.limitPublishes),
			MaxSubsPerIdentity:    max(s.maxIdentitySubs, 0),
			MaxConnsPerIdentity:   max(s.maxIdentityConns, 0),
		},
	}
	var err error
	if sec.Verifier, err = s.pickVerifier(custom, log); err != nil {
		return sec, err
	}
	if s.auditLog != "" {
		if sec.Audit, err = audit.Open(s.auditLog, s.auditQueue); err != nil {
			return sec, err
		}
	}
	return sec, nil
}

// pickVerifier returns the verifier for the configured mode: custom when
// set, else the JWT verifier of the configured keys; nil when auth is off.
func (s *securityConfig) pickVerifier(custom auth.Verifier, log *slog.Logger) (auth.Verifier, error) {
	jv, err := s.verifier()
	if err != nil {
		return nil, err
	}
	switch {
	case s.auth == auth.ModeOff:
		if jv != nil || custom != nil {
			log.Warn("a token verifier is configured but --auth is off: tokens are ignored; set --auth optional or required")
		}
		return nil, nil
	case custom != nil:
		if jv != nil {
			log.Warn("a compiled-in verifier replaces the JWT keys given by flags")
		}
		log.Info("authentication on", "mode", s.auth.String(), "verifier", fmt.Sprintf("%T", custom))
		return custom, nil
	case jv != nil:
		log.Info("authentication on", "mode", s.auth.String(), "algorithms", strings.Join(jv.Algorithms(), ","))
		return jv, nil
	}
	return nil, fmt.Errorf("--auth %s needs a key: set --jwt-secret-file (or FRAISED_JWT_SECRET), --jwt-public-key or --jwks", s.auth)
}

// verifier loads the JWT verifier, or returns nil when no key is set.
func (s *securityConfig) verifier() (*auth.JWTVerifier, error) {
	secret, err := s.secret()
	if err != nil {
		return nil, err
	}
	if len(secret) == 0 && s.jwtPublicKey == "" && s.jwks == "" {
		return nil, nil
	}
	return auth.NewJWTVerifier(auth.JWTConfig{
		Secret:            secret,
		PublicKeyFile:     s.jwtPublicKey,
		JWKSFile:          s.jwks,
		Audience:          s.jwtAudience,
		Issuer:            s.jwtIssuer,
		Leeway:            s.jwtLeeway,
		RolesClaim:        s.rolesClaim,
		ScopeClaim:        s.scopeClaim,
		RequireExpiration: s.jwtRequireExp,
	})
}

// secret returns the HMAC secret from --jwt-secret or --jwt-secret-file.
func (s *securityConfig) secret() ([]byte, error) {
	switch {
	case s.jwtSecret != "" && s.jwtSecretFile != "":
		return nil, errors.New("--jwt-secret and --jwt-secret-file are both set; keep one")
	case s.jwtSecretFile != "":
		b, err := os.ReadFile(s.jwtSecretFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read --jwt-secret-file: %w", err)
		}
		return bytes.TrimSpace(b), nil
	}
	return []byte(s.jwtSecret), nil
}

// reloader is the optional capability of a verifier whose keys can be
// re-read (auth.JWTVerifier has it).
type reloader interface {
	Reload() error
}

var _ reloader = (*auth.JWTVerifier)(nil)

// reloadKeys re-reads the verifier's keys (on SIGHUP) and logs the outcome;
// on error the previous keys stay in force.
func reloadKeys(v auth.Verifier, log *slog.Logger) {
	r, ok := v.(reloader)
	if !ok {
		log.Info("SIGHUP: no token verifier keys to reload")
		return
	}
	if err := r.Reload(); err != nil {
		log.Error("SIGHUP: cannot reload JWT keys; the previous keys stay in force", "err", err)
		return
	}
	attrs := []any{}
	if jv, ok := v.(*auth.JWTVerifier); ok {
		attrs = append(attrs, "algorithms", strings.Join(jv.Algorithms(), ","))
	}
	log.Info("SIGHUP: JWT keys reloaded", attrs...)
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// limitFlag is a ratelimit.Limit written RATE[,BURST]: RATE per second, a
// bucket of BURST (default max(1, 2×RATE)); RATE 0 means unlimited.
type limitFlag ratelimit.Limit

// String returns the flag spelling of l.
func (l *limitFlag) String() string {
	if l == nil || ratelimit.Limit(*l).Unlimited() {
		return "0"
	}
	rate := strconv.FormatFloat(l.Rate, 'g', -1, 64)
	if l.Burst == defaultBurst(l.Rate) {
		return rate
	}
	return rate + "," + strconv.Itoa(l.Burst)
}

// Set parses RATE[,BURST].
func (l *limitFlag) Set(s string) error {
	rateText, burstText, hasBurst := strings.Cut(strings.TrimSpace(s), ",")
	rate, err := strconv.ParseFloat(strings.TrimSpace(rateText), 64)
	if err != nil || rate < 0 || math.IsInf(rate, 0) || math.IsNaN(rate) {
		return fmt.Errorf("cannot parse rate %q: want RATE[,BURST] with RATE a number of events per second (0 = unlimited)", s)
	}
	if rate == 0 {
		*l = limitFlag{}
		return nil
	}
	burst := defaultBurst(rate)
	if hasBurst {
		if burst, err = strconv.Atoi(strings.TrimSpace(burstText)); err != nil || burst < 1 {
			return fmt.Errorf("cannot parse burst in %q: want a whole number of at least 1", s)
		}
	}
	*l = limitFlag{Rate: rate, Burst: burst}
	return nil
}

// defaultBurst is max(1, 2×rate), rounded up.
func defaultBurst(rate float64) int {
	return int(max(1, math.Ceil(min(2*rate, math.MaxInt32))))
}
