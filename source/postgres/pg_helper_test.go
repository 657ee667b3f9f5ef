package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fraised/fraised/source"
)

// A real PostgreSQL for the package's tests: initdb into a temporary
// directory, started on a free loopback port the first time a test needs it,
// stopped by TestMain. Each test gets its own database.

// requireEnv makes a missing PostgreSQL a failure instead of a skip (.ci/run
// sets it).
const requireEnv = "FRAISED_REQUIRE_POSTGRES"

type pgServer struct {
	bin, dir, data string
	port           int
	cred           *syscall.Credential // run as this user (initdb refuses root)
}

var (
	pgOnce   sync.Once
	pgShared *pgServer
	pgErr    error
	dbSeq    atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pgShared != nil {
		pgShared.stop()
	}
	os.Exit(code)
}

// needPG returns the shared server, starting it on first use. It skips the
// test when PostgreSQL is not installed, unless FRAISED_REQUIRE_POSTGRES is set.
func needPG(t testing.TB) *pgServer {
	t.Helper()
	pgOnce.Do(func() { pgShared, pgErr = startPG() })
	if pgErr != nil {
		if errors.Is(pgErr, errNoPostgres) && os.Getenv(requireEnv) == "" {
			t.Skipf("%v (set %s=1 to make this a failure)", pgErr, requireEnv)
		}
		t.Fatalf("PostgreSQL for the tests: %v", pgErr)
	}
	return pgShared
}

var errNoPostgres = errors.New("PostgreSQL is not installed (apt-get install postgresql)")

func findPGBin() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return filepath.Dir(p), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(matches) == 0 {
		return "", errNoPostgres
	}
	sort.Slice(matches, func(i, j int) bool { return pgMajor(matches[i]) > pgMajor(matches[j]) })
	return filepath.Dir(matches[0]), nil
}

func pgMajor(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

func startPG() (*pgServer, error) {
	bin, err := findPGBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "fraised-pg-")
	if err != nil {
		return nil, err
	}
	s := &pgServer{bin: bin, dir: dir, data: filepath.Join(dir, "data")}
	if err := s.prepare(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.run("initdb", "-D", s.data, "-U", "app", "--auth=trust", "-E", "UTF8", "-N", "--no-instructions"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if s.port, err = freePort(); err != nil {
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
// removes its directory if this test process dies without TestMain's
// cleanup (a panic, a -timeout kill), so no server is left running.
func (s *pgServer) watchdog() {
	script := `while kill -0 "$1" 2>/dev/null; do sleep 1; done
pid=$(head -n 1 "$2/postmaster.pid" 2>/dev/null) && kill -QUIT "$pid" 2>/dev/null
sleep 2; rm -rf "$3"`
	cmd := exec.Command("/bin/sh", "-c", script, "watchdog", strconv.Itoa(os.Getpid()), s.data, s.dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // outlives a kill of our process group
	if err := cmd.Start(); err == nil {
		go func() { _ = cmd.Wait() }()
	}
}

// prepare opens the directory to the postgres user when the tests run as
// root (initdb and postgres refuse to run as root).
func (s *pgServer) prepare() error {
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
	if err := os.Chmod(s.dir, 0o755); err != nil {
		return err
	}
	return os.Chown(s.dir, uid, gid)
}

func (s *pgServer) run(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %w\n%s", name, args, err, out)
	}
	return nil
}

func (s *pgServer) start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200", s.port, s.dir)
	return s.run("pg_ctl", "-D", s.data, "-l", filepath.Join(s.dir, "log"), "-w", "-t", "120", "-o", opts, "start")
}

// restart stops PostgreSQL (fast: connections are closed) and starts it again.
func (s *pgServer) restart() error {
	if err := s.run("pg_ctl", "-D", s.data, "-m", "fast", "-w", "-t", "120", "stop"); err != nil {
		return err
	}
	return s.start()
}

func (s *pgServer) stop() {
	_ = s.run("pg_ctl", "-D", s.data, "-m", "immediate", "-w", "-t", "60", "stop")
	os.RemoveAll(s.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *pgServer) url(db string) string {
	return fmt.Sprintf("postgres://app@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// newDB creates an empty database with the fraised schema installed and
// returns its URL.
func newDB(t testing.TB) string {
	t.Helper()
	s := needPG(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	admin := connect(t, s.url("postgres"))
	if _, err := admin.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("CREATE DATABASE: %v", err)
	}
	u := s.url(name)
	if err := Install(context.Background(), connect(t, u)); err != nil {
		t.Fatalf("Install: %v", err)
	}
	return u
}

// connect opens an application connection, closed when the test ends.
func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func exec1(t testing.TB, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// event is what the fake sink saw.
type event struct {
	topic   string
	payload []byte
	at      time.Time
}

// fakeSink records events, refusing (like the server) an empty or long topic
// and a payload that is not a JSON object. It is the one stand-in of these
// tests: the server wiring comes later.
type fakeSink struct {
	mu      sync.Mutex
	events  []event
	refused int
	onEvent func(topic string, payload []byte) // optional, called before recording
}

var _ source.Sink = (*fakeSink)(nil)

func (f *fakeSink) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var obj map[string]any
	if topic == "" || len(topic) > maxTopicLen || json.Unmarshal(payload, &obj) != nil || obj == nil {
		f.mu.Lock()
		f.refused++
		f.mu.Unlock()
		return fmt.Errorf("fake sink: %w", source.ErrInvalid)
	}
	if f.onEvent != nil {
		f.onEvent(topic, payload)
	}
	f.mu.Lock()
	f.events = append(f.events, event{topic: topic, payload: append([]byte(nil), payload...), at: time.Now()})
	f.mu.Unlock()
	return nil
}

func (f *fakeSink) refusedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

func (f *fakeSink) snapshot() []event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]event(nil), f.events...)
}

// waitN waits (generously) until at least n events arrived and returns them.
func (f *fakeSink) waitN(t testing.TB, n int, within time.Duration) []event {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ev := f.snapshot()
		if len(ev) >= n {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d events in %s, want %d", len(ev), within, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runSource parses url, starts the source and returns it with a stop
// function that cancels it and waits for Run to return (its error).
func runSource(t testing.TB, url string, sink source.Sink) (*Source, func() error) {
	t.Helper()
	cfg, err := ParseURL(url)
	if err != nil {
		t.Fatalf("ParseURL: %v", err)
	}
	return runConfig(t, cfg, sink)
}

func runConfig(t testing.TB, cfg *Config, sink source.Sink) (*Source, func() error) {
	t.Helper()
	src := New(cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(60 * time.Second):
				runErr = errors.New("Run did not return within 60s of cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return src, stop
}

// waitHealthy waits until the source reports healthy.
// runHealthy runs a source on url into a new fakeSink and waits until it
// is healthy.
func runHealthy(t testing.TB, url string) (*fakeSink, *Source) {
	t.Helper()
	sink := &fakeSink{}
	src, _ := runSource(t, url, sink)
	waitHealthy(t, src)
	return sink, src
}

func waitHealthy(t testing.TB, src *Source) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for src.Healthy() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("source not healthy after 30s: %v", src.Healthy())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// publish runs fraised.publish in its own transaction and returns the id.
func publish(t testing.TB, c *pgx.Conn, topic, payload string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var id int64
	if err := c.QueryRow(ctx, "SELECT fraised.publish($1, $2::jsonb)", topic, payload).Scan(&id); err != nil {
		t.Fatalf("fraised.publish(%q): %v", topic, err)
	}
	return id
}
