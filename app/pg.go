package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fraised/fraised/source/postgres"
)

// pgInstallTimeout bounds `fraised pg install`: connecting and applying
// the SQL takes well under a second; a minute covers a slow or busy server
// and still ends a run aimed at a host that never answers.
const pgInstallTimeout = time.Minute

// pgMain runs `fraised pg SUBCOMMAND`: today only install, which applies
// fraised's SQL (schema fraised: the outbox table, fraised.publish, the
// row_event trigger function, retention) to the database a --source URL
// names. It is idempotent: running it again upgrades or leaves it as is.
func pgMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fraised pg install", flag.ContinueOnError)
	fs.SetOutput(stderr)
	src := fs.String("source", os.Getenv("FRAISED_SOURCE"), "PostgreSQL `URL` to install into (as for --source; env FRAISED_SOURCE; password in the URL, password_file=, or PGPASSWORD)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: fraised pg install --source postgres://USER@HOST/DB")
		fs.PrintDefaults()
	}
	if len(args) == 0 || args[0] != "install" {
		fs.Usage()
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fraised pg install: unexpected argument %q (give the database with --source URL)\n", fs.Arg(0))
		return 2
	}
	if *src == "" {
		fmt.Fprintln(stderr, "fraised pg install: --source is required (for example --source postgres://app@127.0.0.1/appdb)")
		return 2
	}
	if n := len(strings.Fields(*src)); n > 1 {
		fmt.Fprintf(stderr, "fraised pg install: %d URLs given (FRAISED_SOURCE may hold several): give the database to install into with one --source URL\n", n)
		return 2
	}
	cfg, err := postgres.ParseURL(*src)
	if err != nil {
		fmt.Fprintln(stderr, "fraised pg install:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgInstallTimeout)
	defer cancel()
	if err := postgres.InstallConfig(ctx, cfg); err != nil {
		fmt.Fprintln(stderr, "fraised pg install:", err)
		return 1
	}
	fmt.Fprintf(stdout, "fraised: installed the outbox schema into %s\n", cfg)
	return 0
}
