package onnx

import (
	"fmt"
	"testing"
)

// BenchmarkClassifier measures the pure-Go evaluator on the shipped
// classifier's shape (2^18 buckets, D=32, H=32) with 800 features per
// document, about what a 500-byte document yields; docs/s is per core.
func BenchmarkClassifier(b *testing.B) {
	const buckets, d, h, l = 1 << 18, 32, 32, 800
	c := randomClassifier(1, buckets, d, h, true, false)
	data, err := ExportClassifier(c)
	if err != nil {
		b.Fatal(err)
	}
	for _, fused := range []bool{true, false} {
		m, err := LoadWith(data, LoadOptions{NoFusion: !fused})
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range []int{1, 16} {
			b.Run(fmt.Sprintf("fused=%v/batch=%d", fused, n), func(b *testing.B) {
				// Every slot used, ids spread over the table as hashed
				// features are.
				ids, w := make([]int64, n*l), make([]float32, n*l)
				for i := range ids {
					ids[i] = 1 + int64((uint64(i)*0x9E3779B97F4A7C15)>>46)%(buckets-1)
					w[i] = 0.035
				}
				in := map[string]Tensor{
					ClassifierIDs:     Int64Tensor([]int64{int64(n), l}, ids),
					ClassifierWeights: FloatTensor([]int64{int64(n), l}, w),
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := m.Run(in); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "docs/s")
			})
		}
	}
}

// BenchmarkLoad measures loading (decoding and dequantising) the shipped
// classifier's shape.
func BenchmarkLoad(b *testing.B) {
	data, err := ExportClassifier(randomClassifier(1, 1<<18, 32, 32, true, false))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Load(data); err != nil {
			b.Fatal(err)
		}
	}
}
