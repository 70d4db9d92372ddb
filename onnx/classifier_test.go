package onnx

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomClassifier returns a classifier with seeded random weights.
func randomClassifier(seed uint64, b, d, h int, perRow, quantW1 bool) Classifier {
	r := rand.New(rand.NewPCG(seed, 1))
	c := Classifier{Buckets: b, Dim: d, Hidden: h, B2: float32(r.NormFloat64() * 0.1)}
	c.Emb = make([]int8, b*d)
	for i := range c.Emb {
		c.Emb[i] = int8(r.IntN(255) - 127)
	}
	c.EmbScale = []float32{0.01}
	if perRow {
		c.EmbScale = make([]float32, b)
		for i := range c.EmbScale {
			c.EmbScale[i] = 0.002 + 0.02*r.Float32()
		}
	}
	if quantW1 {
		c.W1Q = make([]int8, d*h)
		for i := range c.W1Q {
			c.W1Q[i] = int8(r.IntN(255) - 127)
		}
		c.W1Scale = make([]float32, h)
		for i := range c.W1Scale {
			c.W1Scale[i] = 0.001 + 0.01*r.Float32()
		}
	} else {
		c.W1 = make([]float32, d*h)
		for i := range c.W1 {
			c.W1[i] = float32(r.NormFloat64() * 0.3)
		}
	}
	c.B1 = make([]float32, h)
	c.W2 = make([]float32, h)
	for i := range h {
		c.B1[i] = float32(r.NormFloat64() * 0.1)
		c.W2[i] = float32(r.NormFloat64() * 0.5)
	}
	return c
}

// randomBatch returns ids and weights [n, l] with trailing padding.
func randomBatch(seed uint64, buckets, n, l int) (ids []int64, w []float32) {
	r := rand.New(rand.NewPCG(seed, 2))
	ids = make([]int64, n*l)
	w = make([]float32, n*l)
	for i := range n {
		used := 1 + r.IntN(l)
		// Weights scaled by 1/sqrt(features), as a bag of features is.
		norm := float32(1 / math.Sqrt(float64(used)))
		for j := range used {
			ids[i*l+j] = 1 + int64(r.IntN(buckets-1))
			w[i*l+j] = (0.5 + r.Float32()) * norm
		}
	}
	return ids, w
}

// reference computes the classifier in float64, straight from its definition.
func (c *Classifier) reference(ids []int64, w []float32, n, l int) []float64 {
	d, h := c.Dim, c.Hidden
	emb := func(b, k int) float64 {
		s := c.EmbScale[0]
		if len(c.EmbScale) > 1 {
			s = c.EmbScale[b]
		}
		return float64(c.Emb[b*d+k]) * float64(s)
	}
	w1 := func(k, j int) float64 {
		if c.W1Q == nil {
			return float64(c.W1[k*h+j])
		}
		s := c.W1Scale[0]
		if len(c.W1Scale) > 1 {
			s = c.W1Scale[j]
		}
		return float64(c.W1Q[k*h+j]) * float64(s)
	}
	out := make([]float64, n)
	for i := range n {
		x := make([]float64, d)
		for j := range l {
			for k := range d {
				x[k] += float64(w[i*l+j]) * emb(int(ids[i*l+j]), k)
			}
		}
		z := float64(c.B2)
		for j := range h {
			a := float64(c.B1[j])
			for k := range d {
				a += x[k] * w1(k, j)
			}
			z += math.Max(a, 0) * float64(c.W2[j])
		}
		out[i] = 1 / (1 + math.Exp(-z))
	}
	return out
}

func TestClassifierMatchesReference(t *testing.T) {
	tests := []struct {
		name            string
		perRow, quantW1 bool
		noFusion        bool
	}{
		{name: "per-tensor scale, float W1"},
		{name: "per-row scale, int8 W1", perRow: true, quantW1: true},
		{name: "per-row scale, int8 W1, unfused", perRow: true, quantW1: true, noFusion: true},
		{name: "per-tensor scale, float W1, unfused", noFusion: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const b, d, h, n, l = 97, 16, 8, 5, 11
			c := randomClassifier(7, b, d, h, tt.perRow, tt.quantW1)
			data, err := ExportClassifier(c)
			if err != nil {
				t.Fatal(err)
			}
			m, err := LoadWith(data, LoadOptions{NoFusion: tt.noFusion})
			if err != nil {
				t.Fatal(err)
			}
			if fused := len(m.steps) < 10; fused == tt.noFusion {
				t.Errorf("%d steps after compile; fusion = %v, want %v", len(m.steps), fused, !tt.noFusion)
			}
			ids, w := randomBatch(3, b, n, l)
			out, err := m.Run(map[string]Tensor{
				ClassifierIDs:     Int64Tensor([]int64{n, l}, ids),
				ClassifierWeights: FloatTensor([]int64{n, l}, w),
			})
			if err != nil {
				t.Fatal(err)
			}
			p := out[ClassifierProb]
			if p.Type != Float || len(p.Shape) != 2 || p.Shape[0] != n || p.Shape[1] != 1 {
				t.Fatalf("prob: type %v shape %v, want float [%d 1]", p.Type, p.Shape, n)
			}
			want := c.reference(ids, w, n, l)
			var spread float64
			for i := range n {
				if diff := math.Abs(float64(p.Float[i]) - want[i]); diff > 1e-5 {
					t.Errorf("doc %d: prob %v, want %v (diff %g)", i, p.Float[i], want[i], diff)
				}
				spread = max(spread, math.Abs(want[i]-want[0]))
			}
			if spread < 1e-3 {
				t.Errorf("reference probabilities barely differ (%v): the test would not catch a wrong graph", want)
			}
		})
	}
}

func TestFusedEqualsUnfused(t *testing.T) {
	c := randomClassifier(11, 301, 32, 16, true, true)
	data, err := ExportClassifier(c)
	if err != nil {
		t.Fatal(err)
	}
	fused, err := Load(data)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := LoadWith(data, LoadOptions{NoFusion: true})
	if err != nil {
		t.Fatal(err)
	}
	const n, l = 9, 40
	ids, w := randomBatch(5, 301, n, l)
	in := map[string]Tensor{ClassifierIDs: Int64Tensor([]int64{n, l}, ids), ClassifierWeights: FloatTensor([]int64{n, l}, w)}
	a, err := fused.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := plain.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a[ClassifierProb].Float {
		if a[ClassifierProb].Float[i] != b[ClassifierProb].Float[i] {
			t.Errorf("doc %d: fused %v, unfused %v", i, a[ClassifierProb].Float[i], b[ClassifierProb].Float[i])
		}
	}
}

func TestExportClassifierValidates(t *testing.T) {
	good := randomClassifier(1, 10, 4, 3, false, false)
	tests := []struct {
		name   string
		mutate func(c *Classifier)
		want   string
	}{
		{"short embedding", func(c *Classifier) { c.Emb = c.Emb[1:] }, "Emb has"},
		{"bad scale count", func(c *Classifier) { c.EmbScale = []float32{1, 2} }, "EmbScale has"},
		{"short W1", func(c *Classifier) { c.W1 = c.W1[1:] }, "W1 has"},
		{"short B1", func(c *Classifier) { c.B1 = nil }, "B1 has"},
		{"zero size", func(c *Classifier) { c.Hidden = 0 }, "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mutate(&c)
			_, err := ExportClassifier(c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestRunChecksInputs(t *testing.T) {
	data, err := ExportClassifier(randomClassifier(2, 10, 4, 3, false, false))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(data)
	if err != nil {
		t.Fatal(err)
	}
	ids := Int64Tensor([]int64{1, 2}, []int64{1, 2})
	w := FloatTensor([]int64{1, 2}, []float32{1, 1})
	tests := []struct {
		name string
		in   map[string]Tensor
		want string
	}{
		{"missing input", map[string]Tensor{ClassifierIDs: ids}, `missing input "weights"`},
		{"wrong type", map[string]Tensor{ClassifierIDs: w, ClassifierWeights: w}, "element type float, want int64"},
		{"wrong rank", map[string]Tensor{ClassifierIDs: Int64Tensor([]int64{2}, []int64{1, 2}), ClassifierWeights: w}, "rank 1"},
		{"data does not fit shape", map[string]Tensor{ClassifierIDs: Int64Tensor([]int64{1, 3}, []int64{1, 2}), ClassifierWeights: w}, "holds 3 elements"},
		{"index out of range", map[string]Tensor{ClassifierIDs: Int64Tensor([]int64{1, 2}, []int64{1, 10}), ClassifierWeights: w}, "out of range"},
		{"shapes differ", map[string]Tensor{ClassifierIDs: Int64Tensor([]int64{2, 1}, []int64{1, 2}), ClassifierWeights: w}, "same [N, L] shape"},
		{"unknown input", map[string]Tensor{ClassifierIDs: ids, ClassifierWeights: w, "x": w}, `unknown input "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Run(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
