// Package api is SentinelDF's HTTP control plane: JSON over HTTP with
// RFC 9457 problem bodies, API-key authentication, per-key and per-org rate
// limits, monthly quotas, idempotent POSTs, and the endpoints of the wire
// contract (sentineldf's wire.go). Every route is registered in routes.go;
// the OpenAPI 3.1 document describing them is served at /openapi.json and
// rendered at /docs.
//
// The package names no concrete backend: the store, blob store, cache,
// limiter and queue are the root package's interfaces, chosen by
// cmd/sentineldf.
package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/crypto/bcrypt"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/detect"
	"github.com/sentineldf/sentineldf/telemetry"
)

// Defaults of Config.
const (
	// DefaultKeyCacheTTL is how long a verified API key stays cached.
	DefaultKeyCacheTTL = 60 * time.Second
	// DefaultRequestTimeout bounds the handling of one API request.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultMaxBodyBytes caps the body of a request other than POST /v1/scan.
	DefaultMaxBodyBytes = 64 << 10
	// DefaultBcryptCost is the bcrypt cost of new API keys.
	DefaultBcryptCost = 12
	// MinSecretBytes is the shortest server secret New accepts.
	MinSecretBytes = 16
)

// Config configures a Server. Store, Queue, Blobs, Cache, Limiter, Engine
// and Secret are required.
type Config struct {
	// Store is the system of record.
	Store sentineldf.Store
	// Queue is the admin's view of the job queue.
	Queue sentineldf.JobQueue
	// Blobs holds inputs and results, and presigns their URLs.
	Blobs sentineldf.BlobStore
	// BlobHandler, when non-nil, is mounted at /blobs/ to serve presigned
	// URLs (the local-filesystem blob store serves them itself).
	BlobHandler http.Handler
	// Cache holds verified keys, idempotency records and scan results.
	Cache sentineldf.Cache
	// Limiter enforces the per-key and per-org rate limits.
	Limiter sentineldf.Limiter
	// Engine scans documents of synchronous scans.
	Engine *detect.Engine
	// Plans are the billing plans; nil means sentineldf.DefaultPlans().
	Plans sentineldf.Plans
	// Secret is the server secret: it encrypts org signing keys at rest
	// and derives callback secrets. At least MinSecretBytes bytes.
	Secret []byte
	// Logger receives access and error logs; nil discards them. Use a
	// telemetry logger so records carry request, org and trace ids.
	Logger *slog.Logger
	// Metrics are the Prometheus collectors; nil creates them on a
	// private registry.
	Metrics *telemetry.Metrics
	// Gatherer is what /metrics exposes; nil serves 404 there.
	Gatherer prometheus.Gatherer
	// Tracer creates request spans; nil traces nothing.
	Tracer trace.TracerProvider
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RateLimitFailOpen serves requests when the Limiter fails (counting
	// the failure); otherwise such requests get 503.
	RateLimitFailOpen bool
	// KeyCacheTTL is how long a verified key is cached; 0 means
	// DefaultKeyCacheTTL.
	KeyCacheTTL time.Duration
	// MaxBodyBytes caps request bodies other than POST /v1/scan's (whose
	// cap follows sentineldf.MaxSyncBytes); 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// RequestTimeout bounds each API request; 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Version is the server version, recorded in MBOMs.
	Version string
	// BcryptCost is the bcrypt cost of new API keys; 0 means
	// DefaultBcryptCost. Lower it only in tests.
	BcryptCost int
}

// Server serves the API. It is safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *telemetry.Metrics
	tracer  trace.Tracer
	now     func() time.Time
	mux     *http.ServeMux
	handler http.Handler
	// patterns are the routes registered on mux, in registration order.
	patterns []string
	// bg tracks background work (last-used updates) that Close waits for.
	bg sync.WaitGroup
	// touched maps key ids to when this process last considered updating
	// their last-used time.
	touched sync.Map
	// limiterLogged is the unix second the last limiter failure was
	// logged, so an outage logs once a minute rather than per request.
	limiterLogged atomic.Int64
	// signKey derives per-org keys that seal signing keys at rest.
	signKey []byte
	// verifying runs one store lookup and bcrypt check per presented key
	// at a time: when a popular key's cache entry expires, the requests
	// that arrive meanwhile wait for that one check instead of each paying
	// bcrypt's ~250 ms of CPU.
	verifying flight[[32]byte, *principal]
	// bcryptOK maps key ids to the digest of the key that passed bcrypt
	// in this process (see verify); bcryptN counts its entries.
	bcryptOK sync.Map
	bcryptN  atomic.Int64
}

// New validates cfg, fills in its defaults and returns a Server.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("api: Config.Store is required")
	case cfg.Queue == nil:
		return nil, errors.New("api: Config.Queue is required")
	case cfg.Blobs == nil:
		return nil, errors.New("api: Config.Blobs is required")
	case cfg.Cache == nil:
		return nil, errors.New("api: Config.Cache is required")
	case cfg.Limiter == nil:
		return nil, errors.New("api: Config.Limiter is required")
	case cfg.Engine == nil:
		return nil, errors.New("api: Config.Engine is required")
	case len(cfg.Secret) < MinSecretBytes:
		return nil, fmt.Errorf("api: Config.Secret must be at least %d bytes", MinSecretBytes)
	}
	if cfg.Plans == nil {
		cfg.Plans = sentineldf.DefaultPlans()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if cfg.Metrics == nil {
		cfg.Metrics = telemetry.NewMetrics(prometheus.NewRegistry())
	}
	if cfg.Tracer == nil {
		cfg.Tracer = noop.NewTracerProvider()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.KeyCacheTTL <= 0 {
		cfg.KeyCacheTTL = DefaultKeyCacheTTL
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = DefaultBcryptCost
	}
	if cfg.BcryptCost < bcrypt.MinCost || cfg.BcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("api: Config.BcryptCost %d is out of range [%d, %d]", cfg.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		metrics: cfg.Metrics,
		tracer:  cfg.Tracer.Tracer("github.com/sentineldf/sentineldf/api"),
		now:     cfg.Now,
		mux:     http.NewServeMux(),
	}
	m := hmac.New(sha256.New, cfg.Secret)
	m.Write([]byte("sentineldf signing key sealing\x00"))
	s.signKey = m.Sum(nil)
	s.routes()
	s.handler = s.middleware(s.mux)
	return s, nil
}

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler { return s.handler }

// Close waits for the server's background work (last-used updates of API
// keys) to finish or ctx to end. Call it after the HTTP server stopped.
func (s *Server) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("api: close: %w", ctx.Err())
	}
}

// Routes returns the patterns registered on the server's mux, in
// registration order ("GET /v1/scan/status").
func (s *Server) Routes() []string { return append([]string(nil), s.patterns...) }

// SampleQueueDepth reads the job queue's depth into the queue-depth gauge.
// /metrics and /health/ready call it; a caller may also run it on a ticker.
func (s *Server) SampleQueueDepth(ctx context.Context) error {
	n, err := s.cfg.Queue.QueueDepth(ctx)
	if err != nil {
		return fmt.Errorf("queue depth: %w", err)
	}
	s.metrics.QueueDepth.Set(float64(n))
	return nil
}

// plan returns the org's plan.
func (s *Server) plan(name string) (sentineldf.Plan, error) {
	p, ok := s.cfg.Plans[name]
	if !ok {
		// A misconfiguration, not the client's fault: an internal error.
		return sentineldf.Plan{}, fmt.Errorf("org plan %q is not configured", name)
	}
	return p, nil
}
