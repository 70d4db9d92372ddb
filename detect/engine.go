package detect

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// maxDepth bounds nested decoding (base64 inside Unicode tags inside ...).
const maxDepth = 3

// maxEvidence is the longest evidence string a finding carries, in bytes.
const maxEvidence = 160

// Options configure an Engine. The zero value is the product default.
type Options struct {
	// Rules is a rules file (YAML, see rules.yaml); nil uses the embedded rules.
	Rules []byte
	// Thresholds; the zero value means DefaultThresholds.
	Thresholds Thresholds
	// Disable switches off rules by id, detectors by name, or categories.
	Disable []string
	// Allow suppresses findings that match an entry.
	Allow []AllowEntry
	// Extra detectors run after the built-in ones (e.g. a learned classifier).
	Extra []Detector
}

// AllowEntry suppresses findings: those of the listed rules (all rules when
// empty) whose evidence matches Pattern (a Go regexp; empty matches all).
type AllowEntry struct {
	Rules   []string `json:"rules,omitempty" yaml:"rules"`
	Pattern string   `json:"pattern,omitempty" yaml:"pattern"`
}

// Info describes an engine precisely enough to reproduce its results; it is
// recorded in MBOMs and cache keys.
type Info struct {
	Engine         string     `json:"engine"`
	RulesetVersion string     `json:"ruleset_version"`
	RulesetDigest  string     `json:"ruleset_digest"`
	ConfigDigest   string     `json:"config_digest"`
	Detectors      []string   `json:"detectors"`
	Models         []Model    `json:"models,omitempty"`
	Thresholds     Thresholds `json:"thresholds"`
}

// Model names a model a detector uses, with its digest.
type Model struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// ModelDetector is a Detector backed by a model that must be named in Info.
type ModelDetector interface {
	Detector
	Model() Model
}

// Engine scans documents. It is safe for concurrent use.
type Engine struct {
	info      Info
	th        Thresholds
	norm      Normalizer
	detectors []Detector
	disabled  map[string]bool
	allow     []allow
	digest    [32]byte // digest of Info, the cache-key salt
}

type allow struct {
	rules map[string]bool
	re    *regexp.Regexp
}

// New builds an engine.
func New(o Options) (*Engine, error) {
	th := o.Thresholds
	if th == (Thresholds{}) {
		th = DefaultThresholds
	}
	if err := th.Validate(); err != nil {
		return nil, err
	}
	src := o.Rules
	var rs *RuleSet
	var err error
	if src == nil {
		src = defaultRules
		rs, err = parsedDefault()
	} else {
		rs, err = ParseRules(src)
	}
	if err != nil {
		return nil, err
	}
	e := &Engine{th: th, disabled: map[string]bool{}}
	for _, d := range o.Disable {
		e.disabled[d] = true
	}
	for i, a := range o.Allow {
		al := allow{}
		if len(a.Rules) > 0 {
			al.rules = map[string]bool{}
			for _, r := range a.Rules {
				al.rules[r] = true
			}
		}
		if a.Pattern != "" {
			re, err := regexp.Compile(a.Pattern)
			if err != nil {
				return nil, fmt.Errorf("allowlist entry %d: %w", i+1, err)
			}
			al.re = re
		}
		e.allow = append(e.allow, al)
	}
	var rd *ruleDetector
	if o.Rules == nil && !rulesAffected(rs, e.disabled) {
		rd, err = defaultRuleDetector()
	} else {
		rd, err = newRuleDetector(rs, e.disabled)
	}
	if err != nil {
		return nil, err
	}
	e.norm = Normalizer{Keywords: rd.keywords()}
	builtin := []Detector{
		rd,
		newHTMLDetector(),
		newHiddenDetector(),
		newEncodedDetector(),
		newSecretsDetector(),
		newAdversarialDetector(),
		newRepetitionDetector(),
	}
	for _, d := range append(builtin, o.Extra...) {
		if e.disabled[d.Name()] {
			continue
		}
		e.detectors = append(e.detectors, d)
		e.info.Detectors = append(e.info.Detectors, d.Name())
		if md, ok := d.(ModelDetector); ok {
			e.info.Models = append(e.info.Models, md.Model())
		}
	}
	e.info.Engine = EngineVersion
	e.info.RulesetVersion = rs.Version
	rsum := sha256.Sum256(src)
	e.info.RulesetDigest = "sha256:" + hex.EncodeToString(rsum[:])
	e.info.Thresholds = th
	cfg, _ := json.Marshal(struct {
		T Thresholds
		D []string
		A []AllowEntry
	}{th, sortedKeys(e.disabled), o.Allow})
	csum := sha256.Sum256(cfg)
	e.info.ConfigDigest = "sha256:" + hex.EncodeToString(csum[:])
	ij, _ := json.Marshal(e.info)
	e.digest = sha256.Sum256(ij)
	return e, nil
}

// defaultRuleDetector is the embedded rules' detector with nothing disabled,
// built once: building the automaton is most of an engine's start-up time.
var defaultRuleDetector = sync.OnceValues(func() (*ruleDetector, error) {
	rs, err := parsedDefault()
	if err != nil {
		return nil, err
	}
	return newRuleDetector(rs, nil)
})

// rulesAffected reports whether disabled switches off any rule of rs.
func rulesAffected(rs *RuleSet, disabled map[string]bool) bool {
	for _, r := range rs.Rules {
		if disabled[r.ID] || disabled[string(r.Category)] {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Info describes the engine.
func (e *Engine) Info() Info { return e.info }

// Thresholds returns the engine's band thresholds.
func (e *Engine) Thresholds() Thresholds { return e.th }

// ScannedText is the text of a document that its result's SHA256 covers: the
// fields' texts joined by newlines, in field order.
func ScannedText(doc Document) string {
	if len(doc.Fields) == 1 {
		return doc.Fields[0].Text
	}
	var b strings.Builder
	for i, f := range doc.Fields {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(f.Text)
	}
	return b.String()
}

// CacheKey identifies a document's result for this engine: the SHA-256 of
// the engine's Info (version, rule set and config digests, detectors, models,
// thresholds) and each field's name and original text, length-prefixed. Two
// documents with the same key get the same result. The original text
// determines the normalised text for a given engine, and spans and evidence
// refer to it, so hashing the normalised text as well would add nothing but
// the cost of normalising.
func (e *Engine) CacheKey(doc Document) [32]byte {
	h := sha256.New()
	h.Write(e.digest[:])
	var n [binary.MaxVarintLen64]byte
	for _, f := range doc.Fields {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(f.Name)))])
		io.WriteString(h, f.Name)
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(f.Text)))])
		io.WriteString(h, f.Text)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// Scan scans one document.
func (e *Engine) Scan(doc Document) Result {
	var fs []Finding
	for _, f := range doc.Fields {
		fs = e.scanText(fs, f.Name, f.Text, 0, nil, "")
	}
	sum := sumString(ScannedText(doc))
	var hx [2 * sha256.Size]byte
	hex.Encode(hx[:], sum[:])
	r := Result{SHA256: string(hx[:])}
	e.finish(&r, fs)
	return r
}

// stringHasher is a SHA-256 hash and a buffer to feed it a string through,
// since the hash takes only byte slices: converting a document's text to
// one would copy it to the heap.
type stringHasher struct {
	h   hash.Hash
	buf [1024]byte
	sum [sha256.Size]byte
}

var stringHashers = sync.Pool{New: func() any { return &stringHasher{h: sha256.New()} }}

// sumString returns the SHA-256 of s.
func sumString(s string) [sha256.Size]byte {
	sh := stringHashers.Get().(*stringHasher)
	sh.h.Reset()
	for len(s) > 0 {
		n := copy(sh.buf[:], s)
		sh.h.Write(sh.buf[:n])
		s = s[n:]
	}
	sh.h.Sum(sh.sum[:0])
	sum := sh.sum
	stringHashers.Put(sh)
	return sum
}

// Refuse adds findings from dataset-level detectors to a result and recomputes
// its score and band.
func (e *Engine) Refuse(r *Result, extra []Finding) {
	fs := append(slices.Clip(r.Findings), extra...)
	e.finish(r, fs)
}

// scanText runs every detector over one text. When outer is non-nil the
// text was decoded from inside a parent text: findings are reported at the
// parent's span with the decoded evidence.
func (e *Engine) scanText(fs []Finding, field, text string, depth int, outer *[2]int, how string) []Finding {
	if text == "" {
		return fs
	}
	f := scanFrames.Get().(*scanFrame)
	f.e, f.fs, f.field, f.text, f.how = e, fs, field, text, how
	if outer != nil {
		f.outer, f.nested = *outer, true
	}
	f.segs = e.norm.normalizeInto(&f.norm, f.segs, text, false)
	f.t = Text{Field: field, Orig: text, Norm: &f.norm, Depth: depth}
	if depth < maxDepth {
		f.t.rescan = f.rescan
	}
	for _, d := range e.detectors {
		d.Detect(&f.t, f.emit)
	}
	fs = f.fs
	segs := f.segs
	if cap(segs) > maxPooledSegs {
		segs = nil
	}
	*f = scanFrame{emit: f.emit, rescan: f.rescan, segs: segs[:0]}
	scanFrames.Put(f)
	return fs
}

// maxPooledSegs is the largest map buffer a frame keeps between uses.
const maxPooledSegs = 1 << 12

// scanFrame is the state of one scanText call: the Text the detectors see
// and the emit and rescan functions they are handed, bound to the frame
// once, when it is made, so that scanning a text allocates no closures.
// Detectors do not keep t (or t.Norm) or call emit after Detect returns, so
// frames are reused; the normalised text itself is a string of its own.
type scanFrame struct {
	e      *Engine
	fs     []Finding
	field  string
	text   string
	outer  [2]int // the parent's span, when nested
	nested bool
	how    string
	t      Text
	norm   Normalized // t.Norm
	segs   []normSeg  // the buffer of norm's map
	emit   func(Finding)
	rescan func(decoded string, span [2]int, via string)
}

// scanFrames recycles frames; New is set in init (a frame's rescan calls
// scanText, which uses the pool).
var scanFrames sync.Pool

func init() {
	scanFrames.New = func() any {
		f := new(scanFrame)
		f.emit = f.emitFinding
		f.rescan = f.rescanText
		return f
	}
}

func (f *scanFrame) emitFinding(fd Finding) {
	fd.Field = f.field
	if fd.Span[0] < 0 || fd.Span[1] > len(f.text) || fd.Span[0] > fd.Span[1] {
		fd.Span = [2]int{0, len(f.text)}
	}
	if fd.Evidence == "" {
		fd.Evidence = f.text[fd.Span[0]:fd.Span[1]]
	}
	fd.Evidence = truncate(fd.Evidence, maxEvidence)
	if f.nested {
		fd.Span = f.outer
		fd.Message = f.how + "-decoded text: " + fd.Message
	}
	if f.e.disabled[fd.Rule] || f.e.disabled[string(fd.Category)] || f.e.allowed(fd) {
		return
	}
	f.fs = append(f.fs, fd)
}

func (f *scanFrame) rescanText(decoded string, span [2]int, via string) {
	sp := span
	label := via
	if f.nested {
		sp = f.outer
		label = f.how + "+" + via
	}
	f.fs = f.e.scanText(f.fs, f.field, decoded, f.t.Depth+1, &sp, label)
}

func (e *Engine) allowed(f Finding) bool {
	for _, a := range e.allow {
		if a.rules != nil && !a.rules[f.Rule] {
			continue
		}
		if a.re != nil && !a.re.MatchString(f.Evidence) {
			continue
		}
		return true
	}
	return false
}

// finish sorts and deduplicates findings and computes the verdict.
//
// Fusion is a noisy-OR over rules: each rule contributes the highest score
// of its findings once, so one rule repeated a hundred times does not
// outweigh two independent rules.
func (e *Engine) finish(r *Result, fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if c := strings.Compare(a.Field, b.Field); c != 0 {
			return c
		}
		if a.Span[0] != b.Span[0] {
			return a.Span[0] - b.Span[0]
		}
		if a.Span[1] != b.Span[1] {
			return a.Span[1] - b.Span[1]
		}
		if c := strings.Compare(a.Rule, b.Rule); c != 0 {
			return c
		}
		return strings.Compare(a.Evidence, b.Evidence)
	})
	fs = slices.CompactFunc(fs, func(a, b Finding) bool {
		return a.Field == b.Field && a.Span == b.Span && a.Rule == b.Rule && a.Evidence == b.Evidence
	})
	best := map[string]float64{}
	for _, f := range fs {
		if f.Score > best[f.Rule] {
			best[f.Rule] = f.Score
		}
	}
	keep := 1.0
	for _, rule := range sortedKeys(best) {
		keep *= 1 - math.Min(math.Max(best[rule], 0), 1)
	}
	score := 1 - keep
	// Round so that results are byte-identical whatever the order the
	// product was computed in.
	score = math.Round(score*1e6) / 1e6
	if fs == nil {
		fs = []Finding{}
	}
	r.Findings = fs
	r.Score = score
	r.Risk = int(math.Round(score * 100))
	r.Band = e.th.Band(r.Risk)
}

// truncate shortens s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && (s[i]&0xC0) == 0x80 {
		i--
	}
	return s[:i] + "…"
}
