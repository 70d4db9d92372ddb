package api

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestOpenAPIRouteParity checks that the OpenAPI document lists exactly
// the routes registered in routes.go.
func TestOpenAPIRouteParity(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if isHTTPMethod(method) {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	registered := e.srv.Routes()
	slices.Sort(documented)
	slices.Sort(registered)
	if !slices.Equal(documented, registered) {
		for _, r := range registered {
			if !slices.Contains(documented, r) {
				t.Errorf("route %q is not in openapi.json", r)
			}
		}
		for _, d := range documented {
			if !slices.Contains(registered, d) {
				t.Errorf("openapi.json documents %q, which routes.go does not register", d)
			}
		}
	}
}

// TestOpenAPIRefsResolve checks every $ref of the document points at a
// component that exists.
func TestOpenAPIRefsResolve(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	n := 0
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				n++
				var cur any = doc
				for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
					m, _ := cur.(map[string]any)
					cur = m[part]
				}
				if cur == nil {
					t.Errorf("unresolved $ref %q", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	if n < 50 {
		t.Errorf("only %d $refs: the document lost its schemas?", n)
	}
}

func TestOpenAPIAndDocsServed(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{method: "GET", path: "/openapi.json"})
	wantStatus(t, w, 200)
	if !bytes.Equal(w.Body.Bytes(), openAPIDoc) || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("openapi.json not served as is")
	}
	w = e.do(req{method: "GET", path: "/docs"})
	wantStatus(t, w, 200)
	page := w.Body.String()
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || !strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("headers = %v", w.Header())
	}
	for _, want := range []string{"/v1/scan/status", "POST", "scan:write", "Scan documents synchronously"} {
		if !strings.Contains(page, want) {
			t.Errorf("docs page lacks %q", want)
		}
	}
	// Offline: no scripts, no remote resources.
	for _, bad := range []string{"<script", "src=\"http", "href=\"http", "@import"} {
		if strings.Contains(page, bad) {
			t.Errorf("docs page contains %q", bad)
		}
	}
}

func TestDocsEscape(t *testing.T) {
	spec := []byte(`{"info": {"title": "<b>T</b>", "version": "1\"><script>alert(1)</script>"},
		"paths": {"/x/<img src=x onerror=alert(2)>": {"get": {"summary": "<script>alert(3)</script>",
		"description": "a & b", "tags": ["<i>t</i>"], "x-scope": "\"><svg onload=alert(4)>", "responses": {"200": {}}}}}}`)
	var buf bytes.Buffer
	if err := renderDocs(&buf, spec); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, bad := range []string{"<script>alert", "<img src=x", "<svg onload", "<b>T</b>", "<i>t</i>"} {
		if strings.Contains(out, bad) {
			t.Errorf("unescaped %q in:\n%s", bad, out)
		}
	}
	if !strings.Contains(out, "&lt;script&gt;alert(3)") || !strings.Contains(out, "a &amp; b") {
		t.Errorf("escaped text missing:\n%s", out)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	e := newEnv(t)
	e.queue.depth = 7
	w := e.do(req{method: "GET", path: "/health/ready"})
	wantStatus(t, w, 200)
	if h := decode[HealthResponse](t, w); h.Status != "ok" || h.Checks["store"] != "ok" || h.Checks["blobs"] != "ok" || h.Checks["queue"] != "ok" {
		t.Errorf("ready = %+v", h)
	}
	if got := testutil.ToFloat64(e.metrics.QueueDepth); got != 7 {
		t.Errorf("queue depth gauge = %v", got)
	}
	e.store.mu.Lock()
	e.store.pingErr = bytes.ErrTooLarge
	e.store.mu.Unlock()
	w = e.do(req{method: "GET", path: "/health/ready"})
	wantStatus(t, w, 503)
	if h := decode[HealthResponse](t, w); h.Status != "unavailable" || h.Checks["store"] != "failed" || h.Checks["blobs"] != "ok" {
		t.Errorf("ready = %+v", h)
	}
	if strings.Contains(w.Body.String(), "too large") {
		t.Error("readiness leaks the cause")
	}
	w = e.do(req{method: "GET", path: "/metrics"})
	wantStatus(t, w, 200)
	for _, want := range []string{`sentineldf_api_requests_total{endpoint="GET /health/ready",status="503"} 1`, "sentineldf_job_queue_depth 7", "sentineldf_api_latency_seconds_bucket"} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Unknown paths share one label value.
	e.do(req{method: "GET", path: "/random/a"})
	e.do(req{method: "GET", path: "/random/b"})
	if got := testutil.ToFloat64(e.metrics.APIRequests.WithLabelValues(unmatchedRoute, "404")); got != 2 {
		t.Errorf("unmatched 404s = %v, want 2", got)
	}
}

func TestAccessLog(t *testing.T) {
	e := newEnv(t)
	org, key := e.org("acme", "pro")
	w := e.do(req{method: "GET", path: "/v1/scans", key: key, header: map[string]string{"X-Request-Id": "req-log-1"}})
	wantStatus(t, w, 200)
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "request" || rec["request_id"] != "req-log-1" {
			continue
		}
		found = true
		if rec["org_id"] != org.ID || rec["route"] != "GET /v1/scans" || rec["status"] != float64(200) || rec["method"] != "GET" {
			t.Errorf("access log = %v", rec)
		}
		if _, ok := rec["latency_ms"]; !ok {
			t.Errorf("no latency_ms in %v", rec)
		}
	}
	if !found {
		t.Fatalf("no access log line: %s", e.logs.String())
	}
	if strings.Contains(e.logs.String(), key[len(key)-32:]) {
		t.Error("API key secret logged")
	}
}
