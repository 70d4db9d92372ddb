package postgres

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sentineldf/sentineldf"
)

// partitionOf returns the partition that holds the org's usage key.
func partitionOf(t *testing.T, admin *pgx.Conn, org, key string) string {
	t.Helper()
	var p string
	if err := admin.QueryRow(context.Background(),
		`SELECT tableoid::regclass::TEXT FROM usage_records WHERE org_id = $1 AND usage_key = $2`, org, key).Scan(&p); err != nil {
		t.Fatalf("partition of %s: %v", key, err)
	}
	return p
}

func partitions(t *testing.T, admin *pgx.Conn) []string {
	t.Helper()
	rows, err := admin.Query(context.Background(),
		`SELECT inhrelid::regclass::TEXT FROM pg_inherits WHERE inhparent = 'usage_records'::regclass ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUsagePartitions: usage lands in its month's partition, created on
// demand (and ahead at Open); a key counts once whatever month its retry
// falls in; a partition dropped behind the store's back is recreated.
func TestUsagePartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t, Options{})
	admin := adminConn(t, db)
	org, _, _ := seedRunningScan(t, db, 1)

	// Open created this month's partition and the next two.
	n := now()
	for i := range 3 {
		want := "usage_records_p" + time.Date(n.Year(), n.Month()+time.Month(i), 1, 0, 0, 0, 0, time.UTC).Format("200601")
		if !slices.Contains(partitions(t, admin), want) {
			t.Errorf("partition %s missing after Open; have %v", want, partitions(t, admin))
		}
	}

	jan, feb, _ := sentineldf.PeriodBounds("2031-01")
	records := []struct {
		key       string
		at        time.Time
		added     bool
		partition string
	}{
		{"first", jan, true, "usage_records_p203101"},
		{"last-us", feb.Add(-time.Microsecond), true, "usage_records_p203101"},
		{"next", feb, true, "usage_records_p203102"},
		// A retry of "first" on another day, in another month: counted once.
		{"first", jan.AddDate(0, 2, 3), false, "usage_records_p203101"},
		{"next", jan.Add(time.Hour), false, "usage_records_p203102"},
	}
	for _, r := range records {
		added, err := db.RecordUsage(ctx, sentineldf.UsageRecord{OrgID: org, Key: r.key, Docs: 1, Bytes: 10, At: r.at})
		if err != nil || added != r.added {
			t.Fatalf("RecordUsage(%s at %v) = %v, %v; want %v", r.key, r.at, added, err, r.added)
		}
		if p := partitionOf(t, admin, org, r.key); p != r.partition {
			t.Errorf("%s is in %s, want %s", r.key, p, r.partition)
		}
	}
	docs, _, daily, err := db.Usage(ctx, org, jan, jan.AddDate(0, 6, 0))
	if err != nil || docs != 3 || len(daily) != 3 {
		t.Errorf("Usage = %d docs %v, %v; want 3 over 3 days", docs, daily, err)
	}

	// An operator dropped January (retention) after this process cached it.
	if _, err := admin.Exec(ctx, `DROP TABLE usage_records_p203101`); err != nil {
		t.Fatal(err)
	}
	added, err := db.RecordUsage(ctx, sentineldf.UsageRecord{OrgID: org, Key: "after-drop", Docs: 1, At: jan.Add(time.Hour)})
	if err != nil || !added {
		t.Fatalf("RecordUsage into a dropped month = %v, %v; want recreated and added", added, err)
	}
	if p := partitionOf(t, admin, org, "after-drop"); p != "usage_records_p203101" {
		t.Errorf("after-drop is in %s", p)
	}

	for _, at := range []time.Time{time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		_, err := db.RecordUsage(ctx, sentineldf.UsageRecord{OrgID: org, Key: "wild", Docs: 1, At: at})
		if sentineldf.ErrorCode(err) != sentineldf.EINVALID {
			t.Errorf("RecordUsage at %v: %v; want invalid", at, err)
		}
	}
}
