package plug

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestAPIHash: APIHash matches the resolver types; a change to them must
// change APIHash (and so refuse plugins compiled against the old API).
func TestAPIHash(t *testing.T) {
	if got := HashAPI(); got != APIHash {
		t.Fatalf("the resolver API changed: set APIHash = %q (plugins must be rebuilt)\n%s", got, APIDescription())
	}
}

func TestMismatchNamesBothSides(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: fraisedModule, Version: "v1.2.0"},
		Settings: []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "-tags", Value: "a"}, {Key: "-ldflags", Value: "-X x=1"}},
		Deps:     []*debug.Module{{Path: "github.com/tidwall/gjson", Version: "v1.18.0"}}}
	host := FromBuildInfo(bi)
	if m := Mismatch(host, host); m != "" {
		t.Fatalf("a build mismatches itself: %s", m)
	}
	other := *bi
	other.GoVersion = "go1.25.0"
	other.Settings = []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "-tags", Value: "b"}, {Key: "-ldflags", Value: "other"}}
	other.Deps = []*debug.Module{{Path: "github.com/tidwall/gjson", Version: "v1.17.0"}, {Path: "only/in/plugin", Version: "v1"}}
	other.Main = debug.Module{Path: "example.com/myplugin"}
	other.Deps = append(other.Deps, &debug.Module{Path: fraisedModule, Version: "v1.1.0"})
	m := Mismatch(host, FromBuildInfo(&other))
	for _, want := range []string{
		"Go version: plugin go1.25.0, fraised-dyn go1.26.8",
		"fraised version: plugin v1.1.0, fraised-dyn v1.2.0",
		"build setting -tags: plugin b, fraised-dyn a",
		"module github.com/tidwall/gjson: plugin v1.17.0, fraised-dyn v1.18.0",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("mismatch %q lacks %q", m, want)
		}
	}
	if strings.Contains(m, "ldflags") || strings.Contains(m, "only/in/plugin") {
		t.Errorf("mismatch reports what may differ: %s", m)
	}
}
