// Package graphiql serves the GraphiQL IDE embedded in the fraised binary:
// an HTML page and one script and one style sheet bundled from pinned npm
// packages (graphiql, react, react-dom, graphql, graphql-ws; see web/ and
// `make graphiql-assets`) and embedded with go:embed, so the page needs no
// CDN and no other origin.
//
// The page runs every operation over graphql-transport-ws against the
// endpoint given in Options; the Authorization header of GraphiQL's header
// editor goes into the connection_init payload under Options.InitKey.
//
// Responses carry a strict Content-Security-Policy (no inline script, no
// other origin), and the assets are addressed by their content hash and
// cached as immutable. The package is transport-independent: Handler.Serve
// maps a request's method, path and If-None-Match to a Response, and
// ServeHTTP adapts it to net/http.
package graphiql

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// The assets are stored gzipped (about 650 KB instead of 1.6 MB): they are
// sent as they are to clients that accept gzip, and unzipped once, in New,
// for the others.
//
//go:embed assets/app.js.gz assets/app.css.gz assets/app.js.LEGAL.txt.gz
var assets embed.FS

const (
	// DefaultPrefix is where the page is served; assets live below it.
	DefaultPrefix = "/graphiql"
	// DefaultEndpoint is the WebSocket endpoint the page talks to.
	DefaultEndpoint = "/graphql"
	// DefaultInitKey is the connection_init payload key that carries the
	// header editor's Authorization header (fraised's --auth-init-key
	// default).
	DefaultInitKey = "authorization"
	// hashLen is how many hex digits of an asset's SHA-256 name it: 64
	// bits, far more than enough to tell versions apart.
	hashLen = 16
)

// CSP is the Content-Security-Policy of every response: scripts and
// styles only from the server itself (no inline script), fonts and
// images also from data: URLs (the style sheet inlines its fonts),
// connections only to the server itself (its WebSocket endpoint), no
// frames, forms or plugins, and the page may not be framed.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self' data:; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Options configures New. The zero value serves the page at /graphiql for
// the endpoint /graphql.
type Options struct {
	Prefix   string // path of the page, without a trailing slash; "" = DefaultPrefix
	Endpoint string // path or URL of the graphql-transport-ws endpoint; "" = DefaultEndpoint
	InitKey  string // connection_init key for the Authorization header; "" = DefaultInitKey
	Title    string // page title; "" = "fraised GraphiQL"
}

// Response is what Serve answers: a status, headers and a body. Body is
// shared and must not be modified.
type Response struct {
	Status int
	Header [][2]string
	Body   []byte
}

// asset is one servable file, plain and, for the bundled assets, gzipped.
type asset struct {
	plain, gz *variant
}

// variant is one encoding of an asset: its bytes and response headers.
type variant struct {
	body   []byte
	etag   string
	header [][2]string
}

// Handler serves the page and its assets. It is immutable after New and
// safe for concurrent use.
type Handler struct {
	prefix string
	files  map[string]*asset // by path
}

// New builds the handler: it hashes the embedded assets and renders the
// page for opts.
func New(opts Options) (*Handler, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Endpoint == "" {
		opts.Endpoint = DefaultEndpoint
	}
	if opts.InitKey == "" {
		opts.InitKey = DefaultInitKey
	}
	if opts.Title == "" {
		opts.Title = "fraised GraphiQL"
	}
	if !strings.HasPrefix(opts.Prefix, "/") || strings.HasSuffix(opts.Prefix, "/") {
		return nil, fmt.Errorf("graphiql: prefix %q must start with / and not end with one (for example /graphiql)", opts.Prefix)
	}
	h := &Handler{prefix: opts.Prefix, files: map[string]*asset{}}
	js, err := h.addAsset("app.js", "text/javascript; charset=utf-8", true)
	if err != nil {
		return nil, err
	}
	css, err := h.addAsset("app.css", "text/css; charset=utf-8", true)
	if err != nil {
		return nil, err
	}
	// The licenses of the bundled packages, at the name the script's
	// closing comment gives.
	if _, err := h.addAsset("app.js.LEGAL.txt", "text/plain; charset=utf-8", false); err != nil {
		return nil, err
	}
	page := []byte(renderPage(opts, js, css))
	h.files[opts.Prefix] = &asset{plain: newVariant(page, "", "text/html; charset=utf-8", "no-cache")}
	return h, nil
}

// addAsset registers the embedded assets/name, at a path naming its hash
// and cached as immutable when hashed, and returns that path.
func (h *Handler) addAsset(name, ctype string, hashed bool) (string, error) {
	gz, err := assets.ReadFile("assets/" + name + ".gz")
	if err != nil {
		return "", fmt.Errorf("graphiql: embedded asset %s missing (run make graphiql-assets): %w", name, err)
	}
	plain, err := gunzip(gz)
	if err != nil {
		return "", fmt.Errorf("graphiql: embedded asset %s is not valid gzip (run make graphiql-assets): %w", name, err)
	}
	path, cache := h.prefix+"/assets/"+name, "public, max-age=3600"
	if hashed {
		dot := strings.IndexByte(name, '.')
		path = h.prefix + "/assets/" + name[:dot] + "." + contentHash(plain) + name[dot:]
		cache = "public, max-age=31536000, immutable"
	}
	h.files[path] = &asset{plain: newVariant(plain, "", ctype, cache), gz: newVariant(gz, "gzip", ctype, cache)}
	return path, nil
}

// maxAssetBytes bounds an unzipped asset: the bundle is about 1.2 MB, and a
// corrupt or hostile file must not expand without bound.
const maxAssetBytes = 16 << 20

// gunzip returns the content of the gzip stream b.
func gunzip(b []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(r, maxAssetBytes+1))
	if err == nil && len(out) > maxAssetBytes {
		err = fmt.Errorf("more than %d bytes unzipped", maxAssetBytes)
	}
	return out, err
}

// newVariant builds one encoding of an asset with its ETag and headers.
func newVariant(body []byte, encoding, ctype, cache string) *variant {
	v := &variant{body: body, etag: `"` + contentHash(body) + `"`}
	v.header = [][2]string{
		{"Content-Type", ctype},
		{"Content-Length", strconv.Itoa(len(body))},
		{"Cache-Control", cache},
		{"ETag", v.etag},
		{"Content-Security-Policy", CSP},
		{"X-Content-Type-Options", "nosniff"},
		{"Referrer-Policy", "no-referrer"},
		{"Cross-Origin-Opener-Policy", "same-origin"},
		{"Cross-Origin-Resource-Policy", "same-origin"},
	}
	if encoding != "" {
		v.header = append(v.header, [2]string{"Content-Encoding", encoding})
	}
	if cache != "no-cache" {
		v.header = append(v.header, [2]string{"Vary", "Accept-Encoding"})
	}
	return v
}

// contentHash returns the first hashLen hex digits of b's SHA-256.
func contentHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:hashLen]
}

// renderPage renders the HTML page; its only script and style sheet are
// the hashed assets, and the settings travel in meta tags.
func renderPage(opts Options, js, css string) string {
	e := html.EscapeString
	return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<meta name="fraised-endpoint" content="` + e(opts.Endpoint) + `">
<meta name="fraised-init-key" content="` + e(opts.InitKey) + `">
<title>` + e(opts.Title) + `</title>
<link rel="stylesheet" href="` + e(css) + `">
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="` + e(js) + `" defer></script>
</body>
</html>
`
}

// PagePath returns the path of the page (Options.Prefix).
func (h *Handler) PagePath() string { return h.prefix }

// Handles reports whether path is served by h: the page or one of its
// assets (a path below the prefix that is no asset gets 404 from Serve).
func (h *Handler) Handles(path string) bool {
	return path == h.prefix || strings.HasPrefix(path, h.prefix+"/")
}

// Serve answers a GET or HEAD of path: 200 with the file (gzipped when
// acceptEncoding accepts gzip), 304 when ifNoneMatch names its ETag, 404
// for an unknown path, 405 for another method. Serve "/" with the page by
// passing h.PagePath(). It is safe for concurrent use.
func (h *Handler) Serve(method, path, ifNoneMatch, acceptEncoding string) Response {
	a := h.files[path]
	if a == nil && path == h.prefix+"/" {
		a = h.files[h.prefix]
	}
	if a == nil {
		return textResponse(http.StatusNotFound, "not found\n")
	}
	v := a.plain
	if a.gz != nil && acceptsGzip(acceptEncoding) {
		v = a.gz
	}
	switch {
	case method != http.MethodGet && method != http.MethodHead:
		r := textResponse(http.StatusMethodNotAllowed, "method not allowed: use GET\n")
		r.Header = append(r.Header, [2]string{"Allow", "GET, HEAD"})
		return r
	case etagMatch(ifNoneMatch, v.etag):
		return Response{Status: http.StatusNotModified, Header: v.header}
	case method == http.MethodHead:
		return Response{Status: http.StatusOK, Header: v.header}
	}
	return Response{Status: http.StatusOK, Header: v.header, Body: v.body}
}

// acceptsGzip reports whether an Accept-Encoding value accepts gzip
// (listed, or "*", without q=0).
func acceptsGzip(list string) bool {
	for _, part := range strings.Split(list, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := strings.TrimSpace(params)
		if v, ok := strings.CutPrefix(q, "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil && f == 0 {
				return false
			}
		}
		return true
	}
	return false
}

// textResponse is a plain-text error response with the same security
// headers.
func textResponse(status int, msg string) Response {
	return Response{Status: status, Body: []byte(msg), Header: [][2]string{
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Security-Policy", CSP},
		{"X-Content-Type-Options", "nosniff"},
	}}
}

// etagMatch reports whether the If-None-Match value list names etag (or
// is "*"), with weak comparison as RFC 9110 asks for If-None-Match.
func etagMatch(list, etag string) bool {
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// ServeHTTP serves r with Serve.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp := h.Serve(r.Method, r.URL.Path, r.Header.Get("If-None-Match"), strings.Join(r.Header.Values("Accept-Encoding"), ","))
	for _, kv := range resp.Header {
		w.Header().Set(kv[0], kv[1])
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}
