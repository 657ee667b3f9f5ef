package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
)

// TestHTTPQueriesAreAudited: a GraphQL-over-HTTP query writes the audit
// records a WebSocket operation writes, on the listener's /graphql and on
// Handler alike: subscribe.accepted (operation, root field, document
// hash, subject) when it runs; subscribe.refused with the reason when it
// does not compile, is a subscription, or is refused from its head (an
// Origin not allowed).
func TestHTTPQueriesAreAudited(t *testing.T) {
	s, sink := startSecure(t, auth.ModeOptional, nil)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	token := mint(t, nil)
	for _, tr := range []struct{ name, url string }{
		{"listener", "http://" + s.opts.Listen + "/graphql"},
		{"Handler", ts.URL},
	} {
		t.Run(tr.name, func(t *testing.T) {
			post := func(query, origin string) int {
				t.Helper()
				req, _ := http.NewRequest(http.MethodPost, tr.url, strings.NewReader(`{"query":`+quote(query)+`}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+token)
				if origin != "" {
					req.Header.Set("Origin", origin)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode
			}
			op := "Q" + tr.name
			if st := post("query "+op+" { serverTime }", ""); st != http.StatusOK {
				t.Fatalf("query: status %d", st)
			}
			r := sink.wait(t, audit.EventSubscribeAccepted, func(r auditRec) bool { return r.Operation == op })
			if r.Field != "serverTime" || r.Subject != "alice" || r.DocHash == "" || r.Remote == "" {
				t.Errorf("accepted record %+v: want field serverTime, subject alice, a doc hash and the remote", r)
			}
			if tr.name == "listener" && r.ConnID == 0 {
				t.Errorf("accepted record %+v has no conn_id", r)
			}

			bad := "Bad" + tr.name
			post("query "+bad+" { nope }", "")
			r = sink.wait(t, audit.EventSubscribeRefused, func(r auditRec) bool { return r.Operation == bad })
			if r.Field != "nope" || !strings.Contains(r.Reason, "GraphQL over HTTP") || !strings.Contains(r.Reason, "nope") || r.Subject != "alice" {
				t.Errorf("refused record %+v: want field nope, subject alice and the compile error", r)
			}

			sub := "Sub" + tr.name
			post("subscription "+sub+` { events(topic: "x") { seq } }`, "")
			r = sink.wait(t, audit.EventSubscribeRefused, func(r auditRec) bool { return r.Operation == sub })
			if r.Field != "events" || !strings.Contains(r.Reason, "not served over HTTP") {
				t.Errorf("subscription record %+v: want field events and the reason", r)
			}

			origin := "http://evil-" + strings.ToLower(tr.name)
			if st := post("{ serverTime }", origin); st != http.StatusForbidden {
				t.Fatalf("Origin %s: status %d, want 403", origin, st)
			}
			sink.wait(t, audit.EventSubscribeRefused, func(r auditRec) bool { return strings.Contains(r.Reason, "origin not allowed: "+origin) })
		})
	}
}

// quote is s as a JSON string.
func quote(s string) string { return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"` }
