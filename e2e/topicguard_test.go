package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// bypassSDL is the bypass of issue 7: a field whose topic the client
// chooses, next to fields guarded by a claim filter and by a type's @auth.
const bypassSDL = `type Event { seq: Int! body: String }
type Order { id: ID! tenant: String! }
type AuditEntry @auth(requires: ["role:admin"]) { seq: Int! action: String! }
type Subscription {
  events(topic: String!): Event! @topic(name: "{topic}")
  orders: Order! @topic(name: "orders") @filter(field: "tenant", claim: "tenant_id")
  auditTrail: AuditEntry! @topic(name: "audit")
}
`

// TestBinaryRefusesTopicBypass: the binary refuses to start on a schema
// whose free field reaches guarded topics, exits non-zero, and names both
// fields, both templates and the fix.
func TestBinaryRefusesTopicBypass(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bypass.graphql")
	if err := os.WriteFile(path, []byte(bypassSDL), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--schema", path, "--auth", "optional", "--jwt-secret", strings.Repeat("k", 32),
		"--listen", freePort(t), "--publish-listen", freePort(t)).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() <= 0 {
		t.Fatalf("want a non-zero exit, got %v\n%s", err, out)
	}
	text := strings.ReplaceAll(string(out), `\"`, `"`) // slog's text handler quotes the error
	for _, want := range []string{
		path + `:5:3: Subscription.events (@topic "{topic}") can subscribe to the topics of Subscription.orders (` + path +
			`:6:3, @topic "orders") without its guards (@filter(field: "tenant", claim: "tenant_id")), for example to topic "orders": ` +
			`give Subscription.events a topic prefix of its own (for example @topic(name: "public.{topic}")) or the same guards`,
		path + `:5:3: Subscription.events (@topic "{topic}") can subscribe to the topics of Subscription.auditTrail (` + path +
			`:7:3, @topic "audit") without its guards (@auth role:admin on type AuditEntry)`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %s\n%s", want, out)
		}
	}
	if strings.Contains(text, "fraised listening") {
		t.Errorf("the server started listening:\n%s", out)
	}
}
