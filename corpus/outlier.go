package corpus

import (
	"fmt"
	"math"
	"slices"

	"github.com/sentineldf/sentineldf/detect"
)

const (
	// outlierSamples is how many distinct words of a document are kept to
	// judge it: the ones with the smallest hashes, a uniform sample.
	outlierSamples = 8
	// outlierMinWords is the fewest distinct words a document needs to be
	// judged; shorter documents say too little about their vocabulary.
	outlierMinWords = 8
	// outlierQuantile is the share of documents that can never be outliers:
	// only the top 0.5% by rarity are candidates.
	outlierQuantile = 0.995
	cmsDepth        = 2
	cmsWidth        = 1 << 20
	// sampleBelow: only words whose 32-bit hash is below it are counted and
	// sampled (consistent sampling), a quarter of the vocabulary; a word
	// that is sampled anywhere is therefore counted everywhere.
	sampleBelow = 1 << 30
	// outlierMinSamples is the fewest sampled words a judged document needs.
	outlierMinSamples = 3
)

// Outliers finds documents far from the dataset's own distribution: those
// whose words are rare in the dataset. A document's rarity is the mean
// inverse document frequency, ln((N+1)/(df+1)), of a uniform sample of its
// distinct words (up to outlierSamples of them), with
// document frequencies from a count-min sketch of the whole dataset — a
// streaming estimate of its distance from the dataset in hashed unigram
// TF-IDF space. A document is an outlier when it is in the top 0.5% by
// rarity and its sampled words occur, on average, in at most three
// documents; it is extreme when they occur in at most about one and a half.
// Both are low-score findings: outliers are information, not verdicts.
//
// Memory: 33 bytes per document (8 sampled 32-bit word hashes and a count)
// and a fixed 8 MiB count-min sketch. Words are sampled consistently: only
// the quarter of the vocabulary whose hashes fall below a fixed bound is
// counted, and a document's sample is its smallest such hashes.
type Outliers struct {
	o       Options
	samples [][outlierSamples]uint32
	counts  []uint8
	cms     []uint32
	g       *group // non-nil when made by Default
}

var _ detect.DatasetDetector = (*Outliers)(nil)

// NewOutliers returns an outlier detector.
func NewOutliers(o Options) *Outliers {
	return &Outliers{o: o.withDefaults()}
}

// Name implements detect.DatasetDetector.
func (d *Outliers) Name() string { return "corpus.outliers" }

func (d *Outliers) cmsIndex(row int, h uint32) int {
	x := mix(uint64(h) | uint64(row+1)<<32)
	return row*cmsWidth + int(x&(cmsWidth-1))
}

func (d *Outliers) df(h uint32) uint32 {
	v := uint32(math.MaxUint32)
	for r := range cmsDepth {
		v = min(v, d.cms[d.cmsIndex(r, h)])
	}
	return v
}

// outSig is a document's outlier signature.
type outSig struct {
	words int      // words in the document
	under []uint32 // its distinct sampled word hashes, ascending
}

// Prepare implements detect.DatasetDetector. A detector made by Default
// leaves the work to the group's leader (see Default).
func (d *Outliers) Prepare(doc detect.Document, _ *detect.Result) any {
	if d.g != nil {
		return doc
	}
	sc := getScratch()
	defer putScratch(sc)
	toks, _ := sc.words(doc)
	sig := d.sign(sc, toks)
	return &sig
}

// sign computes the signature of a document whose words are toks;
// sc.under is its working memory.
func (d *Outliers) sign(sc *scratch, toks []token) outSig {
	under := sc.under[:0]
	for _, t := range toks {
		if h := uint32(mix(t.h)); h < sampleBelow {
			under = append(under, h)
		}
	}
	sc.under = under
	slices.Sort(under)
	under = slices.Compact(under)
	return outSig{words: len(toks), under: slices.Clone(under)}
}

// Observe implements detect.DatasetDetector.
func (d *Outliers) Observe(seq int64, prep any) {
	d.samples = grow(d.samples, seq)
	d.counts = grow(d.counts, seq)
	if d.cms == nil {
		d.cms = make([]uint32, cmsDepth*cmsWidth)
	}
	var sig *outSig
	switch p := prep.(type) {
	case *outSig:
		sig = p
	case detect.Document:
		if gp := d.g.take(seq); gp != nil {
			sig = &gp.out
		} else {
			sc := getScratch()
			toks, _ := sc.words(p)
			s := d.sign(sc, toks)
			putScratch(sc)
			sig = &s
		}
	default:
		panic(fmt.Sprintf("corpus.outliers: Observe got %T, not what Prepare returned", prep))
	}
	for _, h := range sig.under {
		for r := range cmsDepth {
			i := d.cmsIndex(r, h)
			if d.cms[i] < math.MaxUint32 {
				d.cms[i]++
			}
		}
	}
	if sig.words < outlierMinWords || len(sig.under) < outlierMinSamples {
		return
	}
	n := min(len(sig.under), outlierSamples)
	copy(d.samples[seq][:], sig.under[:n])
	d.counts[seq] = uint8(n)
}

// Findings implements detect.DatasetDetector.
func (d *Outliers) Findings() map[int64][]detect.Finding {
	out := map[int64][]detect.Finding{}
	n := len(d.counts)
	if n < d.o.OutlierMinDocs {
		return out
	}
	rarity := make([]float64, n)
	var judged []float64
	dfs := make([]float64, n)
	for i := range n {
		c := int(d.counts[i])
		if c == 0 {
			rarity[i] = -1
			continue
		}
		var sum, dsum float64
		for _, h := range d.samples[i][:c] {
			df := float64(d.df(h))
			sum += math.Log((float64(n) + 1) / (df + 1))
			dsum += df
		}
		rarity[i] = sum / float64(c)
		dfs[i] = dsum / float64(c)
		judged = append(judged, rarity[i])
	}
	if len(judged) == 0 {
		return out
	}
	slices.Sort(judged)
	q := judged[min(len(judged)-1, int(math.Floor(outlierQuantile*float64(len(judged)))))]
	floor := math.Log((float64(n) + 1) / 4) // sampled words in ≤ 3 documents on average
	extreme := math.Log((float64(n) + 1) / 2.5)
	for i, r := range rarity {
		if r < 0 || r < q || r < floor {
			continue
		}
		f := detect.Finding{
			Detector: d.Name(),
			Rule:     RuleOutlier,
			Category: detect.CatDataset,
			Severity: detect.SevLow,
			Score:    0.15,
			Message: fmt.Sprintf("outlier: its words are rare in this dataset (sampled words occur in %.1f of %d documents on average; rarity %.2f, top %.1f%% starts at %.2f)",
				dfs[i], n, r, 100*(1-outlierQuantile), q),
			Evidence: fmt.Sprintf("rarity=%.2f mean_df=%.1f", r, dfs[i]),
		}
		if r >= extreme {
			f.Severity = detect.SevMedium
			f.Score = 0.35
		}
		out[int64(i)] = []detect.Finding{f}
	}
	return out
}
