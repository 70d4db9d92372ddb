//go:build !ort || !cgo

package main

import (
	"strings"
	"testing"
)

func TestModelNeedsORTBuild(t *testing.T) {
	in := writeModelDataset(t)
	for _, sub := range []string{"scan", "eval"} {
		t.Run(sub, func(t *testing.T) {
			code, _, stderr := modelCLI(t, sub, "--progress", "never", "--model", tinyModel, "--tokenizer", tinyTokenizer, in)
			want := "this build has no ONNX Runtime; rebuild with -tags ort"
			if code != exitUsage || !strings.Contains(stderr, want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, exitUsage, want)
			}
		})
	}
}
