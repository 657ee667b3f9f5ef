package e2e

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

func dialWS(t *testing.T, addr string) (*bufio.Reader, func(string)) {
	t.Helper()
	c := dialWSHeader(t, addr, nil)
	_ = c.conn.SetDeadline(time.Now().Add(15 * time.Second))
	return c.r, c.send
}

// TestDrainOnSIGTERM: the server delivers what it accepted, closes every
// client with 1001 and exits 0.
func TestDrainOnSIGTERM(t *testing.T) {
	p := startBinary(t, "--drain-timeout", "5s")
	r, send := dialWS(t, p.listen)
	send(`{"type":"connection_init"}`)
	send(`{"id":"1","type":"subscribe","payload":{"query":"subscription { events(topic: \"d\") { seq } }"}}`)
	publishUntil(t, p, "d", `{"seq":1}`, "(integer) 1")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var closeCode ws.StatusCode
	for closeCode == 0 {
		msgs, err := wsutil.ReadServerMessage(r, nil)
		if err != nil {
			t.Fatalf("reading until close: %v", err)
		}
		for _, m := range msgs {
			if m.OpCode == ws.OpClose {
				closeCode, _ = ws.ParseCloseFrameData(m.Payload)
			}
		}
	}
	if closeCode != 1001 {
		t.Fatalf("close code %d, want 1001", closeCode)
	}
	p.waitExit(t, 10*time.Second)
}

func TestRedisCLIPublish(t *testing.T) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		if os.Getenv("FRAISED_REQUIRE_REDIS_CLI") != "" {
			t.Fatal("redis-cli is required (FRAISED_REQUIRE_REDIS_CLI is set) but not installed")
		}
		t.Skip("redis-cli not installed (apt-get install redis-tools; .ci/run does)")
	}
	p := startBinary(t)
	r, send := dialWS(t, p.listen)
	send(`{"type":"connection_init"}`)
	send(`{"id":"1","type":"subscribe","payload":{"query":"subscription { orderUpdated(customerId: 42) { id status } }"}}`)
	host, port, _ := strings.Cut(p.publish, ":")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command("redis-cli", "-h", host, "-p", port, "PUBLISH", "orders.42", `{"id":"o1","status":"PAID"}`).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli: %v %s", err, out)
		}
		if strings.TrimSpace(string(out)) == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-cli PUBLISH output %q", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		msgs, err := wsutil.ReadServerMessage(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.OpCode != ws.OpText || strings.Contains(string(m.Payload), "connection_ack") {
				continue
			}
			if want := `{"id":"1","type":"next","payload":{"data":{"orderUpdated":{"id":"o1","status":"PAID"}}}}`; string(m.Payload) != want {
				t.Fatalf("got %s, want %s", m.Payload, want)
			}
			// Unix socket too.
			out, err := exec.Command("redis-cli", "-s", p.unix, "PING").CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "PONG" {
				t.Fatalf("redis-cli -s PING: %v %s", err, out)
			}
			return
		}
	}
}

func TestSchemaErrorExits(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.graphql")
	if err := os.WriteFile(path, []byte("type Subscription {\n  x: Nope @topic(name: \"t\")\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--schema", path, "--listen", freePort(t), "--publish-listen", freePort(t)).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("want a non-zero exit, got %v", err)
	}
	if !strings.Contains(string(out), "bad.graphql:2:") {
		t.Fatalf("error does not name file:line:col: %s", out)
	}
}

func TestHelpListsEveryFlagWithEnv(t *testing.T) {
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"--schema", "FRAISED_SCHEMA", "--listen", "FRAISED_LISTEN", "--publish-listen", "--publish-unix",
		"FRAISED_PUBLISH_UNIX", "--init-timeout", "FRAISED_INIT_TIMEOUT", "--publish-token", "fraised publish"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

func TestEnvironmentConfiguresServer(t *testing.T) {
	listen, publish := freePort(t), freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "FRAISED_SCHEMA=../examples/schema.graphql", "FRAISED_LISTEN="+listen,
		"FRAISED_PUBLISH_LISTEN="+publish, "FRAISED_LOG_FORMAT=json")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	p := &proc{publish: publish}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command(bin, "publish", "--addr", p.publish, "t", `{"a":1}`).CombinedOutput()
		if err == nil && strings.TrimSpace(string(out)) == "(integer) 0" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server configured by environment did not answer: %v %s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
