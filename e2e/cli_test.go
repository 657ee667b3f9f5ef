package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// exitCode runs the binary with args and returns its exit code and
// combined output; it fails the test if the binary does not exit in 10 s.
func exitCode(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.CommandContext(runCtx(t, 10*time.Second), bin, args...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("fraised %v: %v\n%s", args, err, out)
	return 0, ""
}

// TestStrayArgumentIsAnError: Go's flag package stops at the first
// positional argument, so `--allowed-origins a b --auth required` used to
// start with authentication off. Now it exits 2 naming the argument.
func TestStrayArgumentIsAnError(t *testing.T) {
	secret := t.TempDir() + "/secret"
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := exitCode(t, "--schema", "../examples/schema.graphql", "--listen", freePort(t), "--publish-listen", "-",
		"--allowed-origins", "a", "b", "--auth", "required", "--jwt-secret-file", secret)
	if code != 2 || !strings.Contains(out, `unexpected argument "b"`) || strings.Contains(out, "listening") {
		t.Fatalf("exit %d, want 2 naming \"b\" without serving:\n%s", code, out)
	}
}

// TestPublishStrayArgument: the publish subcommand names an argument its
// flag parsing would otherwise drop.
func TestPublishStrayArgument(t *testing.T) {
	code, out := exitCode(t, "publish", "events.x", `{"seq":1}`, "--addr", "127.0.0.1:1")
	if code != 2 || !strings.Contains(out, `unexpected argument "--addr"`) {
		t.Fatalf("exit %d, want 2 naming --addr:\n%s", code, out)
	}
	code, out = exitCode(t, "publish", "events.x")
	if code != 2 || !strings.Contains(out, "want TOPIC and JSON, got 1") {
		t.Fatalf("exit %d, want 2 with the argument count:\n%s", code, out)
	}
}

// TestVersionFlag: --version prints the version, the Go version and the
// platform, and exits 0 without needing a schema.
func TestVersionFlag(t *testing.T) {
	code, out := exitCode(t, "--version")
	want := regexp.MustCompile(`^fraised \S+ ` + regexp.QuoteMeta(runtime.Version()) + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n$")
	if code != 0 || !want.MatchString(out) {
		t.Fatalf("exit %d, output %q; want %s", code, out, want)
	}
}

// TestEngineStopExitsNonZero: when the network engine stops by itself (here
// the WebSocket listener fails: the test shuts the real binary's listening
// socket down through pidfd_getfd, so accept fails as it does on EMFILE),
// fraised exits 1, not 0, so Restart=on-failure supervisors restart it.
func TestEngineStopExitsNonZero(t *testing.T) {
	p := startBinary(t)
	fd := listenerFD(t, p.cmd.Process.Pid, p.listen)
	pidfd, err := unix.PidfdOpen(p.cmd.Process.Pid, 0)
	if errors.Is(err, unix.ENOSYS) {
		t.Skip("kernel without pidfd_open (Linux < 5.3): cannot inject the fault")
	} else if err != nil {
		t.Fatalf("pidfd_open: %v", err)
	}
	defer unix.Close(pidfd)
	dup, err := unix.PidfdGetfd(pidfd, fd, 0)
	if errors.Is(err, unix.ENOSYS) {
		t.Skip("kernel without pidfd_getfd (Linux < 5.6): cannot inject the fault")
	} else if err != nil {
		t.Fatalf("pidfd_getfd (needs ptrace rights over the child): %v", err)
	}
	if err := unix.Shutdown(dup, unix.SHUT_RDWR); err != nil {
		t.Fatalf("shutdown of the listener: %v", err)
	}
	unix.Close(dup)
	select {
	case err := <-p.exited:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("fraised exited with %v after its engine stopped, want exit status 1\n%s", err, p.log())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("fraised still running 10 s after its listener failed\n%s", p.log())
	}
	if !strings.Contains(p.log(), "network engine stopped without Shutdown") {
		t.Fatalf("the exit does not say why:\n%s", p.log())
	}
}

// listenerFD returns the descriptor number, in process pid, of the TCP
// socket listening on addr: the socket inode from /proc/net/tcp, matched
// against the process's /proc/PID/fd links.
func listenerFD(t *testing.T, pid int, addr string) int {
	t.Helper()
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	inode := listeningInode(t, port)
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if link, _ := os.Readlink(dir + "/" + e.Name()); link == "socket:["+inode+"]" {
			n, _ := strconv.Atoi(e.Name())
			return n
		}
	}
	t.Fatalf("no descriptor of process %d is the listener on %s (inode %s)", pid, addr, inode)
	return -1
}

func listeningInode(t *testing.T, port int) string {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := fmt.Sprintf(":%04X", port)
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		// sl local_address rem_address st ... inode is field 9; st 0A is LISTEN.
		if len(fields) > 9 && strings.HasSuffix(fields[1], want) && fields[3] == "0A" {
			return fields[9]
		}
	}
	t.Fatalf("no listening socket on port %d in /proc/net/tcp", port)
	return ""
}
