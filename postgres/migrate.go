package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"path"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/sentineldf/sentineldf/migrations"
)

// migrationsFS holds the Postgres-only goose migrations under migrations/.
//
//go:embed migrations/*.sql
var migrationsFS embed.FS

// pgVersionTable is the goose version table of the Postgres-only migration
// set; the shared set keeps goose's default, goose_db_version.
const pgVersionTable = "goose_db_version_postgres"

// migrateLockID is the advisory lock (per database) that serialises
// concurrent Migrate runs, e.g. two processes starting at once.
const migrateLockID int64 = 0x73656e74696e656c // "sentinel"

// pgMigrations returns the Postgres-only migration set, its files at the
// root, for goose.NewProvider.
func pgMigrations() fs.FS {
	sub, _ := fs.Sub(migrationsFS, "migrations") // fails only for an invalid path
	return sub
}

// Migrate applies, in order and under an advisory lock, the shared schema
// migrations (package migrations), River's migrations, and the
// Postgres-only set (row-level security, usage partitions, AppRole and its
// privileges), then grants AppRole the use of River's tables. url must
// connect as a role that may create tables and, unless AppRole exists,
// roles: the database owner, not the application's login. It is
// idempotent; `sentineldf migrate` runs it alone.
func Migrate(ctx context.Context, url string) error {
	return migrate(ctx, url, slog.New(slog.DiscardHandler))
}

func migrate(ctx context.Context, url string, logger *slog.Logger) error {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer pool.Close()

	lock, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer lock.Release()
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLockID); err != nil {
		return fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	defer func() {
		if _, err := lock.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLockID); err != nil {
			// The lock goes with the session anyway.
			logger.WarnContext(ctx, "migrate: unlock failed", "err", err)
		}
	}()

	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	shared, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS,
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if err := up(ctx, shared, logger, "shared"); err != nil {
		return err
	}

	rm, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: logger})
	if err != nil {
		return fmt.Errorf("postgres: river migrations: %w", err)
	}
	rres, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return fmt.Errorf("postgres: river migrate: %w", err)
	}
	for _, v := range rres.Versions {
		logger.InfoContext(ctx, "applied river migration", "version", v.Version, "name", v.Name)
	}

	own, err := goose.NewProvider(goose.DialectPostgres, sqlDB, pgMigrations(),
		goose.WithDisableGlobalRegistry(true), goose.WithTableName(pgVersionTable))
	if err != nil {
		return fmt.Errorf("postgres: postgres migrations: %w", err)
	}
	if err := up(ctx, own, logger, "postgres"); err != nil {
		return err
	}
	return grantRiver(ctx, pool)
}

// up applies a goose provider's pending migrations.
func up(ctx context.Context, p *goose.Provider, logger *slog.Logger, set string) error {
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate %s set: %w", set, err)
	}
	for _, r := range res {
		logger.InfoContext(ctx, "applied migration", "set", set, "source", path.Base(r.Source.Path), "duration", r.Duration)
	}
	return nil
}

// grantRiver grants AppRole what River's client does with River's tables
// in the current schema: whatever tables the installed River version has
// (river_migration is read-only), and its sequences. It is idempotent.
func grantRiver(ctx context.Context, pool *pgxpool.Pool) error {
	rows, err := pool.Query(ctx, `SELECT c.relname::TEXT, c.relkind::TEXT FROM pg_catalog.pg_class c
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relname LIKE 'river\_%' AND c.relkind IN ('r', 'p', 'S')
		ORDER BY c.relname`)
	if err != nil {
		return fmt.Errorf("postgres: grant river tables: %w", err)
	}
	type rel struct{ name, kind string }
	rels, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rel, error) {
		var x rel
		err := r.Scan(&x.name, &x.kind)
		return x, err
	})
	if err != nil {
		return fmt.Errorf("postgres: grant river tables: %w", err)
	}
	role := pgx.Identifier{AppRole}.Sanitize()
	for _, r := range rels {
		name := pgx.Identifier{r.name}.Sanitize()
		var stmt string
		switch {
		case r.kind == "S":
			stmt = "GRANT USAGE, SELECT ON SEQUENCE " + name + " TO " + role
		case r.name == "river_migration":
			stmt = "GRANT SELECT ON " + name + " TO " + role
		default:
			stmt = "GRANT SELECT, INSERT, UPDATE, DELETE ON " + name + " TO " + role
		}
		if _, err := pool.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("postgres: grant %s: %w", r.name, err)
		}
	}
	return nil
}
