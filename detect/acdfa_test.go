package detect

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// naiveFindAll is the specification of acDFA.findAll: every occurrence of
// every term, ordered by end, then by length descending.
func naiveFindAll(terms []string, text string) []acMatch {
	var ms []acMatch
	for ti, t := range terms {
		for i := 0; ; {
			j := strings.Index(text[i:], t)
			if j < 0 {
				break
			}
			ms = append(ms, acMatch{PatternID: ti, Start: i + j, End: i + j + len(t)})
			i += j + 1
		}
	}
	slices.SortFunc(ms, func(a, b acMatch) int {
		if a.End != b.End {
			return a.End - b.End
		}
		return a.Start - b.Start
	})
	return ms
}

func sortedMatches(ms []acMatch) []acMatch {
	ms = slices.Clone(ms)
	slices.SortStableFunc(ms, func(a, b acMatch) int {
		if a.End != b.End {
			return a.End - b.End
		}
		if a.Start != b.Start {
			return a.Start - b.Start
		}
		return a.PatternID - b.PatternID
	})
	return ms
}

func TestACDFAMatchesNaive(t *testing.T) {
	rs, err := ParseRules(defaultRules)
	if err != nil {
		t.Fatal(err)
	}
	d, err := newRuleDetector(rs, nil)
	if err != nil {
		t.Fatal(err)
	}
	terms := d.terms
	r := rand.New(rand.NewPCG(1, 2))
	var aux acAux
	// Texts built from pieces of terms, so that matches (and near misses,
	// and matches straddling the middle of the text) are frequent.
	for n := 0; n < 300; n++ {
		var b strings.Builder
		size := r.IntN(2400)
		for b.Len() < size {
			switch r.IntN(4) {
			case 0:
				tm := terms[r.IntN(len(terms))]
				b.WriteString(tm[:1+r.IntN(len(tm))])
			case 1:
				b.WriteString(terms[r.IntN(len(terms))])
			case 2:
				b.WriteByte(" .,:<[|%-#\n"[r.IntN(11)])
			default:
				b.WriteByte(byte('a' + r.IntN(26)))
			}
		}
		text := b.String()
		want := naiveFindAll(terms, text)
		// The order matters too: the rule detector's results depend on it.
		got := d.ac.findAll(text, nil)
		if !slices.Equal(got, want) {
			if g, w := sortedMatches(got), sortedMatches(want); !slices.Equal(g, w) {
				t.Fatalf("text %q:\n got %d matches\nwant %d matches", text, len(g), len(w))
			}
			t.Fatalf("text %q: matches out of order", text)
		}
		// Reused buffers give the same matches.
		got = d.ac.findAllAux(text, got[:0], &aux)
		if !slices.Equal(got, want) {
			t.Fatalf("text %q: with scratch buffers, %d matches, want %d", text, len(got), len(want))
		}
		// Every length around the cuts between a single walk and four.
		if n%50 == 0 {
			for l := range min(len(text), 300) {
				if got, want := d.ac.findAllAux(text[:l], nil, &aux), naiveFindAll(terms, text[:l]); !slices.Equal(got, want) {
					t.Fatalf("text %q: %d matches, want %d", text[:l], len(got), len(want))
				}
			}
		}
	}
}

func BenchmarkACDFA(b *testing.B) {
	rs, _ := ParseRules(defaultRules)
	d, _ := newRuleDetector(rs, nil)
	docs := webDocs(b, 3400, 64)
	n := &Normalizer{Keywords: d.keywords()}
	var hs []string
	for _, x := range docs {
		hs = append(hs, n.Normalize(x).Text)
	}
	b.SetBytes(3400)
	b.ResetTimer()
	var dst []acMatch
	for i := 0; i < b.N; i++ {
		dst = d.ac.findAll(hs[i%len(hs)], dst[:0])
	}
}
