package perf

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/fraised/fraised/internal/pgtest"
	"github.com/fraised/fraised/perf/internal/loadgen"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	removeFraisedBin()
	os.Exit(code)
}

// TestSmokePostgres runs the tiny PG scenarios (10 subscribers, 100 rows
// committed one per transaction) against the real fraised reading a real
// PostgreSQL with --source, in outbox and listen mode; it asserts
// completeness only, never timing.
func TestSmokePostgres(t *testing.T) {
	pg := pgtest.Need(t)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	bin := fraisedBin(t)
	for _, name := range []string{"smoke-pg-outbox", "smoke-pg-listen"} {
		t.Run(name, func(t *testing.T) {
			sc, err := loadgen.Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			db := pg.NewDatabase(t)
			if out, err := exec.Command(bin, "pg", "install", "--source", db).CombinedOutput(); err != nil {
				t.Fatalf("fraised pg install: %v\n%s", err, out)
			}
			ws := freeAddr(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "--schema", filepath.Join(root, "examples", "schema.graphql"),
				"--listen", ws, "--publish-listen", "-", "--log-level", "warn", "--source", sc.SourceURL(db))
			cmd.Env = append(os.Environ(), loadgen.FraisedLimitsOff...)
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatalf("cannot start fraised: %v", err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			if err := loadgen.WaitListening(ctx, ws, 10*time.Second); err != nil {
				t.Fatalf("fraised did not listen on %s: %v", ws, err)
			}
			res, err := loadgen.Run(ctx, loadgen.Target{Name: "fraised", WS: ws, PublishPG: db, PID: cmd.Process.Pid}, sc, quiet())
			if err != nil {
				t.Fatal(err)
			}
			checkComplete(t, res, sc)
			if res.PublishAcked != sc.Events {
				t.Fatalf("%d of %d rows committed", res.PublishAcked, sc.Events)
			}
		})
	}
}
