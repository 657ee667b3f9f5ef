package postgres

import (
	"context"
	_ "embed"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// SchemaVersion is the version of the fraised schema this package installs
// and reads (fraised.meta.version).
const SchemaVersion = 1

// InstallSQL is the idempotent SQL that creates the fraised schema: the
// outbox, positions, fraised.publish, fraised.row_event and fraised.prune.
// `fraised pg install` runs it; operators may apply it by hand instead.
//
//go:embed sql/install.sql
var InstallSQL string

// Advisory-lock keys (pg_advisory_*(key1, key2) form). key1 values spell
// "frai" plus 0..2 so they are unlikely to collide with an application's.
const (
	lockInstall = 1718772072 // key2 0: one install at a time
	lockShard   = 1718772073 // key2 shard: commit order within a shard
	lockName    = 1718772074 // key2 hashtext(name): one reader per source name
	lockForward = 1718772075 // key2 hashtext(key): one forwarding node per source (Exclusive)
)

// notifyChannel is the channel fraised.publish notifies.
const notifyChannel = "fraised_outbox"

// ErrNotInstalled is returned when the database has no fraised schema.
var ErrNotInstalled = errors.New("postgres source: the fraised schema is not installed; run `fraised pg install --source URL` or apply source/postgres/sql/install.sql")

// Install applies InstallSQL on conn. It refuses a database whose schema is
// newer than SchemaVersion (a newer fraised installed it). Safe to run again.
func Install(ctx context.Context, conn *pgx.Conn) error {
	v, err := installedVersion(ctx, conn)
	if err != nil && !errors.Is(err, ErrNotInstalled) {
		return err
	}
	if v > SchemaVersion {
		return fmt.Errorf("postgres source: the database has fraised schema version %d, this fraised knows %d: upgrade fraised", v, SchemaVersion)
	}
	if _, err := conn.Exec(ctx, InstallSQL); err != nil {
		return fmt.Errorf("postgres source: installing the fraised schema: %w", err)
	}
	return nil
}

// installedVersion reads fraised.meta; ErrNotInstalled when it is missing.
func installedVersion(ctx context.Context, conn *pgx.Conn) (int, error) {
	var v int
	err := conn.QueryRow(ctx, "SELECT version FROM fraised.meta").Scan(&v)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000"):
		return 0, ErrNotInstalled // undefined_table, invalid_schema_name
	case errors.Is(err, pgx.ErrNoRows):
		return 0, ErrNotInstalled
	case err != nil:
		return 0, fmt.Errorf("postgres source: reading fraised.meta: %w", err)
	}
	return v, nil
}

// InstallConfig connects as cfg says and applies InstallSQL: what
// `fraised pg install --source URL` runs.
func InstallConfig(ctx context.Context, cfg *Config) error {
	cc := cfg.Conn.Copy()
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = connectTimeout
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("postgres source %s: connecting: %w", cfg, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return Install(ctx, conn)
}
