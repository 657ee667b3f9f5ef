package app

import (
	"bytes"
	"strings"
	"testing"
)

func TestPGInstallUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage: fraised pg install"},
		{[]string{"uninstall"}, 2, "Usage: fraised pg install"},
		{[]string{"install"}, 2, "--source is required"},
		{[]string{"install", "--source", "mysql://x"}, 2, "postgres"},
		{[]string{"install", "--source", "postgres://u@127.0.0.1:1/db", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"install", "--source", "postgres://u@127.0.0.1:1/db?connect_timeout=2"}, 1, "connecting"},
	} {
		var out, errOut bytes.Buffer
		t.Setenv("FRAISED_SOURCE", "")
		if code := pgMain(c.args, &out, &errOut); code != c.code || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("pg %q: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut.String(), c.code, c.want)
		}
	}
	// The server's FRAISED_SOURCE may list several databases: install
	// needs the one.
	t.Setenv("FRAISED_SOURCE", "postgres://u@h1/db postgres://u@h2/db")
	var out, errOut bytes.Buffer
	if code := pgMain([]string{"install"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "2 URLs given") {
		t.Errorf("pg install with two URLs in FRAISED_SOURCE: exit %d, stderr %q", code, errOut.String())
	}
}
