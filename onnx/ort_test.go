//go:build ort && cgo

package onnx

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ortOptions returns the ONNX Runtime options for tests: the library comes
// from ONNXRUNTIME_LIB (`make test-ort` sets it). Without it the test is
// skipped, except in CI (CI=true), where the parity test must run.
func ortOptions(t *testing.T) ORTOptions {
	t.Helper()
	lib := os.Getenv("ONNXRUNTIME_LIB")
	if lib == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("ONNXRUNTIME_LIB is not set; CI must run the ONNX Runtime tests (make test-ort)")
		}
		t.Skip("ONNXRUNTIME_LIB is not set (make ort-lib prints a path)")
	}
	return ORTOptions{Library: lib}
}

func TestORTParity(t *testing.T) {
	opts := ortOptions(t)
	tests := []struct {
		name            string
		b, d, h, n, l   int
		perRow, quantW1 bool
	}{
		{name: "per-tensor scale, float W1", b: 500, d: 32, h: 16, n: 7, l: 50},
		{name: "per-row scale, int8 W1", b: 4096, d: 64, h: 32, n: 16, l: 300, perRow: true, quantW1: true},
		{name: "one document, one feature", b: 10, d: 8, h: 4, n: 1, l: 1, perRow: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := randomClassifier(uint64(100+i), tt.b, tt.d, tt.h, tt.perRow, tt.quantW1)
			data, err := ExportClassifier(c)
			if err != nil {
				t.Fatal(err)
			}
			goModel, err := Load(data)
			if err != nil {
				t.Fatal(err)
			}
			sess, err := NewORTSession(data, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			ids, w := randomBatch(uint64(200+i), tt.b, tt.n, tt.l)
			in := map[string]Tensor{
				ClassifierIDs:     Int64Tensor([]int64{int64(tt.n), int64(tt.l)}, ids),
				ClassifierWeights: FloatTensor([]int64{int64(tt.n), int64(tt.l)}, w),
			}
			a, err := goModel.Run(in)
			if err != nil {
				t.Fatal(err)
			}
			b, err := sess.Run(in)
			if err != nil {
				t.Fatal(err)
			}
			pa, pb := a[ClassifierProb], b[ClassifierProb]
			if len(pb.Shape) != 2 || pb.Shape[0] != int64(tt.n) || pb.Shape[1] != 1 {
				t.Fatalf("ONNX Runtime prob shape %v, want [%d 1]", pb.Shape, tt.n)
			}
			var maxDiff float64
			unsaturated := 0
			for j := range pa.Float {
				maxDiff = max(maxDiff, math.Abs(float64(pa.Float[j])-float64(pb.Float[j])))
				if pa.Float[j] > 0.001 && pa.Float[j] < 0.999 {
					unsaturated++
				}
			}
			if 2*unsaturated < len(pa.Float) {
				t.Fatalf("most probabilities are saturated (%v): the comparison would prove little", pa.Float)
			}
			t.Logf("max |pure-Go − ONNX Runtime| = %.3g over %d documents", maxDiff, tt.n)
			if maxDiff > 1e-4 {
				t.Errorf("pure-Go and ONNX Runtime differ by %g > 1e-4\n go:  %v\n ort: %v", maxDiff, pa.Float, pb.Float)
			}
		})
	}
}

// TestUserDetectorORT runs the user-model detector over the tiny
// sequence classifier on ONNX Runtime, loaded from files as the CLI does.
func TestUserDetectorORT(t *testing.T) {
	opts := ortOptions(t)
	dir := t.TempDir()
	model := filepath.Join(dir, "tiny.onnx")
	tokPath := filepath.Join(dir, "tokenizer.json")
	if err := os.WriteFile(model, testSequenceClassifier(t), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokPath, testWordPieceJSON(t, 6), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := LoadUserDetector(model, tokPath, opts, UserModelOptions{LabelIndex: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if m := d.Model(); m.Name != "model.tiny" || !strings.HasPrefix(m.Digest, "sha256:") {
		t.Errorf("Model() = %+v", m)
	}
	sess, err := NewORTSession(testSequenceClassifier(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	userDetectorCase(t, sess)
}
