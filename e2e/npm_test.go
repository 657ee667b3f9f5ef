package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// TestNPMGraphQLWSClient drives the binary with the real npm graphql-ws
// client. `make test` installs the pinned packages and sets FRAISED_NPM_E2E.
func TestNPMGraphQLWSClient(t *testing.T) {
	if os.Getenv("FRAISED_NPM_E2E") == "" {
		t.Skip("set FRAISED_NPM_E2E=1 after `npm ci --prefix e2e/npm` (make test does)")
	}
	p := startBinary(t)
	const n = 20
	cmd := exec.CommandContext(runCtx(t, 60e9), "node", "npm/subscribe.mjs", "--url", "ws://"+p.listen+"/graphql", "--count", fmt.Sprint(n+1), "npm.topic")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatalf("no query result from node: %v", cmd.Wait())
	}
	if got := lines.Text(); got != `{"query":{"data":{"__typename":"Query"}}}` {
		t.Fatalf("query result %s", got)
	}
	// The first event doubles as the probe that the subscription is live.
	publishUntil(t, p, "npm.topic", `{"seq":0,"ts":1,"body":"probe"}`, "(integer) 1")
	for i := 1; i <= n; i++ {
		publish(t, p, "npm.topic", fmt.Sprintf(`{"seq":%d,"ts":1.5,"body":"b%d","author":{"id":"a","name":"Ann"},"tags":["x","y"],"secret":"no"}`, i, i))
	}
	var got []map[string]any
	for lines.Scan() {
		var r map[string]any
		if err := json.Unmarshal(lines.Bytes(), &r); err != nil {
			t.Fatalf("bad line %q: %v", lines.Text(), err)
		}
		got = append(got, r)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node client: %v", err)
	}
	// publishUntil stopped at the first probe that reached the
	// subscription, so exactly one probe precedes the events.
	if len(got) != n+1 {
		t.Fatalf("got %d results, want %d", len(got), n+1)
	}
	var events []string
	for _, r := range got[1:] {
		b, _ := json.Marshal(r)
		events = append(events, string(b))
	}
	for i, e := range events {
		want := fmt.Sprintf(`{"data":{"events":{"author":{"name":"Ann"},"body":"b%d","seq":%d,"tags":["x","y"]}}}`, i+1, i+1)
		if e != want {
			t.Fatalf("event %d = %s, want %s", i, e, want)
		}
	}
}
