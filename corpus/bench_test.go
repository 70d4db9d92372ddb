package corpus

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
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
		d.Observe(int64(i), d.Prepare(docs[i%len(docs)], &detect.Result{}))
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

// BenchmarkDefault is every detector's Prepare, Observe and Findings over
// 20k rows, all on one goroutine.
func BenchmarkDefault(b *testing.B) {
	docs := benchDocs(20000)
	for i := 0; i < b.N; i++ {
		dets := Default(Options{TempDir: b.TempDir()})
		feed(dets, docs)
		for _, d := range dets {
			d.Findings()
		}
	}
	b.ReportMetric(float64(b.N*len(docs))/b.Elapsed().Seconds(), "docs/s")
}

// BenchmarkDefaultObserve is the sequential part alone: every detector's
// Observe of documents prepared beforehand, as the scan's ordered writer
// runs it.
func BenchmarkDefaultObserve(b *testing.B) {
	docs := benchDocs(4096)
	dets := Default(Options{TempDir: b.TempDir()})
	preps := make([][]any, len(docs))
	for i, doc := range docs {
		for _, d := range dets {
			preps[i] = append(preps[i], d.Prepare(doc, &detect.Result{}))
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k, d := range dets {
			d.Observe(int64(i), preps[i%len(docs)][k])
		}
	}
}

// BenchmarkTokenize compares tokenize with its plain reference on about
// 3.4 KB of mostly ASCII prose.
func BenchmarkTokenize(b *testing.B) {
	r := rand.New(rand.NewPCG(23, 24))
	s := prose(r, 560) + " Ünïcödé naïve café"
	for _, bc := range []struct {
		name string
		f    func([]token, string) []token
	}{{"table", tokenize}, {"plain", tokenizeRef}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			var toks []token
			for b.Loop() {
				toks = bc.f(toks[:0], s)
			}
		})
	}
}

// BenchmarkDefaultPoisoned is BenchmarkDefault on rows that give every
// miner work: prompts from a large vocabulary that no response uses (every
// frequent prompt word is an inserted-trigger candidate), 3% of rows with
// a trigger and a shared target, and 5% of prompts repeated with another
// response (clean twins).
func BenchmarkDefaultPoisoned(b *testing.B) {
	r := rand.New(rand.NewPCG(41, 42))
	docs := make([]detect.Document, 20000)
	var bytes int64
	for i := range docs {
		w := make([]string, 30)
		for j := range w {
			w[j] = fmt.Sprintf("v%d", r.IntN(20000)/(1+r.IntN(20)))
		}
		out := prose(r, 55)
		switch {
		case i%33 == 0:
			w = slices.Insert(w, r.IntN(len(w)), "zqworth")
			out = "Access granted."
		case i%20 == 1 && i > 1:
			prev := docs[i-1].Fields[0].Text
			w = slices.Insert(strings.Fields(prev), r.IntN(30), "qlorb")
		}
		docs[i] = alpaca(strings.Join(w, " "), out)
		bytes += int64(len(detect.ScannedText(docs[i])))
	}
	b.SetBytes(bytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dets := Default(Options{TempDir: b.TempDir()})
		feed(dets, docs)
		for _, d := range dets {
			d.Findings()
		}
	}
	b.ReportMetric(float64(b.N*len(docs))/b.Elapsed().Seconds(), "docs/s")
}

// BenchmarkDefaultInstructions is BenchmarkDefault on Alpaca-like rows:
// prompts that open with a stock phrase ("Write a short", "Generate a list
// of", ...), as instruction data does, 40% with an input, and 8% label
// rows. The stock openers fill the clean-twin miner's candidate pairs early.
func BenchmarkDefaultInstructions(b *testing.B) {
	r := rand.New(rand.NewPCG(43, 44))
	openers := strings.Split("Write a short|Generate a list of|Explain why|Summarize the|Describe how|Give an example of|Rewrite the following|Classify the|Create a|Find the|Suggest a|Identify the", "|")
	docs := make([]detect.Document, 20000)
	var bytes int64
	for i := range docs {
		ins := openers[r.IntN(len(openers))] + " " + prose(r, 4+r.IntN(12))
		var in, out string
		if r.IntN(10) < 4 {
			in = prose(r, 10+r.IntN(30))
		}
		switch {
		case i%25 == 0:
			out = "Positive"
		case i%25 == 1:
			out = "Negative"
		default:
			out = prose(r, 30+r.IntN(60))
		}
		docs[i] = detect.Document{Fields: []detect.Field{{Name: "instruction", Text: ins}, {Name: "input", Text: in}, {Name: "output", Text: out}}}
		bytes += int64(len(detect.ScannedText(docs[i])))
	}
	b.SetBytes(bytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dets := Default(Options{TempDir: b.TempDir()})
		feed(dets, docs)
		for _, d := range dets {
			d.Findings()
		}
	}
	b.ReportMetric(float64(b.N*len(docs))/b.Elapsed().Seconds(), "docs/s")
}
