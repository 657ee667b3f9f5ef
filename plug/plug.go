// Package plug is the contract between fraised-dyn and the Go plugins it
// loads with --plugin. A plugin is a main package built with
// `go build -buildmode=plugin` that exports two names:
//
//	// FraisedABI is the fingerprint of the API the plugin was compiled
//	// against: a constant, so it is fixed when the plugin is built.
//	var FraisedABI = plug.ABI
//
//	// FraisedResolvers returns the plugin's resolvers by field key.
//	func FraisedResolvers() map[string]gql.Resolver { ... }
//
// Before it calls anything in a plugin, fraised-dyn compares the plugin
// file's build information (debug/buildinfo: Go version, GOOS/GOARCH,
// the build settings that change the ABI, the fraised version and the
// versions of shared modules) with its own, then opens it and compares
// FraisedABI with its own ABI; any difference is a start-up error naming
// both sides, never a crash later. examples/plugin is a complete plugin.
package plug

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/fraised/fraised/gql"
)

// Symbols a plugin exports.
const (
	ABISymbol      = "FraisedABI"       // a string variable: plug.ABI as the plugin was compiled
	RegisterSymbol = "FraisedResolvers" // func() map[string]gql.Resolver
)

// APIVersion numbers the plugin contract; it changes when the symbols or
// their meaning do.
const APIVersion = "fraised-plugin/1"

// APIHash is a hash of the resolver API a plugin compiles against
// (gql.Resolver, gql.ResolverFunc, gql.ResolveParams and this package's
// symbols): TestAPIHash recomputes it from the types (APIDescription)
// and fails when they changed without it.
const APIHash = "b74fefcfab86938c"

// ABI is what a plugin exports as FraisedABI.
const ABI = APIVersion + " api=" + APIHash

// APIDescription is the text APIHash hashes: the resolver types as
// reflect prints them, field by field.
func APIDescription() string {
	var b strings.Builder
	b.WriteString(APIVersion + " " + ABISymbol + " " + RegisterSymbol + "\n")
	for _, t := range []reflect.Type{
		reflect.TypeFor[gql.Resolver](), reflect.TypeFor[gql.ResolverFunc](), reflect.TypeFor[gql.ResolveParams](),
		reflect.TypeFor[func() map[string]gql.Resolver](),
	} {
		b.WriteString(t.String() + " " + t.Kind().String())
		if t.Kind() == reflect.Struct {
			for i := range t.NumField() {
				f := t.Field(i)
				b.WriteString(" " + f.Name + ":" + f.Type.String())
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// HashAPI returns the hash of APIDescription, as APIHash should be.
func HashAPI() string {
	sum := sha256.Sum256([]byte(APIDescription()))
	return hex.EncodeToString(sum[:8])
}

// Build is what decides whether a plugin can run in a host: read from a
// binary's build information.
type Build struct {
	Go       string            // go1.26.8
	Fraised  string            // the fraised module version (with the VCS revision when built from a checkout)
	Settings map[string]string // ABI-relevant build settings: GOOS, GOARCH, CGO_ENABLED, -tags, -trimpath, ...
	Deps     map[string]string // module path -> version
}

// abiSettings are the build settings that must be equal: they change the
// code or the type layout the host and plugin share. -buildmode and
// -ldflags differ by design (exe and plugin; version stamps).
var abiSettings = []string{"GOOS", "GOARCH", "CGO_ENABLED", "-tags", "-trimpath", "-race", "-msan", "-asan",
	"-gcflags", "-asmflags", "-compiler", "GOEXPERIMENT", "GOAMD64", "GOARM", "GOARM64", "GO386", "GORISCV64"}

// fraisedModule is fraised's module path.
const fraisedModule = "github.com/fraised/fraised"

// FromBuildInfo extracts a Build.
func FromBuildInfo(bi *debug.BuildInfo) Build {
	b := Build{Go: bi.GoVersion, Settings: map[string]string{}, Deps: map[string]string{}}
	set := map[string]string{}
	for _, s := range bi.Settings {
		set[s.Key] = s.Value
	}
	for _, k := range abiSettings {
		b.Settings[k] = set[k]
	}
	for _, d := range bi.Deps {
		v := d.Version
		if d.Replace != nil {
			v = d.Replace.Path + "@" + d.Replace.Version
		}
		b.Deps[d.Path] = v
	}
	switch {
	case bi.Main.Path == fraisedModule:
		b.Fraised = bi.Main.Version
		if rev := set["vcs.revision"]; rev != "" {
			b.Fraised += " " + rev
			if set["vcs.modified"] == "true" {
				b.Fraised += "+modified"
			}
		}
	default:
		b.Fraised = b.Deps[fraisedModule]
	}
	delete(b.Deps, fraisedModule)
	return b
}

// Host returns the build of the running binary.
func Host() (Build, error) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Build{}, fmt.Errorf("this binary has no build information (built without module support?): cannot check plugins against it")
	}
	return FromBuildInfo(bi), nil
}

// Mismatch returns what differs between host and plugin, each line naming
// both sides, or "" when the plugin may be loaded.
func Mismatch(host, plugin Build) string {
	var diffs []string
	diff := func(what, h, p string) {
		if h != p {
			diffs = append(diffs, fmt.Sprintf("%s: plugin %s, fraised-dyn %s", what, show(p), show(h)))
		}
	}
	diff("Go version", host.Go, plugin.Go)
	diff("fraised version", host.Fraised, plugin.Fraised)
	for _, k := range abiSettings {
		diff("build setting "+k, host.Settings[k], plugin.Settings[k])
	}
	paths := make([]string, 0, len(plugin.Deps))
	for p := range plugin.Deps {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if hv, ok := host.Deps[p]; ok {
			diff("module "+p, hv, plugin.Deps[p])
		}
	}
	return strings.Join(diffs, "; ")
}

// show prints an empty value visibly.
func show(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}
