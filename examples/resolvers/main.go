// Command resolvers is fraised with compiled-in resolvers: build it instead
// of cmd/fraised when some fields need Go code rather than the default
// projection of the event.
//
//	go run ./examples/resolvers --schema examples/schema.graphql
//	bin/fraised publish orders.42 '{"id":"o1","status":"paid","total":12.5}'
//
// A subscription to orderUpdated(customerId: 42) then receives the order
// with its status normalised by the resolver below, and the query
// { serverTime } answers from Go.
package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/app"
	"github.com/fraised/fraised/gql"
)

func main() {
	os.Exit(app.Main(os.Args[1:], map[string]gql.ResolverFunc{
		"Subscription.orderUpdated": orderUpdated,
		"Query.serverTime":          serverTime,
	}))
}

// orderUpdated receives each event published on orders.{customerId} and
// returns the Order to project through the subscriber's selection set.
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

func serverTime(context.Context, gql.ResolveParams) (any, error) {
	return time.Now().UTC().Format(time.RFC3339), nil
}
