package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sentineldf/sentineldf"
)

// readyCheckTimeout bounds each dependency check of /health/ready.
const readyCheckTimeout = 2 * time.Second

// HealthResponse is the body of /health and /health/ready.
type HealthResponse struct {
	// Status is "ok" or "unavailable".
	Status string `json:"status"`
	// Checks maps each dependency (store, blobs, queue) to "ok" or
	// "failed"; only /health/ready has them.
	Checks map[string]string `json:"checks,omitempty"`
}

// health is liveness: the process serves HTTP.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, HealthResponse{Status: "ok"})
}

// ready checks the store, the blob store and the queue, each with a short
// timeout and all at once; 503 names those that failed. Causes are
// logged, not shown: the endpoint needs no key.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	checks := map[string]func(context.Context) error{
		"store": s.cfg.Store.Ping,
		"blobs": s.cfg.Blobs.Ping,
		"queue": s.SampleQueueDepth,
	}
	resp := HealthResponse{Status: "ok", Checks: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), readyCheckTimeout)
			defer cancel()
			err := check(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.log.WarnContext(ctx, "readiness check failed", "check", name, "error", err.Error())
				resp.Checks[name] = "failed"
				resp.Status = "unavailable"
				return
			}
			resp.Checks[name] = "ok"
		})
	}
	wg.Wait()
	status := http.StatusOK
	if resp.Status != "ok" {
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	}
	s.writeJSON(w, r, status, resp)
}

// serveMetrics samples the queue depth and serves the Gatherer.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Gatherer == nil {
		s.writeError(w, r, sentineldf.NotFound("metrics"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyCheckTimeout)
	defer cancel()
	if err := s.SampleQueueDepth(ctx); err != nil {
		s.log.WarnContext(ctx, "sample queue depth", "error", err.Error())
	}
	promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// notFound answers requests that match no route: 405 when the path
// exists for other methods, 404 otherwise.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "" && p != catchAllRoute {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		s.writeMethodNotAllowed(w, r, allow)
		return
	}
	s.writeError(w, r, sentineldf.Errorf(sentineldf.ENOTFOUND, "no such endpoint: %s %s", r.Method, r.URL.Path))
}
