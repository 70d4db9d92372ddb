package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/storetest"
)

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
	t.Parallel()
	storetest.Run(t, backend)
}

// TestCompleteShardConcurrent: 8 goroutines complete every shard of a scan
// at once, each shard from several of them, while readers poll the
// scan's status: each shard is recorded once, its usage counted once, the
// FinalizeJob enqueued once.
func TestCompleteShardConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t, Options{MaxConns: 12})
	const n = 40
	org, scan, shards := seedRunningScan(t, db, n)

	var (
		mu             sync.Mutex
		recorded, last int
		errs           []error
		wg             sync.WaitGroup
		done           = make(chan struct{})
		start          = make(chan struct{})
	)
	for w := range 8 {
		wg.Go(func() {
			<-start
			// Worker w completes shards w, w+4, … : every shard by two workers.
			for i := w % 4; i < n; i += 4 {
				r, l, err := db.CompleteShard(ctx, shards[i])
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("worker %d shard %d: %w", w, i, err))
				}
				if r {
					recorded++
				}
				if l {
					last++
				}
				mu.Unlock()
			}
		})
	}
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := db.Scan(ctx, org, scan); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("reader: %w", err))
					mu.Unlock()
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(done)
	readers.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if recorded != n || last != 1 {
		t.Errorf("recorded %d (want %d), last %d (want 1)", recorded, n, last)
	}
	s, err := db.Scan(ctx, org, scan)
	if err != nil || s.Progress.DocsDone != n || s.Counts.Clean != n {
		t.Errorf("scan progress %+v counts %+v, %v; want %d docs", s.Progress, s.Counts, err, n)
	}
	docs, _, _, err := db.Usage(ctx, org, time.Now().AddDate(0, -1, 0), time.Now().AddDate(0, 1, 0))
	if err != nil || docs != n {
		t.Errorf("usage = %d, %v; want %d", docs, err, n)
	}
	jobs, err := db.jobs(ctx, sentineldf.FinalizeJob{}.Kind())
	if err != nil || len(jobs) != 1 {
		t.Errorf("finalize jobs = %d, %v; want 1", len(jobs), err)
	}
}

// TestJobOptions: every job carries the scan's priority, the standard
// attempts and its org and scan.
func TestJobOptions(t *testing.T) {
	t.Parallel()
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

// TestCreateOrgAuditOfAnotherOrg: CreateOrg's event may belong to another
// org (the sqlite store allows it): it is written under that org's scope,
// and the new org's rows under its own.
func TestCreateOrgAuditOfAnotherOrg(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t, Options{})
	first, _, _ := seedRunningScan(t, db, 1)
	second := &sentineldf.Org{ID: sentineldf.NewID("org"), Name: "Second", Plan: "free"}
	key := &sentineldf.APIKey{ID: sentineldf.NewID("key"), Name: "k", Hash: []byte("h")}
	ev := sentineldf.AuditEvent{OrgID: first, Action: sentineldf.AuditOrgCreated, Actor: "admin", Target: second.ID}
	if err := db.CreateOrg(ctx, second, key, ev); err != nil {
		t.Fatalf("CreateOrg: %v", err)
	}
	evs, err := db.AuditLog(ctx, first, 10)
	if err != nil || len(evs) != 2 || evs[0].Target != second.ID {
		t.Errorf("first org's audit = %+v, %v; want the second org's creation on top", evs, err)
	}
	if evs, err := db.AuditLog(ctx, second.ID, 10); err != nil || len(evs) != 0 {
		t.Errorf("second org's audit = %+v, %v; want none", evs, err)
	}
	if k, err := db.LookupAPIKey(ctx, key.ID); err != nil || k.OrgID != second.ID {
		t.Errorf("second org's key = %+v, %v", k, err)
	}
}

func TestQueryObserver(t *testing.T) {
	t.Parallel()
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

// NextRetry retries the flaky shard at once rather than after River's
// backoff.
func (w *shardWorker) NextRetry(*river.Job[sentineldf.ShardJob]) time.Time { return time.Now() }

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

// TestWorkersRunScan runs a scan end to end through River: plan, shards
// (one retried), finalize, callback.
func TestWorkersRunScan(t *testing.T) {
	t.Parallel()
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
	if err := db.CreateOrg(ctx, o, &sentineldf.APIKey{ID: sentineldf.NewID("key"), Name: "k", Hash: []byte("h")},
		sentineldf.AuditEvent{Action: sentineldf.AuditOrgCreated, Actor: "system"}); err != nil {
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
	shards, err := db.jobs(ctx, sentineldf.ShardJob{}.Kind())
	if err != nil {
		t.Fatal(err)
	}
	retried := 0
	for _, j := range shards {
		if j.Attempt > 1 {
			retried++
		}
	}
	if retried != 1 {
		t.Errorf("%d shard jobs ran more than once, want 1 (the flaky one)", retried)
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
	t.Parallel()
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
	_, _, shards := seedRunningScan(b, db, b.N+1)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := db.CompleteShard(ctx, shards[i]); err != nil {
			b.Fatal(err)
		}
	}
}
