package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/trace"
)

func TestLoggerAddsContextAndRedacts(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, slog.LevelInfo, "test")
	tp, shutdown, err := NewTracerProvider(context.Background(), TraceConfig{ServiceName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	ctx, span := tp.Tracer("t").Start(context.Background(), "op")
	ctx = WithOrgID(WithRequestID(ctx, "req_1"), "org_1")
	key := "sdf_live_abcdefghijklmnop_abcdefghijklmnopqrstuvwxyz234567"
	log.InfoContext(ctx, "hello", "api_key", key, "msg2", "got "+key+" here", "Authorization", "Bearer x")
	span.End()

	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not JSON: %v: %s", err, buf.String())
	}
	sc := trace.SpanContextFromContext(ctx)
	for k, want := range map[string]string{
		"request_id": "req_1", "org_id": "org_1", "service": "test",
		"trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String(),
		"api_key": Redacted, "Authorization": Redacted,
		"msg2": "got sdf_live_abcdefghijklmnop_" + Redacted + " here",
	} {
		if rec[k] != want {
			t.Errorf("%s = %v, want %q", k, rec[k], want)
		}
	}
	if strings.Contains(buf.String(), "qrstuvwxyz234567") {
		t.Errorf("secret leaked: %s", buf.String())
	}
}

func TestInjectExtract(t *testing.T) {
	if m := Inject(context.Background()); m != nil {
		t.Errorf("Inject without span = %v, want nil", m)
	}
	tp, shutdown, err := NewTracerProvider(context.Background(), TraceConfig{ServiceName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	ctx, span := tp.Tracer("t").Start(context.Background(), "op")
	defer span.End()
	m := Inject(ctx)
	if m["traceparent"] == "" {
		t.Fatalf("no traceparent in %v", m)
	}
	got := trace.SpanContextFromContext(Extract(context.Background(), m))
	if got.TraceID() != span.SpanContext().TraceID() || !got.IsRemote() {
		t.Errorf("extracted %v, want trace %v", got, span.SpanContext().TraceID())
	}
}

func TestMetricsInjectedRegistry(t *testing.T) {
	// Two registries, two Metrics: nothing global, no duplicate registration.
	for range 2 {
		reg := prometheus.NewRegistry()
		m := NewMetrics(reg)
		m.CacheLookup(3, 1)
		if got := testutil.ToFloat64(m.CacheHitRate); got != 0.75 {
			t.Errorf("hit rate = %v, want 0.75", got)
		}
		m.APIRequests.WithLabelValues("GET /health", "200").Inc()
		n, err := testutil.GatherAndCount(reg, "sentineldf_api_requests_total", "sentineldf_cache_hit_rate")
		if err != nil || n != 2 {
			t.Errorf("gathered %d series (%v), want 2", n, err)
		}
	}
}
