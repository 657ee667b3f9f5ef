//go:build !cgo

package app

import (
	"errors"
	"log/slog"

	"github.com/fraised/fraised/gql"
)

// loadedPlugin is a plugin's resolvers.
type loadedPlugin struct {
	path      string
	resolvers map[string]gql.Resolver
}

// errStatic is why this binary refuses --plugin.
var errStatic = errors.New("--plugin needs fraised-dyn: this fraised is statically linked (CGO_ENABLED=0) and cannot load Go plugins; " +
	"build fraised-dyn with `make build-dyn` (bin/fraised-dyn) and run that, or compile the resolvers in (see README, Resolvers)")

// loadPlugins refuses plugins: a static binary cannot load them.
func loadPlugins(paths []string, _ *slog.Logger) ([]loadedPlugin, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	return nil, usageError(errStatic)
}
