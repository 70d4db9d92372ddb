package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/detect"
	"github.com/sentineldf/sentineldf/telemetry"
)

// testEngine is built once: it is immutable and safe for concurrent use.
var testEngine = sync.OnceValues(func() (*detect.Engine, error) { return detect.New(detect.Options{}) })

// testPlans are small enough to exhaust in a test.
func testPlans() sentineldf.Plans {
	p := sentineldf.DefaultPlans()
	p["tiny"] = sentineldf.Plan{Name: "tiny", MonthlyDocuments: 5, RatePerMinute: 60, Burst: 3, Priority: 3}
	return p
}

type env struct {
	t       testing.TB
	srv     *Server
	store   *fakeStore
	queue   *fakeQueue
	blobs   *fakeBlobs
	cache   *fakeCache
	limiter *fakeLimiter
	reg     *prometheus.Registry
	metrics *telemetry.Metrics
	logs    *bytes.Buffer
	h       http.Handler
}

func newEnv(t testing.TB, mod ...func(*Config)) *env {
	t.Helper()
	eng, err := testEngine()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		t: t, store: newFakeStore(), queue: &fakeQueue{}, blobs: newFakeBlobs(),
		cache: newFakeCache(), limiter: newFakeLimiter(), reg: prometheus.NewRegistry(), logs: &bytes.Buffer{},
	}
	e.metrics = telemetry.NewMetrics(e.reg)
	cfg := Config{
		Store: e.store, Queue: e.queue, Blobs: e.blobs, Cache: e.cache, Limiter: e.limiter,
		Engine: eng, Plans: testPlans(), Secret: []byte("0123456789abcdef0123456789abcdef"),
		Logger:  telemetry.NewLogger(&syncWriter{w: e.logs}, slog.LevelDebug, "test"),
		Metrics: e.metrics, Gatherer: e.reg, BcryptCost: bcrypt.MinCost, Version: "test",
		RequestTimeout: 5 * time.Second,
	}
	for _, m := range mod {
		m(&cfg)
	}
	e.srv, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.h = e.srv.Handler()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.srv.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return e
}

// syncWriter serialises writes to a buffer shared by goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// org creates an org on plan and returns it and its key.
func (e *env) org(name, plan string) (*sentineldf.Org, string) {
	e.t.Helper()
	org, key, err := e.srv.CreateOrg(context.Background(), name, plan, false)
	if err != nil {
		e.t.Fatal(err)
	}
	return org, key
}

// req describes a test request.
type req struct {
	method, path, key string
	body              any // string, []byte or a value to encode
	header            map[string]string
}

func (e *env) do(r req) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.key != "" {
		hr.Header.Set("Authorization", "Bearer "+r.key)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, hr)
	return w
}

// decode decodes a response body, failing the test on error.
func decode[T any](t testing.TB, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, w.Body.String())
	}
	return v
}

// wantProblem checks a problem response's status, code and, when given,
// field and a substring of its detail.
func wantProblem(t testing.TB, w *httptest.ResponseRecorder, status int, code, field, detail string) sentineldf.Problem {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d: %s", w.Code, status, w.Body.String())
	}
	if ct := w.Header().Get("Content-Type"); ct != contentProblem {
		t.Errorf("Content-Type = %q, want %q", ct, contentProblem)
	}
	p := decode[sentineldf.Problem](t, w)
	if p.Code != code || p.Status != status || p.Type != ProblemTypeBase+code {
		t.Errorf("problem = %+v, want code %q status %d", p, code, status)
	}
	if field != "" && p.Field != field {
		t.Errorf("field = %q, want %q (detail %q)", p.Field, field, p.Detail)
	}
	if detail != "" && !strings.Contains(p.Detail, detail) {
		t.Errorf("detail = %q, want it to contain %q", p.Detail, detail)
	}
	if p.RequestID == "" || p.RequestID != w.Header().Get("X-Request-Id") {
		t.Errorf("request_id = %q, header %q", p.RequestID, w.Header().Get("X-Request-Id"))
	}
	return p
}

func wantStatus(t testing.TB, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d: %s", w.Code, status, w.Body.String())
	}
}

// uploadsBody returns a valid UploadsRequest of n files.
func uploadsBody(names ...string) sentineldf.UploadsRequest {
	var r sentineldf.UploadsRequest
	for _, n := range names {
		r.Files = append(r.Files, sentineldf.FileSpec{Name: n, Size: 10})
	}
	return r
}
