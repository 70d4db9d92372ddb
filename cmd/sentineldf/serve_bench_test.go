package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/client"
)

// BenchmarkServeLoad measures API latency under 200 concurrent clients on
// loopback against `serve` on its embedded backends (docs/benchmarks.md):
// b.N requests in all, spread over the clients; it reports p50, p99 and
// the request rate. The plan's rate limit is raised so that the limiter
// admits everything (it is still consulted on every request).
func BenchmarkServeLoad(b *testing.B) {
	dir := b.TempDir()
	plans := filepath.Join(dir, "plans.yaml")
	os.WriteFile(plans, []byte("enterprise: {rate_per_minute: 100000000, burst: 1000000}\n"), 0o644)
	s := startServe(b, filepath.Join(dir, "data"), "--plans", plans, "--log-level", "error")
	key, _ := createOrg(b, s, "load", "enterprise")

	// A finished scan for the status endpoint.
	c, err := client.New(s.URL, key)
	if err != nil {
		b.Fatal(err)
	}
	r, err := c.ScanFiles(context.Background(), []string{filepath.Join("..", "..", "examples", "prompts.jsonl")}, client.ScanOptions{PollInterval: 20 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	job := r.JobID()
	docs := make([]sentineldf.ScanDocument, 10)
	for i := range docs {
		docs[i] = sentineldf.ScanDocument{ID: fmt.Sprint(i), Text: fmt.Sprintf("Customer %d asks how to reset a password; the agent explains the steps on the account page.", i)}
	}
	scanBody, _ := json.Marshal(sentineldf.SyncScanRequest{Documents: docs})

	tr := &http.Transport{MaxIdleConns: 400, MaxIdleConnsPerHost: 400}
	hc := &http.Client{Transport: tr}
	for _, bc := range []struct {
		name   string
		method string
		path   string
		body   []byte
		// rate is the total requests per second the 200 clients send,
		// each at rate/200 on a fixed schedule (open loop); 0 means each
		// client sends its next request as soon as the last is answered
		// (closed loop: it measures the maximum throughput, and by
		// Little's law the latency is then 200 / throughput).
		rate float64
	}{
		{"status/closed", "GET", "/v1/scan/status?job_id=" + job, nil, 0},
		{"status/1000rps", "GET", "/v1/scan/status?job_id=" + job, nil, 1000},
		{"scan10/closed", "POST", "/v1/scan", scanBody, 0},
		{"scan10/400rps", "POST", "/v1/scan", scanBody, 400},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const clients = 200
			var interval time.Duration
			if bc.rate > 0 {
				interval = time.Duration(float64(time.Second) * clients / bc.rate)
			}
			lat := make([]time.Duration, b.N)
			var next atomic.Int64
			var failed atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Clients start spread over one interval.
					due := start.Add(interval * time.Duration(c) / clients)
					for {
						if interval > 0 {
							time.Sleep(time.Until(due))
							due = due.Add(interval)
						}
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						var body io.Reader
						if bc.body != nil {
							body = bytes.NewReader(bc.body)
						}
						req, _ := http.NewRequest(bc.method, s.URL+bc.path, body)
						req.Header.Set("Authorization", "Bearer "+key)
						t0 := time.Now()
						resp, err := hc.Do(req)
						if err != nil {
							failed.Add(1)
							continue
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						lat[i] = time.Since(t0)
						if resp.StatusCode != 200 {
							failed.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if f := failed.Load(); f > 0 {
				b.Fatalf("%d of %d requests failed", f, b.N)
			}
			slices.Sort(lat)
			pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
		})
	}
}

// BenchmarkServeStart measures `serve` from start to ready on a fresh data
// directory (migrations, operator org and its bcrypt-hashed key included).
func BenchmarkServeStart(b *testing.B) {
	var readyMS int
	for range b.N {
		s := startServe(b, b.TempDir(), "--log-level", "error")
		b.StopTimer()
		readyMS += s.ReadyMS
		s.stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(readyMS)/float64(b.N), "ready-ms")
}
