// Command fraised-bench is fraised's load harness. Subcommands:
//
//	run    one scenario against a running server (--pid for /proc sampling)
//	suite  scenarios × targets, a fresh server (pinned with taskset) for each
//	report JSON lines → Markdown tables
//
// Every run is bounded in time and stops by itself; see perf/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fraised/fraised/internal/pgtest"
	"github.com/fraised/fraised/perf/internal/loadgen"
	"github.com/fraised/fraised/source/postgres"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var err error
	switch os.Args[1] {
	case "run":
		err = runCmd(os.Args[2:], log)
	case "suite":
		err = suiteCmd(os.Args[2:], log)
	case "report":
		err = reportCmd(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fraised-bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: fraised-bench run|suite|report [flags]  (-h after a subcommand lists its flags)")
	os.Exit(2)
}

// common are the flags of run and suite.
type common struct {
	sourceIPs string
	receivers int
	out, md   string
	timeout   time.Duration
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.sourceIPs, "source-ips", "127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5", "loopback source addresses, round robin (empty: kernel's choice)")
	fs.IntVar(&c.receivers, "receivers", 2, "epoll receiver goroutines")
	fs.StringVar(&c.out, "out", "", "append a JSON line per scenario to this file")
	fs.StringVar(&c.md, "md", "", "write the Markdown tables of -out's whole content here")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Minute, "stop everything after this long")
}

func (c *common) ips() ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range strings.Split(c.sourceIPs, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("bad --source-ips entry %q: %w", s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func (c *common) context() (context.Context, context.CancelFunc) {
	// Receivers lock OS threads; keep Ps free for the publisher and timers.
	runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), c.receivers+2))
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	return ctx, func() { stop(); cancel() }
}

func runCmd(args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var c common
	c.register(fs)
	var t loadgen.Target
	fs.StringVar(&t.Name, "target", "fraised", "target name in the results")
	fs.StringVar(&t.WS, "ws", "127.0.0.1:8080", "WebSocket host:port")
	fs.StringVar(&t.PublishTCP, "publish", "127.0.0.1:4001", "RESP publish host:port")
	fs.StringVar(&t.PublishUnix, "publish-unix", "", "RESP publish Unix socket (overrides --publish)")
	fs.StringVar(&t.PublishHTTP, "publish-http", "", "HTTP publish base URL, e.g. http://127.0.0.1:8080 (overrides both)")
	fs.StringVar(&t.Token, "token", "", "bearer token for --publish-http")
	fs.StringVar(&t.PublishPG, "publish-pg", "", "PG scenarios: the database URL rows are committed to (fraised must read it with --source; see the scenario's SourceURL)")
	fs.IntVar(&t.PID, "pid", 0, "server PID for RSS/CPU sampling (0: none)")
	scName := fs.String("scenario", "S3", "standard scenario to start from")
	conns := fs.Int("conns", 0, "override: connections")
	subs := fs.Int("subs", 0, "override: subscriptions per connection")
	topics := fs.Int("topics", 0, "override: topics")
	rate := fs.Float64("rate", 0, "override: events per second")
	dur := fs.Duration("duration", 0, "override: publishing time")
	events := fs.Int64("events", 0, "override: exact number of events")
	slow := fs.Int("slow", -1, "override: slow connections")
	_ = fs.Parse(args)
	sc, err := loadgen.Lookup(*scName)
	if err != nil {
		return err
	}
	overrideInt(&sc.Conns, *conns)
	overrideInt(&sc.SubsPerConn, *subs)
	overrideInt(&sc.Topics, *topics)
	if *rate > 0 {
		sc.Rate, sc.Steps = *rate, nil
	}
	if *dur > 0 {
		sc.Duration, sc.Events = *dur, 0
	}
	if *events > 0 {
		sc.Events = *events
	}
	if *slow >= 0 {
		sc.Slow = *slow
	}
	if t.PublishHTTP != "" || t.PublishUnix != "" {
		t.PublishTCP = ""
	}
	if t.SourceIPs, err = c.ips(); err != nil {
		return err
	}
	t.Receivers = c.receivers
	ctx, cancel := c.context()
	defer cancel()
	res, err := loadgen.Run(ctx, t, sc, log)
	if err != nil {
		return err
	}
	return emit(c, []loadgen.Result{res})
}

func overrideInt(dst *int, v int) {
	if v > 0 {
		*dst = v
	}
}

func suiteCmd(args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("suite", flag.ExitOnError)
	var c common
	c.register(fs)
	targets := fs.String("targets", "fraised,gnet-floor", "comma-separated: fraised, fraised-unix, gnet-floor, net-floor, gqlgen")
	scenarios := fs.String("scenarios", "S1-1k,S1-10k,S1-19k,S1b,S2,S3,S4,S5,S6", "comma-separated standard scenarios")
	binDir := fs.String("bin-dir", "bin", "directory with fraised, floor-gnet, floor-net, gqlgen-server")
	schema := fs.String("schema", "examples/schema.graphql", "schema file for fraised")
	cpu := fs.Int("server-cpu", 0, "pin each server to this CPU with taskset (-1: no pinning)")
	logDir := fs.String("log-dir", "", "write server logs here")
	profDir := fs.String("profile-dir", "", "fetch CPU and alloc profiles of servers with --pprof-listen into this directory")
	pgURL := fs.String("pg-url", "", "PG scenarios: an existing database with the fraised schema (fraised pg install); empty: start a throwaway PostgreSQL (initdb, fsync off)")
	pgCPUs := fs.String("pg-cpus", "all", "PG scenarios, the throwaway PostgreSQL: all (free to run on every CPU, as a database server is) or harness (the harness's own CPUs, inherited from taskset)")
	_ = fs.Parse(args)
	s := &loadgen.Suite{ServerCPU: *cpu, Out: c.out, LogDir: *logDir, ProfileDir: *profDir, Receivers: c.receivers, Log: log}
	if *pgCPUs != "all" && *pgCPUs != "harness" {
		return fmt.Errorf("--pg-cpus is %q: give all or harness", *pgCPUs)
	}
	stopPG := setupPG(s, *pgURL, *scenarios, *pgCPUs == "all")
	defer stopPG()
	var err error
	if s.SourceIPs, err = c.ips(); err != nil {
		return err
	}
	all := loadgen.Servers(*binDir, *schema)
	for _, name := range strings.Split(*targets, ",") {
		srv, ok := all[strings.TrimSpace(name)]
		if !ok {
			return fmt.Errorf("unknown target %q", name)
		}
		s.Servers = append(s.Servers, srv)
	}
	for _, name := range strings.Split(*scenarios, ",") {
		sc, err := loadgen.Lookup(strings.TrimSpace(name))
		if err != nil {
			return err
		}
		s.Scenarios = append(s.Scenarios, sc)
	}
	for _, d := range []string{*logDir, *profDir} {
		if d != "" {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("cannot create %s: %w", d, err)
			}
		}
	}
	ctx, cancel := c.context()
	defer cancel()
	res := s.Run(ctx)
	if c.out != "" {
		return emit(c, nil)
	}
	return emit(c, res)
}

// emit prints the tables of rs (or of the whole -out file) and writes -md.
func emit(c common, rs []loadgen.Result) error {
	if c.out != "" {
		if rs != nil {
			for _, r := range rs {
				if err := loadgen.AppendJSONL(c.out, r); err != nil {
					return err
				}
			}
		}
		all, err := loadgen.ReadJSONL(c.out)
		if err != nil {
			return err
		}
		rs = all
	}
	var b strings.Builder
	writeTables(&b, rs)
	fmt.Print(b.String())
	if c.md != "" {
		if err := os.WriteFile(c.md, []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("cannot write %s: %w", c.md, err)
		}
	}
	return nil
}

func writeTables(b *strings.Builder, rs []loadgen.Result) {
	if len(rs) > 0 {
		fmt.Fprintf(b, "Machine: %s. Servers pinned to one core, harness to the other.\n\n", rs[len(rs)-1].Machine)
	}
	b.WriteString("### Side by side\n\n")
	loadgen.WriteSummary(b, rs)
	b.WriteString("\n### Every run\n\n")
	loadgen.WriteDetail(b, rs)
}

func reportCmd(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	in := fs.String("in", "perf/results/latest.jsonl", "JSON lines to read")
	out := fs.String("out", "", "write the Markdown here too")
	_ = fs.Parse(args)
	rs, err := loadgen.ReadJSONL(*in)
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		return errors.New("no results in " + *in)
	}
	var b strings.Builder
	writeTables(&b, rs)
	fmt.Print(b.String())
	if *out != "" {
		return os.WriteFile(*out, []byte(b.String()), 0o644)
	}
	return nil
}

// setupPG gives the suite its PostgreSQL when a PG scenario is asked for:
// the database at url, or a fresh database with the schema installed in a
// throwaway server started here (stopped by the function returned).
func setupPG(s *loadgen.Suite, url, scenarios string, everyCPU bool) (stop func()) {
	if !strings.Contains(scenarios, "PG") && !strings.Contains(scenarios, "-pg-") {
		return func() {}
	}
	if url != "" {
		s.PG = func(context.Context) (string, error) { return url, nil }
		return func() {}
	}
	var once sync.Once
	var srv *pgtest.Server
	var startErr error
	s.PG = func(ctx context.Context) (string, error) {
		once.Do(func() {
			if srv, startErr = pgtest.Start(); startErr == nil && everyCPU {
				startErr = unpin(srv)
			}
		})
		if startErr != nil {
			return "", fmt.Errorf("cannot start PostgreSQL for the PG scenarios (or give --pg-url): %w", startErr)
		}
		db, err := srv.CreateDatabase(ctx)
		if err != nil {
			return "", err
		}
		cfg, err := postgres.ParseURL(db)
		if err != nil {
			return "", err
		}
		return db, postgres.InstallConfig(ctx, cfg)
	}
	return func() {
		if srv != nil {
			srv.Stop()
		}
	}
}

// unpin lets PostgreSQL's processes run on every CPU: started from a
// harness under taskset they would inherit its one CPU, and PostgreSQL's
// backends would then queue behind the harness on a core it keeps busy
// (the writers stalled for hundreds of milliseconds so) instead of running
// where a database server runs, anywhere. Backends forked later inherit
// the postmaster's affinity.
func unpin(srv *pgtest.Server) error {
	pids, err := srv.Processes()
	if err != nil {
		return err
	}
	var all unix.CPUSet // every CPU: the kernel keeps those that exist (and the cgroup allows)
	for i := range len(all) * 64 {
		all.Set(i)
	}
	for i, pid := range pids {
		err := unix.SchedSetaffinity(pid, &all)
		if err != nil && (i == 0 || !errors.Is(err, unix.ESRCH)) { // a child may have exited meanwhile
			return fmt.Errorf("cannot let PostgreSQL (pid %d) run on every CPU: %w (or give --pg-cpus harness)", pid, err)
		}
	}
	return nil
}
