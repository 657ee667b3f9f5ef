package httpgql

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fraised/fraised/gql"
)

// allowedStatus are the statuses Serve may answer.
var allowedStatus = map[int]bool{200: true, 400: true, 405: true, 406: true, 413: true, 415: true}

// FuzzServe feeds arbitrary requests to Serve: it must not panic, must
// answer a status of the specification's set with one of the two media
// types and a JSON body holding "data" or "errors", and must answer 200
// for application/json whenever it answers a well-formed request.
func FuzzServe(f *testing.F) {
	for _, s := range []struct{ method, rawQuery, ct, accept, body string }{
		{"POST", "", "application/json", "application/graphql-response+json", `{"query":"{ serverTime }"}`},
		{"POST", "", "application/json; charset=utf-8", "", `{"query":"query Q($n: Int!) { echo(n: $n) }","variables":{"n":1},"operationName":"Q"}`},
		{"POST", "", "application/json", "*/*", `{"query":"subscription { events(topic: \"a\") { seq } }"}`},
		{"POST", "", "application/json", "application/json;q=0.5, application/graphql-response+json", `[{"query":"{ a }"}]`},
		{"POST", "", "text/plain", "", `query`},
		{"GET", "query=%7B+serverTime+%7D", "", "application/graphql-response+json", ""},
		{"GET", "query=mutation+%7B+noop+%7D", "", "", ""},
		{"GET", "query=%7B__schema%7Btypes%7Bname%7D%7D%7D&variables=%7B%7D", "", "application/json", ""},
		{"PUT", "", "", "text/html", ""},
	} {
		f.Add(s.method, s.rawQuery, s.ct, s.accept, []byte(s.body))
	}
	h := New(testSchema(f, gql.Options{}), Options{MaxBodyBytes: 4096})
	f.Fuzz(func(t *testing.T, method, rawQuery, ct, accept string, body []byte) {
		req := &Request{Method: method, RawQuery: rawQuery, ContentType: ct, Accept: accept, Body: body, Host: "h"}
		r := h.Serve(context.Background(), req, gql.Env{})
		if !allowedStatus[r.Status] {
			t.Fatalf("status %d", r.Status)
		}
		if r.ContentType != MediaJSON+"; charset=utf-8" && r.ContentType != MediaGraphQLResponse+"; charset=utf-8" {
			t.Fatalf("content type %q", r.ContentType)
		}
		var v map[string]json.RawMessage
		if err := json.Unmarshal(r.Body, &v); err != nil {
			t.Fatalf("body %q: %v", r.Body, err)
		}
		_, data := v["data"]
		_, errs := v["errors"]
		if !data && !errs {
			t.Fatalf("body has neither data nor errors: %s", r.Body)
		}
		if data && r.Status != 200 {
			t.Fatalf("status %d with data: %s", r.Status, r.Body)
		}
		if r.Status == 400 && strings.HasPrefix(r.ContentType, MediaJSON) && !strings.Contains(string(r.Body), CodeBadRequest) {
			t.Fatalf("application/json answered 400 to a well-formed request: %s", r.Body)
		}
	})
}
