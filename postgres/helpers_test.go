package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/sentineldf/sentineldf"
)

// Tests run against the server at TEST_DATABASE_URL, as a role that may
// create databases and roles (e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable). Unset, they
// skip, unless SENTINELDF_REQUIRE_SERVICES=1, when they fail.
//
// Each test gets a database of its own, dropped (in the background) when
// it ends. The first
// test to need one migrates a template database, which the others are
// copied from (CREATE DATABASE … TEMPLATE), and TestMain drops it.

func TestMain(m *testing.M) {
	code := m.Run()
	if err := testServer.cleanup(); err != nil {
		fmt.Fprintln(os.Stderr, "drop test databases:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// testServer is the per-process state of the test databases.
var testServer templateDB

type templateDB struct {
	once  sync.Once
	admin string
	name  string
	err   error

	// Test databases are dropped in the background, so that a test does
	// not wait for it; cleanup waits for the drops.
	drops    sync.WaitGroup
	mu       sync.Mutex
	dropErrs []error
}

// adminURL returns TEST_DATABASE_URL, or skips (fails when services are
// required).
func adminURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("TEST_DATABASE_URL")
	if u == "" {
		if os.Getenv("SENTINELDF_REQUIRE_SERVICES") == "1" {
			t.Fatal("TEST_DATABASE_URL is not set and SENTINELDF_REQUIRE_SERVICES=1")
		}
		t.Skip("TEST_DATABASE_URL is not set")
	}
	return u
}

// withDatabase returns admin with its database replaced by name.
func withDatabase(t testing.TB, admin, name string) string {
	t.Helper()
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("TEST_DATABASE_URL must be a postgres:// URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// adminExec runs statements on the admin database.
func adminExec(ctx context.Context, admin string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func dbName(prefix string) string {
	return strings.ToLower(sentineldf.NewID(prefix))
}

// template returns the migrated template database's name, creating it on
// first use.
func (d *templateDB) template(t testing.TB, admin string) string {
	t.Helper()
	d.once.Do(func() {
		ctx := context.Background()
		d.admin = admin
		name := dbName("sdf_tmpl")
		if d.err = adminExec(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); d.err != nil {
			return
		}
		d.name = name
		d.err = Migrate(ctx, withDatabase(t, admin, name))
	})
	if d.err != nil {
		t.Fatalf("template database: %v", d.err)
	}
	return d.name
}

// dropLater drops a test database in the background.
func (d *templateDB) dropLater(admin, name string) {
	d.drops.Go(func() {
		if err := adminExec(context.Background(), admin, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			d.mu.Lock()
			d.dropErrs = append(d.dropErrs, err)
			d.mu.Unlock()
		}
	})
}

// cleanup waits for the test databases' drops, then drops the template.
func (d *templateDB) cleanup() error {
	d.drops.Wait()
	errs := d.dropErrs
	if d.name != "" {
		errs = append(errs, adminExec(context.Background(), d.admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.name}.Sanitize()+" WITH (FORCE)"))
	}
	return errors.Join(errs...)
}

// newDatabase creates a database for t, migrated or empty, dropped when t
// ends, and returns its URL (as the admin user).
func newDatabase(t testing.TB, migrated bool) string {
	t.Helper()
	admin := adminURL(t)
	name := dbName("sdf_test")
	stmt := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if migrated {
		stmt += " TEMPLATE " + pgx.Identifier{testServer.template(t, admin)}.Sanitize()
	}
	ctx := context.Background()
	if err := adminExec(ctx, admin, stmt); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() { testServer.dropLater(admin, name) })
	return withDatabase(t, admin, name)
}

// openTest opens a store on a fresh migrated database (opts.URL unless
// set), closed when t ends.
func openTest(t testing.TB, opts Options) *DB {
	t.Helper()
	if opts.URL == "" {
		opts.URL = newDatabase(t, true)
		opts.SkipMigrate = true
	}
	opts.riverTestOnly = true
	db, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// adminConn connects to the store's database as the admin user (a
// superuser: row-level security does not apply), closed when t ends.
func adminConn(t testing.TB, db *DB) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), db.opts.URL)
	if err != nil {
		t.Fatalf("admin connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// appConn connects to the store's database as AppRole, the way the store's
// pool does, closed when t ends.
func appConn(t testing.TB, db *DB) *pgx.Conn {
	t.Helper()
	conn := adminConn(t, db)
	if _, err := conn.Exec(context.Background(), "SET ROLE "+AppRole); err != nil {
		t.Fatalf("set role: %v", err)
	}
	return conn
}

// jobs lists the jobs of kind, oldest first.
func (db *DB) jobs(ctx context.Context, kind string) ([]*rivertype.JobRow, error) {
	res, err := db.river.JobList(ctx, river.NewJobListParams().Kinds(kind).First(10_000))
	if err != nil {
		return nil, err
	}
	return res.Jobs, nil
}

// seedRunningScan creates an org and a running scan of n shards, each
// ready to complete with one document.
func seedRunningScan(t testing.TB, db *DB, n int) (org, scan string, shards []sentineldf.Shard) {
	t.Helper()
	ctx := context.Background()
	o := &sentineldf.Org{ID: sentineldf.NewID("org"), Name: "Acme", Plan: "pro"}
	k := &sentineldf.APIKey{ID: sentineldf.NewID("key"), Name: "k", Hash: []byte("h")}
	if err := db.CreateOrg(ctx, o, k, sentineldf.AuditEvent{Action: sentineldf.AuditOrgCreated, Actor: "system"}); err != nil {
		t.Fatal(err)
	}
	s := &sentineldf.Scan{ID: sentineldf.NewID("scan"), OrgID: o.ID, Files: []sentineldf.ScanFile{{Name: "a.jsonl", Size: int64(n)}}}
	if err := db.CreateScan(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ConfirmScan(ctx, o.ID, s.ID, 2); err != nil {
		t.Fatal(err)
	}
	shards = make([]sentineldf.Shard, n)
	for i := range shards {
		shards[i] = sentineldf.Shard{OrgID: o.ID, ScanID: s.ID, Index: i, Offset: int64(i), Length: 1, FirstLine: int64(i + 1)}
	}
	if err := db.StartScan(ctx, o.ID, s.ID, shards, sentineldf.Progress{DocsTotal: int64(n), BytesTotal: int64(n)}); err != nil {
		t.Fatal(err)
	}
	for i := range shards {
		shards[i].Docs, shards[i].Bytes, shards[i].Counts.Clean = 1, 1, 1
	}
	return o.ID, s.ID, shards
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
