// Package model holds the GraphQL types of the gqlgen comparison server.
package model

// Event is one published event, decoded from the JSON the harness publishes.
// A published *Event is shared read-only by every subscriber of its topic.
type Event struct {
	Seq    int64    `json:"seq"`
	Ts     float64  `json:"ts"`
	Body   *string  `json:"body,omitempty"`
	Kind   *string  `json:"kind,omitempty"`
	Author *Author  `json:"author,omitempty"`
	Tags   []string `json:"tags,omitempty"`
}
