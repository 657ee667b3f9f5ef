package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/httpgql"
)

// TestNPMHTTPAudit runs graphql-http's audit suite (every MUST and SHOULD
// of the GraphQL-over-HTTP specification it checks) against the httpgql
// handler on the example schema served by net/http on loopback, against
// the real binary's /graphql (the gnet listener's routes), and against
// fraised's Handler() on net/http. Every audit must pass: an "error"
// breaks a MUST, a "warn" a SHOULD.
func TestNPMHTTPAudit(t *testing.T) {
	if os.Getenv("FRAISED_NPM_E2E") == "" {
		t.Skip("set FRAISED_NPM_E2E=1 after `npm ci --prefix e2e/httpaudit` (make test does)")
	}
	schema, err := gql.LoadSchemaFile("../examples/schema.graphql", gql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := httpgql.New(schema, httpgql.Options{})
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := httpgql.FromHTTP(r, 0)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.Serve(r.Context(), req, gql.Env{}).Write(w)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	t.Run("httpgql", func(t *testing.T) { audit(t, "http://"+ln.Addr().String()+"/graphql") })
	t.Run("binary", func(t *testing.T) { audit(t, "http://"+startBinary(t).listen+"/graphql") })
	t.Run("Handler", func(t *testing.T) {
		ts := httptest.NewServer(graphqlMux(startEmbedded(t, "")))
		defer ts.Close()
		audit(t, ts.URL+"/graphql")
	})
}

// audit runs graphql-http's audits against url; every one must pass.
func audit(t *testing.T, url string) {
	t.Helper()
	cmd := exec.CommandContext(runCtx(t, 60*time.Second), "node", "httpaudit/audit.mjs", url)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node audit.mjs: %v\n%s", err, stderr.String())
	}
	n := 0
	for s := bufio.NewScanner(bytes.NewReader(out)); s.Scan(); n++ {
		var a struct{ ID, Name, Status, Reason string }
		if err := json.Unmarshal(s.Bytes(), &a); err != nil {
			t.Fatalf("bad line %q: %v", s.Text(), err)
		}
		if a.Status != "ok" {
			t.Errorf("%s %s: %s %s", a.ID, a.Status, a.Name, a.Reason)
		}
	}
	if n < 20 {
		t.Fatalf("only %d audits ran:\n%s", n, out)
	}
	t.Logf("%s: %d GraphQL-over-HTTP audits passed", url, n)
}
