package corpus

import (
	"math/rand/v2"
	"testing"

	"github.com/sentineldf/sentineldf/detect"
)

// benchDocs are instruction rows of about 500 bytes.
func benchDocs(n int) []detect.Document {
	r := rand.New(rand.NewPCG(21, 22))
	docs := make([]detect.Document, n)
	for i := range docs {
		docs[i] = alpaca(prose(r, 30), prose(r, 55))
	}
	return docs
}

func benchObserve(b *testing.B, mk func() detect.DatasetDetector) {
	docs := benchDocs(4096)
	var bytes int64
	for _, d := range docs {
		bytes += int64(len(detect.ScannedText(d)))
	}
	b.SetBytes(bytes / int64(len(docs)))
	b.ResetTimer()
	d := mk()
	for i := 0; i < b.N; i++ {
		d.Observe(int64(i), docs[i%len(docs)], &detect.Result{})
	}
}

func BenchmarkObserveDuplicates(b *testing.B) {
	benchObserve(b, func() detect.DatasetDetector { return NewDuplicates(Options{}) })
}

func BenchmarkObserveOutliers(b *testing.B) {
	benchObserve(b, func() detect.DatasetDetector { return NewOutliers(Options{}) })
}

func BenchmarkObserveBackdoor(b *testing.B) {
	benchObserve(b, func() detect.DatasetDetector { return NewBackdoor(Options{TempDir: b.TempDir()}) })
}

// BenchmarkDefault is every detector's Observe and Findings over 20k rows.
func BenchmarkDefault(b *testing.B) {
	docs := benchDocs(20000)
	for i := 0; i < b.N; i++ {
		for _, d := range Default(Options{TempDir: b.TempDir()}) {
			for s, doc := range docs {
				d.Observe(int64(s), doc, &detect.Result{})
			}
			d.Findings()
		}
	}
	b.ReportMetric(float64(b.N*len(docs))/b.Elapsed().Seconds(), "docs/s")
}
