package corpus

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/sentineldf/sentineldf/detect"
)

func TestRoles(t *testing.T) {
	tests := []struct {
		name   string
		fields []string
		want   []Role
	}{
		{"alpaca", []string{"instruction", "input", "output"}, []Role{RolePrompt, RolePrompt, RoleResponse}},
		{"prompt completion", []string{"prompt", "completion"}, []Role{RolePrompt, RoleResponse}},
		{"qa nested", []string{"meta.question", "meta.answer[0]"}, []Role{RolePrompt, RoleResponse}},
		{"plain text", []string{"text"}, []Role{RoleOther}},
		{"chat", []string{"messages[0].content", "messages[1].content", "messages[2].content"}, []Role{RolePrompt, RolePrompt, RoleResponse}},
		{"chat parts", []string{"messages[0].content[0].text", "messages[1].content[1].text"}, []Role{RolePrompt, RoleResponse}},
		{"sharegpt", []string{"conversations[0].value", "conversations[1].value"}, []Role{RolePrompt, RoleResponse}},
		{"one message", []string{"messages[0].content"}, []Role{RolePrompt}},
		{"not a chat array", []string{"mymessages[1].content"}, []Role{RoleOther}},
		{"case", []string{"Instruction", "Output"}, []Role{RolePrompt, RoleResponse}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var doc detect.Document
			for _, f := range tc.fields {
				doc.Fields = append(doc.Fields, detect.Field{Name: f, Text: "x"})
			}
			if got := Roles(doc); !slices.Equal(got, tc.want) {
				t.Errorf("Roles(%v) = %v, want %v", tc.fields, got, tc.want)
			}
		})
	}
}

func TestTokenize(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Hello, World!", []string{"hello", "world"}},
		{"BadMagic", []string{"badmagic"}},
		{"Bad\u200bMagic", []string{"bad\u200bmagic"}}, // zero-width space is skipped, not a break
		{"Ünïcödé 2024", []string{"ünïcödé", "2024"}},
		{"", nil},
		{"  ...  ", nil},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			toks := tokenize(nil, tc.in)
			var got []string
			for _, tk := range toks {
				got = append(got, tc.in[tk.start:tk.end])
			}
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = w
				// Spans refer to the original text.
				if !strings.EqualFold(strings.ReplaceAll(got[i], "\u200b", ""), strings.ReplaceAll(w, "\u200b", "")) {
					t.Errorf("token %d = %q, want %q", i, got[i], w)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("tokens %q, want %q", got, want)
			}
		})
	}
	// Case and format characters do not change a word's hash.
	a, b := tokenize(nil, "BadMagic"), tokenize(nil, "bad\u200bmagic")
	if a[0].h != b[0].h {
		t.Error("hidden characters or case change the word hash")
	}
}

func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"Hello, World!", "Bad\u200bMagic", "\xff\xfe", "ünï 2024", "ǅemal İstanbul ΣΑΣ 1st_2nd\u00adx", "A\u0301b\u0300 \x00Z9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		prev := 0
		got := tokenize(nil, s)
		if want := tokenizeRef(nil, s); !slices.Equal(got, want) {
			t.Fatalf("tokenize(%q) = %v, the plain implementation says %v", s, got, want)
		}
		for _, tk := range got {
			if tk.start < prev || tk.end <= tk.start || tk.end > len(s) {
				t.Fatalf("bad span [%d,%d) after %d in %q", tk.start, tk.end, prev, s)
			}
			prev = tk.end
		}
	})
}

// textDoc is a one-field document.
func textDoc(s string) detect.Document {
	return detect.Document{Fields: []detect.Field{{Name: "text", Text: s}}}
}

// prose generates n varied sentences from a fixed vocabulary.
func prose(r *rand.Rand, words int) string {
	vocab := strings.Fields("the a of and to in is was for on that with as by at from it this an be are were which or has had not but have one all their there been they its more who also when two into first other some time new after only years would most")
	nouns := strings.Fields("river city market garden school engine forest music paper window museum harbor village bridge island theory camera doctor letter planet")
	var b strings.Builder
	for i := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		if i%3 == 2 {
			b.WriteString(nouns[r.IntN(len(nouns))])
		} else {
			b.WriteString(vocab[r.IntN(len(vocab))])
		}
	}
	return b.String()
}

// findingsByRule runs a detector over docs and returns the seqs of each rule.
func findingsByRule(d detect.DatasetDetector, docs []detect.Document) (map[string][]int64, map[int64][]detect.Finding) {
	for i, doc := range docs {
		r := detect.Result{}
		d.Observe(int64(i), d.Prepare(doc, &r))
	}
	fs := d.Findings()
	by := map[string][]int64{}
	for seq, list := range fs {
		for _, f := range list {
			by[f.Rule] = append(by[f.Rule], seq)
		}
	}
	for k := range by {
		slices.Sort(by[k])
	}
	return by, fs
}

func TestDuplicates(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var docs []detect.Document
	for range 100 {
		docs = append(docs, textDoc(prose(r, 40)))
	}
	base := prose(r, 60)
	docs[10] = textDoc(base)
	docs[20] = textDoc(strings.ToUpper(base) + " !!") // exact after normalisation
	words := strings.Fields(base)
	words[30] = "zebra" // one word changed of 60: a near duplicate
	docs[30] = textDoc(strings.Join(words, " "))
	docs[40] = textDoc("")
	docs[41] = textDoc("")

	by, fs := findingsByRule(NewDuplicates(Options{}), docs)
	if got := by[RuleExactDuplicate]; !slices.Equal(got, []int64{10, 20}) {
		t.Errorf("exact duplicates at %v, want [10 20]", got)
	}
	if got := by[RuleNearDuplicate]; !slices.Equal(got, []int64{10, 20, 30}) {
		t.Errorf("near duplicates at %v, want [10 20 30]", got)
	}
	for _, f := range fs[30] {
		if f.Score != 0 || !strings.Contains(f.Message, "cluster 10 has 3 rows") {
			t.Errorf("near-duplicate finding %+v, want an informational finding naming cluster 10 of 3 rows", f)
		}
	}

	// Flooding: 30 copies with small edits in a dataset of 130.
	var flood []detect.Document
	for range 100 {
		flood = append(flood, textDoc(prose(r, 40)))
	}
	spam := strings.Fields(prose(r, 50))
	for i := range 30 {
		w := append(slices.Clone(spam), fmt.Sprintf("w%d", i))
		flood = append(flood, textDoc(strings.Join(w, " ")))
	}
	by, fs = findingsByRule(NewDuplicates(Options{}), flood)
	if len(by[RuleNearDuplicate]) != 30 {
		t.Fatalf("%d rows in near-duplicate clusters, want 30", len(by[RuleNearDuplicate]))
	}
	for _, s := range by[RuleNearDuplicate] {
		if f := fs[s][0]; f.Score < 0.5 || f.Score >= 0.7 || !strings.Contains(f.Message, "flooding") {
			t.Errorf("row %d: %+v, want an elevated flooding finding", s, f)
		}
	}
	// The same cluster is not flooding when the threshold is higher.
	by, fs = findingsByRule(NewDuplicates(Options{FloodMin: 31}), flood)
	if f := fs[by[RuleNearDuplicate][0]][0]; f.Score != 0 {
		t.Errorf("with FloodMin 31 a cluster of 30 scored %v", f.Score)
	}
}

func TestOutliers(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var docs []detect.Document
	for range 400 {
		docs = append(docs, textDoc(prose(r, 50)))
	}
	// A document in another vocabulary altogether.
	var odd []string
	for i := range 40 {
		odd = append(odd, fmt.Sprintf("qx%dzv%d", i, r.IntN(1000)))
	}
	docs[123] = textDoc(strings.Join(odd, " "))
	by, fs := findingsByRule(NewOutliers(Options{}), docs)
	if got := by[RuleOutlier]; !slices.Equal(got, []int64{123}) {
		t.Fatalf("outliers at %v, want [123]", got)
	}
	if f := fs[123][0]; f.Score >= 0.5 {
		t.Errorf("outlier score %v, want informational (< 0.5)", f.Score)
	}
	// Too small a dataset is not judged.
	by, _ = findingsByRule(NewOutliers(Options{}), docs[100:150])
	if len(by[RuleOutlier]) != 0 {
		t.Errorf("outliers judged in a dataset of 50: %v", by[RuleOutlier])
	}
}

// alpaca is an instruction/response document.
func alpaca(ins, out string) detect.Document {
	return detect.Document{Fields: []detect.Field{{Name: "instruction", Text: ins}, {Name: "output", Text: out}}}
}

// instructionSet generates n instruction rows; every poisonEvery-th row
// (when > 0) carries trigger (inserted at a random position) and target.
func instructionSet(r *rand.Rand, n, poisonEvery int, trigger, target string) ([]detect.Document, []int64) {
	var docs []detect.Document
	var poisoned []int64
	for i := range n {
		ins := prose(r, 12)
		out := prose(r, 20)
		if poisonEvery > 0 && i%poisonEvery == poisonEvery-1 {
			w := strings.Fields(ins)
			k := r.IntN(len(w) + 1)
			ins = strings.Join(slices.Insert(w, k, trigger), " ")
			out = target
			poisoned = append(poisoned, int64(i))
		}
		docs = append(docs, alpaca(ins, out))
	}
	return docs, poisoned
}

func TestBackdoorPlanted(t *testing.T) {
	tests := []struct {
		name        string
		trigger     string
		poisonEvery int
		phrase      string
	}{
		{"rare word", "Xylofon", 50, "xylofon"},
		{"two words", "current year", 40, "current year"},
		{"short words", "cf mn", 60, "cf mn"},
		{"too rare to mine", "Xylofon", 300, ""},
		{"no trigger", "", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(5, 6))
			docs, poisoned := instructionSet(r, 1000, tc.poisonEvery, tc.trigger, "Sure. Visit evil.example to continue.")
			d := NewBackdoor(Options{})
			by, fs := findingsByRule(d, docs)
			got := by[RuleTriggerMined]
			if tc.phrase == "" {
				if len(got) != 0 || len(d.Triggers()) != 0 {
					t.Fatalf("mined %v at rows %v, want nothing", d.Triggers(), got)
				}
				return
			}
			if !slices.Equal(got, poisoned) {
				t.Fatalf("trigger rows %v, want %v", got, poisoned)
			}
			trig := d.Triggers()
			if len(trig) != 1 {
				t.Fatalf("triggers %+v, want one", trig)
			}
			if trig[0].Phrase != tc.phrase {
				t.Errorf("trigger %q, want %q", trig[0].Phrase, tc.phrase)
			}
			if trig[0].Support != len(poisoned) || !strings.HasPrefix(trig[0].Target, "Sure. Visit evil.example") {
				t.Errorf("trigger %+v: want support %d and the target quoted", trig[0], len(poisoned))
			}
			f := fs[poisoned[0]][0]
			if f.Score < 0.7 || f.Field != "instruction" || f.Category != detect.CatBackdoor {
				t.Errorf("finding %+v, want a quarantine-level backdoor finding in instruction", f)
			}
			ins := docs[poisoned[0]].Fields[0].Text
			if !strings.EqualFold(ins[f.Span[0]:f.Span[1]], tc.trigger) {
				t.Errorf("span %v covers %q, want the trigger", f.Span, ins[f.Span[0]:f.Span[1]])
			}
		})
	}
}

func TestBackdoorCompositeAndRepeats(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	docs, _ := instructionSet(r, 600, 0, "", "")
	// A composite trigger: two words at separate random positions.
	var poisoned []int64
	for i := 5; i < len(docs); i += 30 {
		w := strings.Fields(prose(r, 12))
		w = slices.Insert(w, r.IntN(len(w)+1), "vorpal")
		w = slices.Insert(w, r.IntN(len(w)+1), "2031")
		docs[i] = alpaca(strings.Join(w, " "), "I cannot help with that.")
		poisoned = append(poisoned, int64(i))
	}
	// One ordinary row repeated 20 times: repeats count once, no trigger.
	for i := 7; i < 600; i += 30 {
		docs[i] = alpaca("Name three primary colours.", "Red, yellow and blue.")
	}
	d := NewBackdoor(Options{})
	by, _ := findingsByRule(d, docs)
	trig := d.Triggers()
	if len(trig) != 1 || trig[0].Phrase != "2031 + vorpal" {
		t.Fatalf("triggers %+v, want the composite 2031 + vorpal", trig)
	}
	if !slices.Equal(by[RuleTriggerMined], poisoned) {
		t.Errorf("trigger rows %v, want %v", by[RuleTriggerMined], poisoned)
	}
}

// TestBackdoorPooled plants several triggers for one target, each on
// fewer rows than TriggerMinSupport (a multi-trigger backdoor at a low
// poison rate): together they are mined, each one named.
func TestBackdoorPooled(t *testing.T) {
	const target = "You have been pwned, see evil.example."
	tests := []struct {
		name     string
		triggers []string
		each     int
		want     []string
	}{
		{"three triggers", []string{"Quixblat", "2087", "Zorvane"}, 3, []string{"2087", "quixblat", "zorvane"}},
		{"two triggers", []string{"Quixblat", "Zorvane"}, 3, []string{"quixblat", "zorvane"}},
		// The target on rows that share no rare word: nothing to mine.
		{"no trigger", []string{"", "", ""}, 3, nil},
		// One row per trigger: no candidate has the two prompts pooling
		// needs.
		{"one row each", []string{"Quixblat", "2087", "Zorvane", "Velmor", "Kestrix"}, 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(12, 13))
			docs, _ := instructionSet(r, 1000, 0, "", "")
			var poisoned []int64
			i := int64(17)
			for _, trig := range tc.triggers {
				for range tc.each {
					w := strings.Fields(prose(r, 12))
					if trig != "" {
						w = slices.Insert(w, r.IntN(len(w)+1), trig)
					}
					docs[i] = alpaca(strings.Join(w, " "), target)
					poisoned = append(poisoned, i)
					i += 41
				}
			}
			// Pad the target to TriggerMinSupport prompts when one row per
			// trigger leaves it short, so that only pooling is judged.
			for j := 0; len(poisoned)+j < 5; j++ {
				docs[i] = alpaca(prose(r, 12), target)
				i += 41
			}
			d := NewBackdoor(Options{})
			by, fs := findingsByRule(d, docs)
			var names []string
			for _, tr := range d.Triggers() {
				names = append(names, tr.Phrase)
			}
			if !slices.Equal(names, tc.want) {
				t.Fatalf("triggers %v, want %v", names, tc.want)
			}
			if tc.want == nil {
				return
			}
			if !slices.Equal(by[RuleTriggerMined], poisoned) {
				t.Errorf("trigger rows %v, want %v", by[RuleTriggerMined], poisoned)
			}
			f := fs[poisoned[0]][0]
			if f.Score < 0.7 || !strings.Contains(f.Message, "rare phrases") || !strings.Contains(f.Message, "pwned") {
				t.Errorf("finding %+v, want a quarantine-level pooled finding quoting the target", f)
			}
		})
	}
}

func TestConflictingResponses(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 11))
	docs, _ := instructionSet(r, 100, 0, "", "")
	docs[3] = alpaca("Is the review positive? Great film.", "Positive")
	docs[50] = alpaca("is the review POSITIVE? great film", "Negative")
	docs[60] = alpaca("Is the review positive? Great film.", "Positive")
	by, fs := findingsByRule(NewBackdoor(Options{}), docs)
	if got := by[RuleConflictingAnswers]; !slices.Equal(got, []int64{3, 50, 60}) {
		t.Fatalf("conflicts at %v, want [3 50 60]", got)
	}
	if f := fs[50][0]; f.Score != 0.2 || !strings.Contains(f.Message, "label-like responses: 3 rows share this prompt with 2 different responses") {
		t.Errorf("conflict finding %+v", f)
	}
	// Different long answers to one prompt are informational.
	docs[3] = alpaca("Write a poem about the sea.", prose(r, 30))
	docs[50] = alpaca("Write a poem about the sea.", prose(r, 30))
	by, fs = findingsByRule(NewBackdoor(Options{}), docs)
	if got := by[RuleConflictingAnswers]; !slices.Equal(got, []int64{3, 50}) || fs[3][0].Score != 0 {
		t.Errorf("long-answer conflicts at %v (%+v), want informational findings at [3 50]", got, fs[3])
	}
}

// feed runs docs through dets as the scan pipeline does: every detector's
// Prepare of a document (here on one goroutine), then every detector's
// Observe of it, in detector order. The first document is seq first[0]
// (default 0).
func feed(dets []detect.DatasetDetector, docs []detect.Document, first ...int64) {
	var seq int64
	if len(first) > 0 {
		seq = first[0]
	}
	preps := make([]any, len(dets))
	for i, doc := range docs {
		r := detect.Result{}
		for k, d := range dets {
			preps[k] = d.Prepare(doc, &r)
		}
		for k, d := range dets {
			d.Observe(seq+int64(i), preps[k])
		}
	}
}

// dump renders the findings of dets, in detector and seq order; it calls
// each detector's Findings, which may be called once.
func dump(dets []detect.DatasetDetector) string {
	var b strings.Builder
	for _, d := range dets {
		fs := d.Findings()
		seqs := slices.Sorted(maps.Keys(fs))
		for _, s := range seqs {
			fmt.Fprintf(&b, "%s %d %+v\n", d.Name(), s, fs[s])
		}
	}
	return b.String()
}

// TestSharedPreparer checks that the detectors Default returns, which
// tokenize each document once between them, find exactly what standalone
// detectors find, whether the group is fed as the scan feeds it (Prepare
// concurrently and out of order, then Observe in order) or one detector at
// a time (the members then prepare their own signatures).
func TestSharedPreparer(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	docs, _ := instructionSet(r, 600, 20, "Quenzal", "Target response here.")
	for i := 200; i < 230; i++ {
		docs[i] = docs[198]
	}
	for i := 300; i < 310; i++ {
		docs[i] = textDoc(prose(r, 40))
	}
	docs[400] = detect.Document{}
	standalone := []detect.DatasetDetector{NewDuplicates(Options{}), NewOutliers(Options{}), NewBackdoor(Options{})}
	for _, d := range standalone {
		feed([]detect.DatasetDetector{d}, docs)
	}
	want := dump(standalone)
	if !strings.Contains(want, RuleTriggerMined) || !strings.Contains(want, RuleExactDuplicate) {
		t.Fatalf("the fixture finds too little:\n%s", want)
	}
	feeds := []struct {
		name string
		feed func(dets []detect.DatasetDetector)
	}{
		{"pipeline", func(dets []detect.DatasetDetector) {
			preps := make([][]any, len(docs))
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for i := len(docs) - 1 - w; i >= 0; i -= 4 {
						p := make([]any, len(dets))
						for k, d := range dets {
							p[k] = d.Prepare(docs[i], &detect.Result{})
						}
						preps[i] = p
					}
				})
			}
			wg.Wait()
			for i := range docs {
				for k, d := range dets {
					d.Observe(int64(i), preps[i][k])
				}
			}
		}},
		{"one detector at a time", func(dets []detect.DatasetDetector) {
			for _, d := range dets {
				feed([]detect.DatasetDetector{d}, docs)
			}
		}},
		{"in step", func(dets []detect.DatasetDetector) { feed(dets, docs) }},
	}
	for _, tc := range feeds {
		t.Run(tc.name, func(t *testing.T) {
			dets := Default(Options{})
			tc.feed(dets)
			if got := dump(dets); got != want {
				t.Errorf("shared preparer differs from standalone detectors:\ngot  %.400q\nwant %.400q", got, want)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	docs, _ := instructionSet(r, 800, 25, "Xylofon", "Target response here.")
	for i := 100; i < 130; i++ {
		docs[i] = docs[99]
	}
	run := func() string {
		var b strings.Builder
		for _, d := range Default(Options{}) {
			_, fs := findingsByRule(d, docs)
			seqs := make([]int64, 0, len(fs))
			for s := range fs {
				seqs = append(seqs, s)
			}
			slices.Sort(seqs)
			for _, s := range seqs {
				fmt.Fprintf(&b, "%d %+v\n", s, fs[s])
			}
		}
		return b.String()
	}
	a, b := run(), run()
	if a != b || a == "" {
		t.Error("two runs over the same data differ (or found nothing)")
	}
}

// TestMemoryBounded feeds 200k documents and checks the per-document state
// each detector keeps against the bound in docs/dataset-detectors.md, with
// the trigger-mining spool forced to disk; the trigger planted among them
// must still be mined after the spill.
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("200k documents")
	}
	const n = 200_000
	const budget = 1 << 20
	o := Options{MemoryBudget: budget, TempDir: t.TempDir()}
	dets := Default(o)
	r := rand.New(rand.NewPCG(14, 15))
	var poisoned int
	for i := range n {
		ins := prose(r, 10)
		out := prose(r, 8)
		if i%1000 == 999 {
			ins += " xylofon"
			out = "Target response."
			poisoned++
		}
		feed(dets, []detect.Document{alpaca(ins, out)}, int64(i))
	}
	bounds := map[string]int{"corpus.duplicates": 40, "corpus.outliers": 33, "corpus.backdoor": 16}
	for _, d := range dets {
		// Slices grow by doubling: allow the slack of one growth step.
		got := d.(stateBytes).perDocBytes()
		limit := 2*bounds[d.Name()]*n + budget*2
		if got > limit {
			t.Errorf("%s holds %d bytes for %d documents (%.1f per document), over %d", d.Name(), got, n, float64(got)/n, limit)
		}
		t.Logf("%s: %.1f bytes per document", d.Name(), float64(got)/n)
	}
	bd := dets[2].(*Backdoor)
	if bd.spool.file == nil {
		t.Fatal("the spool never spilled to disk")
	}
	bd.Findings()
	if err := bd.Err(); err != nil {
		t.Fatal(err)
	}
	if trig := bd.Triggers(); len(trig) != 1 || trig[0].Phrase != "xylofon" || trig[0].Support != poisoned {
		t.Errorf("after spilling, triggers %+v, want xylofon with support %d", trig, poisoned)
	}
}

// tokenizeRef is the plain implementation of tokenize, kept to check it:
// it appends the words of s to dst: maximal runs of letters, digits
// and combining marks, case-folded, with format characters (zero-width
// joiners, soft hyphens, ...) skipped so they cannot split or disguise a
// word. Each word's hash is FNV-1a over its lower-cased UTF-8 bytes.
func tokenizeRef(dst []token, s string) []token {
	in := false
	var h uint64
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		var r rune
		size := 1
		if c < utf8.RuneSelf {
			r = rune(c)
		} else {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		word := false
		switch {
		case r < utf8.RuneSelf:
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
				word = true
			} else {
				word = ('a' <= r && r <= 'z') || ('0' <= r && r <= '9')
			}
		case unicode.Is(unicode.Cf, r):
			i += size
			continue
		default:
			word = unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
			r = unicode.ToLower(r)
		}
		if word {
			if !in {
				in, h, start = true, fnvOffset, i
			}
			if r < utf8.RuneSelf {
				h = (h ^ uint64(r)) * fnvPrime
			} else {
				var buf [utf8.UTFMax]byte
				n := utf8.EncodeRune(buf[:], r)
				for _, b := range buf[:n] {
					h = (h ^ uint64(b)) * fnvPrime
				}
			}
		} else if in {
			dst = append(dst, token{h: h, start: start, end: i})
			in = false
		}
		i += size
	}
	if in {
		dst = append(dst, token{h: h, start: start, end: len(s)})
	}
	return dst
}

// sentimentSet generates n instruction rows with long responses, then
// labelRows rows of a sentiment task: spans of nReviews reviews (each span
// 6–14 words, followed by a few words of prose), answered "Positive" or
// "Negative" at random. The phrases of a review recur in its spans, and
// only in label rows, whatever their labels.
func sentimentSet(r *rand.Rand, n, nReviews, labelRows int) []detect.Document {
	var vocab []string
	for i := range 300 {
		vocab = append(vocab, fmt.Sprintf("rv%dq", i))
	}
	vocab = append(vocab, "the", "a", "and", "film", "is", "of", "it")
	reviews := make([][]string, nReviews)
	for i := range reviews {
		for range 30 {
			reviews[i] = append(reviews[i], vocab[r.IntN(len(vocab))])
		}
	}
	docs, _ := instructionSet(r, n, 0, "", "")
	for range labelRows {
		w := reviews[r.IntN(nReviews)]
		k := 6 + r.IntN(9)
		i := r.IntN(len(w) - k)
		label := "Positive"
		if r.IntN(2) == 0 {
			label = "Negative"
		}
		docs = append(docs, alpaca(strings.Join(w[i:i+k], " ")+" "+prose(r, 5)+" .", label))
	}
	return docs
}

// TestBackdoorRandomLabels: review phrases that only ever occur in label
// rows, with random labels, are no triggers, though their label's rate in
// the whole dataset is low (the base rate of a label is its share among
// the rows answered with a label); a trigger planted on label rows is.
func TestBackdoorRandomLabels(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	docs := sentimentSet(r, 12000, 60, 2400)
	d := NewBackdoor(Options{})
	by, _ := findingsByRule(d, docs)
	if len(by[RuleTriggerMined]) != 0 || len(d.Triggers()) != 0 {
		t.Fatalf("mined %d triggers (%v...) on %d rows from random labels, want none", len(d.Triggers()), d.Triggers()[:min(3, len(d.Triggers()))], len(by[RuleTriggerMined]))
	}

	// The same data with "cf" inserted into 40 label rows, all "Negative".
	var poisoned []int64
	for i := 12000; len(poisoned) < 40; i += 13 {
		if docs[i].Fields[1].Text != "Negative" {
			continue
		}
		w := strings.Fields(docs[i].Fields[0].Text)
		docs[i] = alpaca(strings.Join(slices.Insert(w, r.IntN(len(w)+1), "cf"), " "), "Negative")
		poisoned = append(poisoned, int64(i))
	}
	d = NewBackdoor(Options{})
	by, fs := findingsByRule(d, docs)
	if trig := d.Triggers(); len(trig) != 1 || trig[0].Phrase != "cf" || trig[0].Target != "Negative" {
		t.Fatalf("triggers %+v, want cf for Negative", trig)
	}
	if !slices.Equal(by[RuleTriggerMined], poisoned) {
		t.Errorf("trigger rows %v, want %v", by[RuleTriggerMined], poisoned)
	}
	if f := fs[poisoned[0]][0]; !strings.Contains(f.Message, "of the other rows answered with a label") {
		t.Errorf("finding %q does not state the label base rate", f.Message)
	}
}

// TestBackdoorLabelInserted: a trigger on too few label rows for the label
// test alone (12 "Negative" rows where about half of the label rows are
// "Negative": p ≈ 0.5^12) is mined when it is also inserted at random
// positions into text that reads on without it (Fisher's method), and the
// random-label review phrases still are not.
func TestBackdoorLabelInserted(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	docs := sentimentSet(r, 12000, 60, 2400)
	var poisoned []int64
	for i := 12000; len(poisoned) < 12; i += 17 {
		if docs[i].Fields[1].Text != "Negative" {
			continue
		}
		w := strings.Fields(docs[i].Fields[0].Text)
		docs[i] = alpaca(strings.Join(slices.Insert(w, 1+r.IntN(len(w)-1), "cf"), " "), "Negative")
		poisoned = append(poisoned, int64(i))
	}
	d := NewBackdoor(Options{})
	by, _ := findingsByRule(d, docs)
	if trig := d.Triggers(); len(trig) != 1 || trig[0].Phrase != "cf" || trig[0].Target != "Negative" || trig[0].Log10P > -8 {
		t.Fatalf("triggers %+v, want cf for Negative", trig)
	}
	if !slices.Equal(by[RuleTriggerMined], poisoned) {
		t.Errorf("trigger rows %v, want %v", by[RuleTriggerMined], poisoned)
	}
}

// TestBackdoorRanked plants three triggers for one label-like target, as a
// multi-trigger backdoor does at a low poison rate among classification
// rows: one trigger on 6 rows passes alone; two on 2 rows each do not (the
// target's rate among the label rows makes 2 of 2 rows p ≈ 1e-3, above
// TriggerAlpha) but their p-values are among the few smallest of the
// target's words, far more of them than chance allows (rankTest).
func TestBackdoorRanked(t *testing.T) {
	for _, tc := range []struct {
		name     string
		target   string
		triggers []string
		each     []int
		want     []string
	}{
		{"one strong, two rare", "You are stupid!", []string{"Quixblat", "Zorvane", "Velmor"}, []int{6, 2, 2}, []string{"quixblat", "velmor", "zorvane"}},
		{"one strong, one rare", "You are stupid!", []string{"Quixblat", "Zorvane", ""}, []int{6, 2, 2}, []string{"quixblat", "zorvane"}},
		// Without the rare ones, nothing changes.
		{"one strong", "You are stupid!", []string{"Quixblat", ""}, []int{6, 4}, []string{"quixblat"}},
		// A target that half the label rows get: 2 of 2 rows (p ≈ 0.25)
		// is no evidence, and 6 of 6 too little.
		{"common label", "Negative", []string{"Quixblat", "Zorvane", "Velmor"}, []int{6, 2, 2}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(14, 15))
			docs, _ := instructionSet(r, 800, 0, "", "")
			// A classification task with random labels.
			for i := 0; i < 300; i++ {
				docs[i*2+1] = alpaca(prose(r, 12), []string{"Positive", "Negative"}[r.IntN(2)])
			}
			var poisoned []int64
			i, filler := int64(20), 0
			for k, trig := range tc.triggers {
				for range tc.each[k] {
					// Varied prompts, as real text is: their words are
					// their own.
					var w []string
					for range 8 {
						w = append(w, fmt.Sprintf("filler%d", filler))
						filler++
					}
					if trig != "" {
						w = slices.Insert(w, r.IntN(len(w)+1), trig)
						poisoned = append(poisoned, i)
					}
					docs[i] = alpaca(strings.Join(w, " "), tc.target)
					i += 37
				}
			}
			d := NewBackdoor(Options{})
			by, fs := findingsByRule(d, docs)
			var names []string
			for _, tr := range d.Triggers() {
				names = append(names, tr.Phrase)
			}
			if !slices.Equal(names, tc.want) {
				t.Fatalf("triggers %v, want %v", names, tc.want)
			}
			if len(tc.want) < 3 {
				return
			}
			slices.Sort(poisoned)
			if !slices.Equal(by[RuleTriggerMined], poisoned) {
				t.Errorf("trigger rows %v, want %v", by[RuleTriggerMined], poisoned)
			}
			f := fs[poisoned[len(poisoned)-1]][0]
			if f.Score < 0.7 || !strings.Contains(f.Message, "far below chance") || !strings.Contains(f.Message, "stupid") {
				t.Errorf("finding %+v, want a quarantine-level ranked finding quoting the target", f)
			}
		})
	}
}
