package gql

import (
	"context"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/fraised/fraised/internal/jsonx"
)

// This file lets a subscription's resolver run away from the goroutine
// that delivers its result: the dispatcher hands the call (ResolverKey,
// ResolveParams) to a worker, which runs it (AppendResultContext), or to
// an external process whose answer comes back as raw JSON
// (AppendResolved). A call that did not answer becomes a GraphQL error
// with one of the codes below in extensions.code, and the stream goes on.

// Codes in extensions.code of a resolver error fraised reports itself.
const (
	// CodeResolverTimeout: the resolver did not answer within
	// --resolver-timeout.
	CodeResolverTimeout = "RESOLVER_TIMEOUT"
	// CodeResolverUnavailable: the resolver process was not running, or
	// crashed with the call in flight.
	CodeResolverUnavailable = "RESOLVER_UNAVAILABLE"
	// CodeResolverOverloaded: too many calls were already waiting (per
	// group or in total), so this event was not resolved.
	CodeResolverOverloaded = "RESOLVER_OVERLOADED"
	// CodeInternal: the resolver panicked or returned a value that cannot
	// be encoded; the cause is logged, never sent.
	CodeInternal = "INTERNAL_SERVER_ERROR"
)

// ResolverError returns an error that a next reports at the resolver's
// field with message msg and extensions.code code.
func ResolverError(code, msg string) error {
	return &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": code}}
}

// ResolverKey returns the key of the subscription's root field resolver
// ("Subscription.userUpdated"), or "" when the field is projected from the
// event as it is. It is safe for concurrent use.
func (op *Operation) ResolverKey() string {
	if f := op.plan.resolverField(); f != nil {
		return f.rkey
	}
	return ""
}

// ResolveParams returns what the subscription's resolver is given for
// event: the event, the field's arguments, and the init payload and claims
// when the resolver reads the identity (nil otherwise). The maps are shared
// and must not be modified. It is safe for concurrent use.
func (op *Operation) ResolveParams(event []byte) ResolveParams {
	p := ResolveParams{Event: event, InitPayload: op.plan.initPayload, Claims: op.plan.claims}
	if f := op.plan.resolverField(); f != nil {
		p.Args = f.args
	}
	return p
}

// ReadsIdentity reports whether a resolver of the operation reads the init
// payload and claims (Resolver.Identity).
func (op *Operation) ReadsIdentity() bool { return op.plan.resolverIdentity }

// AppendResultContext is AppendResult with ctx given to the resolver: a
// resolver pool calls it on a worker with the call's deadline. It is safe
// for concurrent use.
func (op *Operation) AppendResultContext(ctx context.Context, dst, event []byte) []byte {
	if op.plan.kind != KindSubscription {
		return appendRequestError(dst, "AppendResultContext needs a subscription operation")
	}
	var p projector
	p.plan = op.plan
	return p.result(ctx, dst, event)
}

// AppendResolved appends the result of the subscription when its resolver
// answered raw (a JSON value, projected through the selection set) or
// failed with err (reported at the field; a *gqlerror.Error keeps its
// message and extensions). The resolver is not called. raw is read only
// during the call. It is safe for concurrent use.
func (op *Operation) AppendResolved(dst, raw []byte, err error) []byte {
	if op.plan.kind != KindSubscription {
		return appendRequestError(dst, "AppendResolved needs a subscription operation")
	}
	var p projector
	p.plan = op.plan
	p.given, p.givenErr = true, err
	if err == nil {
		p.givenRaw = jsonx.RootValue(jsonx.View(raw))
	}
	return p.result(context.Background(), dst, nil)
}

// resolverField returns the root field with a resolver of a subscription
// plan, or nil.
func (p *plan) resolverField() *field {
	if p.kind != KindSubscription || !p.hasResolver {
		return nil
	}
	for _, f := range p.fields {
		if f.resolver != nil {
			return f
		}
	}
	return nil
}
