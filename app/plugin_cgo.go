//go:build cgo

package app

import (
	"debug/buildinfo"
	"fmt"
	"log/slog"
	"plugin"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/plug"
)

// loadedPlugin is a plugin's resolvers.
type loadedPlugin struct {
	path      string
	resolvers map[string]gql.Resolver
}

// loadPlugins checks and opens each plugin (plug's contract) and takes its
// resolvers. Every failure is a usage error (exit 2) naming the plugin:
// a mismatch names both sides, plugin.Open's error is given verbatim.
// Plugins load here, at start, only: nothing reloads or unloads them.
func loadPlugins(paths []string, log *slog.Logger) ([]loadedPlugin, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	host, err := plug.Host()
	if err != nil {
		return nil, usageError(err)
	}
	out := make([]loadedPlugin, 0, len(paths))
	for _, path := range paths {
		res, err := loadPlugin(path, host)
		if err != nil {
			return nil, usageError(err)
		}
		log.Info("plugin loaded", "path", path, "resolvers", len(res))
		out = append(out, loadedPlugin{path: path, resolvers: res})
	}
	return out, nil
}

// loadPlugin compares the build of path with host's before opening it,
// then its FraisedABI before calling FraisedResolvers.
func loadPlugin(path string, host plug.Build) (map[string]gql.Resolver, error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the build information of plugin %s (is it a Go plugin, built with go build -buildmode=plugin?): %w", path, err)
	}
	if m := plug.Mismatch(host, plug.FromBuildInfo(bi)); m != "" {
		return nil, fmt.Errorf("plugin %s was not built like this fraised-dyn (rebuild it with the same toolchain, flags and module versions): %s", path, m)
	}
	p, err := plugin.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open plugin %s: %w", path, err)
	}
	sym, err := p.Lookup(plug.ABISymbol)
	if err != nil {
		return nil, fmt.Errorf("plugin %s does not export %s (declare var %s = plug.ABI): %w", path, plug.ABISymbol, plug.ABISymbol, err)
	}
	abi, ok := sym.(*string)
	if !ok {
		return nil, fmt.Errorf("plugin %s: %s is a %T, want a string variable (var %s = plug.ABI)", path, plug.ABISymbol, sym, plug.ABISymbol)
	}
	if *abi != plug.ABI {
		return nil, fmt.Errorf("plugin %s was compiled against another resolver API: plugin %q, fraised-dyn %q (rebuild the plugin against this fraised)", path, *abi, plug.ABI)
	}
	sym, err = p.Lookup(plug.RegisterSymbol)
	if err != nil {
		return nil, fmt.Errorf("plugin %s does not export %s: %w", path, plug.RegisterSymbol, err)
	}
	register, ok := sym.(func() map[string]gql.Resolver)
	if !ok {
		return nil, fmt.Errorf("plugin %s: %s is a %T, want func() map[string]gql.Resolver", path, plug.RegisterSymbol, sym)
	}
	res := register()
	if len(res) == 0 {
		return nil, fmt.Errorf("plugin %s registers no resolvers", path)
	}
	return res, nil
}
