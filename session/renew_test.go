package session

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fraised/fraised/auth"
)

// slowVerifier verifies any token as subject "u" after gate lets it,
// recording how many verifications ran at once and in which order.
type slowVerifier struct {
	gate chan struct{}
	mu   sync.Mutex
	now  int
	most int
	seen []string
}

func (v *slowVerifier) Verify(ctx context.Context, token string) (*auth.Identity, error) {
	v.mu.Lock()
	v.now++
	v.most = max(v.most, v.now)
	v.seen = append(v.seen, token)
	v.mu.Unlock()
	if token != "init" {
		select {
		case <-v.gate:
		case <-ctx.Done():
		}
	}
	v.mu.Lock()
	v.now--
	v.mu.Unlock()
	return &auth.Identity{Subject: "u", Claims: map[string]any{"jti": token}}, nil
}

func (v *slowVerifier) snapshot() (most int, seen []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.most, append([]string(nil), v.seen...)
}

// TestRenewalsOneAtATime: a burst of pings carrying tokens verifies one
// token at a time (a client cannot make the server verify a flood of
// them at once), and the newest token of the burst is the last one
// verified, so the session ends up with it.
func TestRenewalsOneAtATime(t *testing.T) {
	e := newTestEnv(t)
	v := &slowVerifier{gate: make(chan struct{})}
	s, c := e.start(e.shared(Config{Auth: auth.ModeRequired, Verifier: v}))
	msg(s, `{"type":"connection_init","payload":{"Authorization":"Bearer init"}}`)
	c.waitSent(t, 1)
	const pings = 50
	for i := range pings {
		msg(s, `{"type":"ping","payload":{"Authorization":"Bearer t`+string(rune('A'+i%26))+string(rune('a'+i/26))+`"}}`)
	}
	last := "t" + string(rune('A'+(pings-1)%26)) + string(rune('a'+(pings-1)/26))
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, seen := v.snapshot()
		if seen[len(seen)-1] == last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("verified %q; the newest token %q was never verified", seen, last)
		}
		select {
		case v.gate <- struct{}{}:
		case <-time.After(time.Millisecond):
		}
	}
	close(v.gate)
	for deadline := time.Now().Add(10 * time.Second); s.identity.Load().Claims["jti"] != last; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("identity %v, want the newest token %q", s.identity.Load().Claims, last)
		}
	}
	if most, seen := v.snapshot(); most != 1 || len(seen) > pings+1 {
		t.Fatalf("%d verifications at once (want 1), %d in all for %d pings", most, len(seen), pings)
	}
	if code := c.closedWith(); code != 0 {
		t.Fatalf("closed with %d", code)
	}
}
