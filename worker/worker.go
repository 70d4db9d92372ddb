package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/corpus"
	"github.com/sentineldf/sentineldf/detect"
	"github.com/sentineldf/sentineldf/telemetry"
)

// Config configures a Worker. Store, Blobs and Engine are required.
type Config struct {
	// Store is the system of record; its state changes enqueue the jobs.
	Store sentineldf.Store
	// Blobs holds the inputs, the shards' results and the result objects.
	Blobs sentineldf.BlobStore
	// Cache is the shared result cache; nil scans without one.
	Cache sentineldf.Cache
	// Engine scans documents; it must be configured as the CLI's default
	// for results to match `sentineldf scan`.
	Engine *detect.Engine
	// DatasetDetectors returns fresh dataset-level detectors for each
	// finalize; nil means corpus.Default(corpus.Options{}), the CLI's
	// default.
	DatasetDetectors func() []detect.DatasetDetector
	// Secret is the server secret the callback signing secrets derive from
	// (sentineldf.CallbackSecret).
	Secret []byte
	// Logger nil logs nothing.
	Logger *slog.Logger
	// Metrics nil records into a private registry.
	Metrics *telemetry.Metrics
	// Tracer nil traces nothing.
	Tracer trace.TracerProvider
	// ShardBytes is the target size of a JSONL shard; 0 means 32 MiB.
	ShardBytes int64
	// ScanWorkers is the number of goroutines scanning documents in one
	// job; 0 means GOMAXPROCS.
	ScanWorkers int
	// TempDir holds the jobs' temporary files; "" means os.TempDir().
	TempDir string
	// HTTPClient sends callbacks. Nil builds one that refuses non-public
	// destinations (see AllowPrivateCallbacks); a client given here is used
	// as is and must apply its own policy.
	HTTPClient *http.Client
	// AllowPrivateCallbacks lets callbacks reach loopback, private and
	// link-local addresses (tests, private deployments).
	AllowPrivateCallbacks bool
	// PollInterval is how often a running shard or finalize checks whether
	// its scan was canceled; 0 means 3 seconds.
	PollInterval time.Duration
	// MinJobTimeout is the least time a shard or finalize job may run
	// before River cancels it (it grows with the job's bytes); 0 means 10
	// minutes for shards and 15 for finalize. Keep it below the River
	// client's RescueStuckJobsAfter, which is how long a job held by a
	// worker that died is left before it runs again.
	MinJobTimeout time.Duration
	// Now nil means time.Now.
	Now func() time.Time
	// Version is the server version, sent in callbacks' User-Agent.
	Version string
}

// Defaults.
const (
	DefaultShardBytes   = 32 << 20
	DefaultPollInterval = 3 * time.Second
	// CallbackTimeout bounds one callback request.
	CallbackTimeout = 10 * time.Second
	// resultCacheTTL is how long cached results live in the shared cache.
	resultCacheTTL = 7 * 24 * time.Hour
)

// Worker runs the jobs of async scans. It is safe for concurrent use: River
// runs many jobs at once.
type Worker struct {
	cfg     Config
	log     *slog.Logger
	metrics *telemetry.Metrics
	tracer  trace.Tracer
	client  *http.Client
	now     func() time.Time
	lengths lengthCache
	// onScanEnded, when set (by tests), is called when a watch sees its
	// scan end.
	onScanEnded func()
}

// New checks cfg, fills in its defaults and returns a Worker.
func New(cfg Config) (*Worker, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("worker: no Store")
	case cfg.Blobs == nil:
		return nil, errors.New("worker: no BlobStore")
	case cfg.Engine == nil:
		return nil, errors.New("worker: no Engine")
	case cfg.ShardBytes < 0:
		return nil, errors.New("worker: negative ShardBytes")
	case cfg.ScanWorkers < 0:
		return nil, errors.New("worker: negative ScanWorkers")
	}
	if cfg.DatasetDetectors == nil {
		cfg.DatasetDetectors = func() []detect.DatasetDetector { return corpus.Default(corpus.Options{}) }
	}
	cfg.ShardBytes = cmp.Or(cfg.ShardBytes, DefaultShardBytes)
	cfg.ScanWorkers = cmp.Or(cfg.ScanWorkers, runtime.GOMAXPROCS(0))
	cfg.PollInterval = cmp.Or(cfg.PollInterval, DefaultPollInterval)
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	} else if err := os.MkdirAll(cfg.TempDir, 0o700); err != nil {
		return nil, fmt.Errorf("worker: temp dir: %w", err)
	}
	w := &Worker{cfg: cfg, log: cfg.Logger, metrics: cfg.Metrics, now: cfg.Now, client: cfg.HTTPClient}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.metrics == nil {
		w.metrics = telemetry.NewMetrics(prometheus.NewRegistry())
	}
	tp := cfg.Tracer
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	w.tracer = tp.Tracer("github.com/sentineldf/sentineldf/worker")
	if w.now == nil {
		w.now = time.Now
	}
	if w.client == nil {
		w.client = newCallbackClient(cfg.AllowPrivateCallbacks)
	}
	return w, nil
}

// Register adds the plan, shard, finalize and callback workers to workers.
func (w *Worker) Register(workers *river.Workers) error {
	for _, add := range []func() error{
		func() error { return river.AddWorkerSafely(workers, &planWorker{w: w}) },
		func() error { return river.AddWorkerSafely(workers, &shardWorker{w: w}) },
		func() error { return river.AddWorkerSafely(workers, &finalizeWorker{w: w}) },
		func() error { return river.AddWorkerSafely(workers, &callbackWorker{w: w}) },
	} {
		if err := add(); err != nil {
			return fmt.Errorf("worker: register: %w", err)
		}
	}
	return nil
}

// The River workers: each adapts one job kind to a method of Worker.

type planWorker struct {
	river.WorkerDefaults[sentineldf.PlanJob]
	w *Worker
}

func (p *planWorker) Work(ctx context.Context, job *river.Job[sentineldf.PlanJob]) error {
	a := job.Args
	return p.w.runJob(ctx, "scan.plan", a.Kind(), job.JobRow, a.OrgID, a.ScanID, a.Trace, nil, p.w.plan)
}

// Timeout: planning reads a few small ranges per shard.
func (p *planWorker) Timeout(*river.Job[sentineldf.PlanJob]) time.Duration { return 15 * time.Minute }

type shardWorker struct {
	river.WorkerDefaults[sentineldf.ShardJob]
	w *Worker
}

func (s *shardWorker) Work(ctx context.Context, job *river.Job[sentineldf.ShardJob]) error {
	a := job.Args
	attrs := []attribute.KeyValue{attribute.Int("sentineldf.shard", a.Shard)}
	return s.w.runJob(ctx, "scan.shard", a.Kind(), job.JobRow, a.OrgID, a.ScanID, a.Trace, attrs,
		func(ctx context.Context, org, scanID string) error { return s.w.shard(ctx, org, scanID, a.Shard) })
}

// Timeout grows with the shard's size (see jobTimeout).
func (s *shardWorker) Timeout(job *river.Job[sentineldf.ShardJob]) time.Duration {
	return s.w.shardTimeout(job.Args)
}

type finalizeWorker struct {
	river.WorkerDefaults[sentineldf.FinalizeJob]
	w *Worker
}

func (f *finalizeWorker) Work(ctx context.Context, job *river.Job[sentineldf.FinalizeJob]) error {
	a := job.Args
	return f.w.runJob(ctx, "scan.finalize", a.Kind(), job.JobRow, a.OrgID, a.ScanID, a.Trace, nil, f.w.finalize)
}

// Timeout grows with the scan's total size.
func (f *finalizeWorker) Timeout(job *river.Job[sentineldf.FinalizeJob]) time.Duration {
	return f.w.finalizeTimeout(job.Args)
}

type callbackWorker struct {
	river.WorkerDefaults[sentineldf.CallbackJob]
	w *Worker
}

func (c *callbackWorker) Work(ctx context.Context, job *river.Job[sentineldf.CallbackJob]) error {
	a := job.Args
	return c.w.runJob(ctx, "scan.callback", a.Kind(), job.JobRow, a.OrgID, a.ScanID, a.Trace, nil, c.w.callback)
}

// Timeout bounds the request and the store lookups around it.
func (c *callbackWorker) Timeout(*river.Job[sentineldf.CallbackJob]) time.Duration {
	return 3 * CallbackTimeout
}

// Job timeouts. A timeout bounds a hung job, and it is also how long River
// leaves a job that a dead worker held before running it again, so it grows
// with the work instead of being one large number.
const (
	minShardTimeout    = 10 * time.Minute
	minFinalizeTimeout = 15 * time.Minute
	// minThroughput is the slowest a job may go, in bytes per second,
	// before it counts as hung: well below a single core's scan speed.
	minThroughput = 1 << 20
)

func jobTimeout(bytes int64, floor time.Duration) time.Duration {
	return max(floor, time.Duration(bytes/minThroughput)*time.Second)
}

func (w *Worker) shardTimeout(a sentineldf.ShardJob) time.Duration {
	if n, ok := w.lengths.get(a.OrgID, a.ScanID, a.Shard); ok {
		return jobTimeout(n, w.minTimeout(minShardTimeout))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shards, err := w.cfg.Store.Shards(ctx, a.OrgID, a.ScanID)
	if err != nil {
		return jobTimeout(sentineldf.MaxUploadBytes, w.minTimeout(minShardTimeout))
	}
	w.lengths.put(a.OrgID, a.ScanID, shards)
	n, ok := w.lengths.get(a.OrgID, a.ScanID, a.Shard)
	if !ok {
		return w.minTimeout(minShardTimeout)
	}
	return jobTimeout(n, w.minTimeout(minShardTimeout))
}

func (w *Worker) finalizeTimeout(a sentineldf.FinalizeJob) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sc, err := w.cfg.Store.Scan(ctx, a.OrgID, a.ScanID)
	if err != nil {
		return jobTimeout(sentineldf.MaxFilesPerScan*sentineldf.MaxUploadBytes, w.minTimeout(minFinalizeTimeout))
	}
	var total int64
	for _, f := range sc.Files {
		total += f.Size
	}
	return jobTimeout(total, w.minTimeout(minFinalizeTimeout))
}

// lengthCache remembers the shard lengths of recent scans, so that the
// shard jobs of one scan look them up once, not once each.
type lengthCache struct {
	mu sync.Mutex
	m  map[string][]int64
}

const maxCachedScans = 256

func (c *lengthCache) get(org, scanID string, shard int) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ls, ok := c.m[org+"/"+scanID]
	if !ok || shard < 0 || shard >= len(ls) || ls[shard] < 0 {
		return 0, false
	}
	return ls[shard], true
}

func (c *lengthCache) put(org, scanID string, shards []sentineldf.Shard) {
	ls := make([]int64, len(shards))
	for i := range ls {
		ls[i] = -1
	}
	for _, sh := range shards {
		if sh.Index >= 0 && sh.Index < len(ls) {
			ls[sh.Index] = sh.Length
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedScans {
		c.m = map[string][]int64{}
	}
	c.m[org+"/"+scanID] = ls
}

// failure is an error in a scan's data: the scan fails with Message, which
// is safe to show, and the job ends without error.
type failure struct {
	Message string
	Err     error
}

func (f *failure) Error() string {
	if f.Err != nil {
		return f.Message + ": " + f.Err.Error()
	}
	return f.Message
}

func (f *failure) Unwrap() error { return f.Err }

func failf(err error, format string, args ...any) error {
	return &failure{Message: fmt.Sprintf(format, args...), Err: err}
}

// errScanEnded stops a job whose scan was canceled or ended while it ran.
var errScanEnded = errors.New("scan canceled or ended")

// Job outcomes for Metrics.Jobs.
const (
	outcomeOK       = "ok"
	outcomeError    = "error"
	outcomeCanceled = "canceled"
)

// runJob is what every job shares: trace context, span, metrics, logs and
// the mapping of errors to scan failures and retries.
func (w *Worker) runJob(ctx context.Context, span, kind string, row *rivertype.JobRow, org, scanID string,
	carrier map[string]string, attrs []attribute.KeyValue, fn func(ctx context.Context, org, scanID string) error) error {
	ctx = telemetry.WithOrgID(telemetry.Extract(ctx, carrier), org)
	attrs = append(attrs, attribute.String("sentineldf.org_id", org), attribute.String("sentineldf.scan_id", scanID))
	attempt, maxAttempts := 1, sentineldf.MaxJobAttempts
	if row != nil {
		attempt, maxAttempts = row.Attempt, row.MaxAttempts
		attrs = append(attrs, attribute.Int64("river.job_id", row.ID), attribute.Int("river.attempt", row.Attempt))
	}
	ctx, sp := w.tracer.Start(ctx, span, trace.WithAttributes(attrs...), trace.WithSpanKind(trace.SpanKindConsumer))
	defer sp.End()
	log := w.log.With("job", kind, "scan_id", scanID, "attempt", attempt)
	w.metrics.WorkerActiveTasks.Inc()
	defer w.metrics.WorkerActiveTasks.Dec()
	start := time.Now()
	defer func() { w.metrics.JobDuration.WithLabelValues(kind).Observe(time.Since(start).Seconds()) }()
	log.DebugContext(ctx, "job started")

	err := fn(ctx, org, scanID)
	outcome := outcomeOK
	var fail *failure
	switch {
	case err == nil:
	case errors.Is(err, errScanEnded):
		outcome, err = outcomeCanceled, nil
		log.InfoContext(ctx, "scan canceled or ended; job stopped")
	case errors.As(err, &fail):
		outcome = outcomeError
		log.WarnContext(ctx, "scan failed", "reason", fail.Message, "err", err)
		err = w.failScan(ctx, org, scanID, fail.Message)
	default:
		// Shutdown, a timeout or a transient error: nothing was completed
		// and River runs the job again, unless this was its last attempt.
		outcome = outcomeError
		msg := "internal error"
		if ctx.Err() != nil {
			outcome, msg = outcomeCanceled, "the scan did not finish in time"
		}
		last := attempt >= maxAttempts && kind != (sentineldf.CallbackJob{}).Kind()
		log.WarnContext(ctx, "job did not complete", "err", err, "last_attempt", last)
		if last {
			if ferr := w.failScan(ctx, org, scanID, msg); ferr != nil {
				log.ErrorContext(ctx, "mark scan failed", "err", ferr)
			}
		}
	}
	if err != nil {
		sp.RecordError(err)
		sp.SetStatus(codes.Error, err.Error())
	}
	w.metrics.Jobs.WithLabelValues(kind, outcome).Inc()
	if outcome == outcomeOK {
		log.InfoContext(ctx, "job done", "seconds", time.Since(start).Seconds())
	}
	return err
}

// failScan moves a scan to failed with a message safe to show.
func (w *Worker) failScan(ctx context.Context, org, scanID, msg string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := w.cfg.Store.FinishScan(ctx, org, scanID, sentineldf.StateFailed, sentineldf.Counts{}, msg); err != nil {
		return fmt.Errorf("fail scan: %w", err)
	}
	return nil
}

// loadScan returns the scan, or errScanEnded when it is gone, canceled or
// finished.
func (w *Worker) loadScan(ctx context.Context, org, scanID string) (*sentineldf.Scan, error) {
	sc, err := w.cfg.Store.Scan(ctx, org, scanID)
	if sentineldf.ErrorCode(err) == sentineldf.ENOTFOUND {
		return nil, errScanEnded
	}
	if err != nil {
		return nil, fmt.Errorf("load scan: %w", err)
	}
	if sentineldf.Terminal(sc.State) {
		return nil, errScanEnded
	}
	return sc, nil
}

// watch returns a context canceled with errScanEnded once the scan is
// canceled or ends, checked every PollInterval, and a function to stop
// watching.
func (w *Worker) watch(ctx context.Context, org, scanID string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(w.cfg.PollInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			sc, err := w.cfg.Store.Scan(ctx, org, scanID)
			switch {
			case sentineldf.ErrorCode(err) == sentineldf.ENOTFOUND, err == nil && sentineldf.Terminal(sc.State):
				cancel(errScanEnded)
				if w.onScanEnded != nil {
					w.onScanEnded()
				}
				return
			case err != nil && ctx.Err() == nil:
				w.log.WarnContext(ctx, "check scan state", "scan_id", scanID, "err", err)
			}
		}
	})
	return ctx, func() {
		close(done)
		wg.Wait()
		cancel(nil)
	}
}

// stopCause says why work under a watch context stopped early:
// errScanEnded when the scan ended, the parent's error when the job was
// canceled, nil when neither happened.
func stopCause(parent, watched context.Context) error {
	if errors.Is(context.Cause(watched), errScanEnded) {
		return errScanEnded
	}
	return parent.Err()
}

// newTempDir makes a private temporary directory for one job.
func (w *Worker) newTempDir(kind string) (string, error) {
	dir, err := os.MkdirTemp(w.cfg.TempDir, "sentineldf-"+kind+"-*")
	if err != nil {
		return "", fmt.Errorf("temp dir: %w", err)
	}
	return dir, nil
}

// sanitize removes a job's temporary directory from a message shown to users.
func sanitize(msg, tmp string) string {
	msg = strings.ReplaceAll(msg, tmp+string(os.PathSeparator), "")
	return strings.ReplaceAll(msg, tmp, "")
}

// minTimeout is Config.MinJobTimeout, or def when unset.
func (w *Worker) minTimeout(def time.Duration) time.Duration {
	if w.cfg.MinJobTimeout > 0 {
		return w.cfg.MinJobTimeout
	}
	return def
}
