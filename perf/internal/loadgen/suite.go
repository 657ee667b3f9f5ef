package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fraised/fraised/internal/freeport"
)

// Server says how to start one target. Args may hold {ws}, {pub}, {unix}
// and {pprof}, replaced by free loopback addresses (a Unix socket path).
type Server struct {
	Name    string
	Args    []string
	Env     []string // added to the environment
	Publish string   // "tcp", "unix" or "http"
}

// FraisedLimitsOff lifts fraised's abuse limits, which a load test from four
// source addresses trips by design; environment variables (not flags) so
// that a renamed limit is ignored rather than fatal.
var FraisedLimitsOff = []string{
	"FRAISED_LIMIT_IP_CONNECTIONS=0",
	"FRAISED_LIMIT_IDENTITY_SUBSCRIBES=0",
	"FRAISED_LIMIT_SUBSCRIBES=0",
	"FRAISED_LIMIT_MESSAGES=0",
	"FRAISED_MAX_IDENTITY_CONNECTIONS=0",
	"FRAISED_MAX_IDENTITY_SUBSCRIPTIONS=0",
	"FRAISED_MAX_IP_CONNECTIONS=0",
}

// Servers returns the standard targets, with binaries in binDir and the
// schema at schema.
func Servers(binDir, schema string) map[string]Server {
	b := func(name string) string { return filepath.Join(binDir, name) }
	return map[string]Server{
		"fraised": {Name: "fraised", Publish: "tcp", Env: FraisedLimitsOff, Args: []string{b("fraised"), "--schema", schema,
			"--listen", "{ws}", "--publish-listen", "{pub}", "--publish-unix", "{unix}", "--pprof-listen", "{pprof}", "--log-level", "warn"}},
		"fraised-unix": {Name: "fraised-unix", Publish: "unix", Env: FraisedLimitsOff, Args: []string{b("fraised"), "--schema", schema,
			"--listen", "{ws}", "--publish-listen", "{pub}", "--publish-unix", "{unix}", "--log-level", "warn"}},
		"gnet-floor": {Name: "gnet-floor", Publish: "tcp", Args: []string{b("floor-gnet"),
			"--listen", "{ws}", "--publish-listen", "{pub}", "--publish-unix", "{unix}", "--pprof-listen", "{pprof}"}},
		"net-floor": {Name: "net-floor", Publish: "tcp", Args: []string{b("floor-net"),
			"--listen", "{ws}", "--publish-listen", "{pub}", "--publish-unix", "{unix}", "--pprof-listen", "{pprof}"}},
		"gqlgen": {Name: "gqlgen", Publish: "http", Args: []string{b("gqlgen-server"), "--listen", "{ws}"}},
	}
}

// Suite runs scenarios against targets, a fresh server per pair.
type Suite struct {
	Servers    []Server
	Scenarios  []Scenario
	ServerCPU  int    // pin servers to this CPU with taskset; -1 = no pinning
	Out        string // JSON lines appended here ("" = none)
	LogDir     string // server logs; "" = discard
	ProfileDir string // if set, CPU and alloc profiles of servers with {pprof}
	SourceIPs  []netip.Addr
	Receivers  int
	Log        *slog.Logger
	// PG makes a database for a PG scenario (Scenario.Source), the fraised
	// schema installed, and returns its URL; nil: PG scenarios fail.
	PG func(ctx context.Context) (string, error)
}

// Run runs every scenario against every server and returns the results; a
// failing pair is logged and recorded as a result with a note.
func (s *Suite) Run(ctx context.Context) []Result {
	var out []Result
	for _, sc := range s.Scenarios {
		for _, srv := range s.Servers {
			if ctx.Err() != nil {
				return out
			}
			res, err := s.one(ctx, srv, sc)
			if err != nil {
				s.Log.Error("scenario failed", "target", srv.Name, "scenario", sc.Name, "err", err)
				res.Target, res.Scenario = srv.Name, sc.Name
				res.Notes = append(res.Notes, "FAILED: "+err.Error())
			}
			out = append(out, res)
			if s.Out != "" {
				if err := AppendJSONL(s.Out, res); err != nil {
					s.Log.Error("cannot record result", "err", err)
				}
			}
		}
	}
	return out
}

// waitIdle waits up to limit for a second in which the machine is busy
// less than noisyPct of a core (other sessions' builds and tests share it),
// so a scenario starts on a quiet machine when one can be had.
func (s *Suite) waitIdle(ctx context.Context, limit time.Duration) {
	end := time.Now().Add(limit)
	for time.Now().Before(end) && ctx.Err() == nil {
		b0 := machineBusy()
		time.Sleep(time.Second)
		if pct := 100 * (machineBusy() - b0).Seconds(); pct < noisyPct {
			return
		}
	}
	s.Log.Warn("the machine stayed busy; running anyway", "waited", limit)
}

func (s *Suite) one(ctx context.Context, srv Server, sc Scenario) (Result, error) {
	s.waitIdle(ctx, time.Minute)
	addrs := map[string]string{}
	for _, k := range []string{"{ws}", "{pub}", "{pprof}"} {
		a, err := FreeAddr()
		if err != nil {
			return Result{}, err
		}
		addrs[k] = a
	}
	unixPath := filepath.Join(os.TempDir(), fmt.Sprintf("fraised-bench-%d-%s.sock", os.Getpid(), srv.Name))
	addrs["{unix}"] = unixPath
	defer os.Remove(unixPath)
	var args []string
	for _, a := range srv.Args {
		for k, v := range addrs {
			a = strings.ReplaceAll(a, k, v)
		}
		args = append(args, a)
	}
	var db string
	if sc.Source != "" {
		var err error
		if db, err = s.pgDatabase(ctx, srv); err != nil {
			return Result{}, err
		}
		args = append(args, "--source", sc.SourceURL(db))
	}
	p, err := s.start(ctx, srv.Name+"-"+sc.Name, args, srv.Env)
	if err != nil {
		return Result{}, err
	}
	defer p.stop()
	if err := WaitListening(ctx, addrs["{ws}"], 15*time.Second); err != nil {
		return Result{}, fmt.Errorf("server %s did not listen (see its log): %w", srv.Name, err)
	}
	t := Target{Name: srv.Name, WS: addrs["{ws}"], PID: p.cmd.Process.Pid, SourceIPs: s.SourceIPs, Receivers: s.Receivers, PublishPG: db}
	switch srv.Publish {
	case "http":
		t.PublishHTTP = "http://" + addrs["{ws}"]
	case "unix":
		t.PublishUnix = unixPath
	default:
		t.PublishTCP = addrs["{pub}"]
	}
	if s.ProfileDir != "" && hasPprof(srv.Args) {
		t.Profile = profiler(s.Log, addrs["{pprof}"], filepath.Join(s.ProfileDir, srv.Name+"-"+sc.Name))
	}
	time.Sleep(200 * time.Millisecond) // let the publish listener come up too
	return Run(ctx, t, sc, s.Log)
}

// pgDatabase returns a new database for a PG scenario against srv.
func (s *Suite) pgDatabase(ctx context.Context, srv Server) (string, error) {
	if !strings.HasPrefix(srv.Name, "fraised") {
		return "", fmt.Errorf("the PG scenarios read PostgreSQL with fraised --source: target %s cannot", srv.Name)
	}
	if s.PG == nil {
		return "", errors.New("a PG scenario needs PostgreSQL (fraised-bench suite starts one unless --pg-url is given)")
	}
	return s.PG(ctx)
}

func hasPprof(args []string) bool {
	for _, a := range args {
		if strings.Contains(a, "{pprof}") {
			return true
		}
	}
	return false
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  io.Closer
}

func (s *Suite) start(ctx context.Context, name string, args, env []string) (*proc, error) {
	if s.ServerCPU >= 0 {
		if tp, err := exec.LookPath("taskset"); err == nil {
			args = append([]string{tp, "-c", strconv.Itoa(s.ServerCPU)}, args...)
		}
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, done: make(chan struct{})}
	if s.LogDir != "" {
		f, err := os.Create(filepath.Join(s.LogDir, name+".log"))
		if err != nil {
			return nil, fmt.Errorf("cannot create the server log: %w", err)
		}
		cmd.Stdout, cmd.Stderr, p.log = f, f, f
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %v (built? run make perf-build): %w", args, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	s.Log.Info("server started", "name", name, "pid", cmd.Process.Pid, "args", strings.Join(args, " "))
	return p, nil
}

// stop sends SIGTERM, then SIGKILL after 5 s, and waits.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	if p.log != nil {
		_ = p.log.Close()
	}
}

// FreeAddr returns a loopback TCP address free right now.
// It is below the kernel's ephemeral range, so no connection takes it
// before the server binds it (see internal/freeport).
func FreeAddr() (string, error) { return freeport.Addr() }

// WaitListening dials addr until it accepts or limit passes.
func WaitListening(ctx context.Context, addr string, limit time.Duration) error {
	end := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(end) || ctx.Err() != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// profiler fetches a CPU profile covering the measured phase and an
// allocation profile after it, into prefix.cpu.pprof and prefix.allocs.pprof.
func profiler(log *slog.Logger, addr, prefix string) func(time.Duration) func() {
	return func(d time.Duration) func() {
		secs := max(1, min(int(d.Seconds()), 30))
		done := make(chan struct{})
		go func() {
			defer close(done)
			fetch(log, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), prefix+".cpu.pprof")
		}()
		return func() {
			<-done
			fetch(log, "http://"+addr+"/debug/pprof/allocs", prefix+".allocs.pprof")
		}
	}
}

func fetch(log *slog.Logger, url, path string) {
	c := &http.Client{Timeout: 60 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		log.Error("cannot fetch a profile", "url", url, "err", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		log.Error("cannot fetch a profile", "url", url, "status", resp.Status)
		return
	}
	f, err := os.Create(path)
	if err != nil {
		log.Error("cannot write a profile", "err", err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		log.Error("cannot write a profile", "err", err)
	}
	log.Info("profile written", "path", path)
}
