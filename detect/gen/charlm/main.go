// Command charlm trains the character language model of the
// adversarial-suffix detector from the benign corpus the project ships,
// calibrates the detector's thresholds on the corpus's held-out part and
// writes the model file. The output depends only on the corpus.
//
//	go run ./detect/gen/charlm -corpus detect/corpus/benign.jsonl.gz -out detect/charlm.bin
//
// With -eval FILE (JSON lines with text, label and source fields) it also
// reports, per source, how many rows get a finding with score ≥ 0.5.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/sentineldf/sentineldf/detect"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "charlm:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("charlm", flag.ContinueOnError)
	corpus := fs.String("corpus", "corpus/benign.jsonl.gz", "gzip-compressed JSON-lines training corpus")
	outPath := fs.String("out", "charlm.bin", "model file to write")
	order := fs.Int("order", 5, "n-gram order")
	minCount := fs.Int("min-count", 2, "drop highest-order n-grams seen fewer times")
	quantile := fs.Float64("quantile", 0.995, "quantile of benign window costs that sets the threshold")
	eval := fs.String("eval", "", "optional labelled JSON-lines file to measure the detector on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := os.Open(*corpus)
	if err != nil {
		return fmt.Errorf("open corpus: %w", err)
	}
	docs, err := detect.ReadCharLMCorpus(f)
	f.Close()
	if err != nil {
		return err
	}
	var train, calib []string
	for _, d := range docs {
		switch detect.CharLMSplit(d.Text) {
		case detect.SplitTrain:
			train = append(train, d.Text)
		case detect.SplitCalib:
			calib = append(calib, d.Text)
		}
	}
	start := time.Now()
	m, err := detect.TrainCharLM(train, detect.CharLMOptions{Order: *order, MinCount: *minCount})
	if err != nil {
		return err
	}
	trained := time.Since(start)
	c, windows := detect.CalibrateAdversarial(m, calib, *quantile)
	m.SetCalibration(c)
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	if err := os.WriteFile(*outPath, b, 0o644); err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	fmt.Fprintf(out, "trained order-%d model on %d docs in %v: %d n-grams, %d bytes\n",
		m.Order(), len(train), trained.Round(time.Millisecond), m.Entries(), len(b))
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		qc, _ := detect.CalibrateAdversarial(m, calib, q)
		fmt.Fprintf(out, "benign window quantile %.3f: score %.2f, mean cost %.2f bits/char\n", q, qc.Abs, qc.Mean)
	}
	fmt.Fprintf(out, "calibrated on %d held-out docs (%d windows): score ≥ %.2f, mean ≥ %.2f bits/char, rel ≥ %.2f, salad ≥ %.2f\n",
		len(calib), windows, c.Abs, c.Mean, c.Rel, c.Salad)
	if *eval != "" {
		return evaluate(*eval, m, out)
	}
	return nil
}

type row struct {
	Text   string `json:"text"`
	Label  int    `json:"label"`
	Source string `json:"source"`
}

// evaluate reports per source how many rows the detector flags.
func evaluate(path string, m *detect.CharLM, out io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open eval: %w", err)
	}
	defer f.Close()
	det := detect.NewAdversarialDetector(m)
	type tally struct{ n, hit int }
	per := map[string]*tally{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var r row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		key := fmt.Sprintf("%d %s", r.Label, r.Source)
		if r.Label == 0 {
			key += " [" + detect.CharLMSplit(r.Text) + "]"
		}
		t := per[key]
		if t == nil {
			t = &tally{}
			per[key] = t
		}
		t.n++
		hit := false
		text := &detect.Text{Field: "text", Orig: r.Text, Norm: (&detect.Normalizer{}).Normalize(r.Text)}
		det.Detect(text, func(f detect.Finding) {
			if f.Score >= 0.5 {
				hit = true
			}
		})
		if hit {
			t.hit++
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	keys := make([]string, 0, len(per))
	for k := range per {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		t := per[k]
		fmt.Fprintf(out, "%6d/%-6d %6.2f%%  %s\n", t.hit, t.n, 100*float64(t.hit)/float64(t.n), k)
	}
	return nil
}
