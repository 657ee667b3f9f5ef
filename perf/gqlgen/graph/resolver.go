// Package graph is the gqlgen comparison server's schema, generated code and
// resolvers.
package graph

// This file will not be regenerated automatically.

// Resolver is the root resolver; PubSub carries the published events.
type Resolver struct {
	PubSub *PubSub
}
