package app

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/ratelimit"
)

func TestLimitFlag(t *testing.T) {
	tests := []struct {
		in   string
		want ratelimit.Limit
		str  string // "" = error expected
	}{
		{"0", ratelimit.Limit{}, "0"},
		{"0,50", ratelimit.Limit{}, "0"},
		{"10", ratelimit.Limit{Rate: 10, Burst: 20}, "10"},
		{"10,5", ratelimit.Limit{Rate: 10, Burst: 5}, "10,5"},
		{" 2.5 , 3 ", ratelimit.Limit{Rate: 2.5, Burst: 3}, "2.5,3"},
		{"0.2", ratelimit.Limit{Rate: 0.2, Burst: 1}, "0.2"},
		{"0.75", ratelimit.Limit{Rate: 0.75, Burst: 2}, "0.75"},
		{"1e12", ratelimit.Limit{Rate: 1e12, Burst: 1<<31 - 1}, "1e+12"},
		{"-1", ratelimit.Limit{}, ""},
		{"fast", ratelimit.Limit{}, ""},
		{"NaN", ratelimit.Limit{}, ""},
		{"+Inf", ratelimit.Limit{}, ""},
		{"5,0", ratelimit.Limit{}, ""},
		{"5,x", ratelimit.Limit{}, ""},
		{"", ratelimit.Limit{}, ""},
	}
	for _, tt := range tests {
		var l limitFlag
		err := l.Set(tt.in)
		if tt.str == "" {
			if err == nil {
				t.Errorf("Set(%q) = %+v, want an error", tt.in, l)
			}
			continue
		}
		if err != nil || ratelimit.Limit(l) != tt.want || l.String() != tt.str {
			t.Errorf("Set(%q) = %+v %v (String %q), want %+v (%q)", tt.in, l, err, l.String(), tt.want, tt.str)
		}
	}
}

// parse parses args (and the environment) like Main does.
func parse(t *testing.T, args ...string) *config {
	t.Helper()
	var cfg config
	fs := newFlagSet(&cfg)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(fs); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

func TestSecurityDefaults(t *testing.T) {
	cfg := parse(t)
	sec, err := cfg.sec.security(nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if sec.Auth != auth.ModeOff || sec.Verifier != nil || sec.Audit != nil || sec.AllowedOrigins != nil {
		t.Fatalf("defaults must leave auth, audit and the Origin allowlist off: %+v", sec)
	}
	l := sec.Limits
	if l.ConnsPerIP != defaultLimitIPConns || l.MessagesPerConn != defaultLimitMessages || l.SubscribesPerConn != defaultLimitSubscribes ||
		l.SubscribesPerIdentity != defaultLimitIdentitySubscribes || !l.PublishesPerConn.Unlimited() ||
		l.MaxConnsPerIdentity != defaultMaxIdentityConns || l.MaxSubsPerIdentity != defaultMaxIdentitySubs {
		t.Fatalf("default limits %+v", l)
	}
	want := gql.Limits{MaxDocumentBytes: gql.DefaultMaxDocumentBytes, MaxDepth: gql.DefaultMaxDepth, MaxAliases: gql.DefaultMaxAliases,
		MaxRootFields: gql.DefaultMaxRootFields, MaxFragmentSpreads: gql.DefaultMaxFragmentSpreads, MaxComplexity: gql.DefaultMaxComplexity}
	if got := cfg.sec.gqlLimits(); got != want {
		t.Fatalf("gql limits %+v, want %+v", got, want)
	}
}

func TestSecurityFlags(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("  0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FRAISED_LIMIT_MESSAGES", "3,4")
	t.Setenv("FRAISED_MAX_DEPTH", "9") // the flag wins
	cfg := parse(t, "--auth", "optional", "--jwt-secret-file", secret, "--allowed-origins", " https://a.example, ,https://b.example",
		"--auth-cookie", "sid", "--auth-init-key", "token", "--jwt-leeway", "5s", "--limit-publishes", "7",
		"--max-identity-connections", "0", "--max-depth", "4", "--max-complexity", "0", "--audit-log", filepath.Join(t.TempDir(), "a.jsonl"))
	sec, err := cfg.sec.security(nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer sec.Audit.Close()
	if sec.Auth != auth.ModeOptional || sec.Verifier == nil || sec.Cookie != "sid" || sec.InitKey != "token" || sec.Leeway.Seconds() != 5 || sec.Audit == nil {
		t.Fatalf("security %+v", sec)
	}
	if got := strings.Join(sec.AllowedOrigins, " "); got != "https://a.example https://b.example" {
		t.Fatalf("origins %q", got)
	}
	if sec.Limits.MessagesPerConn != (ratelimit.Limit{Rate: 3, Burst: 4}) || sec.Limits.PublishesPerConn != (ratelimit.Limit{Rate: 7, Burst: 14}) ||
		sec.Limits.MaxConnsPerIdentity != 0 {
		t.Fatalf("limits %+v", sec.Limits)
	}
	if l := cfg.sec.gqlLimits(); l.MaxDepth != 4 || l.MaxComplexity != -1 {
		t.Fatalf("gql limits %+v: want depth 4 and unlimited complexity (-1)", l)
	}
}

type customVerifier struct{}

func (customVerifier) Verify(context.Context, string) (*auth.Identity, error) {
	return &auth.Identity{Subject: "custom"}, nil
}

func TestCustomVerifierHook(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	sec, err := parse(t, "--auth", "required").sec.security(customVerifier{}, log)
	if err != nil || sec.Verifier != (customVerifier{}) {
		t.Fatalf("custom verifier not used: %v %+v", err, sec.Verifier)
	}
	sec, err = parse(t).sec.security(customVerifier{}, log)
	if err != nil || sec.Verifier != nil {
		t.Fatalf("--auth off must not install a verifier: %v %+v", err, sec.Verifier)
	}
	if _, err := parse(t, "--auth", "required").sec.security(nil, log); err == nil || !strings.Contains(err.Error(), "needs a key") {
		t.Fatalf("auth without a verifier: %v", err)
	}
}
