package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// get sends a request to the binary and returns the status and body.
func get(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBinaryIntrospectionAndGraphiQLFlags: the binary's flags switch
// introspection, fraised's directives in it, and the GraphiQL routes.
func TestBinaryIntrospectionAndGraphiQLFlags(t *testing.T) {
	const directives = `{"query":"{ __schema { directives { name } } }"}`
	p := startBinary(t, "--introspect-fraised-directives", "--graphiql-root=false")
	base := "http://" + p.listen
	if status, body := get(t, "POST", base+"/graphql", directives); status != 200 || !strings.Contains(body, `{"name":"topic"}`) {
		t.Errorf("--introspect-fraised-directives: %d %s; want @topic listed", status, body)
	}
	if status, _ := get(t, "GET", base+"/graphiql", ""); status != 200 {
		t.Errorf("GET /graphiql: %d, want 200", status)
	}
	if status, _ := get(t, "GET", base+"/", ""); status != 404 {
		t.Errorf("--graphiql-root=false: GET / answered %d, want 404", status)
	}

	p = startBinary(t, "--introspection=false", "--graphiql=false")
	base = "http://" + p.listen
	if status, body := get(t, "POST", base+"/graphql", directives); status != 200 || !strings.Contains(body, "INTROSPECTION_DISABLED") {
		t.Errorf("--introspection=false: %d %s; want INTROSPECTION_DISABLED", status, body)
	}
	if status, body := get(t, "POST", base+"/graphql", `{"query":"{ __typename }"}`); body != `{"data":{"__typename":"Query"}}` {
		t.Errorf("--introspection=false: __typename answered %d %s", status, body)
	}
	for _, path := range []string{"/", "/graphiql"} {
		if status, _ := get(t, "GET", base+path, ""); status != 404 {
			t.Errorf("--graphiql=false: GET %s answered %d, want 404", path, status)
		}
	}
	p = startBinary(t)
	if status, body := get(t, "POST", "http://"+p.listen+"/graphql", directives); status != 200 || strings.Contains(body, "topic") {
		t.Errorf("default: %d %s; want fraised's directives hidden", status, body)
	}
}
