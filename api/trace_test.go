package api

import (
	"encoding/json"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sentineldf/sentineldf"
)

func TestTracing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	e := newEnv(t, func(c *Config) { c.Tracer = tp })
	_, key := e.org("acme", "pro")

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	parent := "00-" + traceID + "-00f067aa0ba902b7-01"
	w := e.do(req{method: "POST", path: "/v1/uploads", key: key, body: uploadsBody("a"), header: map[string]string{"traceparent": parent}})
	wantStatus(t, w, 201)
	id := decode[sentineldf.UploadsResponse](t, w).JobID

	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	sp := spans[0]
	if sp.Name() != "POST /v1/uploads" || sp.SpanKind() != trace.SpanKindServer || sp.SpanContext().TraceID().String() != traceID || sp.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("span %q kind %v trace %v parent %v", sp.Name(), sp.SpanKind(), sp.SpanContext().TraceID(), sp.Parent().SpanID())
	}
	var status bool
	for _, a := range sp.Attributes() {
		if a.Key == "http.response.status_code" && a.Value.AsInt64() == 201 {
			status = true
		}
	}
	if !status {
		t.Errorf("attributes %v lack the status", sp.Attributes())
	}

	// The scan carries the trace context into its jobs.
	e.store.mu.Lock()
	tc := e.store.scans[id].Trace
	e.store.mu.Unlock()
	if !strings.Contains(tc["traceparent"], traceID) {
		t.Errorf("scan trace = %v, want trace %s", tc, traceID)
	}

	// Logs carry the trace id.
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" && m["trace_id"] == traceID {
			found = true
		}
	}
	if !found {
		t.Errorf("no access log line with trace_id %s: %s", traceID, e.logs.String())
	}
}
