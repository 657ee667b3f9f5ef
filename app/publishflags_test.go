package app

import (
	"testing"
	"time"

	"github.com/fraised/fraised/server"
)

// TestPublishFlags: the publisher flags have their documented defaults and
// are read from flags and FRAISED_* variables (a flag wins).
func TestPublishFlags(t *testing.T) {
	o := parse(t).serverOptions()
	if o.RingBytes != server.DefaultRingBytes || o.MaxPublishers != server.DefaultMaxPublishers || o.PublishReadTimeout != server.DefaultPublishReadTimeout {
		t.Fatalf("defaults: ring-bytes %d, max-publishers %d, publish-read-timeout %s", o.RingBytes, o.MaxPublishers, o.PublishReadTimeout)
	}
	t.Setenv("FRAISED_RING_BYTES", "1048576")
	t.Setenv("FRAISED_MAX_PUBLISHERS", "8")
	t.Setenv("FRAISED_PUBLISH_READ_TIMEOUT", "2s")
	o = parse(t, "--max-publishers", "16").serverOptions()
	if o.RingBytes != 1<<20 || o.MaxPublishers != 16 || o.PublishReadTimeout != 2*time.Second {
		t.Fatalf("from env and flags: ring-bytes %d, max-publishers %d, publish-read-timeout %s", o.RingBytes, o.MaxPublishers, o.PublishReadTimeout)
	}
}
