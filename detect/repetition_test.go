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
	// A document that is nothing but one word said 16 times (the earlier
	// prototype's poison_005) is degenerate; with a few real words it is not.
	if f := repDetect(t, strings.TrimSpace(strings.Repeat("REPEAT ", 16)))["repetition.token_flood"]; f.Score < 0.7 {
		t.Errorf("a document of 16 repeats scored %.2f, want quarantine", f.Score)
	}
	if f := repDetect(t, "Chorus: "+strings.Repeat("la ", 16)+"and the band plays on")["repetition.token_flood"]; f.Score >= 0.5 {
		t.Errorf("16 repeats inside a sentence scored %.2f, want informational", f.Score)
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
		if len(s) >= 20 && repFullFires(s) && !repMayFire(s) {
			t.Fatalf("the full scan fires but the screen rules it out")
		}
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

// repFullFires reports whether the full scan, without the screen, emits a
// finding for s.
func repFullFires(s string) bool {
	fired := false
	repDetectFull(&Text{Field: "text", Orig: s}, func(Finding) { fired = true })
	return fired
}

// repScreenTexts returns texts built to sit near every rule's threshold:
// repeated phrases, dominant words, repeated lines, runs of one
// character, small vocabularies and runs of marks, with varied case,
// separators, digits, non-ASCII words and offsets (so that they straddle
// the screen's 64-byte blocks).
func repScreenTexts(seed uint64, n int) []string {
	r := rand.New(rand.NewPCG(seed, 3))
	vocab := strings.Fields("the river town grew slowly over two centuries first as a ferry crossing and later market " +
		"for farms upstream its library built in 1887 with money raised by committee of shopkeepers still lends " +
		"books to children every Saturday morning mill beside bridge has become museum where volunteers explain " +
		"café naïve Zürich 北京 東京 überall straße 42 2024 x7 B2B COVID-19 e-mail")
	seps := []string{" ", " ", " ", ", ", ". ", "\n", " - ", " — ", "\t", "; ", "!! ", " (", ") ", "\u00a0", "’", "\r\n"}
	word := func() string {
		w := vocab[r.IntN(len(vocab))]
		switch r.IntN(6) {
		case 0:
			return strings.ToUpper(w)
		case 1:
			return strings.ToUpper(w[:1]) + w[1:]
		}
		return w
	}
	sep := func() string { return seps[r.IntN(len(seps))] }
	prose := func(words int) string {
		var b strings.Builder
		for range words {
			b.WriteString(word())
			b.WriteString(sep())
		}
		return b.String()
	}
	texts := make([]string, 0, n)
	for len(texts) < n {
		var b strings.Builder
		b.WriteString(prose(r.IntN(120)))
		uniq := 0
		unique := func() string { uniq++; return fmt.Sprintf("q%cz%d", 'a'+rune(uniq%26), uniq) }
		switch r.IntN(10) {
		case 0: // a phrase repeated about 10 times
			p := 1 + r.IntN(8)
			unit := make([]string, p)
			for i := range unit {
				unit[i] = word()
			}
			for range 7 + r.IntN(6) {
				for _, w := range unit {
					if r.IntN(4) == 0 {
						w = strings.ToUpper(w)
					}
					b.WriteString(w)
					b.WriteString(sep())
				}
			}
		case 1: // one word making up about 70% of the words
			w := word()
			total := 50 + r.IntN(200)
			for range total {
				if r.IntN(100) < 62+r.IntN(16) {
					b.WriteString(w)
				} else {
					b.WriteString(word())
				}
				b.WriteString(sep())
			}
		case 2: // one line repeated about 10 times among others
			line := prose(2 + r.IntN(6))
			for range 8 + r.IntN(8) {
				b.WriteString(line)
				b.WriteString("\n")
				if r.IntN(3) == 0 {
					b.WriteString(prose(3))
					b.WriteString("\n")
				}
			}
		case 3: // a run of about 100 of one character
			c := []string{"a", "Z", "7", "!", "-", "é", "北", "\xff", "\ufffd", " "}[r.IntN(10)]
			b.WriteString(strings.Repeat(c, 90+r.IntN(130)))
		case 4: // a small vocabulary
			v := 5 + r.IntN(60)
			b.WriteString(repRandomWords(r.Uint64(), 300+r.IntN(1500), v))
		case 5: // mostly marks
			for range 200 + r.IntN(400) {
				if r.IntN(100) < 18 {
					b.WriteString(word()[:1])
				} else {
					b.WriteByte("#$%^&*()!@<>?/\\|{}[]~`+=-_;:'\",."[r.IntN(32)])
				}
			}
		case 6: // one word making up about 70% of the words, in short groups
			b.Reset()
			w := word()
			for range 20 + r.IntN(80) {
				for range 1 + r.IntN(3) + r.IntN(3) {
					b.WriteString(w)
					b.WriteString(sep())
				}
				b.WriteString(unique())
				b.WriteString(sep())
			}
		case 7: // one long line (more than 8 words) repeated
			var line strings.Builder
			for range 9 + r.IntN(12) {
				line.WriteString(unique())
				line.WriteString(" ")
			}
			for range 8 + r.IntN(8) {
				b.WriteString(line.String())
				b.WriteString("\n")
				if r.IntN(3) == 0 {
					b.WriteString(unique() + " " + unique() + "\n")
				}
			}
		case 8: // mostly marks around distinct words
			pct := 2 + r.IntN(5)
			for range 200 + r.IntN(600) {
				if r.IntN(100) < pct {
					b.WriteString(unique())
				} else {
					b.WriteByte("#$%^&*()!@<>?/\\|{}[]~`+=-_;:'\",."[r.IntN(32)])
				}
			}
		default: // ordinary text
			b.WriteString(prose(200 + r.IntN(400)))
		}
		b.WriteString(prose(r.IntN(80)))
		texts = append(texts, b.String())
	}
	return texts
}

// TestRepetitionScreen checks that the screen never hides a finding of the
// full scan, and that it does let ordinary prose through without one.
func TestRepetitionScreen(t *testing.T) {
	fired := 0
	for i, s := range repScreenTexts(11, 3000) {
		if !repFullFires(s) {
			continue
		}
		fired++
		if !repMayFire(s) {
			t.Errorf("text %d: the full scan fires but the screen rules it out: %q", i, s)
		}
	}
	// The generated texts must exercise the rules, or the check is empty.
	if fired < 500 {
		t.Errorf("only %d of 3000 generated texts fire", fired)
	}
	docs, err := advCorpus()
	if err != nil {
		t.Fatal(err)
	}
	passed, n := 0, 0
	for _, d := range docs {
		if len(d.Text) < 20 {
			continue
		}
		n++
		full := repFullFires(d.Text)
		may := repMayFire(d.Text)
		if full && !may {
			t.Errorf("corpus text: the full scan fires but the screen rules it out: %q", d.Text)
		}
		if may {
			passed++
		}
	}
	// Ordinary text is what the screen is for: it must rule out nearly all.
	if passed*50 > n {
		t.Errorf("the screen lets %d of %d corpus texts through to the full scan", passed, n)
	}
	t.Logf("%d generated texts fire; the screen passes %d of %d corpus texts", fired, passed, n)
}
