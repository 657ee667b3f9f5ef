package resolve

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// procConn starts a resolver process (exec:) and talks to it over one end
// of a socket pair; the child gets the other as file descriptor 3, named
// by FRAISED_RESOLVER_FD=3. Its stdout and stderr are fraised's stderr.
// The child is killed if fraised dies (PR_SET_PDEATHSIG).
type procConn struct {
	argv []string
	log  *slog.Logger
	cmd  *exec.Cmd
}

// childFD is the descriptor number the child reads and writes frames on.
const childFD = 3

func (p *procConn) dial() (net.Conn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot create the resolver socket pair: %w", err)
	}
	parent, child := os.NewFile(uintptr(fds[0]), "resolver"), os.NewFile(uintptr(fds[1]), "resolver-child")
	defer parent.Close()
	defer child.Close()
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.ExtraFiles = []*os.File{child}
	cmd.Env = append(os.Environ(), fmt.Sprintf("FRAISED_RESOLVER_FD=%d", childFD))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start the resolver process %q: %w", strings.Join(p.argv, " "), err)
	}
	p.cmd = cmd
	c, err := net.FileConn(parent)
	if err != nil {
		return nil, fmt.Errorf("cannot use the resolver socket: %w", err)
	}
	return c, nil
}

// stop ends the child: SIGTERM (its socket is already closed, so a
// well-behaved child is exiting), then SIGKILL after grace. It returns how
// the child exited.
func (p *procConn) stop(grace time.Duration) error {
	cmd := p.cmd
	if cmd == nil {
		return errNoProcess
	}
	p.cmd = nil
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		return exitStatus(err)
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		return exitStatus(<-done)
	}
}

// exitStatus describes how a child exited (nil: status 0).
func exitStatus(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("resolver process: %w", err)
}

func (p *procConn) String() string { return "exec:" + strings.Join(p.argv, " ") }
