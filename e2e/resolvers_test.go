package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/resp"
)

// python returns the Python 3 for the resolver examples: Debian's (which
// has redis-py for the publisher example) when present.
func python(t *testing.T) string {
	t.Helper()
	if py := pythonWithRedis(); py != "" {
		return py
	}
	if py, err := exec.LookPath("python3"); err == nil {
		return py
	}
	t.Fatal("python3 is required for the resolver examples")
	return ""
}

// startPythonResolvers runs fraised on the Python example's schema with
// its resolvers behind target ("exec:..." or "unix:...").
func startPythonResolvers(t *testing.T, target string, extra ...string) *proc {
	t.Helper()
	p := newProc(t)
	args := []string{"--schema", "../examples/python/schema.graphql", "--listen", p.listen,
		"--publish-listen", p.publish, "--publish-unix", p.unix, "--log-level", "debug",
		"--resolver", "Subscription.userUpdated=" + target, "--resolver", "Subscription.userStatus=" + target,
		"--resolver", "Subscription.greeting+identity=" + target, "--resolver", "Query.serverTime=" + target}
	p.run(t, exec.Command(bin, append(args, extra...)...))
	p.waitServed(t)
	return p
}

// respPublish publishes with a RESP client and returns the reply line.
func respPublish(t *testing.T, addr, topic, payload string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(resp.AppendArray(nil, []byte("PUBLISH"), []byte(topic), []byte(payload))); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}

// nextUntilResolved publishes event to topic until it reaches the
// subscriber (subscribing is asynchronous) and its next is resolved (not
// RESOLVER_UNAVAILABLE or RESOLVER_TIMEOUT: the child may still be
// starting, and its first call may take longer than --resolver-timeout
// on a loaded machine), and returns it.
func nextUntilResolved(t *testing.T, p *proc, c *wsClient, topic, event string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, m := respPublish(t, p.publish, topic, event), ""
		if got == ":1" {
			m = c.next()
			if code := gjson.Get(m, "payload.errors.0.extensions.code").String(); code != "RESOLVER_UNAVAILABLE" && code != "RESOLVER_TIMEOUT" {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the subscription or the resolver process did not come up: publish %s, %s\n%s", got, m, p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// resolverChild returns the pid of fraised's child running script.
func resolverChild(t *testing.T, p *proc, script string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p.cmd.Process.Pid))
		for _, f := range tasks {
			b, _ := os.ReadFile(f)
			for _, s := range strings.Fields(string(b)) {
				pid, _ := strconv.Atoi(s)
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				if strings.Contains(string(cmdline), script) {
					return pid
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no child of fraised runs %s", script)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPythonResolvers: the Python example resolves end to end (async and
// plain functions, one process for two fields), with events published by
// the redis-py publisher example; a call past --resolver-timeout gets
// RESOLVER_TIMEOUT; after kill -9 of the child the call in flight gets
// RESOLVER_UNAVAILABLE and later events are resolved by the restarted
// child; SIGTERM drains and stops the child.
func TestPythonResolvers(t *testing.T) {
	py := python(t)
	p := startPythonResolvers(t, "exec:"+py+" ../examples/python/resolvers.py", "--resolver-timeout", "1s")
	c := dialWSHeader(t, p.listen, nil)
	c.send(`{"type":"connection_init"}`)
	expectAck(t, c)
	c.send(`{"id":"u","type":"subscribe","payload":{"query":"subscription { userUpdated(id: \"42\") { id name avatar watchedBy } }"}}`)
	s := dialWSHeader(t, p.listen, nil)
	s.send(`{"type":"connection_init"}`)
	expectAck(t, s)
	s.send(`{"id":"s","type":"subscribe","payload":{"query":"subscription { userStatus(id: \"42\") }"}}`)

	m := nextUntilResolved(t, p, c, "users.42", `{"id":"42","first":"Grace","last":"Hopper"}`)
	want := `{"id":"u","type":"next","payload":{"data":{"userUpdated":{"id":"42","name":"Grace Hopper","avatar":"https://avatars.example/42.png","watchedBy":"42"}}}}`
	if m != want {
		t.Fatalf("got  %s\nwant %s", m, want)
	}
	if m := nextUntilResolved(t, p, s, "status.42", `{"online":true}`); m != `{"id":"s","type":"next","payload":{"data":{"userStatus":"ONLINE"}}}` {
		t.Fatalf("plain-function resolver: %s", m)
	}

	// A query field over the process: one next, then complete.
	s.send(`{"id":"q","type":"subscribe","payload":{"query":"{ serverTime }"}}`)
	if m := s.next(); !strings.HasPrefix(gjson.Get(m, "payload.data.serverTime").String(), "20") {
		t.Fatalf("query over the resolver process: %s", m)
	}
	if m := s.next(); m != `{"id":"q","type":"complete"}` {
		t.Fatalf("query not completed: %s", m)
	}

	// +identity: each subscriber's init payload reaches the resolver.
	greeted := map[string]*wsClient{}
	for i, user := range []string{"ann", "bob"} {
		g := dialWSHeader(t, p.listen, nil)
		g.send(`{"type":"connection_init","payload":{"user":"` + user + `"}}`)
		expectAck(t, g)
		g.send(`{"id":"g","type":"subscribe","payload":{"query":"subscription { greeting }"}}`)
		if i == 1 {
			deadline := time.Now().Add(10 * time.Second)
			for respPublish(t, p.publish, "greetings", `{"text":"hi"}`) != ":2" {
				if time.Now().After(deadline) {
					t.Fatal("two greeting subscriptions not registered")
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		greeted[user] = g
	}
	for user, g := range greeted {
		if m, want := g.next(), "hi, "+user; gjson.Get(m, "payload.data.greeting").String() != want {
			t.Errorf("%s got %s, want %q", user, m, want)
		}
	}

	// The Python publisher example (redis-py) feeds the subscription.
	if pythonWithRedis() != "" || os.Getenv("FRAISED_REQUIRE_REDIS_CLI") != "" {
		host, port, _ := net.SplitHostPort(p.publish)
		out, err := exec.Command(py, "../examples/python/publish.py", "--host", host, "--port", port, "--user", "42", "--count", "2").CombinedOutput()
		if err != nil || strings.Fields(string(out))[0] != "1" {
			t.Fatalf("publish.py: %v\n%s", err, out)
		}
		for i := range 2 {
			if m := c.next(); gjson.Get(m, "payload.data.userUpdated.name").String() != fmt.Sprintf("Ada Lovelace %d", i) {
				t.Fatalf("event %d from publish.py: %s", i, m)
			}
		}
	}

	// A resolver error keeps its code; a call past the deadline times out.
	respPublish(t, p.publish, "users.42", `{"first":"no id"}`)
	if m := c.next(); gjson.Get(m, "payload.errors.0.extensions.code").String() != "BAD_EVENT" {
		t.Fatalf("ResolverError code: %s", m)
	}
	respPublish(t, p.publish, "users.42", `{"id":"42","slow":3}`)
	if m := c.next(); gjson.Get(m, "payload.errors.0.extensions.code").String() != "RESOLVER_TIMEOUT" {
		t.Fatalf("want RESOLVER_TIMEOUT: %s", m)
	}

	// kill -9 with a call in flight.
	child := resolverChild(t, p, "resolvers.py")
	respPublish(t, p.publish, "users.42", `{"id":"42","slow":0.8}`)
	time.Sleep(100 * time.Millisecond) // let the call reach the child; if it has not, it fails the same way
	if err := syscall.Kill(child, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if m := c.next(); gjson.Get(m, "payload.errors.0.extensions.code").String() != "RESOLVER_UNAVAILABLE" {
		t.Fatalf("the call in flight at the crash: want RESOLVER_UNAVAILABLE, got %s", m)
	}
	m = nextUntilResolved(t, p, c, "users.42", `{"id":"42","first":"After","last":"Restart"}`)
	if gjson.Get(m, "payload.data.userUpdated.name").String() != "After Restart" {
		t.Fatalf("after the restart: %s", m)
	}
	if again := resolverChild(t, p, "resolvers.py"); again == child {
		t.Fatalf("the child %d was not restarted", child)
	}

	restarted := resolverChild(t, p, "resolvers.py")
	p.terminate(t, 10*time.Second)
	if err := syscall.Kill(restarted, 0); err == nil {
		t.Fatalf("the resolver child %d outlived fraised's drain", restarted)
	}
}

// TestResolverChildDiesWithFraised: kill -9 of fraised takes its
// resolver child with it (PR_SET_PDEATHSIG), so no orphan keeps running.
func TestResolverChildDiesWithFraised(t *testing.T) {
	p := startPythonResolvers(t, "exec:"+python(t)+" ../examples/python/resolvers.py")
	child := resolverChild(t, p, "resolvers.py")
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		// Gone, or a zombie waiting for the test's process to reap it.
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("resolver child %d still running 10 s after fraised was killed", child)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUnixResolver: a resolver process started on its own and listening
// (unix:) serves fraised; several calls go in one frame.
func TestUnixResolver(t *testing.T) {
	py := python(t)
	sock := filepath.Join(t.TempDir(), "r.sock")
	child := exec.Command(py, "../examples/python/resolvers.py", "--listen", sock)
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	p := startPythonResolvers(t, "unix:"+sock)
	c := dialWSHeader(t, p.listen, nil)
	c.send(`{"type":"connection_init"}`)
	expectAck(t, c)
	c.send(`{"id":"u","type":"subscribe","payload":{"query":"subscription { userUpdated(id: \"7\") { name } }"}}`)
	if m := nextUntilResolved(t, p, c, "users.7", `{"id":"7","first":"Unix"}`); m != `{"id":"u","type":"next","payload":{"data":{"userUpdated":{"name":"Unix"}}}}` {
		t.Fatalf("unix: resolver: %s", m)
	}
}

// TestResolverFlagErrors: a malformed --resolver and a field without such
// a root field stop fraised with a message naming them.
func TestResolverFlagErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--resolver", "userUpdated=exec:x"}, 2, "the field must be Type.field"},
		{[]string{"--resolver", "Subscription.userUpdated=tcp:x"}, 2, "exec: or unix:"},
		{[]string{"--resolver", "Subscription.nope=unix:/nonexistent"}, 1, `cannot bind resolver "Subscription.nope"`},
		{[]string{"--resolver-timeout", "0s"}, 2, "--resolver-timeout"},
	} {
		code, out := exitCode(t, append([]string{"--schema", "../examples/python/schema.graphql", "--listen", freePort(t), "--publish-listen", "-"}, tt.args...)...)
		if code != tt.code || !strings.Contains(out, tt.want) {
			t.Errorf("%v: exit %d, %q; want exit %d naming %q", tt.args, code, out, tt.code, tt.want)
		}
	}
}

// expectAck reads connection_ack.
func expectAck(t *testing.T, c *wsClient) {
	t.Helper()
	if m := c.next(); m != `{"type":"connection_ack"}` {
		t.Fatalf("want connection_ack, got %s", m)
	}
}
