package perf

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// fraised is the binary the smoke tests run, built at most once per run.
var fraised struct {
	once      sync.Once
	dir, path string
	err       error
}

// fraisedBin returns the fraised binary under test: $FRAISED_BIN (make
// test's bin/fraised), or ./cmd/fraised built once for the package, static
// and with -trimpath like `make build` (so it shares make build's cache).
func fraisedBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FRAISED_BIN"); p != "" {
		return p
	}
	fraised.once.Do(func() {
		root, err := filepath.Abs("..")
		if err != nil {
			fraised.err = err
			return
		}
		if fraised.dir, fraised.err = os.MkdirTemp("", "fraised-perf"); fraised.err != nil {
			return
		}
		fraised.path = filepath.Join(fraised.dir, "fraised")
		build := exec.Command("go", "build", "-trimpath", "-o", fraised.path, "./cmd/fraised")
		build.Dir = root
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fraised.err = &buildError{err, out}
		}
	})
	if fraised.err != nil {
		t.Fatalf("cannot build cmd/fraised: %v", fraised.err)
	}
	return fraised.path
}

// removeFraisedBin removes the binary fraisedBin built, if any.
func removeFraisedBin() {
	if fraised.dir != "" {
		os.RemoveAll(fraised.dir)
	}
}

// buildError is a failed go build with its output.
type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + string(e.out) }
