package classify

import (
	"unicode"
	"unicode/utf8"
)

// Feature types, each hashed with its own salt so that the word "ign" and
// the character trigram "ign" land in different buckets.
const (
	featWord   = 1 // a word: a run of letters and digits
	featBigram = 2 // two consecutive words
	featSymbol = 3 // a run of punctuation and symbols, e.g. "</", "{{", "###"
	featChar   = 4 // character n-grams; the salt is featChar + n
)

// Tokenisation limits.
const (
	// maxNgramWord is how many bytes of a word its character n-grams cover;
	// longer words (blobs, URLs) add n-grams of their first bytes only.
	maxNgramWord = 24
	// maxSymbolRun is how many bytes of a symbol run are hashed.
	maxSymbolRun = 8
)

// fnv-1a 64 constants.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// token is a word or a symbol run of normalised text, as a byte range.
type token struct {
	start, end int32
	word       bool
}

// tokenize splits normalised text into words (runs of letters, digits and
// marks) and symbol runs (runs of anything else but white space).
func tokenize(s string, dst []token) []token {
	i := 0
	for i < len(s) {
		c := s[i]
		if c == ' ' || c == '\n' || c == '\t' || c == '\r' {
			i++
			continue
		}
		start := i
		w := isWordAt(s, i)
		for i < len(s) {
			c := s[i]
			if c == ' ' || c == '\n' || c == '\t' || c == '\r' {
				break
			}
			if c < utf8.RuneSelf {
				if asciiWord[c] != w {
					break
				}
				i++
				continue
			}
			r, size := utf8.DecodeRuneInString(s[i:])
			if unicode.IsSpace(r) {
				break
			}
			if isWordRune(r) != w {
				break
			}
			i += size
		}
		dst = append(dst, token{start: int32(start), end: int32(i), word: w})
	}
	return dst
}

// asciiWord marks the ASCII letters and digits.
var asciiWord = func() (t [utf8.RuneSelf]bool) {
	for c := 0; c < utf8.RuneSelf; c++ {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	return t
}()

func isWordAt(s string, i int) bool {
	if s[i] < utf8.RuneSelf {
		return asciiWord[s[i]]
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return isWordRune(r)
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

// hasher hashes features into buckets 1..Buckets-1 (0 is padding).
type hasher struct {
	buckets uint64
	seeds   [featChar + 8]uint64
}

func newHasher(buckets int, salt uint64) hasher {
	h := hasher{buckets: uint64(buckets)}
	for i := range h.seeds {
		x := uint64(fnvOffset)
		v := salt*0x9E3779B97F4A7C15 + uint64(i)
		for k := 0; k < 8; k++ {
			x ^= v & 0xff
			x *= fnvPrime
			v >>= 8
		}
		h.seeds[i] = x
	}
	return h
}

func (h *hasher) bucket(x uint64) uint32 {
	// Finalise (FNV's low bits mix poorly) and reduce.
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return uint32(1 + x%(h.buckets-1))
}

func fnvString(x uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		x ^= uint64(s[i])
		x *= fnvPrime
	}
	return x
}

// bigram is the bucket of the word bigram (prev, cur), as appendFeatures
// hashes it.
func (h *hasher) bigram(prev, cur string) uint32 {
	x := h.seeds[featBigram] ^ fnvString(h.seeds[featWord], prev)
	x *= fnvPrime
	return h.bucket(fnvString(x, cur))
}

// appendFeatures appends the bucket ids of the tokens toks of s: every word,
// every word bigram, every symbol run, and the character n-grams (MinN to
// MaxN bytes) of every word wrapped in boundary markers ("<word>"); maxN 0
// means no character n-grams.
// Features repeat as often as they occur; the model averages them.
func (h *hasher) appendFeatures(dst []uint32, s string, toks []token, minN, maxN, limit int) []uint32 {
	var prevWord uint64
	havePrev := false
	var buf [maxNgramWord + 2]byte
	for _, t := range toks {
		if len(dst) >= limit {
			break
		}
		text := s[t.start:t.end]
		if !t.word {
			if len(text) > maxSymbolRun {
				text = text[:maxSymbolRun]
			}
			dst = append(dst, h.bucket(fnvString(h.seeds[featSymbol], text)))
			havePrev = false
			continue
		}
		wh := fnvString(h.seeds[featWord], text)
		dst = append(dst, h.bucket(wh))
		if havePrev {
			x := h.seeds[featBigram] ^ prevWord
			x *= fnvPrime
			dst = append(dst, h.bucket(fnvString(x, text)))
		}
		prevWord, havePrev = wh, true
		if maxN == 0 {
			continue
		}
		// Character n-grams of "<word>".
		n := min(len(text), maxNgramWord)
		buf[0] = '<'
		copy(buf[1:], text[:n])
		buf[n+1] = '>'
		b := buf[:n+2]
		for i := 0; i+minN <= len(b); i++ {
			for k := minN; k <= maxN && i+k <= len(b); k++ {
				x := h.seeds[featChar+k]
				for j := i; j < i+k; j++ {
					x ^= uint64(b[j])
					x *= fnvPrime
				}
				dst = append(dst, h.bucket(x))
			}
		}
	}
	if len(dst) > limit {
		dst = dst[:limit]
	}
	return dst
}

// window is a range of tokens [first, last) and the byte range of
// normalised text they cover.
type window struct {
	first, last int
	start, end  int
}

// windows cuts toks into windows of size tokens that start every stride
// tokens; the last window ends at the last token. A text of at most size
// tokens is one window.
func windows(toks []token, size, stride int, dst []window) []window {
	if len(toks) == 0 {
		return dst
	}
	for first := 0; ; first += stride {
		last := min(first+size, len(toks))
		dst = append(dst, window{first: first, last: last, start: int(toks[first].start), end: int(toks[last-1].end)})
		if last == len(toks) {
			return dst
		}
	}
}
