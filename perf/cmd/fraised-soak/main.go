// Command fraised-soak runs the soak suite (perf/internal/soak) against the
// fraised binary: each abuse and fault of issue 8 on a fresh server with
// default flags, on loopback only, one line of figures and PASS/FAIL per
// scenario, then a Markdown table (also written to --md). It exits 1 when
// a scenario misses a target.
//
//	fraised-soak --bin bin/fraised                 # every scenario, ~10 minutes
//	fraised-soak --bin bin/fraised --quick         # the ~2-minute subset
//	fraised-soak --bin bin/fraised --only ring-bytes,kill9-restart
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fraised/fraised/perf/internal/soak"
)

// suiteTimeout bounds a whole run: the full suite takes about ten minutes.
const suiteTimeout = 30 * time.Minute

func main() {
	var (
		bin     = flag.String("bin", "bin/fraised", "the fraised binary under test")
		schema  = flag.String("schema", "examples/schema.graphql", "the schema the server loads")
		quick   = flag.Bool("quick", false, "run the ~2-minute subset, scaled down")
		only    = flag.String("only", "", "comma-separated scenarios to run (default: all); known: "+strings.Join(soak.Names(), ", "))
		md      = flag.String("md", "perf/results/soak.md", "write the Markdown summary here (empty: do not)")
		logDir  = flag.String("log-dir", "", "server logs go here (default: a temporary directory)")
		budget  = flag.Int64("rss-budget", soak.DefaultRSSBudget>>10, "peak server RSS allowed in every scenario, MiB")
		kill    = flag.Int64("rss-kill", soak.DefaultRSSKill>>10, "kill the server past this RSS, MiB (the machine is shared)")
		memlim  = flag.String("gomemlimit", soak.DefaultChildGOMEMLIMIT, "the server's GOMEMLIMIT (its outbound budget is a quarter of it; empty leaves it unset)")
		p99     = flag.Duration("canary-p99", soak.CanaryP99Limit, "p99 target of the canary's events and the light publisher's replies")
		timeout = flag.Duration("timeout", suiteTimeout, "stop the whole run after this long")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, *bin, *schema, *quick, *only, *md, *logDir, *memlim, *budget<<10, *kill<<10, *p99, *timeout); err != nil {
		log.Error("soak", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, bin, schema string, quick bool, only, md, logDir, memlim string, budgetKB, killKB int64, p99, timeout time.Duration) error {
	if err := raiseNOFILE(log); err != nil {
		return err
	}
	if logDir == "" {
		d, err := os.MkdirTemp("", "fraised-soak-logs")
		if err != nil {
			return fmt.Errorf("cannot create a log directory: %w", err)
		}
		logDir = d
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("cannot create the log directory: %w", err)
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	absSchema, err := filepath.Abs(schema)
	if err != nil {
		return err
	}
	cfg := soak.Config{Bin: abs, Schema: absSchema, LogDir: logDir, Quick: quick, GOMEMLIMIT: memlim, RSSBudgetKB: budgetKB, RSSKillKB: killKB, CanaryP99: p99, Log: log}
	if only != "" {
		cfg.Only = strings.Split(only, ",")
	}
	scs, err := soak.Select(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	mode := "full"
	if quick {
		mode = "quick"
	}
	fmt.Printf("fraised soak (%s): %d scenarios against %s, default flags, server logs in %s\n", mode, len(scs), abs, logDir)
	start := time.Now()
	rs := soak.RunAll(ctx, cfg, scs, func(r soak.Result) { fmt.Println(r.Line()) })
	header := fmt.Sprintf("fraised soak (%s), %s, %d scenarios in %.0f s; GOMEMLIMIT=%s, budget %d MiB RSS, canary p99 <= %v",
		mode, time.Now().UTC().Format("2006-01-02 15:04 UTC"), len(rs), time.Since(start).Seconds(), memlim, budgetKB>>10, p99)
	table := soak.Markdown(rs, header, p99)
	fmt.Println()
	fmt.Print(table)
	if md != "" {
		if err := os.MkdirAll(filepath.Dir(md), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(md, []byte(table), 0o644); err != nil {
			return fmt.Errorf("cannot write %s: %w", md, err)
		}
	}
	failed := 0
	for _, r := range rs {
		if !r.Pass {
			failed++
		}
	}
	if len(rs) < len(scs) {
		return fmt.Errorf("stopped after %d of %d scenarios: %v", len(rs), len(scs), ctx.Err())
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d scenarios missed a target", failed, len(rs))
	}
	return nil
}

// raiseNOFILE raises this process's open-files limit to its hard limit:
// the idle flood holds thousands of connections.
func raiseNOFILE(log *slog.Logger) error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("cannot read the open-files limit: %w", err)
	}
	lim.Cur = lim.Max
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("cannot raise the open-files limit to %d: %w", lim.Max, err)
	}
	log.Debug("open-files limit", "limit", lim.Cur)
	return nil
}
