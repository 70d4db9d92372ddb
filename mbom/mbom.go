// Package mbom builds and verifies SentinelDF's MBOM: a signed, offline
// verifiable record of one scan.
//
// An MBOM is an in-toto Statement v1 whose predicate (type PredicateType)
// records the scanner, engine, thresholds, input files, per-band counts, the
// results file and a Merkle root over every result, wrapped in a DSSE envelope
// signed with Ed25519. Anyone holding the public key can check, with this
// package alone, that the envelope is authentic (Verify), that a results file
// is the one that was signed (VerifyResults), that a dataset on disk is the
// one that was scanned (VerifyDataset), and that a single document's verdict
// is included in the signed root (Prove, VerifyProof).
//
// The package depends only on the standard library so that it stays a small,
// auditable verifier.
package mbom

import (
	"errors"
	"fmt"
	"time"
)

// Fixed identifiers of the format.
const (
	// StatementType is the in-toto Statement v1 type.
	StatementType = "https://in-toto.io/Statement/v1"
	// PredicateType identifies SentinelDF's MBOM predicate, version 1.
	PredicateType = "https://sentineldf.dev/mbom/v1"
	// PayloadType is the DSSE payload type of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// MerkleAlgorithm names the tree construction: RFC 6962 hashing with
	// SHA-256 over leaves encoded by Leaf.MarshalBinary.
	MerkleAlgorithm = "rfc6962-sha256"
	// ScannerName is the name recorded in Predicate.Scanner.
	ScannerName = "sentineldf"
)

// Verdict bands, as written in the results file.
const (
	BandClean      = "clean"
	BandElevated   = "elevated"
	BandQuarantine = "quarantine"
)

// ErrInvalid is wrapped by every error that means "this does not match what
// was signed" (bad signature, tampered results, changed dataset, bad proof),
// as opposed to I/O or usage errors. Test with errors.Is.
var ErrInvalid = errors.New("invalid")

// invalidf returns an error wrapping ErrInvalid.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Input is one scanned input file.
type Input struct {
	// Name is the path as given to the scan (slash-separated).
	Name string `json:"name"`
	// Size is the file size in bytes.
	Size int64 `json:"size"`
	// SHA256 is the lowercase hex SHA-256 of the file's bytes.
	SHA256 string `json:"sha256"`
}

// Scanner identifies the program that produced the MBOM.
type Scanner struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Model is a model used by a detector, pinned by digest.
type Model struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// Engine records the detection engine configuration of the scan.
type Engine struct {
	// Engine is the engine version.
	Engine         string   `json:"engine"`
	RulesetVersion string   `json:"ruleset_version"`
	RulesetDigest  string   `json:"ruleset_digest"`
	ConfigDigest   string   `json:"config_digest"`
	Detectors      []string `json:"detectors"`
	Models         []Model  `json:"models"`
}

// Thresholds are the risk levels (0–100) at which the bands start.
type Thresholds struct {
	Elevated   int `json:"elevated"`
	Quarantine int `json:"quarantine"`
}

// Merkle records the Merkle tree over the results.
type Merkle struct {
	// Algorithm is MerkleAlgorithm.
	Algorithm string `json:"algorithm"`
	// Root is the lowercase hex tree root.
	Root string `json:"root"`
	// Leaves is the number of leaves (result lines).
	Leaves int64 `json:"leaves"`
}

// Counts are the number of results in each band.
type Counts struct {
	Clean      int64 `json:"clean"`
	Elevated   int64 `json:"elevated"`
	Quarantine int64 `json:"quarantine"`
}

// Add counts one result of the given band. It fails on an unknown band.
func (c *Counts) Add(band string) error {
	switch band {
	case BandClean:
		c.Clean++
	case BandElevated:
		c.Elevated++
	case BandQuarantine:
		c.Quarantine++
	default:
		return fmt.Errorf("unknown band %q", band)
	}
	return nil
}

// Total is the number of results counted.
func (c Counts) Total() int64 { return c.Clean + c.Elevated + c.Quarantine }

// Results names the results file of the scan.
type Results struct {
	// Name is the results file path as given to the scan (slash-separated).
	Name string `json:"name"`
	// SHA256 is the lowercase hex SHA-256 of the results file.
	SHA256 string `json:"sha256"`
}

// Predicate is the body of an MBOM (predicate type PredicateType).
//
// Invariants checked by Verify: Documents == Merkle.Leaves == Counts.Total().
// Malformed counts input records that could not be parsed and so have no
// result line.
type Predicate struct {
	Scanner    Scanner    `json:"scanner"`
	Engine     Engine     `json:"engine"`
	Thresholds Thresholds `json:"thresholds"`
	Inputs     []Input    `json:"inputs"`
	Documents  int64      `json:"documents"`
	Malformed  int64      `json:"malformed"`
	Merkle     Merkle     `json:"merkle"`
	Counts     Counts     `json:"counts"`
	Results    Results    `json:"results"`
	// Approver is the e-mail address of the person who approved the scan.
	Approver string `json:"approver"`
	// Timestamp is RFC 3339 in UTC (see Timestamp). The caller sets it, so
	// that the same scan at the same timestamp signs to identical bytes.
	Timestamp string `json:"timestamp"`
}

// Subject is an in-toto subject: a named artifact and its digests.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// Statement is an in-toto Statement v1 carrying an MBOM predicate.
type Statement struct {
	Type          string    `json:"_type"`
	Subject       []Subject `json:"subject"`
	PredicateType string    `json:"predicateType"`
	Predicate     Predicate `json:"predicate"`
}

// Timestamp formats t as the MBOM timestamp: RFC 3339, UTC, whole seconds.
func Timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// NewStatement wraps p in a statement. The subjects are the results file
// followed by each input, in order. Nil slices in p are replaced by empty ones
// and empty Scanner.Name and Merkle.Algorithm are filled in, so the encoding
// is stable.
func NewStatement(p Predicate) Statement {
	if p.Scanner.Name == "" {
		p.Scanner.Name = ScannerName
	}
	if p.Merkle.Algorithm == "" {
		p.Merkle.Algorithm = MerkleAlgorithm
	}
	if p.Engine.Detectors == nil {
		p.Engine.Detectors = []string{}
	}
	if p.Engine.Models == nil {
		p.Engine.Models = []Model{}
	}
	if p.Inputs == nil {
		p.Inputs = []Input{}
	}
	subjects := make([]Subject, 0, 1+len(p.Inputs))
	subjects = append(subjects, Subject{Name: p.Results.Name, Digest: map[string]string{"sha256": p.Results.SHA256}})
	for _, in := range p.Inputs {
		subjects = append(subjects, Subject{Name: in.Name, Digest: map[string]string{"sha256": in.SHA256}})
	}
	return Statement{
		Type:          StatementType,
		Subject:       subjects,
		PredicateType: PredicateType,
		Predicate:     p,
	}
}
