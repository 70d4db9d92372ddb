package corpus

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/sentineldf/sentineldf/detect"
)

const (
	// twinMaxInsert is the most words a poisoned prompt may add to its
	// clean twin.
	twinMaxInsert = 3
	// twinMinTokens and twinMaxTokens bound the length, in words, of the
	// prompts that clean-twin mining compares.
	twinMinTokens = 6
	twinMaxTokens = 64
	// twinChunks is the number of pieces a prompt is cut into for the
	// twin index: with at most twinMaxInsert insertions, one piece of the
	// twin appears unbroken in the longer prompt (pigeonhole).
	twinChunks = twinMaxInsert + 1
	// maxTwinPairs caps the candidate pairs held for verification at once
	// (a batch; a probe adds at most 3·4·4·maxTwinBucket over it), and
	// maxTwinBatches the batches: a safety net, past which later rows are
	// not probed. maxTwinBucket caps the index entries one probe may return
	// (a bucket larger than that is a template shared by many prompts and
	// is skipped).
	maxTwinPairs   = 1 << 15
	maxTwinBatches = 8
	maxTwinBucket  = 64
	// twinMinShare is the least share of the prompts carrying a word that
	// must have a clean twin without it for the word to be a trigger: an
	// ordinary word inserted into a few near-duplicates is common elsewhere.
	twinMinShare = 0.25
)

// twinEntry is one piece of a prompt in the twin index.
type twinEntry struct {
	k   uint64
	row uint32
	// sig is the prompt's word-set signature, folded to 32 bits (see
	// twinSig): it fills the struct's padding.
	sig uint32
}

// twinSigWide returns a 128-bit signature of the set of words of toks, one
// bit a word. The words of a twin (the longer prompt with words removed)
// are words of the longer prompt, so its bits are a subset of the longer
// prompt's: a true twin always passes that test, and a prompt that shares
// only a stock opener with the probe rarely does.
func twinSigWide(toks []spooled) [2]uint64 {
	var s [2]uint64
	for _, t := range toks {
		b := mix(t.h) >> 57 // 0..127
		s[b>>6] |= 1 << (b & 63)
	}
	return s
}

// twinSig folds a 128-bit signature to the 32 bits an index entry keeps
// (still a subset when the wide one is).
func twinSig(s [2]uint64) uint32 {
	x := s[0] | s[1]
	return uint32(x | x>>32)
}

// twinSigs are the 128-bit word-set signatures of the indexed prompts, by
// row (20 bytes a prompt).
type twinSigs struct {
	rows []uint32
	sigs [][2]uint64
}

func (s *twinSigs) add(row uint32, sig [2]uint64) {
	s.rows = append(s.rows, row)
	s.sigs = append(s.sigs, sig)
}

// sort orders the signatures by row (the spool yields rows in the order
// they were observed, which is seq order in a scan).
func (s *twinSigs) sort() {
	if slices.IsSorted(s.rows) {
		return
	}
	ord := make([]int, len(s.rows))
	for i := range ord {
		ord[i] = i
	}
	slices.SortFunc(ord, func(a, b int) int { return cmp.Compare(s.rows[a], s.rows[b]) })
	rows, sigs := make([]uint32, len(ord)), make([][2]uint64, len(ord))
	for i, o := range ord {
		rows[i], sigs[i] = s.rows[o], s.sigs[o]
	}
	s.rows, s.sigs = rows, sigs
}

// subset reports whether the words of row may all be words of the prompt
// whose signature is p.
func (s *twinSigs) subset(row uint32, p [2]uint64) bool {
	i, ok := slices.BinarySearch(s.rows, row)
	if !ok {
		return true
	}
	t := s.sigs[i]
	return t[0]&^p[0] == 0 && t[1]&^p[1] == 0
}

// twinPair is a candidate (longer prompt, clean twin) pair.
type twinPair struct{ p, t uint32 }

// twinChunk returns the hash of piece c of a prompt of m words whose words
// are toks starting at off.
func twinChunk(toks []spooled, m, c, off int) uint64 {
	lo, hi := c*m/twinChunks, (c+1)*m/twinChunks
	h := combine(uint64(m)<<8|uint64(c), 0x7717)
	for _, t := range toks[off+lo : off+hi] {
		h = combine(h, t.h)
	}
	return h
}

// mineTwins finds "clean-twin" triggers: words whose insertion into a
// prompt that appears elsewhere in the dataset, without them and with a
// different response, explains at least TriggerMinSupport distinct prompts.
// A backdoor that makes a model comply with requests it otherwise refuses
// has no shared target response, but poisoned data often keeps the clean
// prompt it was made from beside it. Such a word is a trigger when at least
// twinMinShare of the prompts carrying it have such a twin and a one-sided
// binomial test (Bonferroni-corrected, at TriggerAlpha) says that having a
// twin is far more common among its prompts than among the others. Every
// row carrying a trigger is quarantined (backdoor.trigger_mined, score 0.8).
func (d *Backdoor) mineTwins(out map[int64][]detect.Finding, repeat []bool) error {
	// Pass 1: index the pieces of every short-enough unique prompt, and
	// keep its word-set signature (sigs, by row, ascending).
	var index []twinEntry
	var sigs twinSigs
	err := d.spool.each(func(r rowTokens) {
		m := len(r.toks)
		if repeat[r.seq] || m < twinMinTokens || m > twinMaxTokens {
			return
		}
		wide := twinSigWide(r.toks)
		for c := range twinChunks {
			index = append(index, twinEntry{twinChunk(r.toks, m, c, 0), uint32(r.seq), twinSig(wide)})
		}
		sigs.add(uint32(r.seq), wide)
	})
	if err != nil || len(index) == 0 {
		return err
	}
	slices.SortFunc(index, func(a, b twinEntry) int {
		if c := cmpU64(a.k, b.k); c != 0 {
			return c
		}
		return int(a.row) - int(b.row)
	})
	ix := newTwinIndex(index)
	sigs.sort()

	// Pass 2: probe with every longer prompt: piece c of a twin of m words
	// starts at its own offset plus the number of words inserted before it.
	// A prompt found there is a candidate twin only when
	//   - it is found through at least twinChunks−k of its pieces: a twin
	//     with k words inserted keeps that many whole (pigeonhole; a piece
	//     whose bucket is skipped as a template may be one of them, so it
	//     lowers the count), and
	//   - its words can be the probe's: its word-set signature is a subset
	//     of the probe's (32 bits in the index entry, then 128).
	// Both are exact for true twins. A prompt that shares a piece with the
	// probe only because both start with a stock opener ("Write a short")
	// is found through one piece, and its other words are not the probe's.
	// Pass 3 verifies the candidates; when maxTwinPairs of them are
	// collected it runs on them and pass 2 goes on from the next row, at
	// most maxTwinBatches times (a safety net: past it, later rows are not
	// probed).
	type wordRow struct {
		h   uint64
		row uint32
	}
	var explained []wordRow
	long := map[uint32]bool{} // prompts with a verified twin
	var hits []twinPair       // (row found, piece) of one probe
	batchPairs := cmp.Or(d.twinBatch, maxTwinPairs)
	next := 0 // the position in the spool where a batch starts
	for batch := 0; batch < maxTwinBatches && next >= 0; batch++ {
		cands := map[twinPair]bool{}
		from, pos := next, -1
		next = -1
		err = d.spool.eachWhile(func(r rowTokens) bool {
			pos++
			n := len(r.toks)
			if pos < from || repeat[r.seq] || n > twinMaxTokens+twinMaxInsert || n <= twinMinTokens {
				return true
			}
			if len(cands) >= batchPairs {
				next = pos
				return false
			}
			p := uint32(r.seq)
			pwide := twinSigWide(r.toks)
			psig := twinSig(pwide)
			for k := 1; k <= twinMaxInsert; k++ {
				m := n - k
				if m < twinMinTokens || m > twinMaxTokens {
					continue
				}
				hits = hits[:0]
				need := twinChunks - k
				for c := range twinChunks {
					skipped := false
					for j := 0; j <= k; j++ {
						bucket := ix.find(twinChunk(r.toks, m, c, j))
						if len(bucket) > maxTwinBucket {
							skipped = true
							continue
						}
						for _, e := range bucket {
							if e.sig&^psig != 0 || e.row == p || d.resp[e.row] == d.resp[p] || d.prompt[e.row] == d.prompt[p] {
								continue
							}
							hits = append(hits, twinPair{e.row, uint32(c)})
						}
					}
					if skipped {
						need--
					}
				}
				if len(hits) == 0 {
					continue
				}
				slices.SortFunc(hits, func(a, b twinPair) int {
					if a.p != b.p {
						return cmp.Compare(a.p, b.p)
					}
					return cmp.Compare(a.t, b.t)
				})
				hits = slices.Compact(hits)
				for i := 0; i < len(hits); {
					j := i + 1
					for j < len(hits) && hits[j].p == hits[i].p {
						j++
					}
					if t := hits[i].p; j-i >= need && sigs.subset(t, pwide) {
						cands[twinPair{p, t}] = true
					}
					i = j
				}
			}
			return true
		})
		if err != nil {
			return err
		}
		if len(cands) == 0 {
			continue
		}

		// Pass 3: load the words of the rows in candidate pairs and verify
		// that the twin is the longer prompt with 1..twinMaxInsert words
		// removed; the removed words are what the pair explains.
		need := map[uint32][]uint64{}
		for c := range cands {
			need[c.p], need[c.t] = nil, nil
		}
		err = d.spool.each(func(r rowTokens) {
			if _, ok := need[uint32(r.seq)]; ok {
				hs := make([]uint64, len(r.toks))
				for i, t := range r.toks {
					hs[i] = t.h
				}
				need[uint32(r.seq)] = hs
			}
		})
		if err != nil {
			return err
		}
		for c := range cands {
			pw, tw := need[c.p], need[c.t]
			var ins []uint64
			j := 0
			for _, h := range pw {
				if j < len(tw) && tw[j] == h {
					j++
				} else {
					ins = append(ins, h)
				}
			}
			if j != len(tw) || len(ins) == 0 || len(ins) > twinMaxInsert {
				continue
			}
			long[c.p] = true
			slices.Sort(ins)
			for _, h := range slices.Compact(ins) {
				explained = append(explained, wordRow{h, c.p})
			}
		}
	}
	slices.SortFunc(explained, func(a, b wordRow) int {
		if c := cmpU64(a.h, b.h); c != 0 {
			return c
		}
		return int(a.row) - int(b.row)
	})
	explained = slices.Compact(explained)
	support := map[uint64]int{} // word -> distinct prompts it explains
	for _, e := range explained {
		support[e.h]++
	}
	nLow := 0 // words under TriggerMinSupport, pooled (see below)
	for h, k := range support {
		switch {
		case k < poolMinSupport:
			delete(support, h)
		case k < d.o.TriggerMinSupport:
			nLow++
		}
	}
	if len(support) == 0 {
		return nil
	}

	// Pass 4: the unique prompts and all rows that carry each word.
	type carrier struct {
		n    int
		rows []int64
		span []spooled
	}
	carry := map[uint64]*carrier{}
	for h := range support {
		carry[h] = &carrier{}
	}
	seen := map[uint64]bool{}
	err = d.spool.each(func(r rowTokens) {
		clear(seen)
		for _, t := range r.toks {
			c, ok := carry[t.h]
			if !ok || seen[t.h] {
				continue
			}
			seen[t.h] = true
			if !repeat[r.seq] {
				c.n++
			}
			c.rows = append(c.rows, r.seq)
			c.span = append(c.span, t)
		}
	})
	if err != nil {
		return err
	}

	unique := 0
	for i, r := range d.resp {
		if r != 0 && !repeat[i] {
			unique++
		}
	}
	words := slices.Sorted(func(yield func(uint64) bool) {
		for h := range support {
			if !yield(h) {
				return
			}
		}
	})
	logAlpha := math.Log10(d.o.TriggerAlpha) - math.Log10(float64(max(len(words)-nLow, 1)))
	logTau := math.Log10(d.o.TriggerAlpha)
	type hit struct {
		name   string
		k, n   int
		log10p float64
		c      *carrier
		pooled bool
	}
	groups := map[uint64][]hit{}
	var order []uint64
	for _, h := range words {
		k, c := support[h], carry[h]
		if float64(k) < twinMinShare*float64(c.n) {
			continue
		}
		q := (float64(len(long)-k) + 1) / (float64(unique-c.n) + 2)
		lp := log10BinomTail(k, c.n, q)
		pooled := k < d.o.TriggerMinSupport
		if (!pooled && lp > logAlpha) || (pooled && lp > logTau) {
			continue
		}
		name := fmt.Sprintf("#%016x", h)
		if e, ok := d.names[h]; ok {
			name = e.s
		}
		// Words that mark exactly the same rows are one composite trigger.
		g := uint64(1)
		for _, s := range c.rows {
			g = combine(g, uint64(s))
		}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], hit{name, k, c.n, lp, c, pooled})
	}
	// Words under TriggerMinSupport prompts (each with p ≤ TriggerAlpha)
	// stand only together: they are kept when the number of distinct ones
	// is far above the nLow·TriggerAlpha expected by chance (Poisson tail).
	nPooled := 0
	for _, g := range order {
		if groups[g][0].pooled {
			nPooled++
		}
	}
	poolLog := log10PoissonTail(nPooled, float64(nLow)*d.o.TriggerAlpha)
	// A word passes alone when its own test survives Bonferroni over the
	// nLow rare words.
	logLowAlpha := logTau - math.Log10(float64(max(nLow, 1)))
	if nPooled < 2 || poolLog > logTau {
		order = slices.DeleteFunc(order, func(g uint64) bool {
			return groups[g][0].pooled && slices.MinFunc(groups[g], func(a, b hit) int { return cmp.Compare(a.log10p, b.log10p) }).log10p > logLowAlpha
		})
	}
	for _, g := range order {
		hs := groups[g]
		slices.SortFunc(hs, func(a, b hit) int { return strings.Compare(a.name, b.name) })
		names := make([]string, len(hs))
		best := hs[0]
		for i, x := range hs {
			names[i] = x.name
			if x.log10p < best.log10p {
				best = x
			}
		}
		phrase := strings.Join(names, " + ")
		d.triggers = append(d.triggers, Trigger{
			Phrase: phrase, Support: best.k, Carriers: best.n, Target: "", Log10P: best.log10p, Rows: slices.Clone(best.c.rows),
		})
		msg := fmt.Sprintf("mined backdoor trigger %q (clean twins): %d distinct prompts carry it and %d of them (%.0f%%) also appear without it, with a different response (p=1e%.0f)",
			phrase, best.n, best.k, 100*float64(best.k)/float64(max(best.n, 1)), best.log10p)
		if best.pooled {
			msg = fmt.Sprintf("mined backdoor trigger %q (clean twins), one of %d rare words that appear inserted into prompts that elsewhere get a different response (pooled p=1e%.0f): %d distinct prompts carry it and %d of them also appear without it (p=1e%.0f)",
				phrase, nPooled, poolLog, best.n, best.k, best.log10p)
		}
		for i, s := range best.c.rows {
			sp := best.c.span[i]
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

// twinIndex looks chunk hashes up in the sorted twin index. Nearly every
// probe misses (a prompt's pieces match only its near-twins' and shared
// templates'), so a blocked Bloom filter (one 64-bit word a key, about 16
// bits a key) answers most probes from a table eight times smaller than
// the index, and a directory of the keys' top bits (about eight entries a
// bucket, half a byte an entry) leaves a short search for the others.
type twinIndex struct {
	e     []twinEntry
	dir   []uint32 // dir[b] is the first entry whose key's top bits are ≥ b
	shift uint
	bloom []uint64
	mask  uint64
}

// twinBloomBits are the three bit positions of a key in its Bloom word.
func twinBloomBits(k uint64) uint64 {
	return 1<<(k>>32&63) | 1<<(k>>38&63) | 1<<(k>>44&63)
}

// newTwinIndex indexes e, sorted by key.
func newTwinIndex(e []twinEntry) twinIndex {
	bits := uint(1)
	for 1<<bits < len(e)/8 {
		bits++
	}
	x := twinIndex{e: e, shift: 64 - bits, dir: make([]uint32, 1<<bits+1)}
	j := 0
	for b := range x.dir {
		for j < len(e) && e[j].k>>x.shift < uint64(b) {
			j++
		}
		x.dir[b] = uint32(j)
	}
	words := 1
	for words*64 < 16*len(e) {
		words <<= 1
	}
	x.bloom, x.mask = make([]uint64, words), uint64(words-1)
	for _, t := range e {
		x.bloom[t.k&x.mask] |= twinBloomBits(t.k)
	}
	return x
}

// find returns the entries with key k (a subslice of the index; the
// caller skips it when it is longer than maxTwinBucket, so the run is
// followed at most one entry past that).
func (x *twinIndex) find(k uint64) []twinEntry {
	if bb := twinBloomBits(k); x.bloom[k&x.mask]&bb != bb {
		return nil
	}
	b := k >> x.shift
	lo, hi := int(x.dir[b]), int(x.dir[b+1])
	i, _ := slices.BinarySearchFunc(x.e[lo:hi], k, func(e twinEntry, k uint64) int { return cmpU64(e.k, k) })
	i += lo
	end := i
	for end < hi && x.e[end].k == k && end-i <= maxTwinBucket {
		end++
	}
	return x.e[i:end]
}
