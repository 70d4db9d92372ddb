package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/api"
	"github.com/sentineldf/sentineldf/corpus"
	"github.com/sentineldf/sentineldf/detect"
	"github.com/sentineldf/sentineldf/inmem"
	"github.com/sentineldf/sentineldf/localfs"
	"github.com/sentineldf/sentineldf/sqlite"
	"github.com/sentineldf/sentineldf/telemetry"
	"github.com/sentineldf/sentineldf/worker"
)

// serveFlags configure `sentineldf serve`.
type serveFlags struct {
	addr          string
	dataDir       string
	jobs          int
	scanWorkers   int
	shardMB       int
	shardBytes    int64
	cacheMB       int
	logLevel      string
	otlp          string
	limitFailOpen bool
	drain         time.Duration
	plans         string
}

func newServeCmd(io stdio) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run SentinelDF Cloud on this machine (API, workers, dashboard) on embedded storage",
		Long: `Run the whole SentinelDF Cloud service in one process: the HTTP API (control plane) and the
scan workers (data plane), on embedded defaults — SQLite for the database and job queue, the local
filesystem for uploads and results, in-memory caches and rate limiters. Nothing else to install.

On first start it creates the operator org and prints its admin API key once; keep it. Use it with
` + "`sentineldf cloud ...`" + ` or the API (see /docs) to create orgs and keys.`,
		Example: `  sentineldf serve
  sentineldf serve --addr 127.0.0.1:9000 --data-dir ./sdf-data`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), f, io)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", envOr("SENTINELDF_ADDR", "127.0.0.1:8080"), "listen on `HOST:PORT` (env SENTINELDF_ADDR)")
	fl.StringVar(&f.dataDir, "data-dir", envOr("SENTINELDF_DATA_DIR", defaultDataDir()), "keep the database, uploads and results in `DIR` (env SENTINELDF_DATA_DIR)")
	fl.IntVar(&f.jobs, "jobs", 2, "jobs (shards) run at once")
	fl.IntVar(&f.scanWorkers, "scan-workers", runtime.GOMAXPROCS(0), "goroutines scanning documents within each job")
	fl.IntVar(&f.shardMB, "shard-mb", 32, "split uploaded JSONL files into shards of about `MB` megabytes")
	fl.Int64Var(&f.shardBytes, "shard-bytes", 0, "shard size in bytes (overrides --shard-mb; for tests)")
	_ = fl.MarkHidden("shard-bytes")
	fl.IntVar(&f.cacheMB, "cache-mb", 256, "in-memory cache size (results, keys, idempotency) in `MB`")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.StringVar(&f.otlp, "otlp-endpoint", os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "export traces over OTLP/HTTP to `HOST:PORT` (off when empty)")
	fl.BoolVar(&f.limitFailOpen, "rate-limit-fail-open", true, "serve requests when the rate limiter fails (false: answer 503)")
	fl.StringVar(&f.plans, "plans", "", "override plan limits from a YAML `FILE` (see docs/cloud.md)")
	fl.DurationVar(&f.drain, "drain-timeout", 30*time.Second, "on shutdown, wait this long for running requests and jobs")
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// defaultDataDir is the per-user data directory: $XDG_DATA_HOME/sentineldf
// or ~/.local/share/sentineldf.
func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "sentineldf")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "sentineldf")
	}
	return "sentineldf-data"
}

// loadSecret returns the server secret kept in dir/secret, creating it
// (32 random bytes, mode 0600) on first start.
func loadSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, "secret")
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < 32 {
			return nil, fmt.Errorf("%s: secret too short (%d bytes)", path, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 32)
	rand.Read(b)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return b, nil
}

// deriveKey derives a purpose-specific key from the server secret.
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("sentineldf " + purpose))
	return m.Sum(nil)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, usageErr(fmt.Errorf("--log-level: %w", err))
	}
	return l, nil
}

func runServe(ctx context.Context, f serveFlags, io stdio) error {
	start := time.Now()
	log, reg, metrics, shutdownTracing, tp, err := observability(ctx, io, f.logLevel, "sentineldf", f.otlp)
	if err != nil {
		return err
	}
	defer shutdownTracing(context.Background())

	be, err := openEmbedded(ctx, f.dataDir, f.cacheMB, log, metrics)
	if err != nil {
		return err
	}
	defer be.close()
	db, blobs, cache := be.db, be.blobs, be.cache
	limiter := inmem.NewLimiter(inmem.LimiterOptions{})
	engine, err := detect.New(detect.Options{})
	if err != nil {
		return err
	}

	plans, err := loadPlans(f.plans)
	if err != nil {
		return err
	}
	srv, err := api.New(api.Config{
		Store: db, Queue: db, Blobs: blobs, BlobHandler: blobs.Handler(),
		Cache: cache, Limiter: limiter, Engine: engine, Plans: plans,
		Secret: be.secret, Logger: log, Metrics: metrics, Gatherer: reg, Tracer: tp,
		RateLimitFailOpen: f.limitFailOpen, Version: version,
	})
	if err != nil {
		return err
	}
	key, created, err := srv.EnsureOperator(ctx)
	if err != nil {
		return fmt.Errorf("operator org: %w", err)
	}

	wk, err := worker.New(worker.Config{
		Store: db, Blobs: blobs, Cache: cache, Engine: engine,
		DatasetDetectors: func() []detect.DatasetDetector { return corpus.Default(corpus.Options{}) },
		Secret:           be.secret, Logger: log, Metrics: metrics, Tracer: tp,
		ShardBytes: f.shardSize(), ScanWorkers: f.scanWorkers,
		TempDir: filepath.Join(f.dataDir, "tmp"), Version: version,
	})
	if err != nil {
		return err
	}
	workers := river.NewWorkers()
	if err := wk.Register(workers); err != nil {
		return err
	}
	// Workers run under their own context: on shutdown they are stopped
	// (drained), not cut off by the signal that stopped the server.
	rc, err := db.StartWorkers(context.WithoutCancel(ctx), workers, f.jobs)
	if err != nil {
		return fmt.Errorf("start workers: %w", err)
	}

	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return usageErr(fmt.Errorf("--addr: %w", err))
	}
	url := "http://" + ln.Addr().String()
	be.baseURL.Store(url)
	fmt.Fprintf(io.out, "SentinelDF listening on %s (data in %s, ready in %d ms)\n", url, f.dataDir, time.Since(start).Milliseconds())
	if created {
		fmt.Fprintf(io.out, "Operator admin API key (shown once, keep it): %s\n", key)
	}
	log.Info("ready", "addr", url, "data_dir", f.dataDir, "startup_ms", time.Since(start).Milliseconds())

	// Serve until ctx ends, then drain requests, then jobs: running jobs
	// get the drain time to finish; jobs still running after it are
	// cancelled and retried on the next start (a shard's work is
	// idempotent).
	err = serveHTTP(ctx, ln, srv.Handler(), log, f.drain)
	log.Info("shutting down", "drain_timeout", f.drain.String())
	srv.Close(context.Background())
	if serr := stopRiver(rc, log, f.drain); serr != nil {
		log.Warn("stopping workers", "err", serr)
	}
	return err
}

// embeddedBackends are the storage backends `serve` and `admin` use on
// their embedded defaults: SQLite, the local filesystem and memory.
type embeddedBackends struct {
	db      *sqlite.DB
	blobs   *localfs.Store
	cache   *inmem.Cache
	secret  []byte
	baseURL *atomic.Value // string: the URL presigned blob URLs start with
}

func openEmbedded(ctx context.Context, dataDir string, cacheMB int, log *slog.Logger, metrics *telemetry.Metrics) (*embeddedBackends, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, usageErr(fmt.Errorf("--data-dir: %w", err))
	}
	secret, err := loadSecret(dataDir)
	if err != nil {
		return nil, fmt.Errorf("server secret: %w", err)
	}
	opts := sqlite.Options{Path: filepath.Join(dataDir, "sentineldf.db"), Logger: log}
	if metrics != nil {
		opts.QueryObserver = func(op string, d time.Duration) {
			metrics.DBQueryDuration.WithLabelValues(op).Observe(d.Seconds())
		}
	}
	db, err := sqlite.Open(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	be := &embeddedBackends{db: db, secret: secret, baseURL: &atomic.Value{}}
	be.baseURL.Store("")
	be.blobs, err = localfs.New(localfs.Config{
		Dir:     filepath.Join(dataDir, "blobs"),
		Secret:  deriveKey(secret, "blob urls"),
		BaseURL: func() string { return be.baseURL.Load().(string) },
		Logger:  log,
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("blob store: %w", err)
	}
	be.cache = inmem.NewCache(int64(cacheMB) << 20)
	return be, nil
}

func (be *embeddedBackends) close() {
	be.blobs.Close()
	be.db.Close()
}

func (f serveFlags) shardSize() int64 {
	if f.shardBytes > 0 {
		return f.shardBytes
	}
	return int64(f.shardMB) << 20
}

// planFile is the YAML of --plans: limits per plan name, each field
// optional (unset fields keep the default).
type planFile map[string]struct {
	MonthlyDocuments *int64 `yaml:"monthly_documents"`
	RatePerMinute    *int   `yaml:"rate_per_minute"`
	Burst            *int   `yaml:"burst"`
	Priority         *int   `yaml:"priority"`
}

// loadPlans returns the default plans with the overrides of path applied.
func loadPlans(path string) (sentineldf.Plans, error) {
	plans := sentineldf.DefaultPlans()
	if path == "" {
		return plans, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErr(fmt.Errorf("--plans: %w", err))
	}
	var pf planFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&pf); err != nil {
		return nil, usageErr(fmt.Errorf("--plans %s: %w", path, err))
	}
	for name, o := range pf {
		p, ok := plans[name]
		if !ok {
			p = sentineldf.Plan{Name: name, Priority: 3}
		}
		if o.MonthlyDocuments != nil {
			p.MonthlyDocuments = *o.MonthlyDocuments
		}
		if o.RatePerMinute != nil {
			p.RatePerMinute = *o.RatePerMinute
		}
		if o.Burst != nil {
			p.Burst = *o.Burst
		}
		if o.Priority != nil {
			p.Priority = *o.Priority
		}
		if p.MonthlyDocuments < 0 || p.RatePerMinute <= 0 || p.Burst <= 0 || p.Priority < 1 || p.Priority > 4 {
			return nil, usageErr(fmt.Errorf("--plans %s: plan %q: monthly_documents must be >= 0, rate_per_minute and burst > 0, priority 1-4", path, name))
		}
		plans[name] = p
	}
	return plans, nil
}
