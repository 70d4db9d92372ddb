package scan

import (
	"cmp"
	"path/filepath"
	"slices"
	"time"

	"github.com/sentineldf/sentineldf/dataset"
	"github.com/sentineldf/sentineldf/detect"
	"github.com/sentineldf/sentineldf/mbom"
)

// Summary is the outcome of a scan. Its JSON form is the CLI's
// `--format json` summary.
type Summary struct {
	// Documents is the number of documents scanned (malformed records not
	// included).
	Documents int64 `json:"documents"`
	// Bytes is the number of input bytes read.
	Bytes int64 `json:"bytes"`
	// Files is the number of input files.
	Files int `json:"files"`
	// Inputs are the input files, in scan order, with their size and
	// SHA-256 as read.
	Inputs []Input `json:"inputs"`
	// Bands counts documents per band.
	Bands mbom.Counts `json:"bands"`
	// Categories counts, per category, the documents with at least one
	// finding of it.
	Categories map[detect.Category]int64 `json:"categories"`
	// TopRules are the rules that fired in the most documents, most first.
	TopRules []RuleCount `json:"top_rules"`
	// Malformed is the number of records that could not be read.
	Malformed int64 `json:"malformed"`
	// MalformedSamples are the first malformed records.
	MalformedSamples []Malformed `json:"malformed_samples"`
	// CacheHits is the number of documents whose result came from the cache.
	CacheHits int64 `json:"cache_hits"`
	// ElapsedSeconds is the wall time of the scan.
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// DocsPerSecond and MBPerSecond are Documents and Bytes (in units of
	// 10^6) per elapsed second.
	DocsPerSecond float64 `json:"docs_per_second"`
	MBPerSecond   float64 `json:"mb_per_second"`
	// Engine describes the engine that produced the results.
	Engine detect.Info `json:"engine"`
	// Results names the results output and its SHA-256 (empty when there
	// was none).
	Results mbom.Results `json:"results"`
	// Merkle is the Merkle tree over the results, in input order.
	Merkle mbom.Merkle `json:"merkle"`

	// PriorResults counts the documents whose result came from
	// Config.Prior, and PriorMismatches those whose prior result was not
	// for their text and were scanned instead. They are not part of the
	// JSON form, which stays the CLI's.
	PriorResults    int64 `json:"-"`
	PriorMismatches int64 `json:"-"`

	rules      map[string]int64
	topN       int
	maxSamples int
}

// Input is one input file of a scan.
type Input struct {
	// Name is the path as given (slash-separated).
	Name string `json:"name"`
	// Format and Compression are as detected or forced.
	Format      dataset.Format `json:"format"`
	Compression string         `json:"compression,omitempty"`
	// Size is the number of bytes read, and SHA256 their digest.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// RuleCount is the number of documents in which a rule fired.
type RuleCount struct {
	Rule      string `json:"rule"`
	Documents int64  `json:"documents"`
}

// Malformed is a record that could not be read.
type Malformed struct {
	Source string `json:"source"`
	Reason string `json:"reason"`
}

func newSummary(info detect.Info, files []dataset.File, cfg Config) *Summary {
	s := &Summary{
		Files:            len(files),
		Inputs:           make([]Input, len(files)),
		Categories:       map[detect.Category]int64{},
		TopRules:         []RuleCount{},
		MalformedSamples: []Malformed{},
		Engine:           info,
		rules:            map[string]int64{},
		topN:             cmp.Or(cfg.TopRules, 10),
		maxSamples:       cmp.Or(cfg.MalformedSamples, 20),
	}
	for i, f := range files {
		s.Inputs[i] = Input{Name: filepath.ToSlash(f.DisplayName()), Format: f.Format, Compression: f.Compression, Size: f.Size}
	}
	return s
}

func (s *Summary) add(r *detect.Result) {
	s.Documents++
	s.Bands.Add(string(r.Band))
	for i, f := range r.Findings {
		if !slices.ContainsFunc(r.Findings[:i], func(g detect.Finding) bool { return g.Category == f.Category }) {
			s.Categories[f.Category]++
		}
		if !slices.ContainsFunc(r.Findings[:i], func(g detect.Finding) bool { return g.Rule == f.Rule }) {
			s.rules[f.Rule]++
		}
	}
}

func (s *Summary) addMalformed(e *dataset.MalformedError) {
	s.Malformed++
	if len(s.MalformedSamples) < s.maxSamples {
		s.MalformedSamples = append(s.MalformedSamples, Malformed{Source: e.Source.String(), Reason: e.Reason})
	}
}

func (s *Summary) finish(elapsed time.Duration, hits int64) {
	s.CacheHits = hits
	for _, in := range s.Inputs {
		s.Bytes += in.Size
	}
	s.ElapsedSeconds = elapsed.Seconds()
	if sec := elapsed.Seconds(); sec > 0 {
		s.DocsPerSecond = float64(s.Documents) / sec
		s.MBPerSecond = float64(s.Bytes) / 1e6 / sec
	}
	for rule, n := range s.rules {
		s.TopRules = append(s.TopRules, RuleCount{Rule: rule, Documents: n})
	}
	slices.SortFunc(s.TopRules, func(a, b RuleCount) int {
		return cmp.Or(cmp.Compare(b.Documents, a.Documents), cmp.Compare(a.Rule, b.Rule))
	})
	if len(s.TopRules) > s.topN {
		s.TopRules = s.TopRules[:s.topN]
	}
}

// Predicate returns the MBOM predicate of the scan. The caller names the
// scanner version, the approver and the timestamp (see mbom.Timestamp).
func (s *Summary) Predicate(version, approver, timestamp string) mbom.Predicate {
	models := make([]mbom.Model, len(s.Engine.Models))
	for i, m := range s.Engine.Models {
		models[i] = mbom.Model{Name: m.Name, Digest: m.Digest}
	}
	inputs := make([]mbom.Input, len(s.Inputs))
	for i, in := range s.Inputs {
		inputs[i] = mbom.Input{Name: in.Name, Size: in.Size, SHA256: in.SHA256}
	}
	return mbom.Predicate{
		Scanner: mbom.Scanner{Name: mbom.ScannerName, Version: version},
		Engine: mbom.Engine{
			Engine:         s.Engine.Engine,
			RulesetVersion: s.Engine.RulesetVersion,
			RulesetDigest:  s.Engine.RulesetDigest,
			ConfigDigest:   s.Engine.ConfigDigest,
			Detectors:      slices.Clone(s.Engine.Detectors),
			Models:         models,
		},
		Thresholds: mbom.Thresholds{Elevated: s.Engine.Thresholds.Elevated, Quarantine: s.Engine.Thresholds.Quarantine},
		Inputs:     inputs,
		Documents:  s.Documents,
		Malformed:  s.Malformed,
		Merkle:     s.Merkle,
		Counts:     s.Bands,
		Results:    s.Results,
		Approver:   approver,
		Timestamp:  timestamp,
	}
}
