package perf

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/fraised/fraised/perf/internal/gnetfloor"
	"github.com/fraised/fraised/perf/internal/loadgen"
	"github.com/fraised/fraised/perf/internal/netfloor"
)

// smoke is the tiny S3: 10 connections, 100 events at 1000/s.
func smoke(t *testing.T) loadgen.Scenario {
	t.Helper()
	sc, err := loadgen.Lookup("smoke")
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func freeAddr(t *testing.T) string {
	t.Helper()
	a, err := loadgen.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// checkComplete asserts completeness only: no timing thresholds.
func checkComplete(t *testing.T, res loadgen.Result, sc loadgen.Scenario) {
	t.Helper()
	want := sc.Events * int64(sc.Conns*sc.SubsPerConn)
	if res.Expected != want || res.Delivered != want || res.SubsShort != 0 {
		t.Fatalf("delivered %d of %d (expected %d, %d subscriptions short); notes: %v",
			res.Delivered, want, res.Expected, res.SubsShort, res.Notes)
	}
	if res.ConnFailed != 0 || res.Unknown != 0 || res.ServerErrors != 0 || res.PublishErrors != 0 {
		t.Fatalf("errors: %+v", res)
	}
}

type floorRun func(ctx context.Context, ws, pub, unix string) error

func runFloor(t *testing.T, run floorRun, overUnix bool) {
	ws, pub := freeAddr(t), freeAddr(t)
	unixPath := filepath.Join(t.TempDir(), "publish.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, ws, pub, unixPath) }()
	if err := loadgen.WaitListening(ctx, pub, 5*time.Second); err != nil {
		t.Fatalf("floor did not listen: %v", err)
	}
	tgt := loadgen.Target{Name: "floor", WS: ws, PublishTCP: pub, PID: os.Getpid()}
	if overUnix {
		tgt.PublishTCP, tgt.PublishUnix = "", unixPath
	}
	sc := smoke(t)
	res, err := loadgen.Run(ctx, tgt, sc, quiet())
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, res, sc)
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("floor stopped with %v", err)
	}
}

func TestSmokeFloors(t *testing.T) {
	gnetRun := func(ctx context.Context, ws, pub, unix string) error {
		return gnetfloor.Run(ctx, gnetfloor.Config{Listen: ws, PublishListen: pub, PublishUnix: unix, Logger: quiet()})
	}
	netRun := func(ctx context.Context, ws, pub, unix string) error {
		return netfloor.Run(ctx, netfloor.Config{Listen: ws, PublishListen: pub, PublishUnix: unix, Logger: quiet()})
	}
	tests := []struct {
		name     string
		run      floorRun
		overUnix bool
	}{
		{"gnet floor, RESP over TCP", gnetRun, false},
		{"gnet floor, RESP over a Unix socket", gnetRun, true},
		{"net floor, RESP over TCP", netRun, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runFloor(t, tt.run, tt.overUnix) })
	}
}

// TestSmokeFraised runs the smoke scenario against fraised (fraisedBin)
// on free ports.
func TestSmokeFraised(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	bin := fraisedBin(t)
	ws, pub := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--schema", filepath.Join(root, "examples", "schema.graphql"),
		"--listen", ws, "--publish-listen", pub, "--log-level", "warn")
	cmd.Env = append(os.Environ(), loadgen.FraisedLimitsOff...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start fraised: %v", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for _, a := range []string{ws, pub} {
		if err := loadgen.WaitListening(ctx, a, 10*time.Second); err != nil {
			t.Fatalf("fraised did not listen on %s: %v", a, err)
		}
	}
	sc := smoke(t)
	res, err := loadgen.Run(ctx, loadgen.Target{Name: "fraised", WS: ws, PublishTCP: pub, PID: cmd.Process.Pid}, sc, quiet())
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, res, sc)
}
