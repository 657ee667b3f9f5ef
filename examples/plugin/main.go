// Command plugin is a Go plugin of resolvers for fraised-dyn: build it with
// `make plugin-example` (go build -buildmode=plugin, CGO_ENABLED=1) and
// load it with
//
//	make build-dyn plugin-example
//	bin/fraised-dyn --schema examples/schema.graphql --plugin bin/plugins/example.so
//	bin/fraised publish orders.42 '{"id":"o1","status":"paid","total":12.5}'
//
// A subscription to orderUpdated(customerId: 42) then receives the order
// with its status upper-cased by the resolver below. The plugin must be
// built by the same Go toolchain, with the same flags and module versions
// as fraised-dyn; fraised-dyn checks, and refuses a mismatch at start.
package main

import (
	"context"
	"errors"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/plug"
)

// FraisedABI is the fingerprint fraised-dyn compares before it calls
// FraisedResolvers: plug.ABI as this plugin was compiled.
var FraisedABI = plug.ABI

// FraisedResolvers returns the plugin's resolvers by field key.
func FraisedResolvers() map[string]gql.Resolver {
	return map[string]gql.Resolver{
		// Identity false: it reads only the event and the arguments, so one
		// call per event serves every subscriber of a group.
		"Subscription.orderUpdated": {Func: orderUpdated},
	}
}

// orderUpdated projects an order event with its status normalised.
func orderUpdated(_ context.Context, p gql.ResolveParams) (any, error) {
	ev := gjson.ParseBytes(p.Event)
	if !ev.Get("id").Exists() {
		return nil, errors.New("order event without id")
	}
	return map[string]any{
		"id":         ev.Get("id").String(),
		"customerId": p.Args["customerId"],
		"status":     strings.ToUpper(ev.Get("status").String()),
		"total":      ev.Get("total").Float(),
	}, nil
}

func main() {}
