package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Go plugin tests. They need bin/fraised-dyn and the example plugin, which
// `make e2e-plugin` builds (make test runs it) and names in
// FRAISED_DYN_BIN and FRAISED_PLUGIN; a plain `go test ./e2e/` skips them.

// pluginBuild returns fraised-dyn and the example plugin.
func pluginBuild(t *testing.T) (dyn, so string) {
	t.Helper()
	dyn, so = os.Getenv("FRAISED_DYN_BIN"), os.Getenv("FRAISED_PLUGIN")
	if dyn == "" || so == "" {
		t.Skip("run by `make e2e-plugin`, which builds bin/fraised-dyn and the example plugin (FRAISED_DYN_BIN, FRAISED_PLUGIN)")
	}
	return dyn, so
}

// TestPluginResolvesOnFraisedDyn: fraised-dyn loads the example plugin and
// its resolver answers a subscription end to end.
func TestPluginResolvesOnFraisedDyn(t *testing.T) {
	dyn, so := pluginBuild(t)
	p := newProc(t)
	p.run(t, exec.Command(dyn, "--schema", "../examples/schema.graphql", "--listen", p.listen, "--publish-listen", p.publish,
		"--publish-unix", p.unix, "--plugin", so))
	p.waitServed(t)
	c := dialWSHeader(t, p.listen, nil)
	c.send(`{"type":"connection_init"}`)
	expectAck(t, c)
	c.send(`{"id":"1","type":"subscribe","payload":{"query":"subscription { orderUpdated(customerId: \"42\") { id customerId status total } }"}}`)
	m := nextUntilResolved(t, p, c, "orders.42", `{"id":"o1","status":"paid","total":12.5}`)
	if m != `{"id":"1","type":"next","payload":{"data":{"orderUpdated":{"id":"o1","customerId":"42","status":"PAID","total":12.5}}}}` {
		t.Fatalf("plugin resolver: %s", m)
	}
	if !strings.Contains(p.log(), `msg="plugin loaded"`) {
		t.Errorf("no plugin loaded log line:\n%s", p.log())
	}
}

// patchBuildInfo copies the plugin with old replaced by repl (same length)
// in its build information (the .go.buildinfo data debug/buildinfo
// reads): a plugin that claims another build, without building one.
func patchBuildInfo(t *testing.T, so, old, repl string) string {
	t.Helper()
	if len(old) != len(repl) {
		t.Fatalf("BUG: %q and %q differ in length", old, repl)
	}
	b, err := os.ReadFile(so)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(b, []byte("\xff Go buildinf:"))
	if at < 0 {
		t.Fatal("no build information in the plugin")
	}
	i := bytes.Index(b[at:], []byte(old))
	if i < 0 || i > 64<<10 {
		t.Fatalf("%q not in the plugin's build information", old)
	}
	copy(b[at+i:], repl)
	out := filepath.Join(t.TempDir(), "patched.so")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPluginMismatchExits2: a plugin built by another Go version, or
// against another fraised version, stops fraised-dyn with exit 2 and a
// message naming both sides, before anything of the plugin runs.
func TestPluginMismatchExits2(t *testing.T) {
	dyn, so := pluginBuild(t)
	goVersion := runtime.Version()
	other := goVersion[:len(goVersion)-1] + string(rune('0'+(goVersion[len(goVersion)-1]-'0'+1)%10))
	for _, tt := range []struct {
		name, old, repl, want string
	}{
		{"Go version", string(rune(len(goVersion))) + goVersion, string(rune(len(other))) + other, "Go version: plugin " + other + ", fraised-dyn " + goVersion},
		{"fraised version", "fraised/fraised\t(devel)", "fraised/fraised\tv0.0.99", "fraised version: plugin v0.0.99, fraised-dyn (devel)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			patched := patchBuildInfo(t, so, tt.old, tt.repl)
			cmd := exec.CommandContext(runCtx(t, 20*time.Second), dyn, "--schema", "../examples/schema.graphql", "--listen", freePort(t),
				"--publish-listen", "-", "--plugin", patched)
			out, err := cmd.CombinedOutput()
			exit, ok := err.(*exec.ExitError)
			if !ok || exit.ExitCode() != 2 || !strings.Contains(string(out), tt.want) {
				t.Fatalf("exit %v, output %q; want exit 2 naming %q", err, out, tt.want)
			}
		})
	}
	// A file that is no plugin at all: the error says so, exit 2.
	notPlugin := filepath.Join(t.TempDir(), "x.so")
	_ = os.WriteFile(notPlugin, []byte("not an ELF file"), 0o644)
	out, err := exec.Command(dyn, "--schema", "../examples/schema.graphql", "--publish-listen", "-", "--plugin", notPlugin).CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 || !strings.Contains(string(out), "cannot read the build information of plugin") {
		t.Fatalf("not a plugin: %v %s", err, out)
	}
}

// TestPluginRefusedByStaticBinary: the static fraised refuses --plugin
// with exit 2, naming fraised-dyn.
func TestPluginRefusedByStaticBinary(t *testing.T) {
	code, out := exitCode(t, "--schema", "../examples/schema.graphql", "--publish-listen", "-", "--plugin", "whatever.so")
	if code != 2 || !strings.Contains(out, "fraised-dyn") || !strings.Contains(out, "make build-dyn") {
		t.Fatalf("exit %d, %q; want 2 naming fraised-dyn", code, out)
	}
}
