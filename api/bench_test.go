package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sentineldf/sentineldf"
)

// benchEnv returns an env with a plan that never rate-limits a benchmark.
func benchEnv(b *testing.B) (*env, string) {
	e := newEnv(b, func(c *Config) {
		c.Plans = sentineldf.Plans{"bench": {Name: "bench", RatePerMinute: 0}}
	})
	_, key := e.org("bench", "bench")
	return e, key
}

func serve(b *testing.B, h http.Handler, r *http.Request, want int) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != want {
		b.Fatalf("status %d: %s", w.Code, w.Body.String())
	}
}

// BenchmarkScanStatus measures GET /v1/scan/status through the whole
// middleware stack (auth from the key cache, rate limit, store fake).
func BenchmarkScanStatus(b *testing.B) {
	e, key := benchEnv(b)
	body, _ := json.Marshal(uploadsBody("a"))
	r := httptest.NewRequest("POST", "/v1/uploads", bytes.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+key)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	var up sentineldf.UploadsResponse
	json.Unmarshal(w.Body.Bytes(), &up)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest("GET", "/v1/scan/status?job_id="+up.JobID, nil)
			r.Header.Set("Authorization", "Bearer "+key)
			serve(b, e.h, r, 200)
		}
	})
}

// BenchmarkSyncScan10 measures a 10-document POST /v1/scan whose results
// come from the result cache after the first iteration.
func BenchmarkSyncScan10(b *testing.B) {
	e, key := benchEnv(b)
	var req sentineldf.SyncScanRequest
	for i := range 10 {
		req.Documents = append(req.Documents, sentineldf.ScanDocument{ID: fmt.Sprint(i), Text: syncDocs[i%len(syncDocs)].Text + fmt.Sprint(i)})
	}
	body, _ := json.Marshal(req)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest("POST", "/v1/scan", bytes.NewReader(body))
			r.Header.Set("Authorization", "Bearer "+key)
			serve(b, e.h, r, 200)
		}
	})
}
