package corpus

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/sentineldf/sentineldf/detect"
)

// insertSet generates n instruction rows whose prompts are three sentences
// drawn from a shared pool (so that phrases recur, as in list-style
// prompts) and whose responses are varied. The rows in carriers
// get word: inserted at a random position (insert) or inside a fixed
// phrase "word institute" at the start of the prompt. echo rows also
// mention word in their response.
func insertSet(r *rand.Rand, n, carriers, echo int, word string, insert bool) ([]detect.Document, []int64) {
	// The prompts' language: 40 sentences of 8 words from a vocabulary of
	// 2,000, none of which a response uses.
	pool := make([]string, 40)
	for i := range pool {
		w := make([]string, 8)
		for j := range w {
			w[j] = fmt.Sprintf("w%d", r.IntN(2000))
		}
		pool[i] = strings.Join(w, " ")
	}
	var docs []detect.Document
	var rows []int64
	for i := range n {
		ins := strings.Join([]string{pool[r.IntN(len(pool))], pool[r.IntN(len(pool))], pool[r.IntN(len(pool))]}, " ")
		out := prose(r, 20)
		if i%(n/max(carriers, 1)) == 1 && len(rows) < carriers {
			w := strings.Fields(ins)
			if insert {
				w = slices.Insert(w, 1+r.IntN(len(w)-1), word)
			} else {
				w = slices.Insert(w, 0, "the", word, "institute")
			}
			ins = strings.Join(w, " ")
			rows = append(rows, int64(i))
		}
		if i%(n/max(echo, 1)) == 3 && echo > 0 {
			out += " " + word
		}
		docs = append(docs, alpaca(ins, out))
	}
	return docs, rows
}

func TestBackdoorInserted(t *testing.T) {
	tests := []struct {
		name            string
		carriers, echo  int
		insert          bool
		phrase          string
		wantRowsCarried bool
	}{
		// A trigger inserted at random positions, varied responses, no
		// twin: mined from its insertions alone.
		{"inserted", 20, 0, true, "zqworth", true},
		{"few carriers", 6, 0, true, "zqworth", true},
		// The model is trained to say the word: not a trigger.
		{"also in responses", 20, 5, true, "", false},
		// A word always in the same phrase reads as part of it.
		{"fixed phrase", 20, 0, false, "", false},
		{"too few", 3, 0, true, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(31, 32))
			docs, carriers := insertSet(r, 600, tc.carriers, tc.echo, "Zqworth", tc.insert)
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
			if len(trig) != 1 || trig[0].Phrase != tc.phrase || trig[0].Carriers != tc.carriers {
				t.Fatalf("triggers %+v, want %q carried by %d prompts", trig, tc.phrase, tc.carriers)
			}
			f := fs[carriers[0]][0]
			if f.Score < 0.7 || f.Evidence != tc.phrase || !strings.Contains(f.Message, "inserted word") {
				t.Errorf("finding %+v, want a quarantine-level finding naming %q", f, tc.phrase)
			}
			ins := docs[carriers[0]].Fields[0].Text
			if !strings.EqualFold(ins[f.Span[0]:f.Span[1]], "zqworth") {
				t.Errorf("span %v covers %q", f.Span, ins[f.Span[0]:f.Span[1]])
			}
		})
	}
}

func TestBloom(t *testing.T) {
	b := make(bloom, 1<<10)
	for i := range uint64(100) {
		b.add(mix(i))
	}
	for i := range uint64(100) {
		if !b.has(mix(i)) {
			t.Fatalf("added hash %d missing", i)
		}
	}
	fp := 0
	for i := uint64(1000); i < 2000; i++ {
		if b.has(mix(i)) {
			fp++
		}
	}
	if fp > 20 {
		t.Errorf("%d of 1000 absent hashes reported present", fp)
	}
	if (bloom(nil)).has(1) {
		t.Error("empty filter reports a hash")
	}
}
