package gql

import (
	"encoding/json"
	"strconv"

	"github.com/fraised/fraised/internal/jsonx"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// AppendErrors appends errs as a JSON array of GraphQL errors, each with
// "message" and, when known, "locations", "path" and "extensions". It is
// safe for concurrent use.
func AppendErrors(dst []byte, errs gqlerror.List) []byte {
	dst = append(dst, '[')
	for i, e := range errs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendError(dst, e)
	}
	return append(dst, ']')
}

// appendError appends one error object.
func appendError(dst []byte, e *gqlerror.Error) []byte {
	if e == nil {
		return append(dst, `{"message":"unknown error"}`...)
	}
	dst = append(dst, `{"message":`...)
	dst = jsonx.AppendString(dst, e.Message)
	dst = appendLocations(dst, e.Locations)
	if len(e.Path) > 0 {
		dst = append(dst, `,"path":`...)
		dst = appendPath(dst, e.Path)
	}
	if len(e.Extensions) > 0 {
		if b, err := json.Marshal(e.Extensions); err == nil {
			dst = append(dst, `,"extensions":`...)
			dst = append(dst, b...)
		}
	}
	return append(dst, '}')
}

// appendLocations appends ,"locations":[...] for the valid locations.
func appendLocations(dst []byte, locs []gqlerror.Location) []byte {
	n := 0
	for _, l := range locs {
		if l.Line <= 0 || l.Column <= 0 {
			continue
		}
		if n == 0 {
			dst = append(dst, `,"locations":[`...)
		} else {
			dst = append(dst, ',')
		}
		n++
		dst = append(dst, `{"line":`...)
		dst = strconv.AppendInt(dst, int64(l.Line), 10)
		dst = append(dst, `,"column":`...)
		dst = strconv.AppendInt(dst, int64(l.Column), 10)
		dst = append(dst, '}')
	}
	if n > 0 {
		dst = append(dst, ']')
	}
	return dst
}

// appendPath appends a response path: keys as strings, indices as numbers.
func appendPath(dst []byte, path ast.Path) []byte {
	dst = append(dst, '[')
	for i, el := range path {
		if i > 0 {
			dst = append(dst, ',')
		}
		switch el := el.(type) {
		case ast.PathIndex:
			dst = strconv.AppendInt(dst, int64(el), 10)
		case ast.PathName:
			dst = jsonx.AppendString(dst, string(el))
		}
	}
	return append(dst, ']')
}
