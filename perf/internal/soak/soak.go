// Package soak drives the real fraised binary through the abuses and faults
// of issue 8 (idle and slow connections, floods, slow consumers, SIGTERM
// and kill -9 under load) with a well-behaved canary subscriber and
// publisher alongside, samples the server's memory and descriptors, and
// judges each run against the targets.
//
// Every scenario is bounded in count and time, runs on 127.0.0.0/8 only
// against a fresh server with default flags, and kills the server when its
// RSS passes the kill limit so that a failing build cannot eat the machine.
package soak

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Targets and bounds shared by the scenarios.
const (
	// DefaultRSSBudget is the memory budget a server with default flags
	// must stay under in every scenario (KiB).
	DefaultRSSBudget = 1 << 20 // 1 GiB
	// DefaultRSSKill is where the sampler kills the server (KiB): the
	// machine is shared, and past it the scenario has failed anyway.
	DefaultRSSKill = 2 << 20 // 2 GiB
	// DefaultChildGOMEMLIMIT is the server's GOMEMLIMIT: the README's
	// advice for a memory-limited host, and what fraised derives its
	// global outbound budget from (a quarter of it); without it the
	// budget is a quarter of the machine's memory.
	DefaultChildGOMEMLIMIT = "768MiB"
	// DefaultChildNOFILE is the server's descriptor limit, this machine's
	// per-process limit.
	DefaultChildNOFILE = 20000
	// closeTarget is the share of clients that must receive their close
	// frame with the right code (issue 8: >= 99 %).
	closeTarget = 0.99
)

// Config says what to run and against which binary.
type Config struct {
	Bin, Schema string
	LogDir      string
	Quick       bool     // the ~2-minute subset, scaled down
	Only        []string // scenario names; empty = all (of the subset when Quick)
	GOMEMLIMIT  string   // the server's GOMEMLIMIT ("" = unset)
	RSSBudgetKB int64
	RSSKillKB   int64
	CanaryP99   time.Duration // the canary's and the light publisher's p99 target
	Log         *slog.Logger
}

// withDefaults fills the zero fields with the documented defaults.
func (c Config) withDefaults() Config {
	if c.RSSBudgetKB == 0 {
		c.RSSBudgetKB = DefaultRSSBudget
	}
	if c.RSSKillKB == 0 {
		c.RSSKillKB = DefaultRSSKill
	}
	if c.CanaryP99 == 0 {
		c.CanaryP99 = CanaryP99Limit
	}
	return c
}

// Scenario is one abuse or fault.
type Scenario struct {
	Name  string
	What  string
	Quick bool // part of the subset
	// NOFILE overrides the server's descriptor limit (full, quick).
	NOFILE [2]int
	// Ends: the scenario stops the server itself and brings its own
	// well-behaved clients, so the runner adds no canary.
	Ends bool
	// SDL, when set, is the schema the server runs with instead of
	// Config.Schema (written to a file in Config.LogDir).
	SDL string
	// Cluster: the server is node 0 of a cluster on a redis-server the
	// runner starts (Env.Redis); the scenario starts the other nodes.
	Cluster bool
	Run     func(e *Env)
}

// Env is what a scenario works with.
type Env struct {
	Ctx     context.Context
	Cfg     Config
	Child   *Child
	Sampler *Sampler
	Redis   *soakRedis // the cluster's Redis (Scenario.Cluster)
	src     sources
	res     *Result
	mu      sync.Mutex
}

// scale picks the full or the quick value.
func (e *Env) scale(full, quick int) int {
	if e.Cfg.Quick {
		return quick
	}
	return full
}

func (e *Env) scaleD(full, quick time.Duration) time.Duration {
	if e.Cfg.Quick {
		return quick
	}
	return full
}

// Fail records a missed target.
func (e *Env) Fail(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.res.Failures = append(e.res.Failures, fmt.Sprintf(format, args...))
}

// Fig records a figure for the scenario's line.
func (e *Env) Fig(key string, format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.res.Figures = append(e.res.Figures, key+"="+fmt.Sprintf(format, args...))
}

// Code counts one close outcome: a close code, or EOF, RST, TRUNC, HELD.
func (e *Env) Code(code string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.res.Codes[code]++
}

// Deliveries adds to the acknowledged and delivered totals.
func (e *Env) Deliveries(acked, delivered int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.res.Acked += acked
	e.res.Delivered += delivered
}

// restart restarts the server after a kill -9 on its addresses, records
// how long that took (figure "restart") and rebases the sampler on the
// new process; false (and a failure) when it did not come back.
func (e *Env) restart() bool {
	start := time.Now()
	if err := e.Child.Restart(e.Ctx); err != nil {
		e.Fail("restart after kill -9: %v", err)
		return false
	}
	e.Fig("restart", "%.2fs", time.Since(start).Seconds())
	e.Sampler.Rebase()
	return true
}

// alive reports whether the server is still running.
func (e *Env) alive() bool {
	select {
	case <-e.Child.Exited():
		return false
	default:
		return true
	}
}

// done reports whether the scenario should stop early: the server died or
// the run was cancelled.
func (e *Env) done() bool { return !e.alive() || e.Ctx.Err() != nil }

// Result is one scenario's figures and verdict.
type Result struct {
	Name      string
	Pass      bool
	Took      time.Duration
	BaseKB    int64
	PeakKB    int64
	PeakFD    int
	Acked     int64
	Delivered int64
	Codes     map[string]int
	Canary    *CanaryResult
	Server    string // "running", "exit 0", "signal: killed", ...
	Figures   []string
	Failures  []string
}

// CodesString is the close outcomes, most frequent first.
func (r Result) CodesString() string {
	if len(r.Codes) == 0 {
		return "-"
	}
	keys := slices.Collect(maps.Keys(r.Codes))
	slices.SortFunc(keys, func(a, b string) int {
		if r.Codes[a] != r.Codes[b] {
			return r.Codes[b] - r.Codes[a]
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, r.Codes[k]))
	}
	return strings.Join(parts, " ")
}

// Line is the one-line summary printed after each scenario.
func (r Result) Line() string {
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	s := fmt.Sprintf("%s %-28s %5.1fs rss=%s peak=%s fds=%d acked/delivered=%d/%d codes=[%s] server=%s",
		verdict, r.Name, r.Took.Seconds(), mib(r.BaseKB), mib(r.PeakKB), r.PeakFD, r.Acked, r.Delivered, r.CodesString(), r.Server)
	if r.Canary != nil {
		s += " " + r.Canary.String()
	}
	if len(r.Figures) > 0 {
		s += " " + strings.Join(r.Figures, " ")
	}
	if len(r.Failures) > 0 {
		s += "\n     MISSED: " + strings.Join(r.Failures, "; ")
	}
	return s
}

func mib(kb int64) string { return fmt.Sprintf("%.1fMiB", float64(kb)/1024) }

// Select returns the scenarios cfg asks for, in the suite's order.
func Select(cfg Config) ([]Scenario, error) {
	all := Scenarios()
	if len(cfg.Only) == 0 {
		var out []Scenario
		for _, s := range all {
			if s.Quick || !cfg.Quick {
				out = append(out, s)
			}
		}
		return out, nil
	}
	var out []Scenario
	for _, name := range cfg.Only {
		i := slices.IndexFunc(all, func(s Scenario) bool { return s.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown scenario %q (known: %s)", name, strings.Join(Names(), ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// Names lists every scenario.
func Names() []string {
	var n []string
	for _, s := range Scenarios() {
		n = append(n, s.Name)
	}
	return n
}

// RunAll runs the scenarios one at a time, each on a fresh server, and
// calls report after each.
func RunAll(ctx context.Context, cfg Config, scs []Scenario, report func(Result)) []Result {
	cfg = cfg.withDefaults()
	var out []Result
	for _, sc := range scs {
		if ctx.Err() != nil {
			break
		}
		r := runOne(ctx, cfg, sc)
		report(r)
		out = append(out, r)
	}
	return out
}

func runOne(ctx context.Context, cfg Config, sc Scenario) Result {
	start := time.Now()
	res := &Result{Name: sc.Name, Codes: map[string]int{}}
	nofile := DefaultChildNOFILE
	if sc.NOFILE[0] > 0 {
		nofile = sc.NOFILE[0]
		if cfg.Quick {
			nofile = sc.NOFILE[1]
		}
	}
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && uint64(nofile) > lim.Max {
		nofile = int(lim.Max) // sh cannot raise the child past the hard limit
	}
	var env []string
	if cfg.GOMEMLIMIT != "" {
		env = append(env, "GOMEMLIMIT="+cfg.GOMEMLIMIT)
	}
	schema := cfg.Schema
	var err error
	if sc.SDL != "" {
		if schema, err = writeSDL(cfg.LogDir, sc.Name, sc.SDL); err != nil {
			res.Failures = append(res.Failures, err.Error())
			res.Server = "did not start"
			return *res
		}
	}
	var args []string
	var redis *soakRedis
	if sc.Cluster {
		if redis, err = startRedis(ctx, cfg.LogDir, sc.Name); err != nil {
			res.Failures = append(res.Failures, err.Error())
			res.Server = "did not start"
			return *res
		}
		defer redis.stop()
		args = []string{"--cluster", "redis://" + redis.Addr}
	}
	child, err := StartChild(ctx, ChildConfig{Bin: cfg.Bin, Schema: schema, Args: args, NOFILE: nofile, Env: env, LogDir: cfg.LogDir}, sc.Name)
	if err != nil {
		res.Failures = append(res.Failures, err.Error())
		res.Server = "did not start"
		res.Took = time.Since(start)
		return *res
	}
	e := &Env{Ctx: ctx, Cfg: cfg, Child: child, Redis: redis, res: res}
	e.Sampler = Watch(child, cfg.RSSKillKB)
	var canary *Canary
	if !sc.Ends {
		if canary, err = StartCanary(child.WS, child.Pub); err != nil {
			e.Fail("%v", err)
		}
	}
	if canary != nil || sc.Ends {
		sc.Run(e)
	}
	if canary != nil {
		cr := canary.Finish()
		res.Canary = &cr
		if !cr.OK(cfg.CanaryP99) {
			e.Fail("canary: %s (target: none lost, in order, p99 <= %v)", cr.String(), cfg.CanaryP99)
		}
	}
	res.Server = child.ExitStatus()
	if !sc.Ends && res.Server != "running" {
		e.Fail("the server exited during the scenario (%s)", res.Server)
	}
	res.BaseKB, res.PeakKB, res.PeakFD = e.Sampler.End()
	if e.Sampler.Killed() {
		e.Fail("RSS passed the kill limit %s: the server was killed", mib(cfg.RSSKillKB))
	} else if res.PeakKB > cfg.RSSBudgetKB {
		e.Fail("peak RSS %s > budget %s", mib(res.PeakKB), mib(cfg.RSSBudgetKB))
	}
	child.Stop()
	res.Pass = len(res.Failures) == 0
	res.Took = time.Since(start)
	return *res
}
