package telemetry

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are SentinelDF's Prometheus collectors, named as in the
// architecture document. One Metrics is shared by the API and the workers
// of a process.
type Metrics struct {
	// APIRequests counts requests by endpoint (the route pattern) and status.
	APIRequests *prometheus.CounterVec
	// APILatency observes request latency by endpoint.
	APILatency *prometheus.HistogramVec
	// QueueDepth is the number of jobs waiting to run (sampled).
	QueueDepth prometheus.Gauge
	// WorkerActiveTasks is the number of jobs running in this process.
	WorkerActiveTasks prometheus.Gauge
	// CacheHitRate is the result cache's hit rate over the process's life.
	CacheHitRate prometheus.Gauge
	// CacheLookups counts result-cache lookups by outcome (hit, miss).
	CacheLookups *prometheus.CounterVec
	// DBQueryDuration observes store calls by operation.
	DBQueryDuration *prometheus.HistogramVec
	// DocumentsScanned and BytesScanned count work done, by path (sync, async).
	DocumentsScanned *prometheus.CounterVec
	BytesScanned     *prometheus.CounterVec
	// Jobs counts finished jobs by kind and outcome (ok, error, canceled).
	Jobs *prometheus.CounterVec
	// JobDuration observes job run time by kind.
	JobDuration *prometheus.HistogramVec
	// RateLimited counts requests refused by the rate limiter or quota, by reason.
	RateLimited *prometheus.CounterVec
	// DependencyErrors counts failures of optional dependencies (cache,
	// limiter) that the service survived, by dependency.
	DependencyErrors *prometheus.CounterVec

	hits, misses prometheus.Counter
	nHits, nMiss atomic.Int64
}

// NewMetrics creates the collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		APIRequests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sentineldf_api_requests_total", Help: "API requests by endpoint and status.",
		}, []string{"endpoint", "status"}),
		APILatency: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sentineldf_api_latency_seconds", Help: "API request latency by endpoint.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint"}),
		QueueDepth: f.NewGauge(prometheus.GaugeOpts{
			Name: "sentineldf_job_queue_depth", Help: "Jobs waiting to run.",
		}),
		WorkerActiveTasks: f.NewGauge(prometheus.GaugeOpts{
			Name: "sentineldf_worker_active_tasks", Help: "Jobs running in this process.",
		}),
		CacheHitRate: f.NewGauge(prometheus.GaugeOpts{
			Name: "sentineldf_cache_hit_rate", Help: "Result cache hit rate since the process started.",
		}),
		CacheLookups: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sentineldf_cache_lookups_total", Help: "Result cache lookups by outcome.",
		}, []string{"outcome"}),
		DBQueryDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sentineldf_db_query_duration_seconds", Help: "Store call duration by operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"op"}),
		DocumentsScanned: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sentineldf_documents_scanned_total", Help: "Documents scanned by path (sync, async).",
		}, []string{"path"}),
		BytesScanned: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sentineldf_bytes_scanned_total", Help: "Input bytes scanned by path (sync, async).",
		}, []string{"path"}),
		Jobs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sentineldf_jobs_total", Help: "Finished jobs by kind and outcome.",
		}, []string{"kind", "outcome"}),
		JobDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sentineldf_job_duration_seconds", Help: "Job run time by kind.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
		}, []string{"kind"}),
		RateLimited: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sentineldf_rate_limited_total", Help: "Requests refused by reason (key, org, quota).",
		}, []string{"reason"}),
		DependencyErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sentineldf_dependency_errors_total", Help: "Survived failures of optional dependencies.",
		}, []string{"dependency"}),
	}
	m.hits = m.CacheLookups.WithLabelValues("hit")
	m.misses = m.CacheLookups.WithLabelValues("miss")
	return m
}

// CacheLookup records result-cache hits and misses and updates the hit rate.
func (m *Metrics) CacheLookup(hits, misses int) {
	if hits > 0 {
		m.hits.Add(float64(hits))
	}
	if misses > 0 {
		m.misses.Add(float64(misses))
	}
	h := m.nHits.Add(int64(hits))
	mi := m.nMiss.Add(int64(misses))
	if h+mi > 0 {
		m.CacheHitRate.Set(float64(h) / float64(h+mi))
	}
}
