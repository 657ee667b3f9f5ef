package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNPMIntrospectionRoundTrip sends graphql-js's getIntrospectionQuery()
// to the real binary over graphql-transport-ws (the real npm graphql-ws
// client) and over GraphQL over HTTP (POST /graphql with Node's fetch),
// rebuilds the schema with graphql-js's buildClientSchema and
// checks that printSchema gives the SDL file the server loaded, as
// graphql-js prints it: every kind of type, descriptions, default values,
// deprecations, @specifiedBy, @oneOf and a user directive survive, and
// fraised's own directives are not in it.
func TestNPMIntrospectionRoundTrip(t *testing.T) {
	if os.Getenv("FRAISED_NPM_E2E") == "" {
		t.Skip("set FRAISED_NPM_E2E=1 after `npm ci --prefix e2e/npm` (make test does)")
	}
	for _, schema := range []string{"testdata/introspect.graphql", "../examples/schema.graphql", "../examples/secure.graphql"} {
		t.Run(schema, func(t *testing.T) {
			extra := []string{"--schema", schema}
			if strings.Contains(schema, "secure") {
				extra = append(extra, "--auth", "optional", "--jwt-secret", strings.Repeat("s", 32))
			}
			p := startBinary(t, extra...)
			for _, scheme := range []string{"ws", "http"} {
				checkIntrospection(t, scheme+"://"+p.listen+"/graphql", schema)
			}
		})
	}
}

// checkIntrospection runs introspect.mjs against url and compares the
// printed schemas.
func checkIntrospection(t *testing.T, url, schema string) {
	t.Helper()
	cmd := exec.CommandContext(runCtx(t, 60e9), "node", "npm/introspect.mjs", "--url", url, schema)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node introspect.mjs --url %s: %v\n%s", url, err, stderr.String())
	}
	var r struct{ Got, Want string }
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("bad output %q: %v", out, err)
	}
	if r.Got != r.Want {
		t.Fatalf("%s: printSchema(buildClientSchema(introspection)):\n%s\n\nwant (printSchema of %s):\n%s", url, r.Got, schema, r.Want)
	}
	if !strings.Contains(r.Got, "type Subscription") {
		t.Fatalf("%s: printed schema has no Subscription type:\n%s", url, r.Got)
	}
	for _, d := range []string{"@topic", "@filter", "@auth", "@defer"} {
		if strings.Contains(r.Got, d) {
			t.Errorf("%s: printed schema mentions %s:\n%s", url, d, r.Got)
		}
	}
}
