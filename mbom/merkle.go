package mbom

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// Leaf is one result as committed to by the Merkle tree: the document id, the
// hex SHA-256 of its scanned text, its band and its risk, exactly as written
// in the results file.
type Leaf struct {
	ID     string `json:"id"`
	SHA256 string `json:"sha256"`
	Band   string `json:"band"`
	Risk   int    `json:"risk"`
}

// leafTag starts every encoded leaf, so that a future encoding can be told apart.
const leafTag = "sentineldf.mbom.leaf.v1"

// AppendBinary appends the canonical leaf encoding to b and returns it:
//
//	u64be(len(tag)) tag  u64be(len(ID)) ID  u64be(len(SHA256)) SHA256
//	u64be(len(Band)) Band  i64be(Risk)
//
// with tag = "sentineldf.mbom.leaf.v1". Every variable-length field is
// length-prefixed, so two different leaves never encode to the same bytes,
// whatever characters their ids contain. Strings are UTF-8; invalid bytes
// are encoded as U+FFFD (see appendField).
func (l Leaf) AppendBinary(b []byte) ([]byte, error) {
	b = appendField(b, leafTag)
	b = appendField(b, l.ID)
	b = appendField(b, l.SHA256)
	b = appendField(b, l.Band)
	b = binary.BigEndian.AppendUint64(b, uint64(int64(l.Risk)))
	return b, nil
}

// MarshalBinary returns the canonical leaf encoding (see AppendBinary).
func (l Leaf) MarshalBinary() ([]byte, error) {
	return l.AppendBinary(make([]byte, 0, l.encodedLen()))
}

func (l Leaf) encodedLen() int {
	// Replacing an invalid byte with U+FFFD can triple its length.
	return 8*5 + len(leafTag) + 3*(len(l.ID)+len(l.SHA256)+len(l.Band))
}

// appendField appends s length-prefixed. Invalid UTF-8 is first replaced,
// byte by byte, with U+FFFD, as encoding/json does when it writes or reads a
// string, so a leaf hashes the same before and after a trip through the
// results file.
func appendField(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = jsonUTF8(s)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// jsonUTF8 replaces each byte of invalid UTF-8 in s with U+FFFD.
func jsonUTF8(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.WriteString(s[i : i+size])
		}
		i += size
	}
	return sb.String()
}

// Hash returns the RFC 6962 leaf hash SHA-256(0x00 || encoding).
func (l Leaf) Hash() [32]byte {
	var buf [256]byte
	b, _ := l.AppendBinary(append(buf[:0], 0x00))
	return sha256.Sum256(b)
}

// hashLeafBytes is the RFC 6962 leaf hash of raw leaf bytes.
func hashLeafBytes(data []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0x00})
	h.Write(data)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// hashNode is the RFC 6962 interior node hash SHA-256(0x01 || left || right).
func hashNode(left, right [32]byte) [32]byte {
	var buf [65]byte
	buf[0] = 0x01
	copy(buf[1:33], left[:])
	copy(buf[33:], right[:])
	return sha256.Sum256(buf[:])
}

// emptyRoot is the root of the empty tree: SHA-256 of the empty string.
var emptyRoot = sha256.Sum256(nil)

// Tree computes an RFC 6962 Merkle tree root incrementally with O(log n)
// memory: it keeps only the roots of the perfect subtrees that make up the
// leaves added so far (one per set bit of the leaf count). The zero value is
// an empty tree. A Tree is not safe for concurrent use.
type Tree struct {
	n     int64
	stack [][32]byte // perfect subtree roots, largest (leftmost) first
	buf   []byte     // leaf encoding scratch space

	// Proof tracking (see tracker): when track is set, siblings of the leaf
	// at index target within complete aligned subtrees are recorded by level.
	track    bool
	target   int64
	siblings [][32]byte
}

// Add appends a leaf.
func (t *Tree) Add(l Leaf) {
	if need := 1 + l.encodedLen(); cap(t.buf) < need {
		t.buf = make([]byte, 0, max(need, 256))
	}
	b, _ := l.AppendBinary(append(t.buf[:0], 0x00))
	t.buf = b[:0]
	t.addHash(sha256.Sum256(b))
}

// addHash appends a leaf by its leaf hash.
func (t *Tree) addHash(h [32]byte) {
	if t.stack == nil {
		t.stack = make([][32]byte, 0, 64)
	}
	idx := t.n
	// Each trailing one bit of n is a complete subtree on the stack that the
	// new leaf's subtree now completes into one twice its size.
	for level := 0; t.n>>level&1 == 1; level++ {
		left := t.stack[len(t.stack)-1]
		t.stack = t.stack[:len(t.stack)-1]
		if t.track {
			// Merging left block [idx-2^(level+1)+2^level... ) with right block
			// ending at idx; both are aligned blocks of size 2^level.
			start := (idx >> level) << level // start of right block
			rightBlock := start >> level
			targetBlock := t.target >> level
			if targetBlock == rightBlock {
				t.siblings = append(t.siblings, left)
			} else if targetBlock == rightBlock-1 {
				t.siblings = append(t.siblings, h)
			}
		}
		h = hashNode(left, h)
	}
	t.stack = append(t.stack, h)
	t.n++
}

// Len is the number of leaves added.
func (t *Tree) Len() int64 { return t.n }

// Root returns the tree root. The root of an empty tree is the SHA-256 of the
// empty string (RFC 6962).
func (t *Tree) Root() [32]byte {
	if len(t.stack) == 0 {
		return emptyRoot
	}
	h := t.stack[len(t.stack)-1]
	for i := len(t.stack) - 2; i >= 0; i-- {
		h = hashNode(t.stack[i], h)
	}
	return h
}

// RootHex returns Root as lowercase hex.
func (t *Tree) RootHex() string {
	r := t.Root()
	return hex.EncodeToString(r[:])
}

// startProof makes the tree record the audit path of the leaf at index
// target. It must be called before that leaf is added.
func (t *Tree) startProof(target int64) {
	t.track = true
	t.target = target
	t.siblings = t.siblings[:0]
}

// auditPath returns the RFC 6962 audit path, leaf to root, of the tracked
// leaf in the tree as it is now. The tracked leaf must have been added.
func (t *Tree) auditPath() [][32]byte {
	m, n := t.target, t.n
	// The tree's perfect subtrees, largest first, have sizes equal to the set
	// bits of n from high to low; find the one (i, of the given size) that
	// holds m.
	var start, size int64
	i := 0
	for b := 63 - bits.LeadingZeros64(uint64(n)); b >= 0; b-- {
		if n>>b&1 == 0 {
			continue
		}
		size = int64(1) << b
		if m < start+size {
			break
		}
		start += size
		i++
	}
	depth := bits.TrailingZeros64(uint64(size))
	path := make([][32]byte, 0, depth+len(t.stack))
	path = append(path, t.siblings[:depth]...)
	if i < len(t.stack)-1 {
		h := t.stack[len(t.stack)-1]
		for j := len(t.stack) - 2; j > i; j-- {
			h = hashNode(t.stack[j], h)
		}
		path = append(path, h)
	}
	for j := i - 1; j >= 0; j-- {
		path = append(path, t.stack[j])
	}
	return path
}

// rootFromPath recomputes a tree root from a leaf hash, its index, the tree
// size and its audit path (RFC 9162, section 2.1.3.2). ok is false when the
// path has the wrong shape for index and size.
func rootFromPath(leaf [32]byte, index, size int64, path [][32]byte) (root [32]byte, ok bool) {
	if index < 0 || index >= size {
		return root, false
	}
	fn, sn := index, size-1
	r := leaf
	for _, p := range path {
		if sn == 0 {
			return root, false
		}
		if fn&1 == 1 || fn == sn {
			r = hashNode(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = hashNode(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return root, false
	}
	return r, true
}
