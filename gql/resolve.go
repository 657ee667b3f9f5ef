package gql

import (
	"context"
	"encoding/json"
	"runtime/debug"

	"github.com/bytedance/sonic"
	"github.com/fraised/fraised/internal/jsonx"
)

// resultJSON encodes resolver results: map keys sorted so equal values give
// equal bytes, invalid UTF-8 replaced.
var resultJSON = sonic.Config{SortMapKeys: true, ValidateString: true}.Froze()

// errInternal is what a client sees when a resolver panics or returns a
// value that cannot be encoded (extensions.code INTERNAL_SERVER_ERROR);
// the cause is logged.
var errInternal = ResolverError(CodeInternal, "internal error")

// resolve runs the resolver of root field f and returns its value as raw
// JSON. A panic is recovered and logged.
func (p *projector) resolve(ctx context.Context, f *field, event []byte) (raw string, err error) {
	defer func() {
		if r := recover(); r != nil {
			p.plan.logger.Error("gql: resolver panicked", "field", f.rkey, "panic", r, "stack", string(debug.Stack()))
			raw, err = "", errInternal
		}
	}()
	params := ResolveParams{Event: event, Args: f.args, InitPayload: p.plan.initPayload, Claims: p.plan.claims}
	var v any
	if p.call != nil {
		v, err = p.call(ctx, f.rkey, f.resolver, params)
	} else {
		v, err = f.resolver(ctx, params)
	}
	if err != nil {
		return "", err
	}
	switch v := v.(type) {
	case nil:
		return "", nil
	case []byte:
		return jsonx.RootValue(jsonx.View(v)), nil
	case json.RawMessage:
		return jsonx.RootValue(jsonx.View(v)), nil
	}
	b, err := resultJSON.Marshal(v)
	if err != nil {
		p.plan.logger.Error("gql: cannot encode resolver result", "field", f.rkey, "error", err)
		return "", errInternal
	}
	return jsonx.RootValue(jsonx.View(b)), nil
}
