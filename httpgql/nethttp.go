package httpgql

import (
	"io"
	"net/http"
	"strconv"
	"strings"
)

// FromHTTP converts a net/http request to a Request, reading at most
// maxBody+1 bytes of the body so that Serve sees a body past the cap and
// answers 413 (maxBody <= 0 means DefaultMaxBodyBytes). It is for servers
// and tests built on net/http; fraised's own server builds Request from
// its parser.
func FromHTTP(r *http.Request, maxBody int) (*Request, error) {
	if maxBody <= 0 {
		maxBody = DefaultMaxBodyBytes
	}
	req := &Request{
		Method:      r.Method,
		RawQuery:    r.URL.RawQuery,
		ContentType: r.Header.Get("Content-Type"),
		Accept:      strings.Join(r.Header.Values("Accept"), ","),
		Host:        r.Host,
		TLS:         r.TLS != nil,
	}
	if r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, int64(maxBody)+1))
		if err != nil {
			return nil, err
		}
		req.Body = b
	}
	return req, nil
}

// Write writes resp to w.
func (resp Response) Write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", resp.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	for _, kv := range resp.Header {
		h.Set(kv[0], kv[1])
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}
