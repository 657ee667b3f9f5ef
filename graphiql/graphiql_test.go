package graphiql

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func header(r Response, name string) string {
	for _, kv := range r.Header {
		if kv[0] == name {
			return kv[1]
		}
	}
	return ""
}

func newHandler(t *testing.T, opts Options) *Handler {
	t.Helper()
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var assetRE = regexp.MustCompile(`(?:src|href)="(/graphiql/assets/app\.[0-9a-f]{16}\.(?:js|css))"`)

func TestPage(t *testing.T) {
	h := newHandler(t, Options{})
	r := h.Serve("GET", "/graphiql", "", "gzip")
	if r.Status != 200 || header(r, "Content-Type") != "text/html; charset=utf-8" || header(r, "Cache-Control") != "no-cache" {
		t.Fatalf("page: %d %v", r.Status, r.Header)
	}
	if header(r, "Content-Encoding") != "" {
		t.Errorf("page is encoded: %v", r.Header)
	}
	page := string(r.Body)
	for _, want := range []string{`<meta name="fraised-endpoint" content="/graphql">`, `<meta name="fraised-init-key" content="authorization">`, `<div id="graphiql">`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s:\n%s", want, page)
		}
	}
	if got := assetRE.FindAllStringSubmatch(page, -1); len(got) != 2 {
		t.Fatalf("page names %d hashed assets: %s", len(got), page)
	}
	// No inline script or style: every <script> has a src, no style= or <style>.
	if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`).MatchString(page) || !strings.Contains(page, `<script src=`) ||
		strings.Contains(page, "<style") || strings.Contains(page, "style=") || strings.Contains(page, " on") {
		t.Errorf("page has inline code:\n%s", page)
	}
	if r2 := h.Serve("GET", "/graphiql/", "", ""); r2.Status != 200 || !bytes.Equal(r2.Body, r.Body) {
		t.Errorf("/graphiql/: %d", r2.Status)
	}
	if r := h.Serve("GET", "/graphiql", header(r, "ETag"), ""); r.Status != 304 || len(r.Body) != 0 {
		t.Errorf("If-None-Match: %d", r.Status)
	}
	if r := h.Serve("GET", "/graphiql", `W/"x", `+header(r, "ETag"), ""); r.Status != 304 {
		t.Errorf("If-None-Match list: %d", r.Status)
	}
	if r := h.Serve("HEAD", "/graphiql", "", ""); r.Status != 200 || len(r.Body) != 0 || header(r, "Content-Length") != strconv.Itoa(len(page)) {
		t.Errorf("HEAD: %d %v", r.Status, r.Header)
	}
	if r := h.Serve("POST", "/graphiql", "", ""); r.Status != 405 || header(r, "Allow") != "GET, HEAD" {
		t.Errorf("POST: %d %v", r.Status, r.Header)
	}
	for _, p := range []string{"/graphiql/assets/app.js", "/graphiql/nope", "/graphiql/assets/app.0000000000000000.js", "/graphiqlx"} {
		if r := h.Serve("GET", p, "", ""); r.Status != 404 {
			t.Errorf("%s: %d", p, r.Status)
		}
	}
}

// assetPath returns the page's hashed asset path ending in ext.
func assetPath(t *testing.T, page, ext string) string {
	t.Helper()
	for _, m := range assetRE.FindAllStringSubmatch(page, -1) {
		if strings.HasSuffix(m[1], ext) {
			return m[1]
		}
	}
	t.Fatalf("page names no %s asset", ext)
	return ""
}

// TestCSP: every response forbids inline script and other origins.
func TestCSP(t *testing.T) {
	for _, bad := range []string{"unsafe", "http:", "https:", "*", "ws:"} {
		if strings.Contains(CSP, bad) {
			t.Errorf("CSP allows %q: %s", bad, CSP)
		}
	}
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(CSP, want) {
			t.Errorf("CSP lacks %q", want)
		}
	}
	h := newHandler(t, Options{})
	page := string(h.Serve("GET", "/graphiql", "", "").Body)
	paths := []string{"/graphiql", "/graphiql/nope", "/graphiql/assets/app.js.LEGAL.txt"}
	for _, m := range assetRE.FindAllStringSubmatch(page, -1) {
		paths = append(paths, m[1])
	}
	for _, p := range paths {
		r := h.Serve("GET", p, "", "gzip")
		if header(r, "Content-Security-Policy") != CSP || header(r, "X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", p, r.Header)
		}
	}
}

func TestAssets(t *testing.T) {
	h := newHandler(t, Options{})
	page := string(h.Serve("GET", "/graphiql", "", "").Body)
	for _, m := range assetRE.FindAllStringSubmatch(page, -1) {
		path := m[1]
		plain := h.Serve("GET", path, "", "br, deflate")
		gz := h.Serve("GET", path, "", "gzip, deflate, br")
		if plain.Status != 200 || gz.Status != 200 {
			t.Fatalf("%s: %d %d", path, plain.Status, gz.Status)
		}
		if header(gz, "Content-Encoding") != "gzip" || header(plain, "Content-Encoding") != "" {
			t.Errorf("%s: encodings %q %q", path, header(gz, "Content-Encoding"), header(plain, "Content-Encoding"))
		}
		if h := header(plain, "Cache-Control"); h != "public, max-age=31536000, immutable" {
			t.Errorf("%s: Cache-Control %q", path, h)
		}
		if header(gz, "Vary") != "Accept-Encoding" || header(gz, "ETag") == header(plain, "ETag") {
			t.Errorf("%s: Vary %q, ETags %q %q", path, header(gz, "Vary"), header(gz, "ETag"), header(plain, "ETag"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz.Body))
		if err != nil {
			t.Fatal(err)
		}
		unzipped, _ := io.ReadAll(zr)
		if !bytes.Equal(unzipped, plain.Body) {
			t.Errorf("%s: gzip and plain bodies differ", path)
		}
		if !strings.Contains(path, "."+contentHash(plain.Body)+".") {
			t.Errorf("%s does not name the hash of its content", path)
		}
		if len(plain.Body) < 100<<10 {
			t.Errorf("%s is only %d bytes", path, len(plain.Body))
		}
		if r := h.Serve("GET", path, header(gz, "ETag"), "gzip"); r.Status != 304 {
			t.Errorf("%s: If-None-Match %d", path, r.Status)
		}
		if r := h.Serve("GET", path, "", "gzip;q=0"); header(r, "Content-Encoding") != "" {
			t.Errorf("%s: gzip;q=0 got gzip", path)
		}
	}
	js := h.Serve("GET", assetPath(t, page, ".js"), "", "")
	// The bundle is the page's code: the graphql-ws client, GraphiQL, and
	// the connection_init payload built from the header editor.
	for _, want := range []string{"graphql-transport-ws", "fraised-endpoint", "fraised-init-key", "connectionParams"} {
		if !bytes.Contains(js.Body, []byte(want)) {
			t.Errorf("app.js lacks %q", want)
		}
	}
	// No URL of another origin is loaded by the bundle's CSS.
	css := h.Serve("GET", assetPath(t, page, ".css"), "", "")
	if regexp.MustCompile(`url\(\s*["']?(?:https?:)?//`).Match(css.Body) || regexp.MustCompile(`@import\s+url\(\s*["']?https?:`).Match(js.Body) {
		t.Errorf("an asset loads from another origin")
	}
}

func TestOptions(t *testing.T) {
	for _, bad := range []string{"graphiql", "/graphiql/"} {
		if _, err := New(Options{Prefix: bad}); err == nil || !strings.Contains(err.Error(), "must start with /") {
			t.Errorf("prefix %q: %v", bad, err)
		}
	}
	h := newHandler(t, Options{Prefix: "/ide", Endpoint: `/q"><script>alert(1)</script>`, InitKey: "token", Title: "<T>"})
	if h.PagePath() != "/ide" || !h.Handles("/ide") || !h.Handles("/ide/assets/x") || h.Handles("/idex") || h.Handles("/graphiql") {
		t.Errorf("paths")
	}
	page := string(h.Serve("GET", "/ide", "", "").Body)
	for _, want := range []string{`content="/q&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`, `content="token"`, `<title>&lt;T&gt;</title>`, `src="/ide/assets/app.`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s:\n%s", want, page)
		}
	}
}

// TestServeHTTP serves the page through net/http to a real client, which
// asks for gzip and unzips the script transparently.
func TestServeHTTP(t *testing.T) {
	h := newHandler(t, Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/graphiql")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Security-Policy") != CSP {
		t.Fatalf("%d %v", res.StatusCode, res.Header)
	}
	js := assetPath(t, string(page), ".js")
	res, err = http.Get(srv.URL + js)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !res.Uncompressed || !bytes.Contains(body, []byte("graphql-transport-ws")) {
		t.Errorf("script: %d uncompressed=%v %d bytes", res.StatusCode, res.Uncompressed, len(body))
	}
}
