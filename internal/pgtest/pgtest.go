// Package pgtest runs a throwaway PostgreSQL for tests and benchmarks:
// initdb into a temporary directory, started on a free loopback port with
// fsync off, stopped (and its directory removed) by Stop, or by a watchdog
// shell if the test process dies first. Each caller creates its own
// databases in it. It needs Debian's postgresql package (any version
// under /usr/lib/postgresql, or pg_ctl on PATH).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fraised/fraised/internal/freeport"

	"github.com/jackc/pgx/v5"
)

// RequireEnv makes a missing PostgreSQL a failure instead of a skip (.ci/run
// sets it).
const RequireEnv = "FRAISED_REQUIRE_POSTGRES"

// ErrNotInstalled is Start's error on a machine without PostgreSQL.
var ErrNotInstalled = errors.New("PostgreSQL is not installed (apt-get install postgresql)")

// Server is a running throwaway PostgreSQL; role app (superuser, trust
// authentication) on 127.0.0.1:Port and on a Unix socket in Dir.
type Server struct {
	Bin  string // directory of pg_ctl, psql, ...
	Dir  string // working directory; the Unix socket is here
	Port int
	data string
	cred *syscall.Credential // run as this user (initdb refuses root)
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
	dbSeq      atomic.Int64
)

// Need returns the process's shared server, starting it on first use. It
// skips the test when PostgreSQL is not installed, unless RequireEnv is set.
// Call StopShared from TestMain.
func Need(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = Start() })
	if sharedErr != nil {
		if errors.Is(sharedErr, ErrNotInstalled) && os.Getenv(RequireEnv) == "" {
			t.Skipf("%v (set %s=1 to make this a failure)", sharedErr, RequireEnv)
		}
		t.Fatalf("PostgreSQL for the tests: %v", sharedErr)
	}
	return shared
}

// StopShared stops the shared server if Need started it.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}

// NewDatabase creates an empty database in s and returns its URL.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := s.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// CreateDatabase creates an empty database in s and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	admin, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("CREATE DATABASE: %w", err)
	}
	return s.URL(name), nil
}

func findBin() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return filepath.Dir(p), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(matches) == 0 {
		return "", ErrNotInstalled
	}
	sort.Slice(matches, func(i, j int) bool { return major(matches[i]) > major(matches[j]) })
	return filepath.Dir(matches[0]), nil
}

func major(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

// Start initialises and starts a new server.
func Start() (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "fraised-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Bin: bin, Dir: dir, data: filepath.Join(dir, "data")}
	if err := s.prepare(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.run("initdb", "-D", s.data, "-U", "app", "--auth=trust", "-E", "UTF8", "-N", "--no-instructions"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if s.Port, err = freeport.Port(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.watchdog()
	return s, nil
}

// watchdog starts a shell that stops PostgreSQL (immediate shutdown) and
// removes its directory if this process dies without Stop (a panic, a
// -timeout kill), so no server is left running.
func (s *Server) watchdog() {
	script := `while kill -0 "$1" 2>/dev/null; do sleep 1; done
pid=$(head -n 1 "$2/postmaster.pid" 2>/dev/null) && kill -QUIT "$pid" 2>/dev/null
sleep 2; rm -rf "$3"`
	cmd := exec.Command("/bin/sh", "-c", script, "watchdog", strconv.Itoa(os.Getpid()), s.data, s.Dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // outlives a kill of our process group
	if err := cmd.Start(); err == nil {
		go func() { _ = cmd.Wait() }()
	}
}

// prepare opens the directory to the postgres user when running as root
// (initdb and postgres refuse to run as root).
func (s *Server) prepare() error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root and there is no postgres user to run PostgreSQL as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if err := os.Chmod(s.Dir, 0o755); err != nil {
		return err
	}
	return os.Chown(s.Dir, uid, gid)
}

func (s *Server) run(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(s.Bin, name), args...)
	cmd.Dir = s.Dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %w\n%s", name, args, err, out)
	}
	return nil
}

func (s *Server) start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200", s.Port, s.Dir)
	return s.run("pg_ctl", "-D", s.data, "-l", filepath.Join(s.Dir, "log"), "-w", "-t", "120", "-o", opts, "start")
}

// Restart stops PostgreSQL (fast: connections are closed) and starts it again.
func (s *Server) Restart() error {
	if err := s.run("pg_ctl", "-D", s.data, "-m", "fast", "-w", "-t", "120", "stop"); err != nil {
		return err
	}
	return s.start()
}

// Stop stops PostgreSQL at once and removes its directory.
func (s *Server) Stop() {
	_ = s.run("pg_ctl", "-D", s.data, "-m", "immediate", "-w", "-t", "60", "stop")
	os.RemoveAll(s.Dir)
}

// URL is the URL of database db on s, over TCP.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://app@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// Processes returns the PIDs of the postmaster and of its children
// (backends and auxiliary processes) now running.
func (s *Server) Processes() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(s.data, "postmaster.pid"))
	if err != nil {
		return nil, fmt.Errorf("reading postmaster.pid: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pm, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return nil, fmt.Errorf("postmaster.pid: %w", err)
	}
	pids := []int{pm}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after ')'.
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 1 && f[1] == strconv.Itoa(pm) {
				pids = append(pids, pid)
			}
		}
	}
	return pids, nil
}
