package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraised/fraised"
	"github.com/fraised/fraised/server"
)

// startEmbedded starts fraised embedded on the example schema (its own
// listener on a free port; publishListen "-" turns the RESP listener off,
// "" keeps the default), shut down when t ends.
func startEmbedded(t *testing.T, publishListen string) *fraised.Server {
	t.Helper()
	srv, err := fraised.New(fraised.Options{SchemaFile: "../examples/schema.graphql",
		Server: server.Options{Listen: "127.0.0.1:0", PublishListen: publishListen, Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv
}

// graphqlMux mounts srv's Handler on /graphql of a standard ServeMux, as
// examples/embed does.
func graphqlMux(srv *fraised.Server) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/graphql", srv.Handler())
	return mux
}

// TestNPMGraphQLWSOverTLSHandler: the real npm graphql-ws client over
// wss:// to fraised's Handler mounted on a net/http TLS server (the
// standard ServeMux), which terminates TLS itself; the events are
// published from Go with Publish.
func TestNPMGraphQLWSOverTLSHandler(t *testing.T) {
	if os.Getenv("FRAISED_NPM_E2E") == "" {
		t.Skip("set FRAISED_NPM_E2E=1 after `npm ci --prefix e2e/npm` (make test does)")
	}
	srv := startEmbedded(t, "-")
	ts := httptest.NewTLSServer(graphqlMux(srv))
	defer ts.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	const n = 5
	url := "wss://" + strings.TrimPrefix(ts.URL, "https://") + "/graphql"
	cmd := exec.CommandContext(runCtx(t, 60*time.Second), "node", "npm/subscribe.mjs", "--url", url, "--count", fmt.Sprint(n), "tls.topic")
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+ca)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != `{"query":{"data":{"__typename":"Query"}}}` {
		t.Fatalf("query result %q: %v", lines.Text(), cmd.Wait())
	}
	for deadline := time.Now().Add(20 * time.Second); srv.Stats().Subscriptions == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the node client's subscription was not registered")
		}
	}
	for i := 1; i <= n; i++ {
		if err := srv.Publish(context.Background(), "tls.topic", fmt.Appendf(nil, `{"seq":%d,"ts":1,"body":"b%d"}`, i, i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= n; i++ {
		if !lines.Scan() {
			t.Fatalf("event %d missing: %v", i, cmd.Wait())
		}
		var r struct {
			Data struct{ Events struct{ Seq int } }
		}
		if err := json.Unmarshal(lines.Bytes(), &r); err != nil || r.Data.Events.Seq != i {
			t.Fatalf("event %d: %s (%v)", i, lines.Text(), err)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node client: %v", err)
	}
}
