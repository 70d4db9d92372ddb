package mbom

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// Proof is an RFC 6962 inclusion proof of one result in the Merkle tree.
type Proof struct {
	// ID is the document id (equal to Leaf.ID).
	ID string `json:"id"`
	// Index is the 0-based position of the leaf in the results.
	Index int64 `json:"index"`
	// TreeSize is the number of leaves.
	TreeSize int64 `json:"tree_size"`
	// Leaf is the committed result.
	Leaf Leaf `json:"leaf"`
	// LeafHash is the hex RFC 6962 leaf hash of Leaf.
	LeafHash string `json:"leaf_hash"`
	// Path is the audit path, leaf to root, as hex hashes.
	Path []string `json:"path"`
	// Root is the hex root the path leads to.
	Root string `json:"root"`
}

// Prove reads a results file (see SummarizeResults) in one streaming pass
// with O(log n) memory and returns the inclusion proof of the first result
// whose id is id. It returns an error wrapping ErrNotFound if there is none.
// The proof's Root is the root of the results as read: compare it with the
// statement's (VerifyProof does).
func Prove(results io.Reader, id string) (*Proof, error) {
	return prove(results, func(_ int64, l Leaf) bool { return l.ID == id }, fmt.Sprintf("id %q", id))
}

// ProveIndex is Prove for the result at a 0-based index.
func ProveIndex(results io.Reader, index int64) (*Proof, error) {
	return prove(results, func(i int64, _ Leaf) bool { return i == index }, fmt.Sprintf("index %d", index))
}

func prove(results io.Reader, match func(int64, Leaf) bool, what string) (*Proof, error) {
	rr := newResultsReader(results)
	var t Tree
	var p *Proof
	for {
		l, err := rr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if p == nil && match(t.Len(), l) {
			p = &Proof{ID: l.ID, Index: t.Len(), Leaf: l}
			t.startProof(t.Len())
		}
		t.Add(l)
	}
	if p == nil {
		return nil, fmt.Errorf("prove: %s: %w in results", what, ErrNotFound)
	}
	lh := p.Leaf.Hash()
	p.LeafHash = hex.EncodeToString(lh[:])
	p.TreeSize = t.Len()
	path := t.auditPath()
	p.Path = make([]string, len(path))
	for i, h := range path {
		p.Path[i] = hex.EncodeToString(h[:])
	}
	p.Root = t.RootHex()
	return p, nil
}

// VerifyProof checks that p proves its leaf is in the tree the statement
// signed: the leaf hashes to LeafHash, the path leads from it to the signed
// root, and the tree size is the signed leaf count. Failures wrap ErrInvalid.
func VerifyProof(s *Statement, p *Proof) error {
	if p.ID != p.Leaf.ID {
		return invalidf("proof: id %q differs from leaf id %q", p.ID, p.Leaf.ID)
	}
	lh := p.Leaf.Hash()
	if got := hex.EncodeToString(lh[:]); got != p.LeafHash {
		return invalidf("proof for %q: leaf hashes to %s, proof says %s", p.ID, got, p.LeafHash)
	}
	m := &s.Predicate.Merkle
	if p.TreeSize != m.Leaves {
		return invalidf("proof for %q: tree size %d, signed %d", p.ID, p.TreeSize, m.Leaves)
	}
	if p.Root != m.Root {
		return invalidf("proof for %q: root %s, signed %s", p.ID, p.Root, m.Root)
	}
	path := make([][32]byte, len(p.Path))
	for i, h := range p.Path {
		var err error
		if path[i], err = parseHash(h); err != nil {
			return invalidf("proof for %q: path[%d]: %v", p.ID, i, err)
		}
	}
	root, ok := rootFromPath(lh, p.Index, p.TreeSize, path)
	if !ok {
		return invalidf("proof for %q: path of length %d does not fit index %d in a tree of %d", p.ID, len(path), p.Index, p.TreeSize)
	}
	if got := hex.EncodeToString(root[:]); got != m.Root {
		return invalidf("proof for %q: path leads to root %s, signed %s", p.ID, got, m.Root)
	}
	return nil
}
