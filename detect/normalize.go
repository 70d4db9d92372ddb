package detect

import "strings"

// Normalizer turns text into the canonical form rules match against, keeping
// a map from every byte of the result back to the original text.
//
// STUB: to be replaced by the full implementation (NFKC, UTS #39 confusable
// skeleton, case folding, zero-width/bidi removal, spaced-letter joining,
// leetspeak folding of keywords).
type Normalizer struct {
	// Keywords are the words leetspeak folding may produce: a token such as
	// "1gn0r3" is folded to "ignore" only when the folded form is a keyword.
	// Nil folds nothing.
	Keywords map[string]bool
}

// Normalized is normalised text with a map back to the original.
type Normalized struct {
	// Text is the normalised text.
	Text string
	// off[i] is the byte offset in the original of the start of the rune
	// that produced Text[i]; off[len(Text)] is len(original).
	off []int32
	// end[i] is the byte offset in the original just past the rune that
	// produced Text[i].
	end []int32
}

// Normalize normalises s.
func (n *Normalizer) Normalize(s string) *Normalized {
	t := strings.ToLower(s)
	if len(t) != len(s) {
		t = s
	}
	off := make([]int32, len(t)+1)
	end := make([]int32, len(t)+1)
	for i := range off {
		off[i] = int32(i)
		end[i] = int32(i + 1)
	}
	end[len(t)] = int32(len(t))
	return &Normalized{Text: t, off: off, end: end}
}

// OrigSpan maps the byte range [start,end) of n.Text to the smallest byte
// range of the original text that produced it.
func (n *Normalized) OrigSpan(start, end int) [2]int {
	if start >= end {
		o := int(n.off[start])
		return [2]int{o, o}
	}
	return [2]int{int(n.off[start]), int(n.end[end-1])}
}
