package postgres

import (
	"context"
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/migrations"
)

// TestMigrationFiles checks the Postgres-only set's file names and goose
// annotations (no server needed).
func TestMigrationFiles(t *testing.T) {
	files, err := fs.Glob(pgMigrations(), "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations: %v", err)
	}
	name := regexp.MustCompile(`^\d{5}_[a-z0-9_]+\.sql$`)
	for _, f := range files {
		b, err := fs.ReadFile(pgMigrations(), f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if !name.MatchString(f) {
			t.Errorf("file name %q is not NNNNN_name.sql", f)
		}
		if !strings.Contains(text, "-- +goose Up") || !strings.Contains(text, "-- +goose Down") {
			t.Errorf("%s: missing -- +goose Up or Down", f)
		}
		if strings.Count(text, "+goose StatementBegin") != strings.Count(text, "+goose StatementEnd") {
			t.Errorf("%s: unbalanced StatementBegin/End", f)
		}
	}
}

// providers returns goose providers of the shared and Postgres-only sets
// over the database at url, as its admin.
func providers(t *testing.T, url string) (shared, own *goose.Provider) {
	t.Helper()
	sqlDB := stdlib.OpenDB(*mustParse(t, url))
	t.Cleanup(func() { sqlDB.Close() })
	shared, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	own, err = goose.NewProvider(goose.DialectPostgres, sqlDB, pgMigrations(),
		goose.WithDisableGlobalRegistry(true), goose.WithTableName(pgVersionTable))
	if err != nil {
		t.Fatal(err)
	}
	return shared, own
}

func mustParse(t *testing.T, url string) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestMigrateFromEmpty: Open migrates an empty database (both goose sets,
// River's), concurrent Migrate runs serialise, and a second run changes
// nothing.
func TestMigrateFromEmpty(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := newDatabase(t, false)

	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- Migrate(ctx, url) }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	db, err := Open(ctx, Options{URL: url, riverTestOnly: true}) // migrates again: a no-op
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()

	shared, own := providers(t, url)
	for name, p := range map[string]*goose.Provider{"shared": shared, "postgres": own} {
		current, target, err := p.GetVersions(ctx)
		if err != nil || current != target || current < 1 {
			t.Errorf("%s set: version %d of %d, %v", name, current, target, err)
		}
	}
	admin := adminConn(t, db)
	for _, table := range []string{"orgs", "scans", "usage_keys", "usage_records", "river_job", "river_leader"} {
		var ok bool
		if err := admin.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok); err != nil || !ok {
			t.Errorf("table %s: %v, %v", table, ok, err)
		}
	}
	var kind string
	if err := admin.QueryRow(ctx, `SELECT relkind::TEXT FROM pg_class WHERE oid = 'usage_records'::regclass`).Scan(&kind); err != nil || kind != "p" {
		t.Errorf("usage_records relkind %q, %v; want p (partitioned)", kind, err)
	}
	// The store works on it.
	org, scan, shards := seedRunningScan(t, db, 1)
	if _, _, err := db.CompleteShard(ctx, shards[0]); err != nil {
		t.Fatalf("CompleteShard: %v", err)
	}
	if s, err := db.Scan(ctx, org, scan); err != nil || s.Progress.DocsDone != 1 {
		t.Errorf("Scan = %+v, %v", s, err)
	}
}

// TestPostgresMigrationsDownUp takes the Postgres-only set down and up
// again over recorded usage: the rows move out of the partitions and back,
// and still count once.
func TestPostgresMigrationsDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t, Options{})
	org, _, _ := seedRunningScan(t, db, 1)
	jan, _, _ := sentineldf.PeriodBounds("2026-01")
	for i, at := range []int{0, 40} { // January and February
		if _, err := db.RecordUsage(ctx, sentineldf.UsageRecord{OrgID: org, Key: "k" + string(rune('a'+i)), Docs: 5, Bytes: 50,
			At: jan.AddDate(0, 0, at)}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	_, own := providers(t, db.opts.URL)
	if _, err := own.DownTo(ctx, 0); err != nil {
		t.Fatalf("down: %v", err)
	}
	admin := adminConn(t, db)
	var kind string
	if err := admin.QueryRow(ctx, `SELECT relkind::TEXT FROM pg_class WHERE oid = 'usage_records'::regclass`).Scan(&kind); err != nil || kind != "r" {
		t.Errorf("usage_records relkind after down %q, %v; want r", kind, err)
	}
	if n := count(t, admin, `SELECT count(*) FROM usage_records`); n != 2 {
		t.Errorf("usage rows after down = %d, want 2", n)
	}
	if _, err := own.Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	if n := count(t, admin, `SELECT count(*) FROM usage_keys`); n != 2 {
		t.Errorf("usage keys after up = %d, want 2", n)
	}
	if n := count(t, admin, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'usage_records'::regclass`); n != 2 {
		t.Errorf("partitions after up = %d, want 2 (the months with rows)", n)
	}

	db = openTest(t, Options{URL: db.opts.URL, SkipMigrate: true})
	if added, err := db.RecordUsage(ctx, sentineldf.UsageRecord{OrgID: org, Key: "ka", Docs: 5, At: jan.AddDate(0, 2, 0)}); err != nil || added {
		t.Errorf("replayed key after down/up: added %v, %v; want false", added, err)
	}
	docs, _, _, err := db.Usage(ctx, org, jan, jan.AddDate(0, 3, 0))
	if err != nil || docs != 10 {
		t.Errorf("usage after down/up = %d, %v; want 10", docs, err)
	}
}
