package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sentineldf/sentineldf"
)

// tenantTables are the tables row-level security guards, with the column
// that names their org.
var tenantTables = map[string]string{
	"orgs": "id", "users": "org_id", "api_keys": "org_id", "scans": "org_id", "scan_files": "org_id",
	"scan_shards": "org_id", "usage_keys": "org_id", "usage_records": "org_id", "signing_keys": "org_id",
	"mbom_records": "org_id", "audit_log": "org_id",
}

// rlsOrg is an org seeded with a row in every tenant table.
type rlsOrg struct {
	id, key, scan string
}

func seedRLSOrg(t *testing.T, db *DB, admin *pgx.Conn, shards int) rlsOrg {
	t.Helper()
	ctx := context.Background()
	org, scan, sh := seedRunningScan(t, db, shards)
	if _, _, err := db.CompleteShard(ctx, sh[0]); err != nil {
		t.Fatal(err)
	}
	if err := db.PutSigningKey(ctx, &sentineldf.SigningKey{OrgID: org, KeyID: "fp", PublicPEM: "pub", PrivatePEM: []byte("priv")}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateMBOM(ctx, &sentineldf.MBOMRecord{ID: sentineldf.NewID("mbom"), OrgID: org, ScanID: scan},
		sentineldf.AuditEvent{Action: sentineldf.AuditMBOMSigned, Actor: "k"}); err != nil {
		t.Fatal(err)
	}
	// The store never writes users; the table is a tenant table all the same.
	if _, err := admin.Exec(ctx, `INSERT INTO users (org_id, id, email, created_at) VALUES ($1, $2, $3, 0)`,
		org, sentineldf.NewID("user"), org+"@example.com"); err != nil {
		t.Fatal(err)
	}
	keys, err := db.APIKeys(ctx, org)
	if err != nil || len(keys) != 1 {
		t.Fatalf("APIKeys = %v, %v", keys, err)
	}
	return rlsOrg{id: org, key: keys[0].ID, scan: scan}
}

// inTx runs fn in a transaction on conn, after the given set_config
// statements, and rolls it back.
func inTx(t *testing.T, conn *pgx.Conn, scope map[string]string, fn func(tx pgx.Tx)) {
	t.Helper()
	ctx := context.Background()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	for k, v := range scope {
		if _, err := tx.Exec(ctx, `SELECT set_config($1, $2, true)`, k, v); err != nil {
			t.Fatal(err)
		}
	}
	fn(tx)
}

func count(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, query string, args ...any) int {
	t.Helper()
	var n int
	if err := q.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// wantSQLState runs stmt in its own savepoint and wants it to fail with
// code.
func wantSQLState(t *testing.T, tx pgx.Tx, code, stmt string, args ...any) {
	t.Helper()
	ctx := context.Background()
	sp, err := tx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sp.Exec(ctx, stmt, args...)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != code {
		t.Errorf("%s: error %v, want SQLSTATE %s", stmt, err, code)
	}
	if err := sp.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRowLevelSecurity proves the second line of defence: raw queries
// through the application role that omit the org filter see, and change,
// only the org named by app.org_id, and nothing without it.
func TestRowLevelSecurity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t, Options{})
	admin := adminConn(t, db)
	a := seedRLSOrg(t, db, admin, 3)
	b := seedRLSOrg(t, db, admin, 2)
	app := appConn(t, db)

	for table, col := range tenantTables {
		t.Run(table, func(t *testing.T) {
			all := count(t, admin, `SELECT count(*) FROM `+table)
			ofB := count(t, admin, `SELECT count(*) FROM `+table+` WHERE `+col+` = $1`, b.id)
			ofA := count(t, admin, `SELECT count(*) FROM `+table+` WHERE `+col+` = $1`, a.id)
			if ofA == 0 || ofB == 0 || all < ofA+ofB {
				t.Fatalf("seed: %d rows, %d of A, %d of B; want rows of both", all, ofA, ofB)
			}
			// A query that forgot its WHERE, scoped to B: B's rows only.
			inTx(t, app, map[string]string{"app.org_id": b.id}, func(tx pgx.Tx) {
				if n := count(t, tx, `SELECT count(*) FROM `+table); n != ofB {
					t.Errorf("scoped to B: %d rows, want B's %d (of %d)", n, ofB, all)
				}
				if n := count(t, tx, `SELECT count(*) FROM `+table+` WHERE `+col+` = $1`, a.id); n != 0 {
					t.Errorf("scoped to B, asking for A's rows: %d, want 0", n)
				}
			})
			// No scope: nothing.
			inTx(t, app, nil, func(tx pgx.Tx) {
				if n := count(t, tx, `SELECT count(*) FROM `+table); n != 0 {
					t.Errorf("unscoped: %d rows, want 0", n)
				}
			})
			// Another setting's value is not an org.
			inTx(t, app, map[string]string{"app.key_id": a.key, "app.operator_lookup": "on"}, func(tx pgx.Tx) {
				n := count(t, tx, `SELECT count(*) FROM `+table)
				want := 0
				if table == "api_keys" {
					want = 1 // the looked-up key itself
				}
				if n != want {
					t.Errorf("lookup scopes only: %d rows, want %d", n, want)
				}
			})
		})
	}

	t.Run("writes", func(t *testing.T) {
		inTx(t, app, map[string]string{"app.org_id": b.id}, func(tx pgx.Tx) {
			tag, err := tx.Exec(ctx, `UPDATE scans SET error_message = 'forgot the WHERE'`)
			if err != nil || tag.RowsAffected() != 1 {
				t.Errorf("UPDATE without WHERE scoped to B: %v rows, %v; want B's 1", tag.RowsAffected(), err)
			}
			tag, err = tx.Exec(ctx, `UPDATE scan_shards SET done = TRUE`)
			if err != nil || tag.RowsAffected() != 2 {
				t.Errorf("UPDATE shards scoped to B: %d rows, %v; want B's 2", tag.RowsAffected(), err)
			}
			const rls = "42501" // insufficient_privilege: row-level security and missing grants
			wantSQLState(t, tx, rls, `INSERT INTO scans (org_id, id, state, created_at, updated_at) VALUES ($1, 'scan_x', 'queued', 0, 0)`, a.id)
			wantSQLState(t, tx, rls, `UPDATE scans SET org_id = $1`, a.id)
			wantSQLState(t, tx, rls, `INSERT INTO usage_records (org_id, usage_key, docs, bytes, recorded_at, day)
				VALUES ($1, 'k', 1, 1, $2, 'd')`, a.id, micros(now()))
			wantSQLState(t, tx, rls, `DELETE FROM scans`)
			wantSQLState(t, tx, rls, `UPDATE orgs SET plan = 'enterprise'`)
			wantSQLState(t, tx, rls, `CREATE TABLE stolen (x BIGINT)`)
			part := "usage_records_p" + strings.ReplaceAll(sentineldf.Period(now()), "-", "")
			wantSQLState(t, tx, rls, `SELECT count(*) FROM `+part)
		})
		inTx(t, app, nil, func(tx pgx.Tx) {
			tag, err := tx.Exec(ctx, `UPDATE scans SET error_message = 'x'`)
			if err != nil || tag.RowsAffected() != 0 {
				t.Errorf("unscoped UPDATE: %d rows, %v; want 0", tag.RowsAffected(), err)
			}
		})
		inTx(t, app, map[string]string{"app.key_id": a.key}, func(tx pgx.Tx) {
			tag, err := tx.Exec(ctx, `UPDATE api_keys SET name = 'x'`)
			if err != nil || tag.RowsAffected() != 0 {
				t.Errorf("UPDATE through the key lookup scope: %d rows, %v; want 0 (read-only)", tag.RowsAffected(), err)
			}
		})
		if n := count(t, admin, `SELECT count(*) FROM scans WHERE error_message <> ''`); n != 0 {
			t.Errorf("%d scans changed after rollback", n)
		}
	})

	t.Run("operator lookup", func(t *testing.T) {
		op := &sentineldf.Org{ID: sentineldf.NewID("org"), Name: "operator", Plan: "enterprise", Operator: true}
		if err := db.CreateOrg(ctx, op, &sentineldf.APIKey{ID: sentineldf.NewID("key"), Name: "admin", Hash: []byte("h")},
			sentineldf.AuditEvent{Action: sentineldf.AuditOrgCreated, Actor: "system"}); err != nil {
			t.Fatal(err)
		}
		inTx(t, app, map[string]string{"app.operator_lookup": "on"}, func(tx pgx.Tx) {
			rows, err := tx.Query(ctx, `SELECT id FROM orgs`)
			if err != nil {
				t.Fatal(err)
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil || !slices.Equal(ids, []string{op.ID}) {
				t.Errorf("orgs seen by the operator lookup = %v, %v; want only %s", ids, err, op.ID)
			}
			tag, err := tx.Exec(ctx, `UPDATE orgs SET audit_seq = audit_seq + 1`)
			if err != nil || tag.RowsAffected() != 0 {
				t.Errorf("UPDATE through the operator lookup: %d rows, %v; want 0", tag.RowsAffected(), err)
			}
		})
	})
}

// TestRLSCoversEveryTable: every table of the schema but goose's and
// River's is a tenant table with row-level security enabled, forced and a
// tenant policy, so a table added by a later migration cannot be
// forgotten; and the application role bypasses nothing and owns nothing.
func TestRLSCoversEveryTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t, Options{})
	admin := adminConn(t, db)
	rows, err := admin.Query(ctx, `SELECT c.relname::TEXT, c.relrowsecurity, c.relforcerowsecurity,
			EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant')
		FROM pg_class c
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
			AND c.relname NOT LIKE 'goose\_%' AND c.relname NOT LIKE 'river\_%'`)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for rows.Next() {
		var (
			name                 string
			enabled, forced, has bool
		)
		if err := rows.Scan(&name, &enabled, &forced, &has); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, name)
		if _, ok := tenantTables[name]; !ok {
			t.Errorf("table %s is not a known tenant table: give it row-level security and add it here", name)
		}
		if !enabled || !forced || !has {
			t.Errorf("table %s: row security enabled %v, forced %v, tenant policy %v", name, enabled, forced, has)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(tenantTables) {
		t.Errorf("tables %v, want %d tenant tables", seen, len(tenantTables))
	}

	var super, bypass, login bool
	if err := admin.QueryRow(ctx, `SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = $1`, AppRole).
		Scan(&super, &bypass, &login); err != nil {
		t.Fatal(err)
	}
	if super || bypass || login {
		t.Errorf("%s: superuser %v, bypassrls %v, login %v; want none", AppRole, super, bypass, login)
	}
	if n := count(t, admin, `SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = $1)`, AppRole); n != 0 {
		t.Errorf("%s owns %d relations, want 0", AppRole, n)
	}
	// The store's own sessions run as the application role.
	var user string
	if err := db.pool.QueryRow(ctx, `SELECT current_user::TEXT`).Scan(&user); err != nil || user != AppRole {
		t.Errorf("store sessions run as %q, %v; want %s", user, err, AppRole)
	}
}

// TestOpenRefusesBypass: a store whose sessions would bypass row-level
// security does not start.
func TestOpenRefusesBypass(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := newDatabase(t, true)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var user string
	var bypass bool
	if err := conn.QueryRow(ctx, `SELECT current_user::TEXT, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user`).
		Scan(&user, &bypass); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		role string
		want string
	}{
		{"missing role", "sentineldf_no_such_role", "does not exist"},
	}
	if bypass {
		tests = append(tests, struct{ name, role, want string }{"superuser", user, "row-level security"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(ctx, Options{URL: url, SkipMigrate: true, Role: tc.role, riverTestOnly: true})
			if err == nil {
				db.Close()
				t.Fatalf("Open as %s succeeded", tc.role)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open as %s: %v; want %q", tc.role, err, tc.want)
			}
		})
	}
	t.Run("not migrated", func(t *testing.T) {
		db, err := Open(ctx, Options{URL: newDatabase(t, false), SkipMigrate: true, riverTestOnly: true})
		if err == nil {
			db.Close()
			t.Fatal("Open of an empty database with SkipMigrate succeeded")
		}
	})
}
