package corpus

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/sentineldf/sentineldf/detect"
)

// MinHash LSH parameters: minhashBands bands of minhashRows values each.
// The pair-detection threshold is about (1/bands)^(1/rows) ≈ 0.79 Jaccard
// similarity of word 3-shingles: pairs at 0.9 are found with probability
// 0.95, pairs at 0.5 with 0.06.
const (
	minhashBands = 4
	minhashRows  = 6
	shingleWords = 3
)

// Duplicates finds exact duplicates (same normalised word sequence) and
// near-duplicate clusters (MinHash LSH over word 3-shingles, clusters by
// union-find). Every member of a cluster gets an informational finding
// naming the cluster (the smallest seq in it) and its size; a cluster of at
// least max(FloodMin, FloodFraction·N) rows is flooding and its members get
// a medium finding in the elevated band.
//
// Memory: 40 bytes per document (an 8-byte key and four 8-byte band keys),
// plus 16 bytes per document transiently in Findings.
type Duplicates struct {
	o     Options
	keys  []uint64
	bands [][minhashBands]uint64
	g     *group // non-nil when made by Default: d leads the group
}

var _ detect.DatasetDetector = (*Duplicates)(nil)

// NewDuplicates returns a duplicate detector.
func NewDuplicates(o Options) *Duplicates {
	return &Duplicates{o: o.withDefaults()}
}

// Name implements detect.DatasetDetector.
func (d *Duplicates) Name() string { return "corpus.duplicates" }

// dupSig is a document's duplicate signature: key is 0 for a document
// without words.
type dupSig struct {
	key   uint64
	bands [minhashBands]uint64
}

// Prepare implements detect.DatasetDetector. For a detector made by Default
// it prepares every detector of the group (see Default).
func (d *Duplicates) Prepare(doc detect.Document, _ *detect.Result) any {
	if d.g != nil {
		return d.g.prepare(d, doc)
	}
	sc := getScratch()
	defer putScratch(sc)
	toks, ends := sc.words(doc)
	sig := d.sign(sc, toks, ends)
	return &sig
}

// Observe implements detect.DatasetDetector.
func (d *Duplicates) Observe(seq int64, prep any) {
	d.keys = grow(d.keys, seq)
	d.bands = grow(d.bands, seq)
	var sig *dupSig
	switch p := prep.(type) {
	case *groupPrep:
		d.g.seq, d.g.cur = seq, p
		sig = &p.dup
	case *dupSig:
		sig = p
	default:
		panic(fmt.Sprintf("corpus.duplicates: Observe got %T, not what Prepare returned", prep))
	}
	if sig.key == 0 {
		return // empty documents are not duplicates of each other
	}
	d.keys[seq] = sig.key
	d.bands[seq] = sig.bands
}

// sign computes the signature of a document whose words are toks, with
// ends[i] the end of field i's words; sc.buf is its working memory.
func (d *Duplicates) sign(sc *scratch, toks []token, ends []int) dupSig {
	var sig dupSig
	if len(toks) == 0 {
		return sig // empty documents are not duplicates of each other
	}
	buf := sc.buf[:0]
	start := 0
	for i, end := range ends {
		if i > 0 {
			buf = append(buf, 0xff) // field separator
		}
		for _, t := range toks[start:end] {
			buf = binary.LittleEndian.AppendUint64(buf, t.h)
		}
		start = end
	}
	sc.buf = buf
	sum := sha256.Sum256(buf)
	sig.key = binary.LittleEndian.Uint64(sum[:]) | 1
	// One-permutation MinHash: each shingle's hash picks a bin and competes
	// for its minimum; empty bins borrow the next non-empty bin's value.
	const k = minhashBands * minhashRows
	var mins [k]uint64
	for i := range mins {
		mins[i] = math.MaxUint64
	}
	add := func(sh uint64) {
		sh = mix(sh)
		bin := (sh >> 32) * k >> 32
		if v := sh & 0xffffffff; v < mins[bin] {
			mins[bin] = v
		}
	}
	if len(toks) < shingleWords {
		var h uint64
		for _, t := range toks {
			h = combine(h, t.h)
		}
		add(h)
	} else {
		for j := 0; j+shingleWords <= len(toks); j++ {
			add(combine(combine(toks[j].h, toks[j+1].h), toks[j+2].h))
		}
	}
	for i := range mins {
		if mins[i] != math.MaxUint64 {
			continue
		}
		for step := 1; step < k; step++ {
			if v := mins[(i+step)%k]; v != math.MaxUint64 {
				mins[i] = v + uint64(step)<<32
				break
			}
		}
	}
	for b := range minhashBands {
		h := uint64(b + 1)
		for _, v := range mins[b*minhashRows : (b+1)*minhashRows] {
			h = combine(h, v)
		}
		sig.bands[b] = h | 1
	}
	return sig
}

// FloodSize is the smallest cluster that counts as flooding in a dataset of
// n documents.
func (o Options) FloodSize(n int) int {
	o = o.withDefaults()
	return max(o.FloodMin, int(math.Ceil(o.FloodFraction*float64(n))))
}

// Findings implements detect.DatasetDetector.
func (d *Duplicates) Findings() map[int64][]detect.Finding {
	n := len(d.keys)
	out := map[int64][]detect.Finding{}
	if n < 2 {
		return out
	}
	flood := d.o.FloodSize(n)

	// Exact duplicates: sort seqs by key.
	idx := make([]uint32, 0, n)
	for i, k := range d.keys {
		if k != 0 {
			idx = append(idx, uint32(i))
		}
	}
	slices.SortFunc(idx, func(a, b uint32) int {
		if c := cmpU64(d.keys[a], d.keys[b]); c != 0 {
			return c
		}
		return int(a) - int(b)
	})
	exactSize := make([]uint32, n) // exact cluster size of every seq, 0 for empty docs
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && d.keys[idx[j]] == d.keys[idx[i]] {
			j++
		}
		if size := j - i; size > 1 {
			first := idx[i]
			for _, s := range idx[i:j] {
				exactSize[s] = uint32(size)
				out[int64(s)] = append(out[int64(s)], dupFinding(RuleExactDuplicate, "exact duplicate", int(first), size, flood, n))
			}
		}
		i = j
	}

	// Near duplicates: union rows that share any band key.
	uf := newUnionFind(n)
	type kv struct {
		k uint64
		s uint32
	}
	pairs := make([]kv, 0, len(idx))
	for b := range minhashBands {
		pairs = pairs[:0]
		for _, s := range idx {
			pairs = append(pairs, kv{d.bands[s][b], s})
		}
		slices.SortFunc(pairs, func(x, y kv) int {
			if c := cmpU64(x.k, y.k); c != 0 {
				return c
			}
			return int(x.s) - int(y.s)
		})
		for i := 1; i < len(pairs); i++ {
			if pairs[i].k == pairs[i-1].k {
				uf.union(pairs[i-1].s, pairs[i].s)
			}
		}
	}
	size := make([]uint32, n)
	minSeq := make([]uint32, n)
	for i := range minSeq {
		minSeq[i] = math.MaxUint32
	}
	for _, s := range idx {
		r := uf.find(s)
		size[r]++
		minSeq[r] = min(minSeq[r], s)
	}
	for _, s := range idx {
		r := uf.find(s)
		// A cluster that is one exact-duplicate group is reported as that.
		if size[r] < 2 || size[r] == exactSize[s] {
			continue
		}
		out[int64(s)] = append(out[int64(s)], dupFinding(RuleNearDuplicate, "near-duplicate", int(minSeq[r]), int(size[r]), flood, n))
	}
	return out
}

func dupFinding(rule, what string, cluster, size, flood, n int) detect.Finding {
	f := detect.Finding{
		Detector: "corpus.duplicates",
		Rule:     rule,
		Category: detect.CatDataset,
		Severity: detect.SevInfo,
		Message:  fmt.Sprintf("%s: cluster %d has %d rows", what, cluster, size),
		Evidence: fmt.Sprintf("cluster=%d size=%d", cluster, size),
		Span:     [2]int{0, 0},
	}
	if size >= flood {
		f.Severity = detect.SevMedium
		f.Score = 0.6
		f.Message = fmt.Sprintf("%s flooding: cluster %d has %d rows, %.1f%% of the dataset (flooding starts at %d)",
			what, cluster, size, 100*float64(size)/float64(n), flood)
	}
	return f
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// unionFind is a disjoint-set forest over 0..n-1 with path halving and
// union by smaller root index (deterministic).
type unionFind struct{ parent []uint32 }

func newUnionFind(n int) *unionFind {
	p := make([]uint32, n)
	for i := range p {
		p[i] = uint32(i)
	}
	return &unionFind{p}
}

func (u *unionFind) find(x uint32) uint32 {
	for u.parent[x] != x {
		u.parent[x] = u.parent[u.parent[x]]
		x = u.parent[x]
	}
	return x
}

func (u *unionFind) union(a, b uint32) {
	ra, rb := u.find(a), u.find(b)
	if ra == rb {
		return
	}
	if ra < rb {
		u.parent[rb] = ra
	} else {
		u.parent[ra] = rb
	}
}
