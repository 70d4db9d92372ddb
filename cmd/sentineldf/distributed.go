package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	goredis "github.com/redis/go-redis/v9"
	"github.com/riverqueue/river"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/api"
	"github.com/sentineldf/sentineldf/corpus"
	"github.com/sentineldf/sentineldf/detect"
	"github.com/sentineldf/sentineldf/inmem"
	"github.com/sentineldf/sentineldf/postgres"
	"github.com/sentineldf/sentineldf/redis"
	"github.com/sentineldf/sentineldf/s3"
	"github.com/sentineldf/sentineldf/telemetry"
	"github.com/sentineldf/sentineldf/worker"
)

// deployFlags configure the distributed processes (api, worker, migrate and
// admin against Postgres). Each flag defaults to its environment variable,
// so a deployment sets the environment once for every process.
type deployFlags struct {
	databaseURL string
	redisURL    string
	s3          s3.Config
	secretHex   string
	logLevel    string
	otlp        string
	plans       string
	maxConns    int
}

func (c *deployFlags) register(fl *pflag.FlagSet, withS3 bool) {
	fl.StringVar(&c.databaseURL, "database-url", os.Getenv("DATABASE_URL"), "Postgres `URL` (env DATABASE_URL)")
	fl.StringVar(&c.redisURL, "redis-url", os.Getenv("REDIS_URL"), "Redis `URL` for caches and rate limits (env REDIS_URL; empty: in-process, for a single instance)")
	fl.StringVar(&c.secretHex, "secret", "", "server secret, 64+ hex digits, the same in every process (env SENTINELDF_SECRET; preferred over the flag, which other users can see)")
	fl.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.StringVar(&c.otlp, "otlp-endpoint", os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "export traces over OTLP/HTTP to `HOST:PORT`")
	fl.StringVar(&c.plans, "plans", os.Getenv("SENTINELDF_PLANS"), "plan limits `FILE` (env SENTINELDF_PLANS)")
	fl.IntVar(&c.maxConns, "db-max-conns", 0, "Postgres connection pool size (0: max(4, CPUs))")
	if withS3 {
		fl.StringVar(&c.s3.Endpoint, "s3-endpoint", os.Getenv("S3_ENDPOINT"), "S3 endpoint `host:port` or URL (env S3_ENDPOINT)")
		fl.StringVar(&c.s3.Bucket, "s3-bucket", os.Getenv("S3_BUCKET"), "S3 bucket (env S3_BUCKET)")
		fl.StringVar(&c.s3.Region, "s3-region", envOr("S3_REGION", "us-east-1"), "S3 region (env S3_REGION)")
		fl.StringVar(&c.s3.SSE, "s3-sse", os.Getenv("S3_SSE"), "server-side encryption: AES256 or aws:kms (env S3_SSE)")
		fl.StringVar(&c.s3.KMSKeyID, "s3-kms-key-id", os.Getenv("S3_KMS_KEY_ID"), "KMS key for aws:kms (env S3_KMS_KEY_ID)")
	}
}

// secret returns the server secret from --secret or SENTINELDF_SECRET.
func (c *deployFlags) secret() ([]byte, error) {
	h := c.secretHex
	if h == "" {
		h = os.Getenv("SENTINELDF_SECRET")
	}
	if h == "" {
		return nil, usageErr(errors.New("no server secret: set SENTINELDF_SECRET to 64+ hex digits (e.g. `openssl rand -hex 32`), the same for every api and worker process"))
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) < 32 {
		return nil, usageErr(errors.New("SENTINELDF_SECRET must be at least 64 hex digits"))
	}
	return b, nil
}

// cloudBackends are the distributed backends, opened from deployFlags.
type cloudBackends struct {
	db      *postgres.DB
	blobs   *s3.Store
	cache   sentineldf.Cache
	limiter sentineldf.Limiter
	redis   *redis.Client
	secret  []byte
}

func openCloud(ctx context.Context, c *deployFlags, log *slog.Logger, metrics *telemetry.Metrics, opts postgres.Options) (*cloudBackends, error) {
	if c.databaseURL == "" {
		return nil, usageErr(errors.New("no database: set DATABASE_URL (or --database-url) to a postgres:// URL"))
	}
	secret, err := c.secret()
	if err != nil {
		return nil, err
	}
	if c.s3.Endpoint == "" || c.s3.Bucket == "" {
		return nil, usageErr(errors.New("no object storage: set S3_ENDPOINT and S3_BUCKET (and S3_REGION, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY)"))
	}
	c.s3.AccessKeyID = os.Getenv("S3_ACCESS_KEY_ID")
	c.s3.SecretAccessKey = os.Getenv("S3_SECRET_ACCESS_KEY")
	opts.URL, opts.Logger, opts.SkipMigrate = c.databaseURL, log, true
	opts.MaxConns = int32(c.maxConns)
	if metrics != nil {
		opts.QueryObserver = func(op string, d time.Duration) {
			metrics.DBQueryDuration.WithLabelValues(op).Observe(d.Seconds())
		}
	}
	be := &cloudBackends{secret: secret}
	if be.db, err = postgres.Open(ctx, opts); err != nil {
		return nil, fmt.Errorf("open database (did `sentineldf migrate` run?): %w", err)
	}
	if be.blobs, err = s3.New(ctx, c.s3); err != nil {
		be.db.Close()
		return nil, fmt.Errorf("object storage: %w", err)
	}
	if c.redisURL == "" {
		log.Warn("REDIS_URL not set: caches and rate limits are per process; run one api instance only")
		be.cache = inmem.NewCache(256 << 20)
		be.limiter = inmem.NewLimiter(inmem.LimiterOptions{})
		return be, nil
	}
	goredis.SetLogger(&redis.Logger{Log: log})
	// SkipPing: the process starts while Redis is down and works without
	// it (see docs/operations.md); the first call connects.
	if be.redis, err = redis.Open(ctx, redis.Options{URL: c.redisURL, SkipPing: true}); err != nil {
		be.db.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	be.cache, be.limiter = be.redis.Cache(), be.redis.Limiter()
	return be, nil
}

func (be *cloudBackends) close() {
	if be.redis != nil {
		be.redis.Close()
	}
	be.db.Close()
}

// observability sets up the logger, metrics registry and tracer of a
// process.
func observability(ctx context.Context, io stdio, level, service, otlp string) (*slog.Logger, *prometheus.Registry, *telemetry.Metrics, func(context.Context) error, trace.TracerProvider, error) {
	l, err := parseLevel(level)
	if err != nil {
		return nil, nil, nil, nil, nil, err
	}
	log := telemetry.NewLogger(io.err, l, service)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := telemetry.NewMetrics(reg)
	tp, shutdown, err := telemetry.NewTracerProvider(ctx, telemetry.TraceConfig{ServiceName: service, OTLPEndpoint: otlp, Insecure: true})
	if err != nil {
		return nil, nil, nil, nil, nil, err
	}
	return log, reg, metrics, shutdown, tp, nil
}

func newAPICmd(io stdio) *cobra.Command {
	var c deployFlags
	var addr string
	var failOpen bool
	var drain time.Duration
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Run the stateless control plane (HTTP API) on Postgres, Redis and S3",
		Long: `Run one API instance of SentinelDF Cloud. Instances are stateless: run as many as the load
needs behind a load balancer. Jobs are executed by ` + "`sentineldf worker`" + ` processes. The schema must have been
migrated with ` + "`sentineldf migrate`" + `. Configuration comes from the environment (DATABASE_URL, REDIS_URL, S3_*,
SENTINELDF_SECRET) or the flags; see docs/operations.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			start := time.Now()
			log, reg, metrics, shutdownTracing, tp, err := observability(ctx, io, c.logLevel, "sentineldf-api", c.otlp)
			if err != nil {
				return err
			}
			defer shutdownTracing(context.Background())
			be, err := openCloud(ctx, &c, log, metrics, postgres.Options{})
			if err != nil {
				return err
			}
			defer be.close()
			plans, err := loadPlans(c.plans)
			if err != nil {
				return err
			}
			engine, err := detect.New(detect.Options{})
			if err != nil {
				return err
			}
			srv, err := api.New(api.Config{
				Store: be.db, Queue: be.db, Blobs: be.blobs, Cache: be.cache, Limiter: be.limiter,
				Engine: engine, Plans: plans, Secret: be.secret, Logger: log, Metrics: metrics,
				Gatherer: reg, Tracer: tp, RateLimitFailOpen: failOpen, Version: version,
			})
			if err != nil {
				return err
			}
			if key, created, err := srv.EnsureOperator(ctx); err != nil {
				return fmt.Errorf("operator org: %w", err)
			} else if created {
				fmt.Fprintf(io.out, "Operator admin API key (shown once, keep it): %s\n", key)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return usageErr(fmt.Errorf("--addr: %w", err))
			}
			fmt.Fprintf(io.out, "SentinelDF API listening on http://%s (ready in %d ms)\n", ln.Addr(), time.Since(start).Milliseconds())
			go sampleQueueDepth(ctx, srv)
			err = serveHTTP(ctx, ln, srv.Handler(), log, drain)
			srv.Close(context.Background())
			return err
		},
	}
	fl := cmd.Flags()
	c.register(fl, true)
	fl.StringVar(&addr, "addr", envOr("SENTINELDF_ADDR", "127.0.0.1:8080"), "listen on `HOST:PORT` (env SENTINELDF_ADDR)")
	fl.BoolVar(&failOpen, "rate-limit-fail-open", true, "serve requests when Redis (the rate limiter) is down; false answers 503")
	fl.DurationVar(&drain, "drain-timeout", 30*time.Second, "on shutdown, wait this long for running requests")
	return cmd
}

// sampleQueueDepth updates the queue-depth gauge every 15 seconds.
func sampleQueueDepth(ctx context.Context, srv *api.Server) {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for {
		_ = srv.SampleQueueDepth(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// serveHTTP serves h on ln until ctx ends, then drains for up to drain.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, drain time.Duration) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	return hs.Shutdown(dctx)
}

func newWorkerCmd(io stdio) *cobra.Command {
	var c deployFlags
	var jobs, scanWorkers int
	var shardMB int
	var shardBytes int64
	var metricsAddr string
	var drain, rescue, minTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a data-plane worker: scan shards of queued jobs from Postgres, objects in S3",
		Long: `Run one SentinelDF worker. Workers claim jobs from the queue in Postgres (River), stream their
files from S3 through the detection engine and write results back. Run as many as the load needs; the
shards of one scan spread over all of them. A worker that dies loses nothing: its jobs run again
elsewhere after --rescue-after. Configuration as for ` + "`sentineldf api`" + `; see docs/operations.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			log, reg, metrics, shutdownTracing, tp, err := observability(ctx, io, c.logLevel, "sentineldf-worker", c.otlp)
			if err != nil {
				return err
			}
			defer shutdownTracing(context.Background())
			be, err := openCloud(ctx, &c, log, metrics, postgres.Options{
				RescueStuckJobsAfter: rescue, JobTimeout: -1,
			})
			if err != nil {
				return err
			}
			defer be.close()
			engine, err := detect.New(detect.Options{})
			if err != nil {
				return err
			}
			tmp, err := os.MkdirTemp("", "sentineldf-worker-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			wk, err := worker.New(worker.Config{
				Store: be.db, Blobs: be.blobs, Cache: be.cache, Engine: engine,
				DatasetDetectors: func() []detect.DatasetDetector { return corpus.Default(corpus.Options{}) },
				Secret:           be.secret, Logger: log, Metrics: metrics, Tracer: tp,
				ShardBytes: workerShardBytes(shardMB, shardBytes), ScanWorkers: scanWorkers, TempDir: tmp,
				MinJobTimeout: minTimeout, Version: version,
			})
			if err != nil {
				return err
			}
			workers := river.NewWorkers()
			if err := wk.Register(workers); err != nil {
				return err
			}
			rc, err := be.db.StartWorkers(context.WithoutCancel(ctx), workers, jobs)
			if err != nil {
				return fmt.Errorf("start workers: %w", err)
			}
			if metricsAddr != "" {
				ln, err := net.Listen("tcp", metricsAddr)
				if err != nil {
					return usageErr(fmt.Errorf("--metrics-addr: %w", err))
				}
				mux := http.NewServeMux()
				mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
				mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
				go serveHTTP(ctx, ln, mux, log, time.Second)
				fmt.Fprintf(io.out, "SentinelDF worker metrics on http://%s/metrics\n", ln.Addr())
			}
			fmt.Fprintf(io.out, "SentinelDF worker running %d jobs at once\n", jobs)
			<-ctx.Done()
			return stopRiver(rc, log, drain)
		},
	}
	fl := cmd.Flags()
	c.register(fl, true)
	fl.IntVar(&jobs, "jobs", 2, "jobs (shards) run at once")
	fl.IntVar(&scanWorkers, "scan-workers", runtime.GOMAXPROCS(0), "goroutines scanning documents within each job")
	fl.IntVar(&shardMB, "shard-mb", 32, "split uploaded JSONL files into shards of about `MB` megabytes")
	fl.Int64Var(&shardBytes, "shard-bytes", 0, "shard size in bytes (overrides --shard-mb; for tests)")
	_ = fl.MarkHidden("shard-bytes")
	fl.StringVar(&metricsAddr, "metrics-addr", "", "serve /metrics and /health on `HOST:PORT` (off when empty)")
	fl.DurationVar(&drain, "drain-timeout", 30*time.Second, "on shutdown, let running jobs finish for this long, then cancel them (they run again later)")
	fl.DurationVar(&rescue, "rescue-after", 15*time.Minute, "run again a job whose worker died after this long")
	fl.DurationVar(&minTimeout, "min-job-timeout", 10*time.Minute, "least time a shard may run before it is cancelled (keep below --rescue-after)")
	return cmd
}

// workerShardBytes is the shard size of a worker: --shard-bytes when set,
// else --shard-mb.
func workerShardBytes(shardMB int, shardBytes int64) int64 {
	if shardBytes > 0 {
		return shardBytes
	}
	return int64(shardMB) << 20
}

// stopRiver drains a River client: running jobs get drain to finish, then
// are cancelled (and retried later).
func stopRiver[T any](rc *river.Client[T], log *slog.Logger, drain time.Duration) error {
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := rc.Stop(dctx); err != nil {
		log.Warn("workers did not drain; cancelling running jobs", "err", err)
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		return rc.StopAndCancel(sctx)
	}
	return nil
}

func newMigrateCmd(io stdio) *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database migrations (Postgres), then exit",
		Long: `Apply SentinelDF's schema migrations, River's, and the Postgres-only set (row-level security,
usage partitions, the sentineldf_app role) to the database at DATABASE_URL. Run it once per release,
as the database owner, before starting api and worker processes. It is idempotent and safe to run
from several places at once (an advisory lock serialises it).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if url == "" {
				return usageErr(errors.New("no database: set DATABASE_URL (or --database-url)"))
			}
			start := time.Now()
			if err := postgres.Migrate(cmd.Context(), url); err != nil {
				return err
			}
			fmt.Fprintf(io.out, "migrations applied in %d ms\n", time.Since(start).Milliseconds())
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "database-url", os.Getenv("DATABASE_URL"), "Postgres `URL` of the database owner (env DATABASE_URL)")
	return cmd
}
