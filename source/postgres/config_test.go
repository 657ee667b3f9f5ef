package postgres

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseURLDefaults(t *testing.T) {
	cfg, err := ParseURL("postgres://app@db.example:5433/shop?sslmode=disable&application_name=x")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != ModeOutbox || cfg.Name != "default" || cfg.Start != StartLatest || cfg.Batch != DefaultBatch ||
		cfg.Poll != DefaultPoll || cfg.QueryTimeout != DefaultQueryTimeout || cfg.RetainAge != DefaultRetainAge ||
		cfg.RetainCount != DefaultRetainCount || cfg.Channels != nil {
		t.Fatalf("defaults: %+v", cfg)
	}
	if cfg.Conn.Host != "db.example" || cfg.Conn.Port != 5433 || cfg.Conn.Database != "shop" || cfg.Conn.User != "app" {
		t.Fatalf("connection: %s:%d/%s as %s", cfg.Conn.Host, cfg.Conn.Port, cfg.Conn.Database, cfg.Conn.User)
	}
	if cfg.Conn.RuntimeParams["application_name"] != "x" {
		t.Fatalf("pgx parameters not passed on: %v", cfg.Conn.RuntimeParams)
	}
}

func TestParseURLOwnParamsStayOutOfPgx(t *testing.T) {
	cfg, err := ParseURL("postgres://app@h/db?mode=outbox&name=n1&start=earliest&batch=7&poll=250ms&query_timeout=2s&retain_age=1h&retain_count=0")
	if err != nil {
		t.Fatal(err)
	}
	for k := range ownParams {
		if _, leaked := cfg.Conn.RuntimeParams[k]; leaked {
			t.Fatalf("%s reached pgx's runtime parameters (PostgreSQL would refuse it)", k)
		}
	}
	if cfg.Name != "n1" || cfg.Start != StartEarliest || cfg.Batch != 7 || cfg.Poll != 250*time.Millisecond ||
		cfg.QueryTimeout != 2*time.Second || cfg.RetainAge != time.Hour || cfg.RetainCount != 0 {
		t.Fatalf("parsed %+v", cfg)
	}
}

func TestParseURLListenChannels(t *testing.T) {
	cfg, err := ParseURL("postgresql://app@h/db?mode=listen&channels=orders:orders.all,audit,Big_$1:x.y")
	if err != nil {
		t.Fatal(err)
	}
	want := []Channel{{"orders", "orders.all"}, {"audit", "audit"}, {"Big_$1", "x.y"}}
	if len(cfg.Channels) != len(want) {
		t.Fatalf("channels %v, want %v", cfg.Channels, want)
	}
	for i := range want {
		if cfg.Channels[i] != want[i] {
			t.Fatalf("channel %d: %v, want %v", i, cfg.Channels[i], want[i])
		}
	}
}

func TestParseURLErrorsSayWhatToChange(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"mysql://h/db", "write postgres://"},
		{"host=h dbname=db", "write postgres://"},
		{"postgres://h/db?mode=cdc", "use mode=outbox (the default) or mode=listen"},
		{"postgres://h/db?mode=listen", "mode=listen needs channels="},
		{"postgres://h/db?channels=a", "channels= is for mode=listen"},
		{"postgres://h/db?mode=listen&channels=1bad", "a channel is a letter or _"},
		{"postgres://h/db?mode=listen&channels=a,a", "listed twice"},
		{"postgres://h/db?mode=listen&channels=a&name=n1", "name= is for mode=outbox"},
		{"postgres://h/db?mode=listen&channels=a&retain_age=1h", "retain_age= is for mode=outbox"},
		{"postgres://h/db?mode=listen&channels=a:", "topic must be 1 to 1024 bytes"},
		{"postgres://h/db?batch=0", "batch=\"0\": give a whole number from 1 to 10000"},
		{"postgres://h/db?batch=10001", "from 1 to 10000"},
		{"postgres://h/db?poll=1ms", "poll=\"1ms\": give a duration from 10ms to 1m0s"},
		{"postgres://h/db?poll=soon", "give a duration"},
		{"postgres://h/db?retain_count=-1", "0 or more (0 disables)"},
		{"postgres://h/db?start=now", "use start=latest (the default) or start=earliest"},
		{"postgres://h/db?mode=outbox&mode=listen", "given 2 times, give it once"},
		{"postgres://h/db?name=" + strings.Repeat("n", 201), "the limit is 200"},
		{"postgres://h/db?password_file=/nonexistent/pw", "cannot read password_file"},
		{"postgres://u:secret@h/db?password_file=/etc/hostname", "give the password once"},
		{"postgres://h/db?sslmode=bogus", "sslmode"},
		{"postgres://u:pa#ss@h/db", "write a # in a password or name as %23"},
	} {
		_, err := ParseURL(tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseURL(%q): %v, want an error containing %q", tc.url, err, tc.want)
		}
	}
}

func TestParseURLPasswordSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseURL("postgres://app@h/db?password_file=" + file)
	if err != nil || cfg.Conn.Password != "from-file" {
		t.Fatalf("password_file: %q, %v", cfg.Conn.Password, err)
	}
	if strings.Contains(cfg.String(), "from-file") {
		t.Fatalf("String() shows the password: %s", cfg)
	}
	cfg, err = ParseURL("postgres://app:in-url@h/db")
	if err != nil || cfg.Conn.Password != "in-url" {
		t.Fatalf("URL password: %q, %v", cfg.Conn.Password, err)
	}
	if strings.Contains(cfg.String(), "in-url") {
		t.Fatalf("String() shows the password: %s", cfg)
	}
	t.Setenv("PGPASSWORD", "from-env")
	cfg, err = ParseURL("postgres://app@h/db")
	if err != nil || cfg.Conn.Password != "from-env" {
		t.Fatalf("PGPASSWORD: %q, %v", cfg.Conn.Password, err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseURL("postgres://app@h/db?password_file=" + empty); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("empty password_file: %v", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, maxPasswordFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseURL("postgres://app@h/db?password_file=" + big); err == nil || !strings.Contains(err.Error(), "only the password") {
		t.Fatalf("huge password_file: %v", err)
	}
}

func TestParseURLErrorsHideThePassword(t *testing.T) {
	for _, u := range []string{
		"postgres://app:hunter2@h/db?mode=nope",
		"postgres://app:hunter2@h/db?sslmode=nope",
		"postgres://app:hunter2@h:99999999/db",
		"postgres://app:hunter2@h/db?batch=x",
		"postgres://app:hunter2@h:x/db",
		"postgres://app:hunter2@h/db\x7f",
		"postgres://app:hun#ter2@h/db",
	} {
		_, err := ParseURL(u)
		if err == nil {
			t.Fatalf("ParseURL(%q) succeeded", u)
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "hun") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

// FuzzParseURL: never panics; an accepted URL has a valid mode, bounded
// settings, channels exactly in listen mode, and String() never shows the
// password.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"postgres://app@h/db",
		"postgres://app:pw@h:5432/db?mode=outbox&name=n&start=earliest&batch=10&poll=1s&retain_age=1h&retain_count=5",
		"postgresql://h/db?mode=listen&channels=a:b,c",
		"postgres://h/db?mode=listen&channels=a:b,a:c",
		"postgres://[::1]:5432/db?sslmode=disable&query_timeout=1s",
		"postgres://u:p%40ss@h/db?password_file=x",
		"postgres://h/db?channels=&mode=",
		"postgres:///db?host=/tmp",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		cfg, err := ParseURL(raw)
		checkParsed(t, raw, cfg, err)
		lcfg, lerr := ParseURLMode(raw, ModeListen) // --source-mode listen
		checkParsed(t, raw, lcfg, lerr)
		if err == nil && lerr == nil && cfg.Mode != lcfg.Mode {
			t.Fatalf("an explicit mode=%s became %s under --source-mode listen", cfg.Mode, lcfg.Mode)
		}
	})
}

// checkParsed checks FuzzParseURL's properties of one parse.
func checkParsed(t *testing.T, raw string, cfg *Config, err error) {
	t.Helper()
	if err != nil {
		if u, perr := url.Parse(raw); perr == nil {
			if pw, has := u.User.Password(); has && len(pw) >= 8 && strings.Count(raw, pw) == 1 && strings.Contains(err.Error(), pw) {
				t.Fatalf("error %q shows the password %q", err, pw)
			}
		}
		return
	}
	if cfg.Mode != ModeOutbox && cfg.Mode != ModeListen {
		t.Fatalf("mode %q accepted", cfg.Mode)
	}
	if (cfg.Mode == ModeListen) != (len(cfg.Channels) > 0) || len(cfg.Channels) > MaxChannels {
		t.Fatalf("mode %s with %d channels", cfg.Mode, len(cfg.Channels))
	}
	for _, ch := range cfg.Channels {
		if !channelRE.MatchString(ch.Name) || len(ch.Name) > maxChannelLen || ch.Topic == "" || len(ch.Topic) > maxTopicLen {
			t.Fatalf("channel %+v accepted", ch)
		}
	}
	if cfg.Batch < 1 || cfg.Batch > MaxBatch || cfg.Poll < MinPoll || cfg.Poll > MaxPoll || cfg.RetainCount < 0 || cfg.RetainAge < 0 {
		t.Fatalf("settings out of bounds: %+v", cfg)
	}
	if u, err := url.Parse(cfg.String()); err != nil {
		t.Fatalf("String() %q does not parse: %v", cfg.String(), err)
	} else if pw, has := u.User.Password(); has && pw != "xxxxx" {
		t.Fatalf("String() %q shows the password", cfg.String())
	}
	for k := range ownParams {
		if _, leaked := cfg.Conn.RuntimeParams[k]; leaked {
			t.Fatalf("%s leaked into pgx runtime parameters", k)
		}
	}
}
