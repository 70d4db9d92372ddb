package postgres

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sentineldf/sentineldf"
)

// seedVolume fills the tables, as the admin, with enough rows that the
// planner prefers an index to a sequential scan wherever one serves (and
// few enough to stay quick): 1,000 orgs, of which 100 hold 4,000 scans,
// 8,000 files, 20,000 shards, 4,000 MBOMs, 2,000 keys, 4,000 audit events
// and 12,000 usage rows over three monthly partitions.
func seedVolume(t *testing.T, db *DB, admin *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	for _, m := range []string{"2026-01-01", "2026-02-01", "2026-03-01"} {
		if _, err := admin.Exec(ctx, `SELECT sentineldf_ensure_usage_partition($1::DATE)`, m); err != nil {
			t.Fatal(err)
		}
	}
	jan, _, _ := sentineldf.PeriodBounds("2026-01")
	stmts := []string{
		// Bulk seeding as a superuser: skip the foreign-key triggers.
		`SET session_replication_role = replica`,
		`INSERT INTO orgs (id, name, plan, created_at) SELECT 'org_seed_' || o, 'o', 'free', 0 FROM generate_series(1, 1000) o`,
		`INSERT INTO api_keys (id, org_id, name, scopes, key_hash, created_at)
			SELECT 'key_seed_' || k, 'org_seed_' || (k % 100 + 1), 'k', '[]', 'aA==', k FROM generate_series(1, 2000) k`,
		`INSERT INTO scans (org_id, id, state, created_at, updated_at)
			SELECT 'org_seed_' || (s % 100 + 1), 'scan_seed_' || s, 'running', s / 3, s FROM generate_series(1, 4000) s`,
		`INSERT INTO scan_files (org_id, scan_id, file_index, name, size_bytes)
			SELECT org_id, id, f, 'f', 1 FROM scans, generate_series(0, 1) f WHERE id LIKE 'scan_seed_%'`,
		`INSERT INTO scan_shards (org_id, scan_id, shard_index, file_index, byte_offset, byte_length, first_line)
			SELECT org_id, id, sh, 0, 0, 1, 1 FROM scans, generate_series(0, 4) sh WHERE id LIKE 'scan_seed_%'`,
		`INSERT INTO usage_keys (org_id, usage_key, recorded_at)
			SELECT 'org_seed_' || (u % 100 + 1), 'u' || u, ` + strconv.FormatInt(micros(jan), 10) + ` + u::BIGINT * 600000000 FROM generate_series(1, 12000) u`,
		`INSERT INTO usage_records (org_id, usage_key, docs, bytes, recorded_at, day)
			SELECT org_id, usage_key, 1, 1, recorded_at,
				to_char(to_timestamp(recorded_at / 1000000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')
			FROM usage_keys WHERE usage_key LIKE 'u%'`,
		`INSERT INTO audit_log (org_id, id, action, actor, occurred_at)
			SELECT 'org_seed_' || (a % 100 + 1), a, 'x', 'y', a FROM generate_series(1, 4000) a`,
		`INSERT INTO mbom_records (org_id, id, scan_id, approved_by, key_id, digest, object_key, created_at)
			SELECT org_id, 'mbom_' || id, id, 'a', 'k', 'd', 'o', 0 FROM scans WHERE id LIKE 'scan_seed_%'`,
		`RESET session_replication_role`,
		`ANALYZE orgs, api_keys, scans, scan_files, scan_shards, usage_keys, usage_records, audit_log, mbom_records`,
	}
	for _, s := range stmts {
		if _, err := admin.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// planNode is a node of EXPLAIN (FORMAT JSON).
type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	IndexName    string     `json:"Index Name"`
	Plans        []planNode `json:"Plans"`
}

func (n planNode) walk(fn func(planNode)) {
	fn(n)
	for _, c := range n.Plans {
		c.walk(fn)
	}
}

// TestExplainHotQueries runs EXPLAIN, as the application role under its
// row-level security, on the queries the store runs most, over a seeded
// volume: each uses its index and none scans a table sequentially; the
// period sum reads only the period's partition.
func TestExplainHotQueries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t, Options{})
	admin := adminConn(t, db)
	seedVolume(t, db, admin)
	app := appConn(t, db)

	const org, scan = "org_seed_7", "scan_seed_206" // 206 % 100 + 1 = 7
	jan, feb, _ := sentineldf.PeriodBounds("2026-01")
	tests := []struct {
		name    string
		scope   map[string]string
		query   string
		args    []any
		indexes []string // each must appear
		only    []string // when set, the only relations read
	}{
		{"scan status read", nil, qLoadScan, []any{org, scan}, []string{"scans_pkey", "scan_files_pkey"}, nil},
		{"scan lock", nil, qLockScan, []any{org, scan}, []string{"scans_pkey"}, nil},
		{"scans first page", nil, qListScans, []any{org, 21}, []string{"scans_org_created", "scan_files_pkey"}, nil},
		{"scans next page", nil, qListScansAfter, []any{org, int64(3000), "scan_seed_9006", 21}, []string{"scans_org_created", "scan_files_pkey"}, nil},
		{"key lookup", map[string]string{"app.key_id": "key_seed_42"}, qLookupKey, []any{"key_seed_42"}, []string{"api_keys_pkey"}, nil},
		{"key touch", nil, qTouchKey, []any{int64(1), org, "key_seed_6"}, []string{"api_keys_pkey"}, nil},
		{"keys list", nil, qListKeys, []any{org}, []string{"api_keys_org_created"}, nil},
		{"usage period sums", nil, qUsage, []any{org, micros(jan), micros(feb)}, []string{"usage_records_p202601_pkey"}, []string{"usage_records_p202601"}},
		{"shard completion", nil, qCompleteShard, []any{1, 1, 1, 0, 0, 0, 0, org, scan, 3}, []string{"scan_shards_pkey"}, nil},
		{"shard exists", nil, qShardExists, []any{org, scan, 3}, []string{"scan_shards_pkey"}, nil},
		{"scan progress", nil, qAdvanceScan, []any{1, 1, 1, 0, 0, 0, 0, int64(1), org, scan}, []string{"scans_pkey"}, nil},
		{"shards list", nil, qShards, []any{org, scan}, []string{"scan_shards_pkey"}, nil},
		{"audit append", nil, qAppendAudit, []any{org, "a", "b", "c", "", "", int64(1)}, []string{"orgs_pkey"}, nil},
		{"audit log", nil, qAuditLog, []any{org, 100}, []string{"audit_log_pkey"}, nil},
		{"mboms list", nil, qListMBOMs, []any{org, scan}, []string{"mbom_records_org_scan"}, nil},
		{"org", nil, qOrg, []any{org}, []string{"orgs_pkey"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			scope := tc.scope
			if scope == nil {
				scope = map[string]string{"app.org_id": org}
			}
			inTx(t, app, scope, func(tx pgx.Tx) {
				var out string
				if err := tx.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+tc.query, tc.args...).Scan(&out); err != nil {
					t.Fatalf("EXPLAIN: %v", err)
				}
				var plans []struct {
					Plan planNode `json:"Plan"`
				}
				if err := json.Unmarshal([]byte(out), &plans); err != nil || len(plans) != 1 {
					t.Fatalf("decode plan: %v\n%s", err, out)
				}
				var indexes, relations []string
				plans[0].Plan.walk(func(n planNode) {
					if n.NodeType == "Seq Scan" {
						t.Errorf("sequential scan of %s", n.RelationName)
					}
					if n.IndexName != "" {
						indexes = append(indexes, n.IndexName)
					}
					if n.RelationName != "" {
						relations = append(relations, n.RelationName)
					}
				})
				for _, want := range tc.indexes {
					if !slices.Contains(indexes, want) {
						t.Errorf("plan does not use %s; uses %v", want, indexes)
					}
				}
				for _, r := range relations {
					if tc.only != nil && !slices.Contains(tc.only, r) {
						t.Errorf("plan reads %s, want only %v", r, tc.only)
					}
				}
				if t.Failed() {
					t.Logf("plan:\n%s", strings.TrimSpace(out))
				}
			})
		})
	}
}
