// Package classify is SentinelDF's learned classifier: a fastText-style
// model over hashed words, word bigrams, symbol runs and character n-grams
// of the engine's normalised text, with one hidden layer, INT8-quantised
// embeddings and a pure-Go inference path. Its Detector plugs into the
// engine through detect.Options.Extra.
//
// The model computes, for a window of text with feature bucket ids id_1..id_n
// and weights w_i = 1/n:
//
//	h     = Σ w_i · EmbScale[id_i] · Emb[id_i]      (Emb int8, per-row scale)
//	z     = ReLU(W1·h + B1)
//	p     = sigmoid(W2·z + B2)
//
// which is exactly the ONNX graph DequantizeLinear → Gather → Mul → ReduceSum
// → MatMul → Add → Relu → MatMul → Add → Sigmoid (see ARCH.md). The output is
// calibrated (Platt scaling on held-out sources, folded into W2 and B2).
package classify

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
)

// Model is a trained classifier. Its fields are the weights and the feature
// configuration; a Model is read-only once built and safe for concurrent use.
type Model struct {
	// Name names the model in findings and MBOMs, e.g. "sentineldf-injection".
	Name string
	// Buckets is the number of hash buckets (rows of Emb); bucket 0 is
	// padding and its row is zero.
	Buckets int
	// Dim is the embedding size D; Hidden the hidden layer size H.
	Dim, Hidden int
	// Salt seeds the feature hash.
	Salt uint64
	// MinN and MaxN are the character n-gram sizes, in bytes; both 0 means
	// the model uses no character n-grams (words, word bigrams and symbol
	// runs only).
	MinN, MaxN int
	// WindowTokens and WindowStride cut long texts into windows of tokens.
	WindowTokens, WindowStride int
	// MaxFeatures caps the features of one window.
	MaxFeatures int
	// Emb is the INT8 embedding matrix, Buckets×Dim, row-major; EmbScale the
	// per-row scale (zero point 0): the row's value is EmbScale[r]·Emb[r].
	Emb      []int8
	EmbScale []float32
	// W1 is Hidden×Dim, row-major; B1 has Hidden entries.
	W1, B1 []float32
	// W2 has Hidden entries; B2 is the output bias.
	W2 []float32
	B2 float32
	// Floor is the probability below which the Detector emits no finding.
	Floor float32

	h hasher
}

// Model file format, little endian:
//
//	magic "SDFCLS1\n"
//	uint32 len(name), name
//	uint32 Buckets, Dim, Hidden, MinN, MaxN, WindowTokens, WindowStride, MaxFeatures
//	uint64 Salt
//	float32 Floor, B2
//	float32 EmbScale[Buckets]
//	uint32 count of nonzero rows, then for each: uint32 row, int8 Emb[row][Dim]
//	float32 W1[Hidden*Dim], B1[Hidden], W2[Hidden]
var magic = []byte("SDFCLS1\n")

// Limits of a model file's sizes, against corrupt or hostile files.
const (
	maxBuckets = 1 << 24
	maxDim     = 1024
	maxNameLen = 256
)

// MarshalBinary encodes the model. Only nonzero embedding rows are stored.
func (m *Model) MarshalBinary() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Write(magic)
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	w(uint32(len(m.Name)))
	b.WriteString(m.Name)
	for _, v := range []int{m.Buckets, m.Dim, m.Hidden, m.MinN, m.MaxN, m.WindowTokens, m.WindowStride, m.MaxFeatures} {
		w(uint32(v))
	}
	w(m.Salt)
	w(m.Floor)
	w(m.B2)
	w(m.EmbScale)
	var rows []uint32
	for r := 0; r < m.Buckets; r++ {
		if !allZero(m.Emb[r*m.Dim : (r+1)*m.Dim]) {
			rows = append(rows, uint32(r))
		}
	}
	w(uint32(len(rows)))
	for _, r := range rows {
		w(r)
		w(m.Emb[int(r)*m.Dim : (int(r)+1)*m.Dim])
	}
	w(m.W1)
	w(m.B1)
	w(m.W2)
	return b.Bytes(), nil
}

func allZero(p []int8) bool {
	for _, v := range p {
		if v != 0 {
			return false
		}
	}
	return true
}

// UnmarshalBinary decodes a model written by MarshalBinary.
func (m *Model) UnmarshalBinary(data []byte) error {
	if !bytes.HasPrefix(data, magic) {
		return errors.New("classifier model: bad magic")
	}
	r := bytes.NewReader(data[len(magic):])
	var err error
	rd := func(v any) {
		if err == nil {
			err = binary.Read(r, binary.LittleEndian, v)
		}
	}
	var n uint32
	rd(&n)
	if err == nil && n > maxNameLen {
		return fmt.Errorf("classifier model: name of %d bytes", n)
	}
	name := make([]byte, n)
	if err == nil {
		_, err = io.ReadFull(r, name)
	}
	var hdr [8]uint32
	rd(&hdr)
	var out Model
	out.Name = string(name)
	out.Buckets, out.Dim, out.Hidden = int(hdr[0]), int(hdr[1]), int(hdr[2])
	out.MinN, out.MaxN, out.WindowTokens, out.WindowStride, out.MaxFeatures = int(hdr[3]), int(hdr[4]), int(hdr[5]), int(hdr[6]), int(hdr[7])
	rd(&out.Salt)
	rd(&out.Floor)
	rd(&out.B2)
	if err != nil {
		return fmt.Errorf("classifier model: header: %w", err)
	}
	if out.Buckets < 2 || out.Buckets > maxBuckets || out.Dim < 1 || out.Dim > maxDim || out.Hidden < 1 || out.Hidden > maxDim {
		return fmt.Errorf("classifier model: bad sizes %d×%d, hidden %d", out.Buckets, out.Dim, out.Hidden)
	}
	if int64(out.Buckets)*4 > int64(r.Len()) {
		return errors.New("classifier model: truncated")
	}
	out.EmbScale = make([]float32, out.Buckets)
	rd(out.EmbScale)
	rd(&n)
	if err != nil {
		return fmt.Errorf("classifier model: %w", err)
	}
	if int64(n) > int64(out.Buckets) || int64(n)*int64(4+out.Dim) > int64(r.Len()) {
		return errors.New("classifier model: truncated embedding")
	}
	out.Emb = make([]int8, out.Buckets*out.Dim)
	for i := uint32(0); i < n && err == nil; i++ {
		var row uint32
		rd(&row)
		if err == nil && int(row) >= out.Buckets {
			return fmt.Errorf("classifier model: row %d out of range", row)
		}
		rd(out.Emb[int(row)*out.Dim : (int(row)+1)*out.Dim])
	}
	out.W1 = make([]float32, out.Hidden*out.Dim)
	out.B1 = make([]float32, out.Hidden)
	out.W2 = make([]float32, out.Hidden)
	rd(out.W1)
	rd(out.B1)
	rd(out.W2)
	if err != nil {
		return fmt.Errorf("classifier model: %w", err)
	}
	if r.Len() != 0 {
		return fmt.Errorf("classifier model: %d trailing bytes", r.Len())
	}
	if err := out.validate(); err != nil {
		return err
	}
	out.h = newHasher(out.Buckets, out.Salt)
	*m = out
	return nil
}

// validate checks the model's sizes and values.
func (m *Model) validate() error {
	switch {
	case m.Buckets < 2 || m.Dim < 1 || m.Hidden < 1:
		return fmt.Errorf("classifier model: bad sizes %d×%d, hidden %d", m.Buckets, m.Dim, m.Hidden)
	case !(m.MinN == 0 && m.MaxN == 0) && (m.MinN < 1 || m.MaxN < m.MinN || m.MaxN > 8):
		return fmt.Errorf("classifier model: bad n-gram sizes %d–%d", m.MinN, m.MaxN)
	case m.WindowTokens < 1 || m.WindowStride < 1 || m.WindowStride > m.WindowTokens:
		return fmt.Errorf("classifier model: bad window %d/%d", m.WindowTokens, m.WindowStride)
	case m.MaxFeatures < 1:
		return errors.New("classifier model: MaxFeatures must be positive")
	case len(m.Emb) != m.Buckets*m.Dim || len(m.EmbScale) != m.Buckets:
		return errors.New("classifier model: embedding size mismatch")
	case len(m.W1) != m.Hidden*m.Dim || len(m.B1) != m.Hidden || len(m.W2) != m.Hidden:
		return errors.New("classifier model: layer size mismatch")
	}
	for _, v := range m.EmbScale {
		if !finite(v) || v < 0 {
			return errors.New("classifier model: bad embedding scale")
		}
	}
	for _, p := range [][]float32{m.W1, m.B1, m.W2, {m.B2, m.Floor}} {
		for _, v := range p {
			if !finite(v) {
				return errors.New("classifier model: non-finite weight")
			}
		}
	}
	return nil
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

// Digest is "sha256:" and the hex SHA-256 of the model's encoding.
func (m *Model) Digest() string {
	b, err := m.MarshalBinary()
	if err != nil {
		return ""
	}
	return digestOf(b)
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Features returns the bucket ids of each window of normalised text norm,
// and each window's byte range in norm. Every id is in [1, Buckets); each
// window's weights are 1/len(ids) (see Prob).
func (m *Model) Features(norm string) (ids [][]uint32, spans [][2]int) {
	s := m.scratch()
	s.toks = tokenize(norm, s.toks[:0])
	s.wins = windows(s.toks, m.WindowTokens, m.WindowStride, s.wins[:0])
	for _, w := range s.wins {
		f := m.h.appendFeatures(nil, norm, s.toks[w.first:w.last], m.MinN, m.MaxN, m.MaxFeatures)
		ids = append(ids, f)
		spans = append(spans, [2]int{w.start, w.end})
	}
	return ids, spans
}

// Prob is the model's probability for one window given its feature ids, with
// weights 1/len(ids). It is exactly the ONNX graph's output for inputs ids
// and weights (padding aside), up to float32 summation order.
func (m *Model) Prob(ids []uint32) float32 {
	var h [maxStackDim]float32
	var hv []float32
	if m.Dim <= maxStackDim {
		hv = h[:m.Dim]
	} else {
		hv = make([]float32, m.Dim)
	}
	return m.prob(ids, hv)
}

// maxStackDim is the largest Dim whose pooled vector lives on the stack.
const maxStackDim = 128

func (m *Model) prob(ids []uint32, h []float32) float32 {
	if len(ids) == 0 {
		return m.output(h) // h is zero
	}
	w := 1 / float32(len(ids))
	d := m.Dim
	for _, id := range ids {
		c := w * m.EmbScale[id]
		if c == 0 {
			continue
		}
		row := m.Emb[int(id)*d : int(id)*d+d]
		h := h[:len(row)]
		for k, q := range row {
			h[k] += c * float32(q)
		}
	}
	return m.output(h)
}

// output applies the hidden and output layers to the pooled vector h.
func (m *Model) output(h []float32) float32 {
	d := m.Dim
	logit := m.B2
	for j := 0; j < m.Hidden; j++ {
		row := m.W1[j*d : j*d+d]
		z := m.B1[j]
		for k, v := range row {
			z += v * h[k]
		}
		if z > 0 {
			logit += m.W2[j] * z
		}
	}
	return sigmoid(logit)
}

func sigmoid(x float32) float32 {
	return float32(1 / (1 + math.Exp(-float64(x))))
}
