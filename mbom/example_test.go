package mbom_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"strings"

	"github.com/sentineldf/sentineldf/mbom"
)

// Example shows what a scan does to sign an MBOM, and what a verifier does.
func Example() {
	// While scanning: add every result, in the order written to the results
	// file, to a Tree and count bands.
	results := `{"id":"doc-1","sha256":"` + strings.Repeat("a", 64) + `","band":"clean","risk":4,"findings":[]}
{"id":"doc-2","sha256":"` + strings.Repeat("b", 64) + `","band":"quarantine","risk":91,"findings":[]}
`
	var tree mbom.Tree
	var counts mbom.Counts
	for _, l := range []mbom.Leaf{
		{ID: "doc-1", SHA256: strings.Repeat("a", 64), Band: mbom.BandClean, Risk: 4},
		{ID: "doc-2", SHA256: strings.Repeat("b", 64), Band: mbom.BandQuarantine, Risk: 91},
	} {
		tree.Add(l)
		_ = counts.Add(l.Band)
	}
	_, resultsSHA, _ := mbom.DigestReader(strings.NewReader(results))

	// After the scan: build the statement and sign it.
	st := mbom.NewStatement(mbom.Predicate{
		Scanner:    mbom.Scanner{Version: "1.0.0"},
		Thresholds: mbom.Thresholds{Elevated: 50, Quarantine: 70},
		Inputs:     []mbom.Input{{Name: "train.jsonl", Size: 120, SHA256: strings.Repeat("c", 64)}},
		Documents:  tree.Len(),
		Merkle:     mbom.Merkle{Root: tree.RootHex(), Leaves: tree.Len()},
		Counts:     counts,
		Results:    mbom.Results{Name: "results.jsonl", SHA256: resultsSHA},
		Approver:   "alice@example.com",
		Timestamp:  "2025-01-01T00:00:00Z",
	})
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)) // use mbom.LoadPrivateKey in real code
	envelope, err := mbom.Sign(st, key)
	if err != nil {
		panic(err)
	}

	// Anyone with the public key: check the envelope, the results file and
	// one document's inclusion proof.
	s, err := mbom.Verify(envelope, key.Public().(ed25519.PublicKey))
	if err != nil {
		panic(err)
	}
	fmt.Println("results:", mbom.VerifyResults(s, strings.NewReader(results)))
	proof, _ := mbom.Prove(bytes.NewReader([]byte(results)), "doc-2")
	fmt.Println("proof:", mbom.VerifyProof(s, proof), proof.Leaf.Band)
	// Output:
	// results: <nil>
	// proof: <nil> quarantine
}
