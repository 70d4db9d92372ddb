package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/migrations"
	"github.com/sentineldf/sentineldf/storetest"
)

func openTest(t testing.TB, opts Options) *DB {
	t.Helper()
	if opts.Path == "" {
		opts.Path = filepath.Join(t.TempDir(), "sentineldf.db")
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

// jobs lists the jobs of kind, oldest first.
func (db *DB) jobs(ctx context.Context, kind string) ([]*rivertype.JobRow, error) {
	var out []*rivertype.JobRow
	params := river.NewJobListParams().Kinds(kind).First(10_000)
	err := db.readTx(ctx, "jobs", func(tx txn) error {
		res, err := db.river.JobListTx(ctx, tx.Tx, params)
		if err != nil {
			return err
		}
		out = res.Jobs
		return nil
	})
	return out, err
}

func backend(t *testing.T) storetest.Backend {
	db := openTest(t, Options{})
	return storetest.Backend{
		Store: db,
		Queue: db,
		Jobs: func(ctx context.Context, kind string) ([]json.RawMessage, error) {
			rows, err := db.jobs(ctx, kind)
			if err != nil {
				return nil, err
			}
			out := make([]json.RawMessage, len(rows))
			for i, r := range rows {
				out[i] = r.EncodedArgs
			}
			return out, nil
		},
	}
}

func TestStoreConformance(t *testing.T) {
	storetest.Run(t, backend)
}

var tables = []string{
	"orgs", "users", "api_keys", "scans", "scan_files", "scan_shards",
	"usage_records", "signing_keys", "mbom_records", "audit_log", "river_job",
}

func TestMigrationsFromEmpty(t *testing.T) {
	db := openTest(t, Options{})
	ctx := context.Background()
	for _, table := range tables {
		var n int
		if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n); err != nil || n != 1 {
			t.Errorf("table %s: %d, %v", table, n, err)
		}
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.write, migrations.FS, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	current, target, err := p.GetVersions(ctx)
	if err != nil || current != target || current < 1 {
		t.Errorf("goose versions current %d target %d, %v", current, target, err)
	}
	var mode string
	if err := db.read.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk int
	if err := db.read.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
	}
	for _, f := range []string{db.opts.Path, db.opts.Path + "-wal"} {
		st, err := os.Stat(f)
		if err != nil {
			t.Errorf("stat: %v", err)
		} else if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(f), st.Mode().Perm())
		}
	}
	// The read pool cannot write.
	if _, err := db.read.ExecContext(ctx, `DELETE FROM orgs`); err == nil {
		t.Error("read pool accepted a write")
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dir with space?and#odd", "db.sqlite")
	if _, err := Open(ctx, Options{Path: path}); err == nil {
		t.Fatal("Open in a missing directory succeeded")
	}
	path = filepath.Join(t.TempDir(), "with space?and#odd.sqlite")
	db, err := Open(ctx, Options{Path: path, riverTestOnly: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	org := &sentineldf.Org{ID: "org_1", Name: "Acme", Plan: "free"}
	key := &sentineldf.APIKey{ID: "key1", Name: "k", Hash: []byte("h")}
	if err := db.CreateOrg(ctx, org, key, sentineldf.AuditEvent{Action: sentineldf.AuditOrgCreated, Actor: "system"}); err != nil {
		t.Fatalf("CreateOrg: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	db = openTest(t, Options{Path: path})
	got, err := db.Org(ctx, "org_1")
	if err != nil || got.Name != "Acme" || !got.CreatedAt.Equal(org.CreatedAt) {
		t.Errorf("Org after reopen = %+v, %v", got, err)
	}
	if _, err := Open(ctx, Options{}); err == nil {
		t.Error("Open with an empty path succeeded")
	}
}

// TestConcurrentReadsWhileWriting: 16 readers poll scan status while
// writers complete shards and create scans; nothing fails with
// SQLITE_BUSY.
func TestConcurrentReadsWhileWriting(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	org, scan, shards := seedRunningScan(t, db, 200)

	var (
		wg      sync.WaitGroup
		done    = make(chan struct{})
		errsMu  sync.Mutex
		errs    []error
		reads   = make([]int, 16)
		addErrs = func(err error) {
			errsMu.Lock()
			errs = append(errs, err)
			errsMu.Unlock()
		}
	)
	for r := range 16 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := db.Scan(ctx, org, scan); err != nil {
					addErrs(fmt.Errorf("reader %d: %w", r, err))
					return
				}
				reads[r]++
			}
		})
	}
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Go(func() {
			for i := w; i < len(shards); i += 4 {
				if _, _, err := db.CompleteShard(ctx, shards[i]); err != nil {
					addErrs(fmt.Errorf("writer %d: %w", w, err))
					return
				}
				s := &sentineldf.Scan{ID: sentineldf.NewID("scan"), OrgID: org, Files: []sentineldf.ScanFile{{Name: "f"}}}
				if err := db.CreateScan(ctx, s); err != nil {
					addErrs(fmt.Errorf("writer %d: %w", w, err))
					return
				}
			}
		})
	}
	writers.Wait()
	close(done)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for r, n := range reads {
		if n == 0 {
			t.Errorf("reader %d never completed a read", r)
		}
	}
	s, err := db.Scan(ctx, org, scan)
	if err != nil || s.Progress.DocsDone != int64(len(shards)) {
		t.Errorf("progress %+v, %v; want %d docs", s.Progress, err, len(shards))
	}
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

// TestJobOptions: every job carries the scan's priority, the standard
// attempts and its trace context.
func TestJobOptions(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	org, scan, shards := seedRunningScan(t, db, 2)
	for _, sh := range shards {
		if _, _, err := db.CompleteShard(ctx, sh); err != nil {
			t.Fatal(err)
		}
	}
	for _, kind := range []string{sentineldf.PlanJob{}.Kind(), sentineldf.ShardJob{}.Kind(), sentineldf.FinalizeJob{}.Kind()} {
		rows, err := db.jobs(ctx, kind)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			t.Errorf("no %s jobs", kind)
		}
		for _, r := range rows {
			if r.Priority != 2 || r.MaxAttempts != sentineldf.MaxJobAttempts || r.Queue != river.QueueDefault {
				t.Errorf("%s job: priority %d, max attempts %d, queue %q", kind, r.Priority, r.MaxAttempts, r.Queue)
			}
			var args sentineldf.PlanJob
			if err := json.Unmarshal(r.EncodedArgs, &args); err != nil || args.OrgID != org || args.ScanID != scan {
				t.Errorf("%s args %s", kind, r.EncodedArgs)
			}
		}
	}
}

func TestQueryObserver(t *testing.T) {
	var (
		mu  sync.Mutex
		ops []string
	)
	db := openTest(t, Options{QueryObserver: func(op string, d time.Duration) {
		mu.Lock()
		ops = append(ops, op)
		mu.Unlock()
	}})
	ctx := context.Background()
	_, _ = db.Scan(ctx, "org", "scan")
	_ = db.Ping(ctx)
	_, _ = db.QueueDepth(ctx)
	if want := []string{"Scan", "Ping", "QueueDepth"}; !slices.Equal(ops, want) {
		t.Errorf("observed %v, want %v", ops, want)
	}
}

// Workers: the four kinds, wired to the store the way the service wires
// them, with a flaky shard worker that fails its first attempt.
type planWorker struct {
	river.WorkerDefaults[sentineldf.PlanJob]
	db *DB
}

func (w *planWorker) Work(ctx context.Context, job *river.Job[sentineldf.PlanJob]) error {
	s, err := w.db.Scan(ctx, job.Args.OrgID, job.Args.ScanID)
	if err != nil {
		return err
	}
	shards := make([]sentineldf.Shard, 4)
	for i := range shards {
		shards[i] = sentineldf.Shard{OrgID: s.OrgID, ScanID: s.ID, Index: i, Length: 10}
	}
	return w.db.StartScan(ctx, s.OrgID, s.ID, shards, sentineldf.Progress{DocsTotal: 4, BytesTotal: 40})
}

type shardWorker struct {
	river.WorkerDefaults[sentineldf.ShardJob]
	db *DB
}

func (w *shardWorker) Work(ctx context.Context, job *river.Job[sentineldf.ShardJob]) error {
	if job.Args.Shard == 1 && job.Attempt == 1 {
		return errors.New("transient failure")
	}
	_, _, err := w.db.CompleteShard(ctx, sentineldf.Shard{
		OrgID: job.Args.OrgID, ScanID: job.Args.ScanID, Index: job.Args.Shard,
		Docs: 1, Bytes: 10, Counts: sentineldf.Counts{Clean: 1},
	})
	return err
}

type finalizeWorker struct {
	river.WorkerDefaults[sentineldf.FinalizeJob]
	db *DB
}

func (w *finalizeWorker) Work(ctx context.Context, job *river.Job[sentineldf.FinalizeJob]) error {
	s, err := w.db.Scan(ctx, job.Args.OrgID, job.Args.ScanID)
	if err != nil {
		return err
	}
	_, err = w.db.FinishScan(ctx, s.OrgID, s.ID, sentineldf.StateSucceeded, s.Counts, "")
	return err
}

type callbackWorker struct {
	river.WorkerDefaults[sentineldf.CallbackJob]
	calls chan string
}

func (w *callbackWorker) Work(ctx context.Context, job *river.Job[sentineldf.CallbackJob]) error {
	w.calls <- job.Args.ScanID
	return nil
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

// TestWorkersRunScan runs a scan end to end through River: plan, shards
// (one retried), finalize, callback.
func TestWorkersRunScan(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{FetchPollInterval: 50 * time.Millisecond})
	workers := river.NewWorkers()
	calls := make(chan string, 4)
	river.AddWorker(workers, &planWorker{db: db})
	river.AddWorker(workers, &shardWorker{db: db})
	river.AddWorker(workers, &finalizeWorker{db: db})
	river.AddWorker(workers, &callbackWorker{calls: calls})

	client, err := db.StartWorkers(ctx, workers, 4)
	if err != nil {
		t.Fatalf("StartWorkers: %v", err)
	}
	t.Cleanup(func() {
		if err := client.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})

	o := &sentineldf.Org{ID: sentineldf.NewID("org"), Name: "Acme", Plan: "pro"}
	if err := db.CreateOrg(ctx, o, &sentineldf.APIKey{ID: "k1", Name: "k", Hash: []byte("h")}, sentineldf.AuditEvent{Action: sentineldf.AuditOrgCreated, Actor: "system"}); err != nil {
		t.Fatal(err)
	}
	s := &sentineldf.Scan{ID: sentineldf.NewID("scan"), OrgID: o.ID, CallbackURL: "https://example.com/hook",
		Files: []sentineldf.ScanFile{{Name: "a.jsonl", Size: 40}}}
	if err := db.CreateScan(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ConfirmScan(ctx, o.ID, s.ID, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-calls:
		if got != s.ID {
			t.Fatalf("callback for %s, want %s", got, s.ID)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("timed out waiting for the callback job")
	}
	got, err := db.Scan(ctx, o.ID, s.ID)
	if err != nil || got.State != sentineldf.StateSucceeded || got.Progress.DocsDone != 4 || got.Counts.Clean != 4 {
		t.Fatalf("scan = %+v, %v; want succeeded with 4 docs", got, err)
	}
	docs, _, _, err := db.Usage(ctx, o.ID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil || docs != 4 {
		t.Errorf("usage = %d, %v; want 4", docs, err)
	}
	waitFor(t, "queue to drain", func() (bool, error) {
		n, err := db.QueueDepth(ctx)
		return n == 0, err
	})
}

type failingWorker struct {
	river.WorkerDefaults[sentineldf.PlanJob]
}

func (failingWorker) Work(context.Context, *river.Job[sentineldf.PlanJob]) error {
	return errors.New("plan failed: input unreadable")
}

func TestDeadJobsAndRetry(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{FetchPollInterval: 50 * time.Millisecond})
	workers := river.NewWorkers()
	river.AddWorker(workers, failingWorker{})
	client, err := db.StartWorkers(ctx, workers, 1)
	if err != nil {
		t.Fatalf("StartWorkers: %v", err)
	}

	// One attempt only, so the job is discarded at once.
	res, err := db.river.Insert(ctx, sentineldf.PlanJob{OrgID: "org_a", ScanID: "scan_a"}, &river.InsertOpts{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	var dead []sentineldf.DeadJob
	waitFor(t, "the job to be discarded", func() (bool, error) {
		var err error
		dead, err = db.DeadJobs(ctx, 10)
		return len(dead) == 1, err
	})
	if err := client.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	d := dead[0]
	if d.ID != res.Job.ID || d.Kind != "scan_plan" || d.OrgID != "org_a" || d.ScanID != "scan_a" || d.Attempts != 1 ||
		d.LastError != "plan failed: input unreadable" || d.FinalizedAt.IsZero() {
		t.Errorf("dead job = %+v", d)
	}

	if err := db.RetryJob(ctx, d.ID); err != nil {
		t.Fatalf("RetryJob: %v", err)
	}
	if dead, err := db.DeadJobs(ctx, 10); err != nil || len(dead) != 0 {
		t.Errorf("DeadJobs after retry = %v, %v", dead, err)
	}
	if n, err := db.QueueDepth(ctx); err != nil || n != 1 {
		t.Errorf("QueueDepth after retry = %d, %v; want 1", n, err)
	}
	if got := sentineldf.ErrorCode(db.RetryJob(ctx, d.ID)); got != sentineldf.ECONFLICT {
		t.Errorf("RetryJob(available job) code %q, want conflict", got)
	}
}

func BenchmarkScan(b *testing.B) {
	db := openTest(b, Options{})
	org, scan, _ := seedRunningScan(b, db, 4)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.Scan(ctx, org, scan); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkCompleteShard(b *testing.B) {
	db := openTest(b, Options{})
	org, scan, shards := seedRunningScan(b, db, b.N+1)
	_ = org
	_ = scan
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := db.CompleteShard(ctx, shards[i]); err != nil {
			b.Fatal(err)
		}
	}
}
