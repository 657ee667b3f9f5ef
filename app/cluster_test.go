package app

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/fraised/fraised/server"
)

// TestClusterFlags: without --cluster no broker is made (single node);
// FRAISED_CLUSTER and FRAISED_CLUSTER_PASSWORD configure one, and a URL
// that is not redis:// or rediss:// is refused with what to give.
func TestClusterFlags(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	cfg := parse(t)
	var o server.Options
	if err := cfg.cluster.apply(&o, log); err != nil || o.Cluster != nil {
		t.Fatalf("without --cluster: broker %v, err %v", o.Cluster, err)
	}
	t.Setenv("FRAISED_CLUSTER", "redis://127.0.0.1:1/0")
	t.Setenv("FRAISED_CLUSTER_PASSWORD", "pw")
	cfg = parse(t)
	if cfg.cluster.url != "redis://127.0.0.1:1/0" || cfg.cluster.password != "pw" {
		t.Fatalf("from the environment: %+v", cfg.cluster)
	}
	if err := cfg.cluster.apply(&o, log); err != nil || o.Cluster == nil {
		t.Fatalf("with --cluster: broker %v, err %v", o.Cluster, err)
	}
	cfg = parse(t, "--cluster", "http://127.0.0.1:6379")
	err := cfg.cluster.apply(&server.Options{}, log)
	if err == nil || !strings.Contains(err.Error(), "use redis://HOST:PORT[/DB] or rediss://") {
		t.Fatalf("--cluster http://: err = %v", err)
	}
}
