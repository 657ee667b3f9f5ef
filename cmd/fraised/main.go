// Command fraised serves GraphQL subscriptions over WebSocket
// (graphql-transport-ws) from events published over the Redis protocol.
// Run `fraised --help` for its flags.
package main

import (
	"os"

	"github.com/fraised/fraised/app"
)

func main() {
	os.Exit(app.Main(os.Args[1:], nil))
}
