package app

import (
	"bytes"
	"flag"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/fraised/fraised/auth"
)

// TestVersionSources: a version set at build time wins; otherwise the
// module version, else the VCS revision (marked dirty), else "devel".
func TestVersionSources(t *testing.T) {
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	for _, tt := range []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build info", nil, false, "devel"},
		{"module version", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, true, "v1.4.0"},
		{"revision", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: settings("vcs.revision", "3da3a76b1c2d4e5f60718293", "vcs.modified", "false")}, true, "3da3a76b1c2d"},
		{"dirty revision", &debug.BuildInfo{Settings: settings("vcs.revision", "3da3a76", "vcs.modified", "true")}, true, "3da3a76-dirty"},
		{"nothing recorded", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true, "devel"},
	} {
		if got := buildInfoVersion(tt.bi, tt.ok); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	old := version
	defer func() { version = old }()
	version = "v9.8.7-3-gabcdef-dirty"
	var out bytes.Buffer
	printVersion(&out)
	if want := "fraised v9.8.7-3-gabcdef-dirty " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"; out.String() != want {
		t.Fatalf("--version printed %q, want %q", out.String(), want)
	}
}

// TestStrayArgumentNamed: a leftover argument is refused by name (every
// flag after it would have been dropped by the flag package).
func TestStrayArgumentNamed(t *testing.T) {
	var cfg config
	fs := newFlagSet(&cfg)
	fs.SetOutput(&bytes.Buffer{})
	if err := fs.Parse([]string{"--allowed-origins", "a", "b", "--auth", "required"}); err != nil {
		t.Fatal(err)
	}
	err := noArgsLeft(fs)
	if err == nil || !strings.Contains(err.Error(), `"b"`) {
		t.Fatalf("got %v, want an error naming \"b\"", err)
	}
	if cfg.sec.auth == auth.ModeRequired {
		t.Fatal("the flag package parsed past the stray argument; the test no longer models the defect")
	}
	fs = flag.NewFlagSet("x", flag.ContinueOnError)
	if err := noArgsLeft(fs); err != nil {
		t.Fatalf("no arguments: %v", err)
	}
}

// TestVersionHasNoEnvironmentVariable: FRAISED_VERSION left in an
// environment does not turn a server into a version printer.
func TestVersionHasNoEnvironmentVariable(t *testing.T) {
	t.Setenv("FRAISED_VERSION", "true")
	var cfg config
	fs := newFlagSet(&cfg)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(fs); err != nil || cfg.version {
		t.Fatalf("FRAISED_VERSION applied (err %v, version %v)", err, cfg.version)
	}
}
