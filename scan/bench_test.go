package scan

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// docSize is the size of a generated benchmark document: about the mean of
// FineWeb's English documents.
const docSize = 3400

// benchFile writes a JSONL file of n generated documents and returns its
// path and size.
func benchFile(b testing.TB, n int) (string, int64) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.jsonl")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	size, err := genJSONL(f, 1, n, docSize)
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
	return path, size
}

// BenchmarkScanJSONL measures an end-to-end scan (read, parse, detect, write
// results) of generated English documents. workers=1 is the per-core number.
func BenchmarkScanJSONL(b *testing.B) {
	path, size := benchFile(b, 2000)
	for _, workers := range []int{1, runtime.NumCPU()} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.SetBytes(size)
			cpu := cpuTime()
			for b.Loop() {
				if _, err := Run(context.Background(), Config{Paths: []string{path}, Workers: workers}, Output{Results: io.Discard}); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu, size)
		})
	}
}

// BenchmarkScanJSONLCached measures a rescan of unchanged data through a
// warm cache, which replays the first scan's memo (see memo.go).
func BenchmarkScanJSONLCached(b *testing.B) {
	path, size := benchFile(b, 2000)
	cache := filepath.Join(b.TempDir(), "cache")
	cfg := Config{Paths: []string{path}, Workers: 1, CacheDir: cache}
	if _, err := Run(context.Background(), cfg, Output{Results: io.Discard}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	cpu := cpuTime()
	for b.Loop() {
		sum, err := Run(context.Background(), cfg, Output{Results: io.Discard})
		if err != nil {
			b.Fatal(err)
		}
		if sum.CacheHits != 2000 {
			b.Fatalf("%d cache hits, want 2000", sum.CacheHits)
		}
	}
	reportCPU(b, cpu, size)
}

// reportCPU reports throughput per CPU-second, which unlike MB/s does not
// depend on how busy the machine is.
func reportCPU(b *testing.B, start time.Duration, size int64) {
	if used := cpuTime() - start; used > 0 {
		b.ReportMetric(float64(size)*float64(b.N)/1e6/used.Seconds(), "MB/cpu-s")
	}
}

// peakRSS returns the process's peak resident set size in bytes (Linux).
func peakRSS(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Skip("no VmHWM in /proc/self/status")
	return 0
}

// TestBoundedMemory scans a generated JSONL file of SENTINELDF_BIG_MB
// megabytes (default 8; 1024 for the acceptance measurement) and checks that
// the process's peak RSS stays under 500 MB. Run it alone for a meaningful
// peak:
//
//	SENTINELDF_BIG_MB=1024 go test ./scan -run TestBoundedMemory -v
func TestBoundedMemory(t *testing.T) {
	mb := 8
	if s := os.Getenv("SENTINELDF_BIG_MB"); s != "" {
		var err error
		if mb, err = strconv.Atoi(s); err != nil || mb <= 0 {
			t.Fatalf("SENTINELDF_BIG_MB=%q: want a positive number", s)
		}
	}
	path, size := benchFile(t, mb<<20/docSize)
	var results countingWriter
	sum, err := Run(context.Background(), Config{Paths: []string{path}, Workers: runtime.NumCPU()}, Output{Results: &results})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Bytes != size || sum.Documents != int64(mb<<20/docSize) {
		t.Errorf("scanned %d bytes, %d documents; want %d, %d", sum.Bytes, sum.Documents, size, mb<<20/docSize)
	}
	peak := peakRSS(t)
	t.Logf("scanned %d MB, %d documents in %.1fs (%.1f MB/s, %d workers); results %d MB; peak RSS %d MB",
		size>>20, sum.Documents, sum.ElapsedSeconds, sum.MBPerSecond, runtime.NumCPU(), results.n>>20, peak>>20)
	if peak > 500<<20 {
		t.Errorf("peak RSS %d MB, want < 500 MB", peak>>20)
	}
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}
