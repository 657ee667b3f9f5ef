package resolve

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
)

// Spec is one --resolver: a field and the process that resolves it.
type Spec struct {
	Key      string   // "Subscription.userUpdated"
	Identity bool     // "+identity": the resolver reads the init payload and claims
	Exec     []string // exec: the command and its arguments
	Unix     string   // unix: the socket path
}

// Target names the process, so fields with equal targets share one.
func (s Spec) Target() string {
	if s.Unix != "" {
		return "unix:" + s.Unix
	}
	return "exec:" + strings.Join(s.Exec, " ")
}

// ParseSpec parses "Subscription.field[+identity]=exec:COMMAND ARGS..." or
// "...=unix:/path". The command is split on spaces, without a shell:
// wrap anything more in a script.
func ParseSpec(v string) (Spec, error) {
	key, target, ok := strings.Cut(v, "=")
	if !ok || key == "" || target == "" {
		return Spec{}, fmt.Errorf("invalid --resolver %q: want Type.field=exec:COMMAND or Type.field=unix:/path", v)
	}
	var s Spec
	s.Key, s.Identity = strings.CutSuffix(key, "+identity")
	if typ, field, ok := strings.Cut(s.Key, "."); !ok || typ == "" || field == "" || strings.ContainsAny(field, ".+ ") {
		return Spec{}, fmt.Errorf("invalid --resolver %q: the field must be Type.field (\"Subscription.userUpdated\"), optionally followed by +identity", v)
	}
	switch kind, rest, _ := strings.Cut(target, ":"); kind {
	case "exec":
		s.Exec = strings.Fields(rest)
		if len(s.Exec) == 0 {
			return Spec{}, fmt.Errorf("invalid --resolver %q: exec: needs a command", v)
		}
	case "unix":
		if rest == "" {
			return Spec{}, fmt.Errorf("invalid --resolver %q: unix: needs a socket path", v)
		}
		s.Unix = rest
	default:
		return Spec{}, fmt.Errorf("invalid --resolver %q: the target must start with exec: or unix:", v)
	}
	return s, nil
}

// Open returns the Client of a spec's target, connecting (starting the
// process) in the background.
func Open(s Spec, timeout time.Duration, log *slog.Logger) *Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if s.Unix != "" {
		return newClient(unixConn(s.Unix), timeout, log)
	}
	return newClient(&procConn{argv: s.Exec, log: log}, timeout, log)
}

// unixConn reaches a resolver process listening on a Unix socket.
type unixConn string

// dialTimeout bounds connecting to a listening resolver process.
const dialTimeout = 2 * time.Second

func (u unixConn) dial() (net.Conn, error) {
	c, err := net.DialTimeout("unix", string(u), dialTimeout)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the resolver socket (is the resolver process listening?): %w", err)
	}
	return c, nil
}

func (u unixConn) stop(time.Duration) error { return nil }

func (u unixConn) String() string { return "unix:" + string(u) }

// errNoProcess is stop's answer when no child runs.
var errNoProcess = errors.New("no process")
