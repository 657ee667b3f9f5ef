package app

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/fraised/fraised/source/postgres"
)

// TestSourceFlags: --source repeats, one value (and FRAISED_SOURCE) may
// hold several URLs, --source-mode is the mode of URLs without mode=, and
// errors name the source without its password.
func TestSourceFlags(t *testing.T) {
	cfg := parse(t, "--source", "postgres://a@h1/db", "--source", "postgres://b@h2/db?mode=listen&channels=c postgres://c@h3/db",
		"--source-mode", "listen")
	if got := []string(cfg.src.urls); len(got) != 3 || got[1] != "postgres://b@h2/db?mode=listen&channels=c" {
		t.Fatalf("urls %q", got)
	}
	if _, err := cfg.src.build(0, false, nil); err == nil || !strings.Contains(err.Error(), "--source 1:") ||
		!strings.Contains(err.Error(), "mode=listen needs channels=") {
		t.Fatalf("a listen-mode source without channels: %v", err)
	}
	cfg = parse(t, "--source", "postgres://a@h1/db", "--source", "postgres://b@h2/db?mode=listen&channels=c")
	srcs, err := cfg.src.build(4096, false, nil)
	if err != nil || len(srcs) != 2 {
		t.Fatalf("build: %d sources, %v", len(srcs), err)
	}
	if got := srcs[0].(*postgres.Source).String(); got != "postgres://a@h1/db (outbox)" {
		t.Errorf("source 1 is %q", got)
	}
	if got := srcs[1].(*postgres.Source).String(); !strings.HasSuffix(got, "(listen)") {
		t.Errorf("source 2 is %q", got)
	}

	t.Setenv("FRAISED_SOURCE", "postgres://a@h1/db\npostgres://b@h2/db")
	t.Setenv("FRAISED_SOURCE_MODE", "listen")
	cfg = parse(t)
	if len(cfg.src.urls) != 2 || cfg.src.mode != "listen" {
		t.Fatalf("from the environment: %q mode %q", cfg.src.urls, cfg.src.mode)
	}

	cfg = parse(t, "--source", "postgres://u:s3cret@h/db?mode=outbox&batch=0")
	if _, err := cfg.src.build(0, false, nil); err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "batch=") {
		t.Fatalf("bad batch: %v", err)
	}
	cfg = parse(t, "--source", "postgres://u@h/db", "--source-mode", "poll")
	if _, err := cfg.src.build(0, false, nil); err == nil || !strings.Contains(err.Error(), "use outbox") {
		t.Fatalf("bad --source-mode: %v", err)
	}
	var cfg2 config
	fs := newFlagSet(&cfg2)
	fs.SetOutput(io.Discard)
	if err := fs.Parse([]string{"--source", " "}); err == nil {
		t.Fatal("an empty --source was accepted")
	}
	if f := fs.Lookup("source"); f.DefValue != "" || !strings.Contains(usageOf(fs), "FRAISED_SOURCE") {
		t.Fatalf("--help: default %q", f.DefValue)
	}
}

// usageOf renders the --help text.
func usageOf(fs *flag.FlagSet) string {
	var b strings.Builder
	fs.SetOutput(&b)
	usage(fs)()
	return b.String()
}

// TestClusteredSourcesElectOneForwarder: with --cluster every source is
// wrapped in a forwarder election whose key is the same for the same
// source on every node (whatever host name the node reaches it by) and
// differs between two sources of one database.
func TestClusteredSourcesElectOneForwarder(t *testing.T) {
	cfg := parse(t, "--source", "postgres://a@h1/db postgres://a@h2/db postgres://a@h1/db?name=billing",
		"--source", "postgres://a@h1/db?mode=listen&channels=c:t postgres://a@h1/db?mode=listen&channels=d:t")
	srcs, err := cfg.src.build(4096, true, nil)
	if err != nil || len(srcs) != 5 {
		t.Fatalf("build: %d sources, %v", len(srcs), err)
	}
	keys := make([]string, len(srcs))
	for i, src := range srcs {
		e, ok := src.(*postgres.Exclusive)
		if !ok {
			t.Fatalf("source %d is a %T with --cluster, want a *postgres.Exclusive", i+1, src)
		}
		keys[i] = e.Key()
	}
	want := []string{"outbox default", "outbox default", "outbox billing", "listen c:t", "listen d:t"}
	for i := range want {
		if keys[i] != want[i] {
			t.Errorf("source %d's election key is %q, want %q", i+1, keys[i], want[i])
		}
	}
	if srcs, _ = cfg.src.build(4096, false, nil); len(srcs) != 5 {
		t.Fatal("without --cluster the sources were not built")
	}
	for i, src := range srcs {
		if _, ok := src.(*postgres.Source); !ok {
			t.Errorf("source %d is a %T without --cluster, want a plain *postgres.Source", i+1, src)
		}
	}
}
