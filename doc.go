// Package sentineldf is the root of SentinelDF, a data firewall for LLM
// training data: it scans datasets for poisoned or malicious samples (prompt
// injection, jailbreaks, hidden Unicode, HTML/JS payloads, encoded payloads,
// backdoor triggers, leaked secrets), explains each finding, splits the data
// into clean and quarantined parts, and signs a verifiable record of the scan
// (an MBOM).
//
// The root package is reserved for the domain types and the seams that have
// more than one implementation (stores, blob stores, caches); it imports
// nothing else of this module. The work is done in its subpackages:
//
//   - detect: the detection engine, pure and self-contained
//   - dataset: streaming readers and writers for JSONL, JSON, CSV, Parquet and text
//   - mbom: signed scan records (Merkle tree, DSSE envelope, Ed25519)
//   - scan: the pipeline that streams datasets through the engine
//   - eval: metrics for measuring detectors against labelled data
//   - cmd/sentineldf: the command-line tool
//
// See README.md for usage and docs/ARCHITECTURE.md for the dependency rule
// that layout_test.go enforces.
package sentineldf
