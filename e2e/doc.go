// Package e2e holds end-to-end tests that drive the real fraised binary
// with real clients: the npm graphql-ws client, redis-cli, signals.
package e2e
