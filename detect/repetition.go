package detect

import (
	"fmt"
	"math"
	"math/bits"
	"unicode"
	"unicode/utf8"
)

// The repetition detector finds flooding (a word, phrase, line or
// character repeated to fill a text) and degenerate text (almost nothing
// but marks), both of which poison training data. It reads the normalised
// text once, in O(n) time, keeping only fixed-size state: a ring of the last
// repMaxPeriod word hashes for periodic runs, Misra–Gries counters for the
// dominant word and line, and a bitmap that estimates the number of distinct
// words.
//
// Rules and scores (extreme flooding, where one repeated unit is ≥ 90% of
// the text and repeats ≥ 50 times, scores repScoreExtreme; lesser cases are
// informational):
//
//	repetition.token_flood   a word or phrase of up to 8 words repeated back to back,
//	                         or one word making up most of a text
//	repetition.line_flood    one line repeated
//	repetition.char_run      one character repeated ≥ 100 times in a row
//	repetition.low_diversity a long text drawn from very few distinct words
//	repetition.degenerate    a long text of almost nothing but marks
const (
	repMaxPeriod    = 8  // longest repeated phrase, in words
	repCounters     = 8  // Misra–Gries counters for words and lines
	repBitmapWords  = 64 // 4096-bit bitmap for distinct words
	repScoreExtreme = 0.75
	repScoreHigh    = 0.55
	repScoreInfo    = 0.45
	repScoreLow     = 0.3
)

type repetitionDetector struct{}

func newRepetitionDetector() Detector { return repetitionDetector{} }

// Name implements Detector.
func (repetitionDetector) Name() string { return "repetition" }

// repCounter is one Misra–Gries counter.
type repCounter struct {
	key   uint64
	count int
	start int // byte offset of an occurrence
	end   int
}

// repMG is a Misra–Gries summary: any key making up more than 1/(k+1) of
// the stream is among the counters, its count underestimated by at most
// n/(k+1).
type repMG struct {
	c [repCounters]repCounter
	n int
}

func (m *repMG) add(key uint64, start, end int) {
	m.n++
	free := -1
	for i := range m.c {
		if m.c[i].count > 0 && m.c[i].key == key {
			m.c[i].count++
			return
		}
		if m.c[i].count == 0 && free < 0 {
			free = i
		}
	}
	if free >= 0 {
		m.c[free] = repCounter{key: key, count: 1, start: start, end: end}
		return
	}
	for i := range m.c {
		m.c[i].count--
	}
}

// top returns the counter with the highest count.
func (m *repMG) top() repCounter {
	var best repCounter
	for _, c := range m.c {
		if c.count > best.count {
			best = c
		}
	}
	return best
}

// repRun is the longest run of a period-p repetition of words.
type repRun struct {
	period  int
	matches int // words equal to the word period places before
	start   int // byte offset where the first repeated unit starts
	end     int
}

// repeats returns how many times the run's unit occurs.
func (r repRun) repeats() int {
	if r.period == 0 {
		return 0
	}
	return (r.matches + r.period) / r.period
}

// words returns how many words the run covers.
func (r repRun) words() int { return r.matches + r.period }

// Detect implements Detector.
func (d repetitionDetector) Detect(t *Text, emit func(Finding)) {
	// The original text, not the normalised one: lines matter here, and
	// ASCII case is folded while hashing words.
	s := t.Orig
	if len(s) < 20 {
		return
	}
	st := repState{bestRunChar: -1}
	st.scan(s)
	best, words, wordsMG, linesMG, lines := st.best, st.words, &st.wordsMG, &st.linesMG, st.lines
	letters, digits, marks := st.cnt[repKindLetter], st.cnt[repKindDigit], st.cnt[repKindMark]
	bestRunLen, bestRunStart, bestRunEnd := st.bestRunLen, st.bestRunStart, st.bestRunEnd
	bestRunAlnum := repIsAlnum(st.bestRunChar)
	bitmap := &st.bitmap
	visible := letters + digits + marks

	span := func(a, b int) [2]int { return [2]int{a, b} }
	f := func(rule string, score float64, sp [2]int, msg string, args ...any) {
		sev := SevLow
		switch {
		case score >= 0.7:
			sev = SevHigh
		case score >= 0.5:
			sev = SevMedium
		case score < 0.35:
			sev = SevInfo
		}
		emit(Finding{
			Detector: "repetition",
			Rule:     "repetition." + rule,
			Category: CatRepetition,
			Severity: sev,
			Score:    score,
			Message:  fmt.Sprintf(msg, args...),
			Span:     sp,
		})
	}

	// A phrase repeated back to back.
	if reps := best.repeats(); reps >= 10 {
		cover := float64(best.words()) / float64(words)
		score := repScoreInfo
		switch {
		case reps >= 50 && cover >= 0.9:
			score = repScoreExtreme
		case reps >= 50:
			score = repScoreHigh
		}
		f("token_flood", score, span(best.start, best.end),
			"a %d-word phrase is repeated %d times in a row (%.0f%% of the words)", best.period, reps, 100*cover)
	}
	// One word making up most of a long text (numbers count as words but
	// cannot be the flooding word: tables are full of zeros).
	if top := wordsMG.top(); wordsMG.n >= 50 {
		share := float64(top.count) / float64(words)
		if share >= 0.7 {
			score := repScoreHigh
			if share >= 0.9 {
				score = repScoreExtreme
			}
			f("token_flood", score, span(top.start, top.end),
				"one word makes up at least %.0f%% of the %d words", 100*share, words)
		}
	}
	// One line repeated.
	if top := linesMG.top(); top.count >= 10 && lines > 0 {
		share := float64(top.count) / float64(lines)
		if share >= 0.5 {
			score := repScoreLow
			switch {
			case top.count >= 50 && share >= 0.9:
				score = repScoreExtreme
			case top.count >= 20:
				score = repScoreInfo
			}
			f("line_flood", score, span(top.start, top.end),
				"one line is repeated at least %d times (%.0f%% of the lines)", top.count, 100*share)
		}
	}
	// One character repeated in a row.
	minRun := 200 // marks: long rules of dashes or equals signs are ordinary
	if bestRunAlnum {
		minRun = 100
	}
	if bestRunLen >= minRun {
		score := repScoreLow
		switch {
		case bestRunLen >= 50 && float64(bestRunLen) >= 0.9*float64(visible):
			score = repScoreExtreme
		case bestRunAlnum:
			score = repScoreInfo
		}
		f("char_run", score, span(bestRunStart, bestRunEnd),
			"one character is repeated %d times in a row", bestRunLen)
	}
	// Few distinct words in a long text.
	if n := wordsMG.n; n >= 300 {
		distinct := repDistinct(bitmap)
		root := math.Sqrt(float64(n))
		switch {
		case n >= 1000 && distinct <= root/2:
			f("low_diversity", repScoreHigh, [2]int{0, len(t.Orig)},
				"%d words drawn from only about %.0f distinct words", n, distinct)
		case distinct <= 2*root && distinct < 0.1*float64(n):
			f("low_diversity", repScoreInfo, [2]int{0, len(t.Orig)},
				"%d words drawn from only about %.0f distinct words", n, distinct)
		}
	}
	// Almost nothing but marks.
	if visible >= 200 {
		alnum := float64(letters+digits) / float64(visible)
		switch {
		case visible >= 1000 && alnum < 0.05:
			f("degenerate", repScoreHigh, [2]int{0, len(t.Orig)},
				"%.0f%% of %d visible characters are letters or digits", 100*alnum, visible)
		case alnum < 0.2:
			f("degenerate", repScoreInfo, [2]int{0, len(t.Orig)},
				"%.0f%% of %d visible characters are letters or digits", 100*alnum, visible)
		}
	}
}

// repDistinct estimates the number of distinct words set in a bitmap by
// linear counting.
func repDistinct(b *[repBitmapWords]uint64) float64 {
	zero := 0
	for _, w := range b {
		zero += 64 - bits.OnesCount64(w)
	}
	m := float64(64 * repBitmapWords)
	if zero == 0 {
		return m * math.Log(m)
	}
	return m * math.Log(m/float64(zero))
}

func repIsAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r >= utf8.RuneSelf && unicode.IsLetter(r)
}

// Byte kinds for the repetition scan.
const (
	repKindSpace = iota
	repKindLetter
	repKindDigit
	repKindMark
	repKindNewline
	repKindNonASCII
)

var repKind = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c == '\n':
			t[c] = repKindNewline
		case c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f':
			t[c] = repKindSpace
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			t[c] = repKindLetter
		case c >= '0' && c <= '9':
			t[c] = repKindDigit
		case c >= utf8.RuneSelf:
			t[c] = repKindNonASCII
		case c < 32 || c == 127:
			t[c] = repKindSpace
		default:
			t[c] = repKindMark
		}
	}
	return t
}()

// repState is the fixed-size state of one repetition scan.
type repState struct {
	// Words.
	ring      [16]uint64 // hashes of the last words, by word index mod 16
	ringStart [16]int
	cur       [repMaxPeriod + 1]repRun // current run per period
	alphaIn   [repMaxPeriod + 1]int    // words with letters in the current run
	best      repRun
	words     int
	wordsMG   repMG
	bitmap    [repBitmapWords]uint64
	// Lines.
	linesMG    repMG
	lines      int
	lineHash   uint64
	lineStart  int
	lineLetter int
	// Characters.
	cnt          [6]int // by byte kind; non-ASCII letters count once per rune as letters
	bestRunChar  rune
	bestRunLen   int
	bestRunStart int
	bestRunEnd   int
}

const repFNVOffset, repFNVPrime = 14695981039346656037, 1099511628211

func (st *repState) endLine(end int) {
	if st.lineLetter >= 3 {
		st.linesMG.add(st.lineHash, st.lineStart, end)
		st.lines++
	}
	st.lineHash, st.lineLetter = 0, 0
}

func (st *repState) endWord(h uint64, start, end int, alpha bool) {
	w := st.words
	st.words++
	for p := 1; p <= repMaxPeriod && p <= w; p++ {
		r := &st.cur[p]
		if st.ring[(w-p)&15] != h {
			r.matches = 0
			continue
		}
		if r.matches == 0 {
			r.period = p
			r.start = st.ringStart[(w-p)&15]
			st.alphaIn[p] = 0
		}
		r.matches++
		r.end = end
		if alpha {
			st.alphaIn[p]++
		}
		if st.alphaIn[p] > 0 && (r.repeats() > st.best.repeats() || r.repeats() == st.best.repeats() && r.words() > st.best.words()) {
			st.best = *r
		}
	}
	st.ring[w&15], st.ringStart[w&15] = h, start
	// A line is identified by its words.
	st.lineHash = (st.lineHash ^ h) * repFNVPrime
	if alpha {
		st.wordsMG.add(h, start, end)
		x := lmMix(h)
		st.bitmap[x%repBitmapWords] |= 1 << (x >> 58)
	}
}

// scan reads s once. Words are runs of letters and digits, hashed with
// ASCII case folded; a line is identified by the hashes of its words.
func (st *repState) scan(s string) {
	var (
		h                uint64
		inWord, wAlpha   bool
		wStart           int
		lineBeg          = true
		runChar          = rune(-1)
		runLen, runStart int
	)
	endRun := func(i int) {
		if runLen > st.bestRunLen {
			st.bestRunChar, st.bestRunLen, st.bestRunStart, st.bestRunEnd = runChar, runLen, runStart, i
		}
	}
	var cnt [6]int
	for i := 0; i < len(s); {
		c := s[i]
		k := repKind[c]
		r, n := rune(c), 1
		if k == repKindNonASCII {
			r, n = utf8.DecodeRuneInString(s[i:])
			switch {
			case unicode.IsLetter(r):
				k = repKindLetter
			case unicode.IsSpace(r):
				k = repKindSpace
			case unicode.IsDigit(r):
				k = repKindDigit
			default:
				k = repKindMark
			}
		}
		cnt[k]++
		// Runs of one character (whitespace excluded).
		if r == runChar {
			runLen++
		} else {
			endRun(i)
			runChar, runLen, runStart = r, 1, i
			if k == repKindSpace || k == repKindNewline {
				runChar = -1
			}
		}
		if k == repKindLetter || k == repKindDigit {
			if !inWord {
				inWord, wStart, wAlpha, h = true, i, false, repFNVOffset
			}
			if k == repKindLetter {
				wAlpha = true
				st.lineLetter++
			}
			if c >= 'A' && c <= 'Z' {
				c |= 0x20
			}
			h = (h ^ uint64(c)) * repFNVPrime
			for j := 1; j < n; j++ {
				h = (h ^ uint64(s[i+j])) * repFNVPrime
			}
		} else if inWord {
			st.endWord(h, wStart, i, wAlpha)
			inWord = false
		}
		switch k {
		case repKindNewline:
			st.endLine(i)
			lineBeg = true
		case repKindSpace:
		default:
			if lineBeg {
				st.lineStart, lineBeg = i, false
			}
		}
		i += n
	}
	if inWord {
		st.endWord(h, wStart, len(s), wAlpha)
	}
	st.endLine(len(s))
	endRun(len(s))
	st.cnt = cnt
}
