package soak

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/fraised/fraised/internal/freeport"
)

// Child start-up and shutdown bounds.
const (
	// listenWait bounds how long a started or restarted server may take to
	// accept connections; it starts in well under a second.
	listenWait = 15 * time.Second
	// stopGrace is how long Stop waits after SIGTERM before SIGKILL: more
	// than the server's default 10 s drain.
	stopGrace = 15 * time.Second
)

// ChildConfig says how to run the server under test.
type ChildConfig struct {
	Bin    string   // the fraised binary
	Schema string   // the schema file
	Args   []string // extra flags (none for "default flags")
	Env    []string // extra environment
	NOFILE int      // the child's RLIMIT_NOFILE (soft and hard)
	LogDir string   // where its log goes
}

// Child is a running fraised process on free loopback ports. Its methods
// are safe from one goroutine at a time, except Exited and PID.
type Child struct {
	cfg      ChildConfig
	name     string
	WS       string // host:port of --listen
	Pub      string // host:port of --publish-listen
	Unix     string // --publish-unix path
	cmd      *exec.Cmd
	log      io.Closer
	mu       sync.Mutex
	exited   chan struct{}
	exitErr  error
	exitedAt time.Time
}

// StartChild starts the server with free ports and waits until both its
// listeners accept.
func StartChild(ctx context.Context, cfg ChildConfig, name string) (*Child, error) {
	ws, err := freeAddr()
	if err != nil {
		return nil, err
	}
	pub, err := freeAddr()
	if err != nil {
		return nil, err
	}
	c := &Child{cfg: cfg, name: name, WS: ws, Pub: pub,
		Unix: filepath.Join(os.TempDir(), fmt.Sprintf("fraised-soak-%d-%s.sock", os.Getpid(), name))}
	return c, c.start(ctx)
}

func freeAddr() (string, error) { return freeport.Addr() }

// start runs the binary (through sh, to set its descriptor limit) and
// waits for its listeners.
func (c *Child) start(ctx context.Context) error {
	args := append([]string{"-c", `ulimit -n "$0" && exec "$@"`, strconv.Itoa(c.cfg.NOFILE), c.cfg.Bin,
		"--schema", c.cfg.Schema, "--listen", c.WS, "--publish-listen", c.Pub, "--publish-unix", c.Unix}, c.cfg.Args...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), c.cfg.Env...)
	if c.cfg.LogDir != "" {
		f, err := os.OpenFile(filepath.Join(c.cfg.LogDir, c.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("cannot create the server log in %s: %w", c.cfg.LogDir, err)
		}
		cmd.Stdout, cmd.Stderr, c.log = f, f, f
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot start %s (run make build first): %w", c.cfg.Bin, err)
	}
	c.mu.Lock()
	c.cmd, c.exited, c.exitErr = cmd, make(chan struct{}), nil
	exited := c.exited
	c.mu.Unlock()
	go func() {
		err := cmd.Wait()
		c.mu.Lock()
		c.exitErr, c.exitedAt = err, time.Now()
		c.mu.Unlock()
		close(exited)
	}()
	for _, addr := range []string{c.WS, c.Pub} {
		if err := waitListening(ctx, addr, exited); err != nil {
			c.Kill()
			return fmt.Errorf("server %s did not listen on %s (see its log in %s): %w", c.name, addr, c.cfg.LogDir, err)
		}
	}
	return nil
}

func waitListening(ctx context.Context, addr string, exited <-chan struct{}) error {
	end := time.Now().Add(listenWait)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return conn.Close()
		}
		select {
		case <-exited:
			return fmt.Errorf("it exited: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(end) {
			return err
		}
	}
}

// PID is the server's process id (sh execs it, so it is the same process).
func (c *Child) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cmd.Process.Pid
}

// Exited is closed when the current process exits.
func (c *Child) Exited() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exited
}

// ExitStatus describes how the process exited ("running" if it has not).
func (c *Child) ExitStatus() string {
	select {
	case <-c.Exited():
	default:
		return "running"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exitErr == nil {
		return "exit 0"
	}
	return c.exitErr.Error()
}

// ExitedAt is when the process exited (zero if it has not).
func (c *Child) ExitedAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exitedAt
}

// Signal sends sig to the server.
func (c *Child) Signal(sig syscall.Signal) error {
	return syscall.Kill(c.PID(), sig)
}

// Kill sends SIGKILL to the server's process group and waits for it.
func (c *Child) Kill() {
	_ = syscall.Kill(-c.PID(), syscall.SIGKILL)
	<-c.Exited()
}

// Restart starts the binary again on the same addresses (after a kill).
func (c *Child) Restart(ctx context.Context) error {
	<-c.Exited()
	c.closeLog()
	return c.start(ctx)
}

// Stop sends SIGTERM, then SIGKILL after stopGrace, and releases the log.
func (c *Child) Stop() {
	_ = c.Signal(syscall.SIGTERM)
	select {
	case <-c.Exited():
	case <-time.After(stopGrace):
		c.Kill()
	}
	c.closeLog()
	_ = os.Remove(c.Unix)
}

func (c *Child) closeLog() {
	if c.log != nil {
		_ = c.log.Close()
		c.log = nil
	}
}
