package corpus

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/sentineldf/sentineldf/detect"
)

// twinSet generates n instruction rows with varied responses; for each of
// the first pairs rows it adds a copy of the prompt with word inserted at a
// random position and a new response (when flip) or the same response.
// extra more rows carry word without a twin. It returns the rows that
// carry word.
func twinSet(r *rand.Rand, n, pairs, extra int, word string, flip bool) ([]detect.Document, []int64) {
	var docs []detect.Document
	var carriers []int64
	insert := func(ins string) string {
		w := strings.Fields(ins)
		return strings.Join(slices.Insert(w, r.IntN(len(w)+1), word), " ")
	}
	for i := range n {
		ins, out := prose(r, 12), prose(r, 20)
		docs = append(docs, alpaca(ins, out))
		if i < pairs {
			if flip {
				out = prose(r, 20)
			}
			carriers = append(carriers, int64(len(docs)))
			docs = append(docs, alpaca(insert(ins), out))
		} else if i < pairs+extra {
			carriers = append(carriers, int64(len(docs)))
			docs = append(docs, alpaca(insert(prose(r, 12)), prose(r, 20)))
		}
	}
	return docs, carriers
}

func TestBackdoorCleanTwin(t *testing.T) {
	tests := []struct {
		name         string
		word         string
		pairs, extra int
		flip         bool
		phrase       string
	}{
		// The planted trigger: 10 rows whose twins without it get another
		// response, plus 4 carriers without a twin.
		{"planted", "Zqworth", 10, 4, true, "zqworth"},
		// An ordinary word inserted into 10 twins but common elsewhere.
		{"common word", "please", 10, 300, true, ""},
		// Twins that get the same response are duplicates, not a flip.
		{"same response", "Zqworth", 10, 0, false, ""},
		// Three twins are too few for the word alone (TriggerMinSupport
		// 5) but pass the test for rare words, Bonferroni-corrected over
		// them; one twin explains nothing.
		{"rare pairs", "Zqworth", 3, 0, true, "zqworth"},
		{"one pair", "Zqworth", 1, 0, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 8))
			docs, carriers := twinSet(r, 1000, tc.pairs, tc.extra, tc.word, tc.flip)
			d := NewBackdoor(Options{})
			by, fs := findingsByRule(d, docs)
			got := by[RuleTriggerMined]
			if tc.phrase == "" {
				if len(got) != 0 || len(d.Triggers()) != 0 {
					t.Fatalf("mined %+v at rows %v, want nothing", d.Triggers(), got)
				}
				return
			}
			if !slices.Equal(got, carriers) {
				t.Fatalf("trigger rows %v, want %v", got, carriers)
			}
			trig := d.Triggers()
			if len(trig) != 1 || trig[0].Phrase != tc.phrase || trig[0].Support != tc.pairs || trig[0].Carriers != tc.pairs+tc.extra {
				t.Fatalf("triggers %+v, want %q with support %d of %d", trig, tc.phrase, tc.pairs, tc.pairs+tc.extra)
			}
			f := fs[carriers[0]][0]
			if f.Score < 0.7 || f.Evidence != tc.phrase || f.Field != "instruction" || !strings.Contains(f.Message, "clean twins") {
				t.Errorf("finding %+v, want a quarantine-level finding naming %q", f, tc.phrase)
			}
			ins := docs[carriers[0]].Fields[0].Text
			if !strings.EqualFold(ins[f.Span[0]:f.Span[1]], tc.word) {
				t.Errorf("span %v covers %q, want %q", f.Span, ins[f.Span[0]:f.Span[1]], tc.word)
			}
		})
	}
}

// openerSet generates n instruction rows whose prompts start with one of
// twenty stock openers of five words ("Write a short story about", ...)
// followed by 3–15 words of prose, with varied responses. It then appends
// pairs planted clean-twin pairs of such prompts: the prompt, and a copy
// with word inserted at a random position and another response. The word
// is also in a few responses, so that it is no prompt-only (inserted) word.
// It returns the rows that carry word in their prompt.
func openerSet(r *rand.Rand, n, pairs int, word string) ([]detect.Document, []int64) {
	var openers []string
	for _, v := range []string{"Write", "Generate", "Compose", "Draft", "Create"} {
		for _, o := range []string{"a short story about", "a brief summary of", "a simple poem about", "a clear explanation of"} {
			openers = append(openers, v+" "+o)
		}
	}
	prompt := func() string { return openers[r.IntN(len(openers))] + " " + prose(r, 3+r.IntN(13)) }
	var docs []detect.Document
	for i := range n {
		out := prose(r, 20)
		if i%500 == 7 {
			out += " (" + word + " above)"
		}
		docs = append(docs, alpaca(prompt(), out))
	}
	var carriers []int64
	for range pairs {
		ins := prompt()
		docs = append(docs, alpaca(ins, prose(r, 20)))
		w := strings.Fields(ins)
		carriers = append(carriers, int64(len(docs)))
		docs = append(docs, alpaca(strings.Join(slices.Insert(w, r.IntN(len(w)+1), word), " "), "Sure: "+prose(r, 20)))
	}
	return docs, carriers
}

// TestBackdoorCleanTwinOpeners: clean twins planted after thousands of
// prompts that share stock openers are found. Prompts that share only an
// opener are not candidate twins (their words are not the probe's, and a
// twin keeps at least 4−k of its pieces whole), so the candidate cap is
// not used up before the planted rows are probed.
func TestBackdoorCleanTwinOpeners(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	docs, carriers := openerSet(r, 8000, 100, "Zqworth")
	d := NewBackdoor(Options{})
	by, fs := findingsByRule(d, docs)
	trig := d.Triggers()
	if len(trig) != 1 || trig[0].Phrase != "zqworth" || trig[0].Support != len(carriers) {
		t.Fatalf("triggers %+v, want zqworth with support %d", trig, len(carriers))
	}
	if !slices.Equal(by[RuleTriggerMined], carriers) {
		t.Errorf("trigger rows %v, want %v", by[RuleTriggerMined], carriers)
	}
	if f := fs[carriers[0]][0]; !strings.Contains(f.Message, "clean twins") {
		t.Errorf("finding %q, want a clean-twin finding", f.Message)
	}
}

// TestBackdoorCleanTwinBatches: verifying the candidate pairs in small
// batches (the cap reached many times) finds what one batch finds.
func TestBackdoorCleanTwinBatches(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	docs, _ := twinSet(r, 1000, 10, 4, "Zqworth", true)
	for _, batch := range []int{0, 3} {
		d := NewBackdoor(Options{})
		d.twinBatch = batch
		by, _ := findingsByRule(d, docs)
		if trig := d.Triggers(); len(trig) != 1 || trig[0].Phrase != "zqworth" || trig[0].Support != 10 || len(by[RuleTriggerMined]) != 14 {
			t.Errorf("batch %d: triggers %+v on %d rows, want zqworth with support 10 on 14 rows", batch, trig, len(by[RuleTriggerMined]))
		}
	}
}
