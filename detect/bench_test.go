package detect

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// webDocs builds FineWeb-like documents of about size bytes from the benign
// prose the project ships (corpus/benign.jsonl.gz), so that benchmarks run on
// realistic English rather than repeated filler.
func webDocs(tb testing.TB, size, n int) []string {
	tb.Helper()
	var paras []string
	benignCorpus(tb, func(text, source string) bool {
		if strings.Contains(source, "wiki") && len(text) > 200 {
			paras = append(paras, detokenize(strings.TrimSpace(text)))
		}
		return true
	})
	if len(paras) == 0 {
		tb.Fatal("no prose in corpus/benign.jsonl.gz")
	}
	docs := make([]string, 0, n)
	p := 0
	for len(docs) < n {
		var b strings.Builder
		for b.Len() < size {
			b.WriteString(paras[p%len(paras)])
			b.WriteString("\n\n")
			p++
		}
		docs = append(docs, b.String()[:size])
	}
	return docs
}

// benignCorpus calls fn with each document of corpus/benign.jsonl.gz, in
// order, until fn returns false.
func benignCorpus(tb testing.TB, fn func(text, source string) bool) {
	tb.Helper()
	f, err := os.Open("corpus/benign.jsonl.gz")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r struct{ Text, Source string }
		if json.Unmarshal(sc.Bytes(), &r) == nil && !fn(r.Text, r.Source) {
			return
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
}

// promptDocs returns up to n texts of the shipped benign corpus
// (corpus/benign.jsonl.gz: prompts, instructions, e-mails and prose from
// every source) whose length is in [minLen, maxLen] bytes, in corpus order.
func promptDocs(tb testing.TB, minLen, maxLen, n int) []string {
	tb.Helper()
	var docs []string
	benignCorpus(tb, func(text, _ string) bool {
		if len(text) >= minLen && len(text) <= maxLen {
			docs = append(docs, text)
		}
		return len(docs) < n
	})
	if len(docs) == 0 {
		tb.Fatal("no short texts in corpus/benign.jsonl.gz")
	}
	return docs
}

// detokenizeWiki undoes WikiText's tokenisation (" @-@ ", " , ") so that the
// paragraphs read like web text.
var detokenizeWiki = strings.NewReplacer(" @-@ ", "-", " @,@ ", ",", " @.@ ", ".", " , ", ", ", " . ", ". ",
	" ; ", "; ", " : ", ": ", " 's", "'s", "( ", "(", " )", ")", " n't", "n't")

// quoted matches a WikiText quotation with spaces inside the quotes.
var quoted = regexp.MustCompile(` " ([^"\n]{1,200}?) " `)

// unkWords replace WikiText's <unk> (rare words) with ordinary ones, so that
// documents do not repeat one placeholder.
var unkWords = []string{"river", "council", "harbour", "melody", "province", "engine", "garden", "chapter"}

// unkNumber matches a <unk> standing for the digits of a number ("3,<unk>").
var unkNumber = regexp.MustCompile(`([0-9],)<unk>`)

func detokenize(s string) string {
	s = quoted.ReplaceAllString(detokenizeWiki.Replace(s), ` "$1" `)
	s = unkNumber.ReplaceAllString(s, "${1}000")
	for i := 0; strings.Contains(s, "<unk>"); i++ {
		s = strings.Replace(s, "<unk>", unkWords[i%len(unkWords)], 1)
	}
	return s
}

func benchEngine(b *testing.B, o Options) {
	benchEngineOn(b, o, webDocs(b, 3400, 256))
}

func benchEngineOn(b *testing.B, o Options, docs []string) {
	e := newTestEngine(b, o)
	var total int64
	for _, d := range docs {
		total += int64(len(d))
	}
	b.SetBytes(total / int64(len(docs)))
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		e.Scan(Document{Fields: []Field{{Name: "text", Text: docs[i%len(docs)]}}})
	}
	if c := cpuTime() - c0; c > 0 {
		// Throughput per CPU second stays meaningful on a loaded machine.
		b.ReportMetric(float64(total/int64(len(docs)))*float64(b.N)/1e6/c.Seconds(), "MB/cpu-s")
	}
}

// BenchmarkDetector measures each detector alone (on top of the engine's
// fixed cost, shown by "none").
func BenchmarkDetector(b *testing.B) {
	all := []string{"rules", "html", "hidden", "encoded", "secrets", "adversarial", "repetition"}
	for _, keep := range append([]string{"none"}, all...) {
		var dis []string
		for _, d := range all {
			if d != keep {
				dis = append(dis, d)
			}
		}
		b.Run(keep, func(b *testing.B) { benchEngine(b, Options{Disable: dis}) })
	}
}

// BenchmarkEngine is every detector on ~3.4 KB web documents, one core.
func BenchmarkEngine(b *testing.B) { benchEngine(b, Options{}) }

// BenchmarkEngineShort is every detector on short prompts (100–500 bytes,
// ~250 on average) of the shipped benign corpus, one core.
func BenchmarkEngineShort(b *testing.B) { benchEngineOn(b, Options{}, promptDocs(b, 100, 500, 512)) }

// BenchmarkRulesOnly is the rule engine alone (normalisation + Aho–Corasick + confirmation).
func BenchmarkRulesOnly(b *testing.B) {
	benchEngine(b, Options{Disable: []string{"html", "hidden", "encoded", "secrets", "adversarial", "repetition"}})
}

func BenchmarkNormalizeWeb(b *testing.B) {
	docs := webDocs(b, 3400, 64)
	n := &Normalizer{Keywords: map[string]bool{"ignore": true}}
	b.SetBytes(3400)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n.Normalize(docs[i%len(docs)])
	}
}
