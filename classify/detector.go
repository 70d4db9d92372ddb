package classify

import (
	"fmt"
	"sync"

	"github.com/sentineldf/sentineldf/detect"
)

// Finding identity.
const (
	// DetectorName is the name of the classifier detector.
	DetectorName = "classifier"
	// RuleInjection is the rule of the classifier's findings.
	RuleInjection = "classifier.injection"
	// maxEvidence is how many bytes of a window a finding quotes.
	maxEvidence = 120
)

// Weight is how much of the classifier's probability its finding carries
// into the engine's noisy-OR: a finding scores Weight × p. It is below the
// elevated band (0.5) on purpose. Leave-sources-out cross-validation shows
// that the classifier ranks documents usefully on sources it was not trained
// on (it lifts AUROC) but is not calibrated there: on unseen benign sources
// it gives many documents high probabilities. So the classifier alone never
// moves a document out of the clean band; it raises the risk of documents
// that other detectors also find suspicious, and orders the rest.
const Weight = 0.3

// Detector runs a Model over each text the engine scans: the text is cut
// into windows of tokens, each window is scored, and the best window yields
// one finding when its probability reaches the model's floor. It implements
// detect.ModelDetector, so MBOMs name the model and its digest.
type Detector struct {
	m      *Model
	digest string
}

var _ detect.ModelDetector = (*Detector)(nil)

// NewDetector returns a detector for m. The model must not be modified
// afterwards.
func NewDetector(m *Model) (*Detector, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	m.h = newHasher(m.Buckets, m.Salt)
	return &Detector{m: m, digest: m.Digest()}, nil
}

// Name implements detect.Detector.
func (d *Detector) Name() string { return DetectorName }

// Model implements detect.ModelDetector.
func (d *Detector) Model() detect.Model {
	return detect.Model{Name: d.m.Name, Digest: d.digest}
}

// scratch is the per-call working memory of feature extraction.
type scratch struct {
	toks []token
	wins []window
	ids  []uint32
	h    []float32
	// Block sums of the fast path (blocks.go).
	bsum []float32 // per block, Dim wide: Σ scale·row of its features
	bn   []int     // per block: how many features
	bdg  []float32 // per block, Dim wide: the bigram across its first token
	bdn  []int     // per block: 1 when that bigram exists
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func (m *Model) scratch() *scratch { return new(scratch) }

// Score is the model's probability for normalised text and the byte range
// (in norm) of the window that scored it.
func (m *Model) Score(norm string) (p float32, span [2]int) {
	s := scratchPool.Get().(*scratch)
	p, span = m.score(norm, s)
	scratchPool.Put(s)
	return p, span
}

func (m *Model) score(norm string, s *scratch) (best float32, span [2]int) {
	s.toks = tokenize(norm, s.toks[:0])
	s.wins = windows(s.toks, m.WindowTokens, m.WindowStride, s.wins[:0])
	if len(s.wins) > 1 && m.WindowTokens%m.WindowStride == 0 {
		if p, sp, ok := m.scoreBlocks(norm, s); ok {
			return p, sp
		}
	}
	if cap(s.h) < m.Dim {
		s.h = make([]float32, m.Dim)
	}
	h := s.h[:m.Dim]
	best = -1
	for _, w := range s.wins {
		s.ids = m.h.appendFeatures(s.ids[:0], norm, s.toks[w.first:w.last], m.MinN, m.MaxN, m.MaxFeatures)
		clear(h)
		if p := m.prob(s.ids, h); p > best {
			best, span = p, [2]int{w.start, w.end}
		}
	}
	if best < 0 {
		return 0, [2]int{}
	}
	return best, span
}

// Detect implements detect.Detector.
func (d *Detector) Detect(t *detect.Text, emit func(detect.Finding)) {
	if t.Norm == nil || t.Norm.Text == "" {
		return
	}
	p, span := d.m.Score(t.Norm.Text)
	if p < d.m.Floor {
		return
	}
	orig := t.Norm.OrigSpan(span[0], span[1])
	ev := t.Orig[orig[0]:orig[1]]
	if len(ev) > maxEvidence {
		i := maxEvidence
		for i > 0 && ev[i]&0xC0 == 0x80 {
			i--
		}
		ev = ev[:i] + "…"
	}
	emit(detect.Finding{
		Detector: DetectorName,
		Rule:     RuleInjection,
		Category: detect.CatClassifier,
		Severity: severity(p),
		Score:    Weight * float64(p),
		Message:  fmt.Sprintf("learned classifier: probability %.2f that this text is a prompt injection or jailbreak (bytes %d–%d)", p, orig[0], orig[1]),
		Span:     orig,
		Evidence: ev,
	})
}

// severity is the finding's severity: low at most, since the classifier
// alone never decides a verdict (see Weight).
func severity(p float32) detect.Severity {
	if p >= 0.5 {
		return detect.SevLow
	}
	return detect.SevInfo
}

// Normalizer normalises text exactly as the default engine does before its
// detectors see it (rule keywords included), and scores it with the rules
// and built-in detectors: training data must look like what the classifier
// sees at scan time. It is safe for concurrent use but serialises calls.
type Normalizer struct {
	mu   sync.Mutex
	e    *detect.Engine
	last string
}

// NewNormalizer builds a Normalizer over the default engine.
func NewNormalizer() (*Normalizer, error) {
	n := &Normalizer{}
	e, err := detect.New(detect.Options{Extra: []detect.Detector{captureDetector{n}}})
	if err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	n.e = e
	return n, nil
}

// Normalize returns text's normalised form and the engine's score of text
// without any classifier (the rules-only score).
func (n *Normalizer) Normalize(text string) (norm string, rules float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.last = ""
	r := n.e.Scan(detect.Document{Fields: []detect.Field{{Name: "text", Text: text}}})
	return n.last, r.Score
}

// captureDetector records the normalised text of depth-0 texts.
type captureDetector struct{ n *Normalizer }

func (captureDetector) Name() string { return "capture" }

func (c captureDetector) Detect(t *detect.Text, _ func(detect.Finding)) {
	if t.Depth == 0 && t.Norm != nil {
		c.n.last = t.Norm.Text
	}
}
