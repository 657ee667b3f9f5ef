package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// browserPath finds Debian's chromium; FRAISED_CHROMIUM overrides it.
func browserPath() string {
	if p := os.Getenv("FRAISED_CHROMIUM"); p != "" {
		if !fileExists(p) {
			return ""
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// requireBrowser returns chromium's path. The test runs when
// FRAISED_BROWSER_E2E is set (make e2e-browser sets it after installing
// playwright-core); then a missing chromium or playwright-core skips it,
// unless FRAISED_REQUIRE_BROWSER is set (.ci/run sets it), in which case
// the test fails.
func requireBrowser(t *testing.T) string {
	t.Helper()
	if os.Getenv("FRAISED_BROWSER_E2E") == "" {
		t.Skip("set FRAISED_BROWSER_E2E=1 after `npm ci --prefix e2e/browser` (make e2e-browser does)")
	}
	var missing string
	path := browserPath()
	switch {
	case path == "":
		missing = "chromium is not installed (apt-get install chromium)"
	case !fileExists("browser/node_modules/playwright-core/package.json"):
		missing = "playwright-core is not installed (npm ci --prefix e2e/browser)"
	}
	if _, err := exec.LookPath("node"); err != nil && missing == "" {
		missing = "node is not installed"
	}
	if missing == "" {
		return path
	}
	if os.Getenv("FRAISED_REQUIRE_BROWSER") != "" {
		t.Fatalf("FRAISED_REQUIRE_BROWSER is set but %s", missing)
	}
	t.Skip(missing + "; set FRAISED_REQUIRE_BROWSER=1 to make this a failure")
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// artifactDir is where browser tests keep screenshots:
// $FRAISED_ARTIFACTS, else e2e/artifacts.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("FRAISED_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBrowserGraphiQL loads the GraphiQL page the real binary serves at
// /graphiql in headless chromium. fraised runs with --auth required and
// its default Origin rule (same origin only), so the subscription only
// works if the header editor's Authorization reaches connection_init and
// the page talks to the server it came from; with it, the schema loads by
// introspection over the socket and the documentation explorer lists the
// root types. The test publishes an event with `fraised publish` and the
// page must show it; every request the page made must go to the binary,
// and the page must log no error (a CSP violation is one).
func TestBrowserGraphiQL(t *testing.T) {
	chromium := requireBrowser(t)
	secret := strings.Repeat("k", 40)
	p := startBinary(t, "--auth", "required", "--jwt-secret", secret)
	origin := "http://" + p.listen

	const topic, body = "browser.demo", "hello-from-chromium"
	shot := filepath.Join(artifactDir(t), "graphiql.png")
	_ = os.Remove(shot)
	tok := signJWT(t, jwt.SigningMethodHS256, []byte(secret), nil)
	cmd := exec.CommandContext(runCtx(t, 120*time.Second), "node", "browser/graphiql.mjs",
		"--page", origin+"/graphiql", "--token", tok, "--topic", topic, "--want", body, "--shot", shot, "--chromium", chromium)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	lines.Buffer(nil, 1<<20)
	if !lines.Scan() || lines.Text() != "subscribed" {
		t.Fatalf("browser did not subscribe: %q %v\n%s", lines.Text(), cmd.Wait(), stderr.String())
	}
	publishUntil(t, p, topic, `{"seq":7,"ts":1,"body":"`+body+`"}`, "(integer) 1")
	var r struct {
		Requests, Problems []string
		Text, Docs, Error  string
	}
	if !lines.Scan() {
		t.Fatalf("no result from the browser: %v\n%s", cmd.Wait(), stderr.String())
	}
	if err := json.Unmarshal(lines.Bytes(), &r); err != nil {
		t.Fatalf("bad browser output %q: %v", lines.Text(), err)
	}
	if err := cmd.Wait(); err != nil || r.Error != "" {
		t.Fatalf("browser: %v %s\nproblems: %q\n%s", err, r.Error, r.Problems, stderr.String())
	}
	for _, u := range r.Requests {
		pu, err := url.Parse(u)
		if err != nil || pu.Host != p.listen {
			t.Errorf("the page requested %q: only %s may be asked", u, p.listen)
		}
	}
	if !containsPrefix(r.Requests, "ws://"+p.listen+"/graphql") {
		t.Errorf("the page opened no WebSocket to /graphql: %q", r.Requests)
	}
	if len(r.Problems) > 0 {
		t.Errorf("the page logged errors: %q", r.Problems)
	}
	if !strings.Contains(r.Text, `"seq": 7`) || !strings.Contains(r.Text, body) {
		t.Errorf("result pane shows %q", r.Text)
	}
	if !strings.Contains(r.Docs, "Query") || !strings.Contains(r.Docs, "Subscription") {
		t.Errorf("documentation explorer shows %q: the schema did not load", r.Docs)
	}
	if _, err := os.Stat(shot); err != nil {
		t.Errorf("no screenshot: %v", errors.Unwrap(err))
	}
	t.Logf("screenshot: %s", shot)
}

// containsPrefix reports whether some s in list starts with prefix.
func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
