//go:build ort && cgo

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentineldf/sentineldf/scan"
)

// TestModelScanORT scans with the tiny user model on ONNX Runtime: the
// injection row gets the model's finding, the benign row does not.
func TestModelScanORT(t *testing.T) {
	if os.Getenv("ONNXRUNTIME_LIB") == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("ONNXRUNTIME_LIB is not set; CI must run the ONNX Runtime tests (make test-ort)")
		}
		t.Skip("ONNXRUNTIME_LIB is not set (make ort-lib prints a path)")
	}
	in := writeModelDataset(t)
	out := filepath.Join(t.TempDir(), "results.jsonl")
	code, _, stderr := modelCLI(t, "scan", "--progress", "never", "--quiet", "--model", tinyModel, "--tokenizer", tinyTokenizer, "--out", out, in)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for line := range strings.Lines(string(data)) {
		var l scan.Line
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		for _, f := range l.Findings {
			if f.Rule == "model.tiny-classifier" {
				got[l.ID] = true
			}
		}
	}
	if !got["attack"] || got["benign"] {
		t.Errorf("rows with a model.tiny-classifier finding: %v; want attack only", got)
	}
}
