package scan

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sentineldf/sentineldf/dataset"
	"github.com/sentineldf/sentineldf/detect"
)

// TestRunMalformedInterleaved scans a file with malformed records between
// well-formed ones through every shape of the pipeline: JSONL parsed on the
// workers or (with a Prior) on the reader, one or many workers, windows of
// one document or one byte (which force the reader to hand over partial
// batches before waiting), and a dataset detector that checks it is fed
// every well-formed document with consecutive seqs. Results, malformed
// reports and summaries must be identical in all of them.
func TestRunMalformedInterleaved(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(3, 3))
	var b bytes.Buffer
	var wantBad []string
	docs := 0
	for i := range 400 {
		switch {
		case i%9 == 4:
			b.WriteString(`{"id":"bad","text":` + "\n")
			wantBad = append(wantBad, fmt.Sprintf("mixed.jsonl:%d", i+1))
		case i%13 == 6:
			b.WriteString(`{"id":"n","text":42}` + "\n")
			wantBad = append(wantBad, fmt.Sprintf("mixed.jsonl:%d", i+1))
		default:
			text := genDoc(r, 100+r.IntN(400))
			if i%7 == 3 {
				text += " " + attacks[i%len(attacks)]
			}
			fmt.Fprintf(&b, `{"id":"d%04d","text":%q}`+"\n", i, text)
			docs++
		}
	}
	path := filepath.Join(dir, "mixed.jsonl")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		workers     int
		window      int
		windowBytes int64
		prior       bool
	}{
		{"workers=1", 1, 0, 0, false},
		{"workers=3", 3, 0, 0, false},
		{"workers=3,window=1", 3, 1, 0, false},
		{"workers=2,window=5", 2, 5, 0, false},
		{"workers=4,windowBytes=1", 4, 0, 1, false},
		{"parsed on the reader,workers=3,window=2", 3, 2, 0, true},
	}
	var first []byte
	var firstSum *Summary
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dd := newDupDetector()
			cfg := Config{Paths: []string{path}, Workers: tt.workers, Window: tt.window, WindowBytes: tt.windowBytes,
				DatasetDetectors: []detect.DatasetDetector{dd}}
			if tt.prior {
				cfg.Prior = &slicePrior{} // no prior results: every document is scanned
			}
			var bad []string
			got, sum := run(t, cfg, Output{OnMalformed: func(e *dataset.MalformedError) {
				bad = append(bad, filepath.Base(e.Source.String()))
			}})
			if !slices.Equal(bad, wantBad) {
				t.Errorf("malformed reported %v, want %v", bad, wantBad)
			}
			if !dd.order || dd.last != int64(docs-1) {
				t.Errorf("dataset detector saw seqs out of order or not all of them (last %d, want %d)", dd.last, docs-1)
			}
			if sum.Documents != int64(docs) || sum.Malformed != int64(len(wantBad)) {
				t.Errorf("summary: %d documents, %d malformed; want %d, %d", sum.Documents, sum.Malformed, docs, len(wantBad))
			}
			if first == nil {
				first, firstSum = got, sum
				return
			}
			if !bytes.Equal(got, first) {
				t.Errorf("results differ from %s", tests[0].name)
			}
			if sum.Merkle != firstSum.Merkle || !slices.Equal(sum.Inputs, firstSum.Inputs) || !slices.Equal(sum.MalformedSamples, firstSum.MalformedSamples) {
				t.Errorf("summary differs from %s", tests[0].name)
			}
		})
	}
}
