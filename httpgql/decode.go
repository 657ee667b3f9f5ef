package httpgql

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// params are the GraphQL-over-HTTP request parameters.
type params struct {
	query         string
	operationName string
	variables     []byte // a JSON object, or nil
}

// decodeError is a request that is not well-formed: an HTTP status, a code
// and a message that says what to change.
type decodeError struct {
	status int
	code   string
	msg    string
	allow  string // for 405
}

func badRequest(format string, args ...any) *decodeError {
	return &decodeError{status: http.StatusBadRequest, code: CodeBadRequest, msg: fmt.Sprintf(format, args...)}
}

// decode reads the parameters of req: from the URL query for GET, from
// the JSON body for POST.
func (h *Handler) decode(req *Request) (params, *decodeError) {
	switch req.Method {
	case http.MethodGet:
		if len(req.RawQuery) > h.max {
			return params{}, tooLarge("URL query", len(req.RawQuery), h.max)
		}
		return decodeGET(req.RawQuery)
	case http.MethodPost:
		if err := checkContentType(req.ContentType); err != nil {
			return params{}, err
		}
		if len(req.Body) > h.max {
			return params{}, tooLarge("body", len(req.Body), h.max)
		}
		return decodePOST(req.Body)
	}
	return params{}, &decodeError{status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed, allow: "GET, POST",
		msg: fmt.Sprintf("method %s is not allowed on the GraphQL endpoint: use POST (or GET for queries)", sanitize(req.Method))}
}

// tooLarge is the 413 error for a part of n bytes over max.
func tooLarge(what string, n, max int) *decodeError {
	return &decodeError{status: http.StatusRequestEntityTooLarge, code: CodeRequestTooLarge,
		msg: fmt.Sprintf("request %s is %d bytes, more than the limit of %d", what, n, max)}
}

// sanitize shortens and cleans s for an error message.
func sanitize(s string) string {
	const max = 32
	if len(s) > max {
		s = s[:max]
	}
	return strconv.Quote(strings.ToValidUTF8(s, "?"))
}

// decodeGET reads query, operationName, variables and extensions from a
// URL query. Each may be given once.
func decodeGET(raw string) (params, *decodeError) {
	values, err := url.ParseQuery(raw)
	if err != nil {
		return params{}, badRequest("cannot parse the URL query: %v", err)
	}
	for k, v := range values {
		if len(v) > 1 {
			return params{}, badRequest("URL query parameter %s is given %d times; give it once", sanitize(k), len(v))
		}
	}
	var p params
	q, ok := values["query"]
	if !ok || q[0] == "" {
		return params{}, badRequest(`the URL query has no "query" parameter: pass the GraphQL document in ?query=`)
	}
	p.query = q[0]
	if v := values.Get("operationName"); v != "" {
		p.operationName = v
	}
	if v, ok := values["variables"]; ok && v[0] != "" {
		if p.variables, err = jsonObject([]byte(v[0])); err != nil {
			return params{}, badRequest(`the "variables" parameter must be a JSON object: %v`, err)
		}
	}
	if v, ok := values["extensions"]; ok && v[0] != "" {
		if _, err = jsonObject([]byte(v[0])); err != nil {
			return params{}, badRequest(`the "extensions" parameter must be a JSON object: %v`, err)
		}
	}
	return p, checkUTF8(p)
}

// checkUTF8 refuses parameters that are not valid UTF-8 (a URL query can
// escape any byte).
func checkUTF8(p params) *decodeError {
	if !utf8.ValidString(p.query) || !utf8.ValidString(p.operationName) {
		return badRequest("the query and operationName must be valid UTF-8")
	}
	return nil
}

// checkContentType accepts application/json with no charset or UTF-8.
func checkContentType(ct string) *decodeError {
	fail := func(what string) *decodeError {
		return &decodeError{status: http.StatusUnsupportedMediaType, code: CodeUnsupportedMedia,
			msg: what + ": send the request body as Content-Type: application/json"}
	}
	if ct == "" {
		return fail("the POST request has no Content-Type")
	}
	mt, ps, err := mime.ParseMediaType(ct)
	if err != nil {
		return fail("cannot parse the Content-Type")
	}
	if mt != MediaJSON {
		return fail("Content-Type " + sanitize(mt) + " is not supported")
	}
	if cs, ok := ps["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return fail("charset " + sanitize(cs) + " is not supported (only utf-8)")
	}
	return nil
}

// postBody is the JSON body of a POST.
type postBody struct {
	Query         json.RawMessage `json:"query"`
	OperationName json.RawMessage `json:"operationName"`
	Variables     json.RawMessage `json:"variables"`
	Extensions    json.RawMessage `json:"extensions"`
}

// decodePOST reads the parameters from a JSON object body.
func decodePOST(body []byte) (params, *decodeError) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		return params{}, badRequest("batched requests (a JSON array) are not supported: send one request object per POST")
	}
	if !utf8.Valid(body) {
		return params{}, badRequest("the body is not valid UTF-8")
	}
	var b postBody
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&b); err != nil {
		return params{}, badRequest("the body must be a JSON object {\"query\": ..., \"variables\": {...}}: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return params{}, badRequest("the body has data after its JSON object")
	}
	var p params
	var err error
	if p.query, err = jsonString(b.Query, false); err != nil || p.query == "" {
		return params{}, badRequest(`the body's "query" must be a non-empty string holding the GraphQL document`)
	}
	if p.operationName, err = jsonString(b.OperationName, true); err != nil {
		return params{}, badRequest(`the body's "operationName" must be a string or null`)
	}
	if p.variables, err = jsonObject(b.Variables); err != nil {
		return params{}, badRequest(`the body's "variables" must be a JSON object or null: %v`, err)
	}
	if _, err = jsonObject(b.Extensions); err != nil {
		return params{}, badRequest(`the body's "extensions" must be a JSON object or null: %v`, err)
	}
	return p, nil
}

// jsonString decodes a JSON string; absent or null is "" when nullable.
func jsonString(raw json.RawMessage, nullable bool) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		if nullable {
			return "", nil
		}
		return "", fmt.Errorf("missing")
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// jsonObject checks that raw is a JSON object and returns it; absent or
// null is nil.
func jsonObject(raw []byte) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] != '{' || !json.Valid(raw) {
		return nil, fmt.Errorf("got %s", kindOf(raw))
	}
	return raw, nil
}

// kindOf names the JSON kind of raw for messages.
func kindOf(raw []byte) string {
	if !json.Valid(raw) {
		return "invalid JSON"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

// negotiate picks the response media type for an Accept header: the
// accepted type with the highest quality; a range naming a type exactly
// beats a wildcard, and between exact ties application/graphql-response+json
// wins, while wildcards alone (*/*, application/*) give application/json,
// which every GraphQL client reads. No header means application/json. ok
// is false when neither type is acceptable.
func negotiate(accept string) (media string, ok bool) {
	if strings.TrimSpace(accept) == "" {
		return MediaJSON, true
	}
	type cand struct {
		spec int     // specificity of the most specific matching range; -1: none
		q    float64 // its quality (the highest among ranges that specific)
	}
	g, j := &cand{spec: -1}, &cand{spec: -1}
	for _, r := range strings.Split(accept, ",") {
		mt, q, ok := parseRange(r)
		if !ok {
			continue
		}
		for _, c := range []struct {
			c    *cand
			name string
		}{{g, MediaGraphQLResponse}, {j, MediaJSON}} {
			spec, match := specificity(mt, c.name)
			switch {
			case !match:
			case spec > c.c.spec:
				c.c.spec, c.c.q = spec, q
			case spec == c.c.spec && q > c.c.q:
				c.c.q = q
			}
		}
	}
	gq, jq := max(g.q, 0), max(j.q, 0)
	switch {
	case gq == 0 && jq == 0:
		return "", false
	case gq > jq:
		return MediaGraphQLResponse, true
	case jq > gq:
		return MediaJSON, true
	case g.spec == 2:
		return MediaGraphQLResponse, true
	}
	return MediaJSON, true
}

// specificity says how exactly the range mt matches the type name: 2 for
// the type itself, 1 for application/*, 0 for */*.
func specificity(mt, name string) (int, bool) {
	switch mt {
	case name:
		return 2, true
	case "application/*":
		return 1, true
	case "*/*":
		return 0, true
	}
	return 0, false
}

// parseRange parses one Accept media range with its q parameter.
func parseRange(r string) (mt string, q float64, ok bool) {
	r = strings.TrimSpace(r)
	if r == "" {
		return "", 0, false
	}
	mt, ps, err := mime.ParseMediaType(r)
	if err != nil {
		return "", 0, false
	}
	q = 1
	if s, has := ps["q"]; has {
		if q, err = strconv.ParseFloat(s, 64); err != nil || q < 0 || q > 1 {
			return "", 0, false
		}
	}
	if cs, has := ps["charset"]; has && !strings.EqualFold(cs, "utf-8") {
		return "", 0, false
	}
	return mt, q, true
}
