package detect

//go:generate go run ./gen/charlm -corpus corpus/benign.jsonl.gz -out charlm.bin -quantile 0.995

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"slices"
	"sync"
	"unicode"
	"unicode/utf8"
)

// The character language model behind the adversarial-suffix detector.
//
// Text is read as a sequence of symbols: printable ASCII characters map to
// themselves, newlines to a newline symbol, other whitespace and control
// characters to space, typographic quotes, dashes and ellipses to their
// ASCII forms, accented Latin letters to one symbol, letters of other
// scripts to another and everything else to a third. The model is an
// interpolated Kneser–Ney model over those symbols stored in backoff form:
// one open-addressing hash table holds, for every n-gram kept, a 16-bit
// fingerprint, the quantised -log2 probability of its last symbol given the
// others, and the quantised -log2 backoff weight of the n-gram used as a
// context. Costs are kept in tenths of a bit so scoring is integer math.

//go:embed charlm.bin
var charLMBin []byte

// charLMName is the model's name as recorded in engine Info and MBOMs.
const charLMName = "charlm-en"

// Symbol classes beyond printable ASCII (which maps to c-32).
const (
	lmSymSpace    = 0
	lmSymNewline  = 95
	lmSymLatinExt = 96
	lmSymLetter   = 97
	lmSymOther    = 98
	lmNumSyms     = 99
)

// lmMaxOrder is the longest n-gram a model may use: five 7-bit symbols
// and the order fit a 64-bit key.
const lmMaxOrder = 6

// lmASCIISym maps an ASCII byte to its symbol.
var lmASCIISym = func() (t [128]uint8) {
	for c := range 128 {
		switch {
		case c == '\n':
			t[c] = lmSymNewline
		case c >= 32 && c < 127:
			t[c] = uint8(c - 32)
		default:
			t[c] = lmSymSpace
		}
	}
	return t
}()

// lmRuneSym maps a non-ASCII rune to its symbol.
func lmRuneSym(r rune) uint8 {
	switch r {
	case '\u00a0', '\u2002', '\u2003', '\u2009', '\u200a', '\u202f', '\u3000':
		return lmSymSpace
	case '\u2018', '\u2019', '\u201a', '\u2032':
		return '\'' - 32
	case '\u201c', '\u201d', '\u201e', '\u2033', '\u00ab', '\u00bb':
		return '"' - 32
	case '\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2015', '\u2212':
		return '-' - 32
	case '\u2026', '\u00b7', '\u2022':
		return '.' - 32
	case '\u2028', '\u2029', '\u0085':
		return lmSymNewline
	}
	switch {
	case r >= 0x00c0 && r <= 0x024f && r != 0x00d7 && r != 0x00f7, r >= 0x1e00 && r <= 0x1eff:
		return lmSymLatinExt
	case unicode.IsLetter(r):
		return lmSymLetter
	case unicode.IsSpace(r):
		return lmSymSpace
	}
	return lmSymOther
}

// lmNextSym returns the symbol of the character at s[i] and its length in bytes.
func lmNextSym(s string, i int) (uint8, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return lmASCIISym[c], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return lmRuneSym(r), n
}

// CharLMOptions configure TrainCharLM.
type CharLMOptions struct {
	// Order is the n-gram order (2–6); 0 means 5.
	Order int
	// MinCount drops highest-order n-grams seen fewer times; 0 means 2.
	MinCount int
	// Load is the hash table's target load factor; 0 means 0.7.
	Load float64
}

// AdversarialCalibration holds the thresholds of the adversarial-suffix
// detector, chosen on held-out benign text and stored with the model.
type AdversarialCalibration struct {
	// Abs is the window score (mean cost in bits per symbol plus a weighted
	// share of odd tokens) above which a window is surprising.
	Abs float32
	// Mean is the least mean cost (bits per symbol) of a flagged window.
	Mean float32
	// Rel is how far (bits per symbol) a window's cost must exceed its
	// document's baseline.
	Rel float32
	// Salad is the minimum token-salad score of a window.
	Salad float32
}

// CharLM is a character n-gram language model. It is immutable once built
// and safe for concurrent use.
type CharLM struct {
	order int
	slots []uint32 // fingerprint<<16 | cost<<8 | backoff; 0 is empty
	uni   [lmNumSyms]uint8
	calib AdversarialCalibration
}

// Order returns the model's n-gram order.
func (m *CharLM) Order() int { return m.order }

// Entries returns how many n-grams the model stores.
func (m *CharLM) Entries() int {
	n := 0
	for _, e := range m.slots {
		if e != 0 {
			n++
		}
	}
	return n
}

// Calibration returns the detector thresholds stored with the model.
func (m *CharLM) Calibration() AdversarialCalibration { return m.calib }

// SetCalibration replaces the detector thresholds stored with the model.
func (m *CharLM) SetCalibration(c AdversarialCalibration) { m.calib = c }

// lmKey packs an n-gram (its last symbol in the low bits) and its order.
func lmKey(hist uint64, n int) uint64 {
	return hist&(1<<(7*n)-1) | uint64(n)<<42
}

// lmMix is the SplitMix64 finaliser.
func lmMix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// lmSlot returns a key's home slot and nonzero fingerprint.
func lmSlot(key uint64, nslots int) (int, uint32) {
	h := lmMix(key)
	fp := uint32(h >> 48)
	if fp == 0 {
		fp = 1
	}
	return int((uint64(uint32(h)) * uint64(nslots)) >> 32), fp
}

// lookup returns the entry of key, or 0.
func (m *CharLM) lookup(key uint64) uint32 {
	i, fp := lmSlot(key, len(m.slots))
	for {
		e := m.slots[i]
		if e == 0 {
			return 0
		}
		if e>>16 == fp {
			return e
		}
		i++
		if i == len(m.slots) {
			i = 0
		}
	}
}

// cost returns -log2 P(last symbol | previous order-1 symbols) of the
// n-gram ending in hist's low bits, in tenths of a bit.
func (m *CharLM) cost(hist uint64) int {
	c := 0
	for n := m.order; n >= 2; n-- {
		if e := m.lookup(lmKey(hist, n)); e != 0 {
			return c + int(e>>8&0xff)
		}
		if e := m.lookup(lmKey(hist>>7, n-1)); e != 0 {
			c += int(e & 0xff)
		}
	}
	return c + int(m.uni[hist&0x7f])
}

// lmPadHist is the history before the first symbol of a text: spaces.
const lmPadHist = 0

// Costs appends to dst the cost of every symbol of s in tenths of a bit,
// and to offs the byte offset in s where each symbol starts.
func (m *CharLM) Costs(s string, dst []uint16, offs []int32) ([]uint16, []int32) {
	hist := uint64(lmPadHist)
	for i := 0; i < len(s); {
		sym, n := lmNextSym(s, i)
		hist = hist<<7 | uint64(sym)
		c := m.cost(hist)
		if c > math.MaxUint16 {
			c = math.MaxUint16
		}
		dst = append(dst, uint16(c))
		offs = append(offs, int32(i))
		i += n
	}
	return dst, offs
}

// BitsPerSymbol returns the mean cost of s's symbols in bits, and how many
// symbols s has.
func (m *CharLM) BitsPerSymbol(s string) (float64, int) {
	hist := uint64(lmPadHist)
	total, n := 0, 0
	for i := 0; i < len(s); {
		sym, sz := lmNextSym(s, i)
		hist = hist<<7 | uint64(sym)
		total += m.cost(hist)
		n++
		i += sz
	}
	if n == 0 {
		return 0, 0
	}
	return float64(total) / 10 / float64(n), n
}

// lmSymbolize appends the symbols of s to dst.
func lmSymbolize(dst []uint8, s string) []uint8 {
	for i := 0; i < len(s); {
		sym, n := lmNextSym(s, i)
		dst = append(dst, sym)
		i += n
	}
	return dst
}

// lmQuant quantises a cost in bits to tenths of a bit in a byte.
func lmQuant(bits float64) uint32 {
	q := math.Round(bits * 10)
	if q < 0 {
		q = 0
	}
	if q > 255 {
		q = 255
	}
	return uint32(q)
}

// TrainCharLM trains an interpolated Kneser–Ney character model on docs. The
// result depends only on docs and o, not on the order of map iteration.
func TrainCharLM(docs []string, o CharLMOptions) (*CharLM, error) {
	if o.Order == 0 {
		o.Order = 5
	}
	if o.MinCount == 0 {
		o.MinCount = 2
	}
	if o.Load == 0 {
		o.Load = 0.7
	}
	N := o.Order
	if N < 2 || N > lmMaxOrder {
		return nil, fmt.Errorf("charlm: order %d out of range 2–%d", N, lmMaxOrder)
	}
	if o.Load <= 0 || o.Load >= 1 {
		return nil, fmt.Errorf("charlm: load %v out of range (0,1)", o.Load)
	}
	// counts[n] maps an n-gram key to its count: raw counts at the highest
	// order, continuation counts (distinct left extensions) below it.
	counts := make([]map[uint64]int, N+1)
	counts[N] = map[uint64]int{}
	var syms []uint8
	for _, d := range docs {
		syms = lmSymbolize(syms[:0], d)
		hist := uint64(lmPadHist)
		for _, s := range syms {
			hist = hist<<7 | uint64(s)
			counts[N][lmKey(hist, N)]++
		}
	}
	if len(counts[N]) == 0 {
		return nil, errors.New("charlm: empty corpus")
	}
	for n := N - 1; n >= 1; n-- {
		counts[n] = map[uint64]int{}
		for k := range counts[n+1] {
			counts[n][lmKey(k, n)]++
		}
	}
	// Per order: discount, and per context its total and distinct
	// continuations.
	type ctxStat struct{ total, distinct int }
	disc := make([]float64, N+1)
	ctx := make([]map[uint64]ctxStat, N+1)
	for n := 1; n <= N; n++ {
		n1, n2 := 0, 0
		ctx[n] = map[uint64]ctxStat{}
		for k, c := range counts[n] {
			switch c {
			case 1:
				n1++
			case 2:
				n2++
			}
			h := k & (1<<(7*n) - 1) >> 7 // the context, as an (n-1)-gram
			st := ctx[n][h]
			st.total += c
			st.distinct++
			ctx[n][h] = st
		}
		disc[n] = 0.75
		if n1 > 0 && n2 > 0 {
			disc[n] = float64(n1) / float64(n1+2*n2)
		}
	}
	// prob[n] is the interpolated probability of each n-gram kept.
	prob := make([]map[uint64]float64, N+1)
	gamma := func(n int, h uint64) float64 {
		st := ctx[n][h]
		if st.total == 0 {
			return 1
		}
		return disc[n] * float64(st.distinct) / float64(st.total)
	}
	var pLower func(n int, key uint64) float64
	pLower = func(n int, key uint64) float64 {
		if n == 0 {
			return 1.0 / lmNumSyms
		}
		k := lmKey(key, n)
		if p, ok := prob[n][k]; ok {
			return p
		}
		return gamma(n, k&(1<<(7*n)-1)>>7) * pLower(n-1, key)
	}
	for n := 1; n <= N; n++ {
		prob[n] = make(map[uint64]float64, len(counts[n]))
		for k, c := range counts[n] {
			h := k & (1<<(7*n) - 1) >> 7
			st := ctx[n][h]
			p := math.Max(float64(c)-disc[n], 0)/float64(st.total) + gamma(n, h)*pLower(n-1, k)
			prob[n][k] = p
		}
	}
	m := &CharLM{order: N}
	for s := range uint64(lmNumSyms) {
		m.uni[s] = uint8(lmQuant(-math.Log2(pLower(1, s))))
	}
	// Keep every n-gram below the highest order and the frequent ones at it;
	// insert in sorted key order so the table is deterministic.
	var keys []uint64
	for n := 1; n <= N; n++ {
		for k, c := range counts[n] {
			if n == N && c < o.MinCount {
				continue
			}
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	m.slots = make([]uint32, int(float64(len(keys))/o.Load)+1)
	for _, k := range keys {
		n := int(k >> 42)
		e := lmQuant(-math.Log2(prob[n][k])) << 8
		if n < N {
			e |= lmQuant(-math.Log2(gamma(n+1, k&(1<<(7*n)-1))))
		}
		// A key whose fingerprint already occurs on its probe path would be
		// shadowed by the earlier key; it is dropped (rare: 16-bit
		// fingerprints).
		if m.lookup(k) != 0 {
			continue
		}
		i, fp := lmSlot(k, len(m.slots))
		for m.slots[i] != 0 {
			i = (i + 1) % len(m.slots)
		}
		m.slots[i] = fp<<16 | e
	}
	return m, nil
}

// charLMMagic starts the binary encoding of a CharLM.
const charLMMagic = "SDFCLM\x00\x01"

// MarshalBinary encodes the model: magic, order, symbol count, slot count,
// calibration (Abs, Mean, Rel, Salad as little-endian float32s), unigram costs, slots
// (little-endian uint32s).
func (m *CharLM) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 32+lmNumSyms+4*len(m.slots))
	b = append(b, charLMMagic...)
	b = append(b, uint8(m.order), lmNumSyms, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.slots)))
	for _, f := range []float32{m.calib.Abs, m.calib.Mean, m.calib.Rel, m.calib.Salad} {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	b = append(b, m.uni[:]...)
	for _, e := range m.slots {
		b = binary.LittleEndian.AppendUint32(b, e)
	}
	return b, nil
}

// UnmarshalBinary decodes a model encoded by MarshalBinary.
func (m *CharLM) UnmarshalBinary(b []byte) error {
	const hdr = len(charLMMagic) + 4 + 4 + 16
	if len(b) < hdr+lmNumSyms || string(b[:len(charLMMagic)]) != charLMMagic {
		return errors.New("charlm: not a model file")
	}
	p := b[len(charLMMagic):]
	order, syms := int(p[0]), int(p[1])
	if order < 2 || order > lmMaxOrder || syms != lmNumSyms {
		return fmt.Errorf("charlm: unsupported model (order %d, %d symbols)", order, syms)
	}
	nslots := int(binary.LittleEndian.Uint32(p[4:]))
	f := func(i int) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(p[8+4*i:])) }
	calib := AdversarialCalibration{Abs: f(0), Mean: f(1), Rel: f(2), Salad: f(3)}
	p = p[24:]
	if nslots < 1 || len(p) != lmNumSyms+4*nslots {
		return fmt.Errorf("charlm: truncated model (%d bytes for %d slots)", len(p), nslots)
	}
	// A table with no empty slot would make lookups of absent keys loop.
	slots := make([]uint32, nslots)
	empty := false
	for i := range slots {
		slots[i] = binary.LittleEndian.Uint32(p[lmNumSyms+4*i:])
		empty = empty || slots[i] == 0
	}
	if !empty {
		return errors.New("charlm: hash table has no empty slot")
	}
	m.order = order
	copy(m.uni[:], p[:lmNumSyms])
	m.slots = slots
	m.calib = calib
	return nil
}

// embeddedCharLM decodes the embedded model once.
var embeddedCharLM = sync.OnceValues(func() (*CharLM, error) {
	m := &CharLM{}
	if err := m.UnmarshalBinary(charLMBin); err != nil {
		return nil, fmt.Errorf("embedded %s: %w", charLMName, err)
	}
	return m, nil
})

// EmbeddedCharLM returns the model shipped with the engine.
func EmbeddedCharLM() (*CharLM, error) { return embeddedCharLM() }

// charLMModel names the embedded model with the digest of its file.
func charLMModel() Model {
	sum := sha256.Sum256(charLMBin)
	return Model{Name: charLMName, Digest: "sha256:" + hex.EncodeToString(sum[:])}
}

// CorpusDoc is one document of the character model's training corpus.
type CorpusDoc struct {
	Source string `json:"source"`
	Text   string `json:"text"`
}

// ReadCharLMCorpus reads a gzip-compressed JSON-lines corpus of CorpusDocs.
func ReadCharLMCorpus(r io.Reader) ([]CorpusDoc, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	defer zr.Close()
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var docs []CorpusDoc
	for line := 1; sc.Scan(); line++ {
		var d CorpusDoc
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			return nil, fmt.Errorf("corpus line %d: %w", line, err)
		}
		docs = append(docs, d)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	return docs, nil
}

// The parts of the corpus CharLMSplit assigns texts to.
const (
	SplitTrain = "train" // trains the model (80%)
	SplitCalib = "calib" // chooses the detector's thresholds (10%)
	SplitTest  = "test"  // measures them; never tuned on (10%)
)

// CharLMSplit assigns a corpus text to SplitTrain, SplitCalib or SplitTest
// by the FNV-1a hash of its text, so the split is deterministic.
func CharLMSplit(text string) string {
	h := fnv.New64a()
	io.WriteString(h, text)
	switch h.Sum64() % 10 {
	case 0:
		return SplitCalib
	case 1:
		return SplitTest
	}
	return SplitTrain
}
