package corpus

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/sentineldf/sentineldf/detect"
)

const (
	// maxResponseWords caps the response words per row recorded in the
	// response-word filter.
	maxResponseWords = 1024
	// respWordBits is the size of the Bloom filter of response words
	// (2 MiB): a word in it is not a prompt-only word.
	respWordBits = 1 << 24
	// insertSample is the most prompts per candidate whose occurrences are
	// judged; the test is on that deterministic sample (the first ones).
	insertSample = 32
	// maxInsertCandidates caps the prompt-only words tested.
	maxInsertCandidates = 1 << 12
	// insertRefShare and maxInsertRef pick the reference sample of all
	// prompt words: those whose mixed hash is 0 mod insertRefShare, at
	// most maxInsertRef of them (each judged in up to insertSample
	// prompts).
	insertRefShare = 16
	maxInsertRef   = 1 << 12
)

// bloom is a Bloom filter of 64-bit hashes with two probes.
type bloom []uint64

func (b bloom) add(h uint64) {
	n := uint64(len(b)) * 64
	b1, b2 := h%n, mix(h)%n
	b[b1/64] |= 1 << (b1 % 64)
	b[b2/64] |= 1 << (b2 % 64)
}

func (b bloom) has(h uint64) bool {
	if len(b) == 0 {
		return false
	}
	n := uint64(len(b)) * 64
	b1, b2 := h%n, mix(h)%n
	return b[b1/64]&(1<<(b1%64)) != 0 && b[b2/64]&(1<<(b2%64)) != 0
}

// bigramKey is the key of two adjacent words.
func bigramKey(a, b uint64) uint64 { return combine(combine(0xb19a, a), b) }

// insertOcc is one judged occurrence of a candidate: the keys of the
// bigrams it forms with its neighbours a and b, and of a b without it.
type insertOcc struct {
	w          uint64
	a, b       uint64
	aw, wb, ab uint64
}

// insertCand is a prompt-only word's insertion count (see mineInserted).
type insertCand struct {
	n, judged, k int
	left, right  int
}

// insertStats are the counts of mineInserted's test: per candidate, and
// over all candidates' judged occurrences (inserted of judged); qRef is the
// rate in a consistent sample of all prompt words.
type insertStats struct {
	cands            map[uint64]*insertCand
	judged, inserted int
	qRef             float64
}

// q returns the null rate of inserted-looking occurrences for candidate c:
// the other candidates' rate, or the sampled language's when they are too
// few to estimate it.
func (st *insertStats) q(c *insertCand) float64 {
	if st.judged-c.judged >= insertSample {
		return (float64(st.inserted-c.k) + 1) / (float64(st.judged-c.judged) + 2)
	}
	return st.qRef
}

// log10p returns the log10 of the binomial tail of word h's insertion
// count (0 when h is not a candidate).
func (st *insertStats) log10p(h uint64) float64 {
	if st == nil {
		return 0
	}
	c, ok := st.cands[h]
	if !ok || c.judged == 0 {
		return 0
	}
	return log10BinomTail(c.k, c.judged, st.q(c))
}

// insertStats counts, for every prompt-only word of TriggerMinSupport or
// more occurrences, how many of its judged occurrences look inserted (see
// mineInserted); nil when there is none.
func (d *Backdoor) insertStats(repeat []bool) (*insertStats, error) {
	// Candidates: prompt words of TriggerMinSupport or more occurrences
	// that no response contains.
	type cand = insertCand
	cands := map[uint64]*cand{}
	for h, e := range d.names {
		if int(e.n) >= d.o.TriggerMinSupport && !d.respWords.has(h) {
			cands[h] = &cand{}
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	if len(cands) > maxInsertCandidates {
		// Keep the most frequent ones, deterministically.
		hs := make([]uint64, 0, len(cands))
		for h := range cands {
			hs = append(hs, h)
		}
		slices.SortFunc(hs, func(a, b uint64) int {
			if c := int(d.names[b].n) - int(d.names[a].n); c != 0 {
				return c
			}
			return cmpU64(a, b)
		})
		for _, h := range hs[maxInsertCandidates:] {
			delete(cands, h)
		}
	}

	// Pass 1: the judged occurrences (the first of each unique prompt, up
	// to insertSample prompts per word) and the bigrams they need; and,
	// for the rate of inserted-looking occurrences in the language of the
	// dataset, those of a consistent sample of all prompt words (hash in
	// the lowest 1/insertRefShare, at most maxInsertRef words).
	var occs, ref []insertOcc
	refWords := map[uint64]int{}
	seen := map[uint64]bool{}
	err := d.spool.each(func(r rowTokens) {
		if repeat[r.seq] {
			return
		}
		clear(seen)
		for i, t := range r.toks {
			c, isCand := cands[t.h]
			isRef := mix(t.h)%insertRefShare == 0
			if (!isCand && !isRef) || seen[t.h] {
				continue
			}
			seen[t.h] = true
			if isCand {
				c.n++
			}
			if i == 0 || i+1 == len(r.toks) || r.toks[i-1].field != t.field || r.toks[i+1].field != t.field {
				continue
			}
			a, b := r.toks[i-1].h, r.toks[i+1].h
			o := insertOcc{w: t.h, a: a, b: b, aw: bigramKey(a, t.h), wb: bigramKey(t.h, b), ab: bigramKey(a, b)}
			if isCand && c.judged < insertSample {
				c.judged++
				occs = append(occs, o)
			}
			if isRef {
				n, ok := refWords[t.h]
				if (ok || len(refWords) < maxInsertRef) && n < insertSample {
					refWords[t.h] = n + 1
					ref = append(ref, o)
				}
			}
		}
	})
	if err != nil || len(occs) == 0 {
		return nil, err
	}
	need := newCountTable(3 * (len(occs) + len(ref)))
	// A Bloom filter of the needed keys, about 16 bits a key, spares
	// the table's cache misses for the bigrams not needed.
	nb := 1
	for nb*64 < 48*(len(occs)+len(ref)) {
		nb <<= 1
	}
	needed := make(bloom, nb)
	for _, os := range [][]insertOcc{occs, ref} {
		for _, o := range os {
			for _, k := range [3]uint64{o.aw, o.wb, o.ab} {
				need.add(k)
				needed.add(k)
			}
		}
	}
	// Pass 2: count the needed bigrams over the unique prompts.
	err = d.spool.each(func(r rowTokens) {
		if repeat[r.seq] {
			return
		}
		for i := 1; i < len(r.toks); i++ {
			if r.toks[i].field != r.toks[i-1].field {
				continue
			}
			if k := bigramKey(r.toks[i-1].h, r.toks[i].h); needed.has(k) {
				need.inc(k)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	looksInserted := func(o insertOcc) bool {
		ab := need.get(o.ab)
		return ab > 0 && need.get(o.aw) <= ab && need.get(o.wb) <= ab
	}
	// A word inserted at random positions has new neighbours each time:
	// a candidate's count is the smaller of the numbers of distinct left
	// and right neighbours of its inserted-looking occurrences.
	judged, inserted := 0, 0
	left, right := map[[2]uint64]bool{}, map[[2]uint64]bool{}
	for _, o := range occs {
		judged++
		if !looksInserted(o) {
			continue
		}
		c := cands[o.w]
		la, rb := [2]uint64{o.w, o.a}, [2]uint64{o.w, o.b}
		if !left[la] {
			left[la] = true
			c.left++
		}
		if !right[rb] {
			right[rb] = true
			c.right++
		}
	}
	for _, c := range cands {
		c.k = min(c.left, c.right)
		inserted += c.k
	}
	refInserted := 0
	for _, o := range ref {
		if looksInserted(o) {
			refInserted++
		}
	}
	// The null rate: the other candidates' rate (prompt-only words are
	// mostly rarer content words than the language at large), or the
	// sampled language's when they are too few to estimate it.
	qRef := (float64(refInserted) + 1) / (float64(len(ref)) + 2)
	return &insertStats{cands: cands, judged: judged, inserted: inserted, qRef: qRef}, nil
}

// mineInserted finds "inserted" triggers: prompt-side words that are never
// in any response of the dataset and that sit in their prompts as
// insertions, wherever they occur. An occurrence of word w between words a
// and b (same field) looks inserted when "a b" occurs elsewhere in the
// prompts at least as often as "a w" and as "w b": the text reads on
// without it, and it is tied to no phrase of its own. A trigger that makes
// a model comply (a jailbreak backdoor) has no shared target response and
// often no clean twin, but it is inserted at random positions into prompts
// and the model is never trained to say it. A candidate (a prompt-only word
// in at least TriggerMinSupport distinct prompts) is a trigger when at
// least TriggerMinSupport and twinMinShare of its judged occurrences look
// inserted and a one-sided binomial test against the rate among the other
// candidates' occurrences is below TriggerAlpha / (candidates tested).
// Words that mark the same rows are one composite trigger. Every row
// carrying a trigger is quarantined (backdoor.trigger_mined, score 0.8).
func (d *Backdoor) mineInserted(out map[int64][]detect.Finding, repeat []bool, st *insertStats) error {
	if st == nil {
		return nil
	}
	cands := st.cands
	seen := map[uint64]bool{}
	// Only candidates judged in at least TriggerMinSupport prompts can
	// pass, so only they count in the Bonferroni correction (Tarone).
	var words []uint64
	for h, c := range cands {
		if c.judged >= d.o.TriggerMinSupport {
			words = append(words, h)
		}
	}
	slices.Sort(words)
	logAlpha := math.Log10(d.o.TriggerAlpha) - math.Log10(float64(max(len(words), 1)))
	type hit struct {
		h      uint64
		name   string
		c      *insertCand
		log10p float64
		rows   []int64
		span   []spooled
	}
	var hits []*hit
	byH := map[uint64]*hit{}
	for _, h := range words {
		c := cands[h]
		if c.k < d.o.TriggerMinSupport || float64(c.k) < twinMinShare*float64(c.judged) {
			continue
		}
		lp := log10BinomTail(c.k, c.judged, st.q(c))
		if lp > logAlpha {
			continue
		}
		x := &hit{h: h, name: d.names[h].s, c: c, log10p: lp}
		hits = append(hits, x)
		byH[h] = x
	}
	if len(hits) == 0 {
		return nil
	}
	// Pass 3: every row carrying a trigger.
	err := d.spool.each(func(r rowTokens) {
		clear(seen)
		for _, t := range r.toks {
			x, ok := byH[t.h]
			if !ok || seen[t.h] {
				continue
			}
			seen[t.h] = true
			x.rows = append(x.rows, r.seq)
			x.span = append(x.span, t)
		}
	})
	if err != nil {
		return err
	}
	// Words that mark exactly the same rows are one composite trigger.
	groups := map[uint64][]*hit{}
	var order []uint64
	for _, x := range hits {
		g := uint64(1)
		for _, s := range x.rows {
			g = combine(g, uint64(s))
		}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], x)
	}
	for _, g := range order {
		xs := groups[g]
		// A trigger the other miners found already is reported once.
		explained := true
		for _, s := range xs[0].rows {
			explained = explained && slices.ContainsFunc(out[s], func(f detect.Finding) bool { return f.Rule == RuleTriggerMined })
		}
		if explained {
			continue
		}
		slices.SortFunc(xs, func(a, b *hit) int { return strings.Compare(a.name, b.name) })
		names := make([]string, len(xs))
		best := xs[0]
		for i, x := range xs {
			names[i] = x.name
			if x.log10p < best.log10p {
				best = x
			}
		}
		phrase := strings.Join(names, " + ")
		d.triggers = append(d.triggers, Trigger{
			Phrase: phrase, Support: best.c.k, Carriers: best.c.n, Log10P: best.log10p, Rows: slices.Clone(best.rows),
		})
		msg := fmt.Sprintf("mined backdoor trigger %q (inserted word): %d distinct prompts carry it, no response does, and %d of the %d occurrences judged (%.0f%%) sit where the prompt reads on without it (p=1e%.0f)",
			phrase, best.c.n, best.c.k, best.c.judged, 100*float64(best.c.k)/float64(max(best.c.judged, 1)), best.log10p)
		for i, s := range best.rows {
			sp := best.span[i]
			out[s] = append(out[s], detect.Finding{
				Detector: d.Name(),
				Rule:     RuleTriggerMined,
				Category: detect.CatBackdoor,
				Severity: detect.SevHigh,
				Score:    0.8,
				Message:  msg,
				Field:    d.fieldNs[sp.field],
				Span:     [2]int{int(sp.start), int(sp.end)},
				Evidence: phrase,
			})
		}
	}
	return nil
}

// countTable counts a fixed set of 64-bit keys: open addressing with
// linear probing, cheaper than a map for the bigram counts of
// mineInserted. Key 0 is stored as 1.
type countTable struct {
	keys []uint64
	vals []int32
	mask uint64
}

// newCountTable returns a table for up to n keys.
func newCountTable(n int) countTable {
	size := 1
	for size < 2*n {
		size <<= 1
	}
	return countTable{keys: make([]uint64, size), vals: make([]int32, size), mask: uint64(size - 1)}
}

// slot returns the slot of k, or of the empty slot where it would go.
func (t countTable) slot(k uint64) uint64 {
	if k == 0 {
		k = 1
	}
	i := mix(k) & t.mask
	for t.keys[i] != 0 && t.keys[i] != k {
		i = (i + 1) & t.mask
	}
	return i
}

// add puts k in the table with count 0 if it is not there.
func (t countTable) add(k uint64) {
	if k == 0 {
		k = 1
	}
	t.keys[t.slot(k)] = k
}

// inc counts one more k if k is in the table.
func (t countTable) inc(k uint64) {
	if k == 0 {
		k = 1
	}
	if i := t.slot(k); t.keys[i] == k {
		t.vals[i]++
	}
}

// get returns the count of k (0 if absent).
func (t countTable) get(k uint64) int32 {
	if k == 0 {
		k = 1
	}
	if i := t.slot(k); t.keys[i] == k {
		return t.vals[i]
	}
	return 0
}
