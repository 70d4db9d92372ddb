package detect

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
)

// repDetect runs the repetition detector on s and returns the highest score
// per rule.
func repDetect(t testing.TB, s string) map[string]Finding {
	t.Helper()
	got := map[string]Finding{}
	txt := &Text{Field: "text", Orig: s, Norm: (&Normalizer{}).Normalize(s)}
	newRepetitionDetector().Detect(txt, func(f Finding) {
		if f.Span[0] < 0 || f.Span[1] > len(s) || f.Span[0] > f.Span[1] {
			t.Errorf("bad span %v for %d bytes", f.Span, len(s))
		}
		if f.Category != CatRepetition || f.Detector != "repetition" {
			t.Errorf("finding %+v: wrong category or detector", f)
		}
		if old, ok := got[f.Rule]; !ok || f.Score > old.Score {
			got[f.Rule] = f
		}
	})
	return got
}

// repRandomWords returns n words drawn from a vocabulary of v words.
func repRandomWords(seed uint64, n, v int) string {
	r := rand.New(rand.NewPCG(seed, 1))
	vocab := make([]string, v)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%c%c%c", 'a'+rune(i%26), 'a'+rune(i/26%26), 'a'+rune(i/676%26))
	}
	words := make([]string, n)
	for i := range words {
		words[i] = vocab[r.IntN(v)]
	}
	return strings.Join(words, " ")
}

func TestRepetitionRules(t *testing.T) {
	lyrics := "We will keep on walking down this road tonight\nHold my hand and never let it go\n" +
		"Keep on walking, keep on walking\nKeep on walking, keep on walking\nThe stars are out above the town\n" +
		"We will keep on walking down this road tonight\nHold my hand and never let it go\n" +
		"Keep on walking, keep on walking\nKeep on walking, keep on walking\nNa na na na na na\n"
	code := strings.Repeat("if err != nil {\n\treturn err\n}\n", 3) + "for i := range items {\n\tif items[i] == nil {\n\t\tcontinue\n\t}\n\ttotal += items[i].Size\n}\nreturn nil\n"
	csv := "id,name,qty,price\n" + func() string {
		var b strings.Builder
		for i := range 60 {
			fmt.Fprintf(&b, "%d,item %d,%d,%d.99\n", i, i, i%7, i%13)
		}
		return b.String()
	}()
	table := "| Year | Result |\n|------|--------|\n" + strings.Repeat("| 2001 | — |\n", 3) + "| 2004 | Won |\n"
	cases := []struct {
		name  string
		text  string
		rule  string  // "" when no finding ≥ 0.3 may fire
		score float64 // the minimum score wanted for rule
	}{
		// token_flood
		{"phrase flood extreme", strings.Repeat("buy now ", 200), "repetition.token_flood", 0.75},
		{"word flood extreme", strings.Repeat("hello ", 300), "repetition.token_flood", 0.75},
		{"phrase flood after text", "Our store has many great deals this week on shoes and hats. " + strings.Repeat("best price ever ", 60), "repetition.token_flood", 0.55},
		{"the the the", "I think that the the the the the the the the the the the the the the the the the the the the cat is here.", "repetition.token_flood", 0.45},
		{"dominant word shuffled", strings.TrimSpace(strings.Repeat("spam spam eggs spam spam spam bacon spam spam spam ", 10)), "repetition.token_flood", 0.55},
		// line_flood
		{"line flood extreme", strings.Repeat("Click here to claim your free prize!\n", 80), "repetition.line_flood", 0.75},
		{"line flood moderate", strings.Repeat("Subscribe to our newsletter\n", 25) + strings.Repeat("other line here\n", 20), "repetition.line_flood", 0.45},
		// char_run
		{"char run extreme", strings.Repeat("a", 500), "repetition.char_run", 0.75},
		{"char run in text", "This is a normal sentence that ends with a scream " + strings.Repeat("A", 150) + " and then continues normally for a while.", "repetition.char_run", 0.45},
		{"mark run long", "Separator:\n" + strings.Repeat("!", 300) + "\nend of the note with a few more words here", "repetition.char_run", 0.3},
		// low_diversity
		{"low diversity strong", repRandomWords(1, 1500, 12), "repetition.low_diversity", 0.55},
		{"low diversity moderate", repRandomWords(2, 400, 30), "repetition.low_diversity", 0.45},
		// degenerate
		{"degenerate marks", strings.Repeat("#$%^&*()!@<>?/\\|{}[]~`+=-_;:'\",.", 40), "repetition.degenerate", 0.55},
		{"degenerate moderate", "ok " + strings.Repeat("}{)(*&^%$#@!~", 20) + " xy", "repetition.degenerate", 0.45},

		// Negatives: ordinary documents.
		{"prose", advParagraph[:1200], "", 0},
		{"lyrics with refrain", lyrics, "", 0},
		{"code", code, "", 0},
		{"csv rows", csv, "", 0},
		{"markdown table", table, "", 0},
		{"rule line", "Title\n" + strings.Repeat("-", 120) + "\nBody text follows here with words.", "", 0},
		{"numbers list", strings.Repeat("0 ", 100) + "1 2 3", "", 0},
		{"short repeat", "no no no no", "", 0},
		{"long varied text", repRandomWords(3, 2000, 5000), "", 0},
		{"chinese", strings.Repeat("北京时间周三晚，国家统计局发布了最新的经济数据。", 3), "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := repDetect(t, c.text)
			if c.rule == "" {
				for r, f := range got {
					if f.Score >= 0.3 {
						t.Errorf("unexpected %s score %.2f: %s", r, f.Score, f.Message)
					}
				}
				return
			}
			f, ok := got[c.rule]
			if !ok {
				t.Fatalf("no %s finding; got %+v", c.rule, got)
			}
			if f.Score < c.score {
				t.Errorf("%s score %.2f < %.2f (%s)", c.rule, f.Score, c.score, f.Message)
			}
			if f.Span[1] <= f.Span[0] {
				t.Errorf("empty span %v", f.Span)
			}
		})
	}
}

// TestRepetitionScoreBands checks that only extreme flooding reaches the
// quarantine band and moderate repetition stays informational.
func TestRepetitionScoreBands(t *testing.T) {
	got := repDetect(t, "Today we talk about the weather and the harvest in the valley. "+strings.Repeat("rain ", 12)+"and then the sun came out again over the hills.")
	f, ok := got["repetition.token_flood"]
	if !ok {
		t.Fatal("no token_flood for 12 repeats")
	}
	if f.Score >= 0.5 {
		t.Errorf("12 repeats scored %.2f, want informational (< 0.5)", f.Score)
	}
	if f := repDetect(t, strings.Repeat("buy now ", 200))["repetition.token_flood"]; f.Score < 0.7 {
		t.Errorf("200 repeats scored %.2f, want quarantine", f.Score)
	}
}

func TestRepetitionSpanCoversRun(t *testing.T) {
	prefix := "Some ordinary words to start the document with. "
	s := prefix + strings.Repeat("go team ", 40) + "the end of it all."
	f := repDetect(t, s)["repetition.token_flood"]
	if f.Span[0] != len(prefix) {
		t.Errorf("span starts at %d, want %d", f.Span[0], len(prefix))
	}
	if got := s[f.Span[0]:f.Span[1]]; !strings.HasPrefix(got, "go team go team") || !strings.HasSuffix(got, "go team") {
		t.Errorf("span text %q", got)
	}
}

func FuzzRepetition(f *testing.F) {
	for _, s := range []string{strings.Repeat("buy now ", 20), strings.Repeat("a", 120), "x\ny\nx\ny\n", "\xff\xfe ö ö ö", ""} {
		f.Add(s)
	}
	d := newRepetitionDetector()
	f.Fuzz(func(t *testing.T, s string) {
		txt := &Text{Field: "text", Orig: s, Norm: (&Normalizer{}).Normalize(s)}
		d.Detect(txt, func(fd Finding) {
			if fd.Span[0] < 0 || fd.Span[1] > len(s) || fd.Span[0] > fd.Span[1] {
				t.Fatalf("bad span %v for %d bytes", fd.Span, len(s))
			}
			if fd.Score <= 0 || fd.Score > 1 {
				t.Fatalf("score %v", fd.Score)
			}
		})
	})
}

func BenchmarkRepetition(b *testing.B) {
	d := newRepetitionDetector()
	s := advBenchText(b)
	txt := &Text{Field: "text", Orig: s, Norm: (&Normalizer{}).Normalize(s)}
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		d.Detect(txt, func(Finding) {})
	}
}

// TestMeasureFDetectors measures the adversarial and repetition detectors
// on a labelled JSON-lines file (text, label, source) named by the
// SENTINELDF_EVAL environment variable, e.g. the project's
// injection-dev.jsonl: per source, how many rows get a finding with score
// ≥ 0.5. It fails when more than 0.5% of the benign rows do.
func TestMeasureFDetectors(t *testing.T) {
	path := os.Getenv("SENTINELDF_EVAL")
	if path == "" {
		t.Skip("SENTINELDF_EVAL not set")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dets := []Detector{newAdversarialDetector(), newRepetitionDetector()}
	type tally struct{ n, hit [2]int }
	per := map[string]*tally{}
	benign, benignHit := 0, [2]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var r struct {
			Text   string `json:"text"`
			Label  int    `json:"label"`
			Source string `json:"source"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("%d %s", r.Label, r.Source)
		tl := per[key]
		if tl == nil {
			tl = &tally{}
			per[key] = tl
		}
		if r.Label == 0 {
			benign++
		}
		txt := &Text{Field: "text", Orig: r.Text, Norm: (&Normalizer{}).Normalize(r.Text)}
		for i, d := range dets {
			tl.n[i]++
			hit := false
			d.Detect(txt, func(f Finding) { hit = hit || f.Score >= 0.5 })
			if hit {
				tl.hit[i]++
				if r.Label == 0 {
					benignHit[i]++
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(per))
	for k := range per {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		tl := per[k]
		t.Logf("adversarial %4d/%-4d  repetition %4d/%-4d  %s", tl.hit[0], tl.n[0], tl.hit[1], tl.n[1], k)
	}
	for i, d := range dets {
		t.Logf("%s: %d/%d benign rows flagged", d.Name(), benignHit[i], benign)
		if float64(benignHit[i]) > 0.005*float64(benign) {
			t.Errorf("%s flags %d/%d benign rows (> 0.5%%)", d.Name(), benignHit[i], benign)
		}
	}
}
