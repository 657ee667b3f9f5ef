package app

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is the fraised version, set at build time with
// -ldflags "-X github.com/fraised/fraised/app.version=v1.2.3" (the
// Makefile passes `git describe --always --dirty`). Empty: taken from the
// build information.
var version string

// Version returns the fraised version: the one set at build time, else
// the module version or VCS revision recorded by the Go toolchain, else
// "devel".
func Version() string {
	if version != "" {
		return version
	}
	return buildInfoVersion(debug.ReadBuildInfo())
}

func buildInfoVersion(bi *debug.BuildInfo, ok bool) string {
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	if rev == "" {
		return "devel"
	}
	return rev[:min(len(rev), 12)] + dirty
}

// printVersion writes the version line of --version: the fraised
// version, the Go version and the target platform.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "fraised %s %s %s/%s\n", Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
