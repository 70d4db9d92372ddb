// Package detect is SentinelDF's detection engine: it scans documents for
// poisoned or malicious content (prompt injection, jailbreaks, system-prompt
// extraction, HTML/JS payloads, hidden Unicode, encoded payloads, backdoor
// markers, adversarial suffixes, degenerate text, secrets and PII) and fuses
// the findings into a calibrated score and a verdict.
//
// The package is a library with no I/O of its own: callers hand it documents
// and receive results. An Engine is safe for concurrent use.
package detect

import "fmt"

// EngineVersion is the version of the detection engine's code. It changes
// whenever a change to the code can change a result.
const EngineVersion = "0.1.0"

// Category groups findings by the kind of threat they indicate.
type Category string

// The categories of findings.
const (
	CatInjection   Category = "prompt_injection"
	CatJailbreak   Category = "jailbreak"
	CatExtraction  Category = "prompt_extraction"
	CatExfil       Category = "exfiltration"
	CatHTML        Category = "html_js"
	CatHidden      Category = "hidden_text"
	CatEncoded     Category = "encoded_payload"
	CatBackdoor    Category = "backdoor"
	CatAdversarial Category = "adversarial_suffix"
	CatRepetition  Category = "repetition"
	CatSecret      Category = "secret"
	CatPII         Category = "pii"
	CatDataset     Category = "dataset"
	// CatClassifier is the learned classifier's verdict on a text.
	CatClassifier Category = "classifier"
)

// Categories lists every category in a stable order.
var Categories = []Category{
	CatInjection, CatJailbreak, CatExtraction, CatExfil, CatHTML, CatHidden,
	CatEncoded, CatBackdoor, CatAdversarial, CatRepetition, CatSecret, CatPII, CatDataset, CatClassifier,
}

// Severity says how bad a finding is on its own.
type Severity string

// The severities, from least to most severe.
const (
	SevInfo     Severity = "info"
	SevLow      Severity = "low"
	SevMedium   Severity = "medium"
	SevHigh     Severity = "high"
	SevCritical Severity = "critical"
)

// ParseSeverity validates a severity name.
func ParseSeverity(s string) (Severity, error) {
	switch Severity(s) {
	case SevInfo, SevLow, SevMedium, SevHigh, SevCritical:
		return Severity(s), nil
	}
	return "", fmt.Errorf("unknown severity %q (want info, low, medium, high or critical)", s)
}

// Band is the verdict band of a document.
type Band string

// The bands.
const (
	BandClean      Band = "clean"
	BandElevated   Band = "elevated"
	BandQuarantine Band = "quarantine"
)

// Field is one named piece of text of a document, e.g. "instruction" or
// "messages[2].content".
type Field struct {
	Name string
	Text string
}

// Document is the unit of scanning: an identity and the text fields to scan.
// Fields that are labels or metadata must not be included.
type Document struct {
	ID     string
	Fields []Field
}

// Finding is one piece of evidence that a document is malicious.
type Finding struct {
	Detector string   `json:"detector"`
	Rule     string   `json:"rule"`
	Category Category `json:"category"`
	Severity Severity `json:"severity"`
	// Score is the probability that a document carrying this finding alone
	// is malicious, in [0,1].
	Score   float64 `json:"score"`
	Message string  `json:"message"`
	// Field names the document field the finding came from.
	Field string `json:"field"`
	// Span is the [start,end) byte range in the ORIGINAL text of Field.
	Span [2]int `json:"span"`
	// Evidence is the matched text (or, for decoded payloads, the decoded
	// text), truncated to a readable length.
	Evidence string `json:"evidence"`
}

// Result is the verdict on one document.
type Result struct {
	// SHA256 is the hex SHA-256 of the scanned text (see ScannedText).
	SHA256   string    `json:"sha256"`
	Risk     int       `json:"risk"`
	Score    float64   `json:"score"`
	Band     Band      `json:"band"`
	Findings []Finding `json:"findings"`
}

// Quarantined reports whether the result's band is quarantine.
func (r *Result) Quarantined() bool { return r.Band == BandQuarantine }

// Thresholds are the risk levels (0–100) at which bands start.
type Thresholds struct {
	Elevated   int `json:"elevated" yaml:"elevated"`
	Quarantine int `json:"quarantine" yaml:"quarantine"`
}

// DefaultThresholds are the bands of the product: clean < 50 ≤ elevated < 70 ≤ quarantine.
var DefaultThresholds = Thresholds{Elevated: 50, Quarantine: 70}

// Validate checks that thresholds are ordered and within 0–100.
func (t Thresholds) Validate() error {
	if t.Elevated < 0 || t.Quarantine > 100 || t.Elevated > t.Quarantine {
		return fmt.Errorf("thresholds: want 0 ≤ elevated (%d) ≤ quarantine (%d) ≤ 100", t.Elevated, t.Quarantine)
	}
	return nil
}

// Band returns the band of a risk.
func (t Thresholds) Band(risk int) Band {
	switch {
	case risk >= t.Quarantine:
		return BandQuarantine
	case risk >= t.Elevated:
		return BandElevated
	}
	return BandClean
}

// Text is what a Detector inspects: one field of a document, in original and
// normalised form.
type Text struct {
	// Field is the field's name.
	Field string
	// Orig is the field's original text; spans refer to it.
	Orig string
	// Norm is Orig normalised (NFKC, confusables folded, case folded, hidden
	// characters removed, spaced letters joined, leetspeak keywords folded),
	// with a map back to Orig.
	Norm *Normalized
	// Depth is 0 for a document's own text and grows by one for text decoded
	// from inside it (base64, Unicode tags, ...).
	Depth int

	rescan func(decoded string, span [2]int, how string)
}

// Rescan asks the engine to run every detector over text decoded from
// t.Orig[span[0]:span[1]] by the decoding named how (e.g. "base64").
// Findings in the decoded text are reported at span, with the decoded text as
// evidence. The engine bounds the depth of nested decoding.
func (t *Text) Rescan(decoded string, span [2]int, how string) {
	if t.rescan != nil {
		t.rescan(decoded, span, how)
	}
}

// Detector inspects one text and emits findings. Implementations must be safe
// for concurrent use and must not retain t (t.Norm included) or emit after
// Detect returns: the engine reuses them for its next text. The strings
// t.Orig and t.Norm.Text may be kept.
type Detector interface {
	// Name is the detector's stable name, reported in findings.
	Name() string
	// Detect emits findings for t. Spans are byte offsets in t.Orig.
	Detect(t *Text, emit func(Finding))
}

// DatasetDetector is a detector that needs to see a whole dataset before it
// can judge any document (duplicates, outliers, backdoor triggers shared by
// many rows). A scan feeds it every document in input order in a first pass,
// then asks for its findings, which the engine fuses with each document's own
// (see Engine.Refuse).
//
// The per-document work is split in two so that the costly part runs in
// parallel: Prepare computes a document's signature (its words' hashes,
// sketches) and Observe folds that signature into the detector's state.
type DatasetDetector interface {
	Name() string
	// Prepare computes what Observe needs of one document, from the document
	// and its engine result. It is called once per document, concurrently
	// from many goroutines and in any order, so it must not touch state
	// shared between documents (a detector's configuration is read-only).
	// The value it returns may refer to doc and r until Observe returns.
	Prepare(doc Document, r *Result) any
	// Observe is called once per document, sequentially, in input order, with
	// what Prepare returned for it; seq is the document's 0-based position
	// in the dataset.
	Observe(seq int64, prep any)
	// Findings is called once after the last Observe and returns the extra
	// findings for each document that has any, keyed by seq.
	Findings() map[int64][]Finding
}
