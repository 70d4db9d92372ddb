package classify

import (
	"strings"
	"testing"

	"github.com/sentineldf/sentineldf/detect"
)

// benchDoc is about 500 bytes of normalised prose.
var benchDoc = strings.Repeat("the committee reviewed the proposal and asked the authors to clarify the budget for next year. ", 6)[:500]

// BenchmarkScore measures feature extraction and inference of the shipped
// model on 500-byte normalised documents, on one goroutine (docs/s per core).
func BenchmarkScore(b *testing.B) {
	m, err := Embedded()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(benchDoc)))
	b.ReportAllocs()
	for b.Loop() {
		m.Score(benchDoc)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
}

// BenchmarkDetect adds the engine's normalisation to BenchmarkScore: the
// classifier's whole cost on a 500-byte document, on one goroutine.
func BenchmarkDetect(b *testing.B) {
	d, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	var norm detect.Normalizer
	b.SetBytes(int64(len(benchDoc)))
	b.ReportAllocs()
	for b.Loop() {
		t := &detect.Text{Field: "text", Orig: benchDoc, Norm: norm.Normalize(benchDoc)}
		d.Detect(t, func(detect.Finding) {})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
}
