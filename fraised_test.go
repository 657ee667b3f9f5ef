package fraised_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraised/fraised"
	"github.com/fraised/fraised/server"
)

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func start(t *testing.T, opts fraised.Options) *fraised.Server {
	t.Helper()
	if opts.Schema == "" && opts.SchemaFile == "" {
		opts.Schema = exampleSchema
	}
	opts.Server.Listen = "127.0.0.1:0"
	opts.Server.Logger = quiet()
	srv, err := fraised.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv
}

func TestPublishRefusals(t *testing.T) {
	srv, err := fraised.New(fraised.Options{Schema: exampleSchema, Server: server.Options{Listen: "127.0.0.1:0", Logger: quiet()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := srv.Publish(ctx, "t", []byte(`{}`)); !errors.Is(err, fraised.ErrNotStarted) {
		t.Errorf("before Start: %v, want ErrNotStarted", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ topic, payload string }{
		{"", `{}`}, {strings.Repeat("t", 1025), `{}`}, {"t", `[1]`}, {"t", `{"a":`}, {"t", `{"big":"` + strings.Repeat("x", server.DefaultMaxPayload) + `"}`},
	} {
		if err := srv.Publish(ctx, c.topic, []byte(c.payload)); !errors.Is(err, fraised.ErrInvalid) {
			t.Errorf("Publish(%.20q, %.20q): %v, want ErrInvalid", c.topic, c.payload, err)
		}
	}
	if err := srv.Publish(ctx, "t", []byte(`{"seq":1}`)); err != nil {
		t.Errorf("a valid event: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := srv.Publish(cancelled, "t", []byte(`{}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("with a cancelled context: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); srv.Stats().Published == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond) // the dispatcher counts the event when it dispatches it
	}
	if srv.Stats().Published != 1 {
		t.Errorf("Published = %d, want 1 (only the valid event enters the ring)", srv.Stats().Published)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case <-srv.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after Shutdown")
	}
	if err := srv.Publish(ctx, "t", []byte(`{}`)); !errors.Is(err, fraised.ErrDraining) {
		t.Errorf("after Shutdown: %v, want ErrDraining", err)
	}
	if err := srv.Start(); err == nil {
		t.Error("a second Start succeeded")
	}
}

func TestSchemaOptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.graphql")
	if err := os.WriteFile(path, []byte(exampleSchema), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := fraised.New(fraised.Options{SchemaFile: path, Server: server.Options{Logger: quiet()}}); err != nil {
		t.Errorf("SchemaFile: %v", err)
	}
	for name, o := range map[string]fraised.Options{
		"none":             {},
		"both":             {Schema: exampleSchema, SchemaFile: path},
		"bad SDL":          {Schema: "type Subscription { x: Int @topic }"},
		"unknown resolver": {Schema: exampleSchema, Resolvers: map[string]fraised.Resolver{"Query.nope": nil}},
		"missing file":     {SchemaFile: path + ".missing"},
	} {
		if _, err := fraised.New(o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// TestStartReportsListenError: Start returns the listener's error, and
// Shutdown after a failed Start returns at once.
func TestStartReportsListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv, err := fraised.New(fraised.Options{Schema: exampleSchema, Server: server.Options{Listen: ln.Addr().String(), Logger: quiet()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err == nil || !strings.Contains(err.Error(), "cannot listen") {
		t.Fatalf("Start on a taken address: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown after a failed Start: %v", err)
	}
}

// TestIntrospectionOptions: the library's introspection switches reach
// the schema.
func TestIntrospectionOptions(t *testing.T) {
	srv := start(t, fraised.Options{DisableIntrospection: true})
	status, body := post(t, srv, `{"query":"{ __schema { queryType { name } } }"}`)
	if status != 200 || !strings.Contains(body, "INTROSPECTION_DISABLED") {
		t.Errorf("DisableIntrospection: %d %s", status, body)
	}
	srv = start(t, fraised.Options{IntrospectFraisedDirectives: true})
	if _, body := post(t, srv, `{"query":"{ __schema { directives { name } } }"}`); !strings.Contains(body, `"topic"`) {
		t.Errorf("IntrospectFraisedDirectives: %s", body)
	}
}

func post(t *testing.T, srv *fraised.Server, body string) (int, string) {
	t.Helper()
	resp, err := http.Post("http://"+srv.Addr().String()+"/graphql", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
