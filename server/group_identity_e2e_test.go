package server_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/server"
)

// collidingSchema loads the secure schema with every hash gql computes
// (cache keys and GroupKey) replaced by one constant, so that each
// subscribe finds every group of its topic under its key and only full
// comparisons keep tenants apart.
func collidingSchema(t testing.TB) *gql.Schema {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secure.graphql")
	if err := os.WriteFile(path, []byte(secureSDL), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := gql.LoadSchemaFile(path, gql.Options{Limits: testLimits, HashForTests: func(uint64) uint64 { return 0xc0111de }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startColliding starts a server requiring JWTs on collidingSchema.
func startColliding(t *testing.T) *testServer {
	t.Helper()
	s, _ := startSecure(t, auth.ModeRequired, func(o *server.Options) { o.Schema = collidingSchema(t) })
	return s
}

// TestConstantHashKeepsTenantsApart: with every group key equal, tenant
// evil subscribing after tenant acme, with acme's document or one forged
// to differ only in a comment, gets none of acme's events, and acme none
// of evil's; each tenant's subscribers share one group.
func TestConstantHashKeepsTenantsApart(t *testing.T) {
	s := startColliding(t)
	const doc = `subscription { tenantEvents { seq tenant } }`
	type sub struct {
		c      *client
		tenant string
	}
	var subs []sub
	join := func(tenant, subject, query string) {
		claims := jwt.MapClaims{"sub": subject}
		if tenant != "" {
			claims["tenant_id"] = tenant
		}
		c := connectAs(t, s.opts.Listen, mint(t, claims))
		c.subscribe("1", query, nil)
		subs = append(subs, sub{c, tenant})
		s.waitSubs(t, int64(len(subs))) // registered in this order
	}
	join("acme", "acme-1", doc)
	join("evil", "evil-1", doc)
	join("evil", "evil-2", doc+" # forged bytes")
	join("acme", "acme-2", doc)
	join("", "drifter", doc)
	join("evil", "evil-3", doc)
	if g := s.Stats().Groups; g != 4 {
		t.Fatalf("%d groups, want 4 (acme, evil, evil's forged document, no tenant)", g)
	}
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	for seq, tt := range []struct{ tenant, want string }{{"acme", ":2"}, {"evil", ":3"}, {"acme", ":2"}, {"other", ":0"}, {"evil", ":3"}} {
		if got := p.publish("tenant.events", fmt.Sprintf(`{"seq":%d,"tenant":%q}`, seq, tt.tenant)); got != tt.want {
			t.Errorf("event %d of %s reached %s subscribers, want %s", seq, tt.tenant, got, tt.want)
		}
	}
	for _, sb := range subs {
		got := sb.c.untilPong()
		for _, m := range got {
			if sb.tenant == "" || !strings.Contains(m, fmt.Sprintf(`"tenant":%q`, sb.tenant)) {
				t.Errorf("LEAK: a subscriber of tenant %q received %s", sb.tenant, m)
			}
		}
		if want := map[string]int{"acme": 2, "evil": 2}[sb.tenant]; len(got) != want {
			t.Errorf("a subscriber of tenant %q received %d events, want %d", sb.tenant, len(got), want)
		}
	}
}

// TestConstantHashLargeNumericClaims: claims 2^53 and 2^53+1, equal as
// float64, stay in different groups with every group key equal.
func TestConstantHashLargeNumericClaims(t *testing.T) {
	s := startColliding(t)
	clients := map[string]*client{}
	for i, n := range []string{"9007199254740992", "9007199254740993"} {
		c := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"sub": n, "account_id": json.Number(n)}))
		c.subscribe("1", `subscription { accountEvents { seq } }`, nil)
		s.waitSubs(t, int64(i+1))
		clients[n] = c
	}
	if g := s.Stats().Groups; g != 2 {
		t.Fatalf("%d groups, want 2", g)
	}
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	for seq, n := range []string{"9007199254740993", "9007199254740992"} {
		if got := p.publish("account.events", fmt.Sprintf(`{"seq":%d,"account":%s}`, seq, n)); got != ":1" {
			t.Fatalf("event for account %s reached %s, want :1", n, got)
		}
		clients[n].expect(fmt.Sprintf(`{"id":"1","type":"next","payload":{"data":{"accountEvents":{"seq":%d}}}}`, seq))
	}
	for _, c := range clients {
		c.pingPong()
	}
}

// TestRolesDoNotSplitGroups: members admitted under different roles and
// scopes share one group and receive the same bytes, because @auth only
// admits or refuses a whole operation; a member without the role is
// refused even though the operation is compiled and every key collides.
func TestRolesDoNotSplitGroups(t *testing.T) {
	s := startColliding(t)
	const q = `subscription { adminEvents { seq body } }`
	admin := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"sub": "root", "roles": []string{"admin"}}))
	admin.subscribe("1", q, nil)
	ops := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"sub": "ops", "roles": []string{"admin", "ops"}, "scope": "events:read"}))
	ops.subscribe("1", q, nil)
	s.waitSubs(t, 2)
	user := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"sub": "user", "roles": []string{"user", "ops"}, "scope": "events:read"}))
	user.subscribe("1", q, nil)
	user.expectError("1", `requires role:admin`)
	if st := s.Stats(); st.Groups != 1 || st.Subscriptions != 2 {
		t.Fatalf("%d groups of %d subscriptions, want 1 of 2", st.Groups, st.Subscriptions)
	}
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	if got := p.publish("admin", `{"seq":1,"body":"b"}`); got != ":2" {
		t.Fatalf("publish reached %s, want :2", got)
	}
	const want = `{"id":"1","type":"next","payload":{"data":{"adminEvents":{"seq":1,"body":"b"}}}}`
	admin.expect(want)
	ops.expect(want)
	user.pingPong()
}
