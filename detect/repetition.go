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
	if len(t.Orig) < 20 || !repMayFire(t.Orig) {
		return
	}
	repDetectFull(t, emit)
}

// repDetectFull runs the full scan; the screen decides when it is needed.
func repDetectFull(t *Text, emit func(Finding)) {
	s := t.Orig
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
		case reps >= 12 && best.words() == words:
			// The whole document is one phrase said over and over: there
			// is nothing in it to learn from.
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

// The screen: repMayFire proves, in one cheap pass, that the full scan
// would emit nothing, so that ordinary text never pays for it. It splits
// words and lines exactly as repState.scan does (64 ASCII bytes at a time
// with SWAR bit masks, rune by rune elsewhere) but keeps cheaper
// summaries, each of which can only overstate the repetition the full scan
// measures:
//
//   - a hash per word of its bytes with ASCII letters folded to lower case
//     (so words the full scan finds equal get equal hashes), reduced to an
//     8-bit fingerprint; per period p ≤ repMaxPeriod, SWAR byte counters
//     count the consecutive words whose fingerprint equals the one p words
//     back: at least the full scan's run of equal words (token_flood);
//   - per fingerprint, the number of words with letters: at least the
//     Misra–Gries count of any word with that fingerprint (token_flood);
//   - the exact number of counted lines, and per 6-bit line fingerprint how
//     many there are: at least the count of any line with it (line_flood);
//   - the exact number of letters and digits, which bounds the share of
//     marks (degenerate);
//   - a 4096-bit bitmap of word hashes, whose linear-counting estimate
//     tracks the full scan's estimate of the number of distinct words (the
//     two estimate the same number with bitmaps of the same size); the
//     screen lets a text through at twice the full scan's threshold plus 32
//     (low_diversity);
//   - runs of one character, found by comparing 8-byte loads every 64
//     bytes and measured exactly where found (char_run).
//
// Every test but the distinct-word one is a necessary condition for its
// rule, up to collisions of the full scan's 64-bit word hash (which can
// only make the full scan see repetition that is not there); the
// distinct-word test compares two estimates of one number with a margin
// far wider than their error.

// SWAR constants: one byte per lane.
const (
	repLo8   = 0x0101010101010101
	repHi8   = 0x8080808080808080
	repLow7  = 0x7f7f7f7f7f7f7f7f
	repFold8 = 0x2020202020202020 // OR-ed into ASCII letters and digits, it folds case
	repMul   = 0x9e3779b97f4a7c15 // odd multiplier for hashing
)

// repScreen is the state of the screen.
type repScreen struct {
	words, alpha int
	letters      int    // letters so far, for lines
	alnum        int    // letters and digits
	ring         uint64 // fingerprints of the last 8 words, newest in the low byte
	run, maxRun  int    // words in a row equal to one of the 8 before them
	adjacent     uint64 // words equal to the one before, times 0x80
	lineHash     uint64
	lineLetters  int // letters before the current line
	lines        int
	topLine      uint32
	lineCount    [64]uint32
	bitmap       [repBitmapWords]uint64
	xs           [32]uint64 // block's scratch: the hashes of its words
}

// endWord takes the hash x of a word.
func (sc *repScreen) endWord(x uint64, alpha bool) {
	sc.words++
	var nonAlpha uint32
	if !alpha {
		nonAlpha = 1
	} else {
		sc.alpha++
	}
	sc.feed([]uint64{x}, nonAlpha)
}

// endLine ends a line; letters is the number of letters so far.
func (sc *repScreen) endLine(letters int) {
	if letters-sc.lineLetters >= 3 {
		sc.lines++
		i := (sc.lineHash * repMul) >> 58
		c := sc.lineCount[i] + 1
		sc.lineCount[i] = c
		sc.topLine = max(sc.topLine, c)
	}
	sc.lineHash, sc.lineLetters = 0, letters
}

// repMayFire reports whether the full scan of s might emit a finding.
func repMayFire(s string) bool {
	if len(s) >= 100 && repCharRunMay(s) {
		return true
	}
	sc := new(repScreen)
	sc.scan(s)
	// One word making up 70% of w words leaves at least 0.4w-1 pairs of
	// equal neighbours.
	adjacent := int(sc.adjacent / 0x80)
	switch {
	case sc.maxRun >= 9:
		return true // token_flood, a phrase
	case sc.alpha >= 50 && 10*(adjacent+1) >= 4*sc.words:
		return true // token_flood, one word
	case sc.topLine >= 10 && 2*int(sc.topLine) >= sc.lines:
		return true // line_flood
	case sc.alpha >= 300 && repDistinct(&sc.bitmap) <= 4*math.Sqrt(float64(sc.alpha))+32:
		return true // low_diversity
	}
	// degenerate needs 200 visible characters (each at least a byte), of
	// which under a fifth are letters or digits.
	return len(s) >= 200 && 5*sc.alnum <= len(s)
}

// scan feeds s to the screen: whole blocks of 64 ASCII bytes that start
// outside a word through block, everything else rune by rune.
func (sc *repScreen) scan(s string) {
	var (
		inWord, alpha bool
		h, chunk      uint64 // the word hash so far; its unfinished 8-byte chunk
		clen          uint   // bytes in chunk
		stop          int    // handle bytes one at a time up to here
	)
	add := func(b byte) {
		if clen == 8 {
			h = (h ^ chunk) * repMul
			chunk, clen = 0, 0
		}
		chunk |= uint64(b) << (8 * clen)
		clen++
	}
	for i := 0; i < len(s); {
		if !inWord && i >= stop && i+72 <= len(s) {
			if n := sc.block(s, i); n > 0 {
				i += n
				continue
			}
			// A word or rune the block cannot handle starts here.
			stop = i + 1
		}
		c := s[i]
		k, n := repKind[c], 1
		if c >= utf8.RuneSelf {
			var r rune
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
		if k == repKindLetter || k == repKindDigit {
			if !inWord {
				inWord, alpha, h, chunk, clen = true, false, 0, 0, 0
			}
			sc.alnum++
			if k == repKindLetter {
				sc.letters++
				alpha = true
			}
			if n == 1 {
				add(c | 0x20)
			} else {
				for j := range n {
					add(s[i+j])
				}
			}
		} else {
			if inWord {
				sc.endWord((h^chunk)*repMul, alpha)
				inWord = false
			}
			if k == repKindNewline {
				sc.endLine(sc.letters)
			}
		}
		i += n
	}
	if inWord {
		sc.endWord((h^chunk)*repMul, alpha)
	}
	sc.endLine(sc.letters)
}

// block handles the 64 bytes at s[i:], which start outside a word and are
// followed by at least 8 more bytes, up to the first byte ≥ 0x80 or the
// start of a word that runs up to it or past the block. It returns how
// many bytes it handled: none when the block starts with such a word or
// byte.
func (sc *repScreen) block(s string, i int) int {
	// Letters and digits in one pass; letters and newlines apart only where
	// the block has digits or newlines. The lane arithmetic is exact for
	// bytes < 0x80 below the first byte ≥ 0x80 (carries only go up).
	blk := s[i : i+72]
	var alnum, high, anyDigit, anyNewline uint64
	for k := range 8 {
		x := repLoad64(blk, 8*k)
		y := x | repFold8
		let := (y + (0x80-'a')*repLo8) &^ (y + (0x7f-'z')*repLo8)
		dig := (x + (0x80-'0')*repLo8) &^ (x + (0x7f-'9')*repLo8)
		nl := x ^ '\n'*repLo8
		anyNewline |= (nl - repLo8) &^ nl // some lane is zero: a newline
		anyDigit |= dig
		high |= x
		alnum |= repMoveMask(let|dig) << (8 * k)
	}
	// The bytes handled: those before the first byte ≥ 0x80, less a word
	// that reaches it or the end of the block. (Digits or newlines past
	// them only send the block down the exact path below.)
	lim := 64
	if high&repHi8 != 0 {
		high = 0
		for k := range 8 {
			high |= repMoveMask(repLoad64(blk, 8*k)) << (8 * k)
		}
		lim = bits.TrailingZeros64(high)
	}
	mask := uint64(1)<<lim - 1 // all ones for lim 64
	alnum &= mask
	if lim > 0 && alnum>>(lim-1)&1 != 0 {
		lim = 64 - bits.LeadingZeros64(^alnum&mask)
		mask = uint64(1)<<lim - 1
		alnum &= mask
	}
	if lim == 0 {
		return 0
	}
	starts := alnum &^ (alnum << 1)
	// Adding a word's lowest bit to its run of ones carries just past it:
	// ends marks the byte after each word. Adding its letters instead does
	// the same for the words with letters.
	ends := alnum + starts
	letter, newline := alnum, uint64(0)
	if (anyDigit|anyNewline)&repHi8 != 0 {
		letter = 0
		for k := range 8 {
			x := repLoad64(blk, 8*k)
			y := x | repFold8
			let := (y + (0x80-'a')*repLo8) &^ (y + (0x7f-'z')*repLo8)
			nl := x ^ '\n'*repLo8
			nl = ^((nl&repLow7 + repLow7) | nl)
			letter |= repMoveMask(let) << (8 * k)
			newline |= repMoveMask(nl) << (8 * k)
		}
		letter &= mask
		newline &= mask
	}
	alphaEnds := ends
	if letter != alnum {
		alphaEnds = (alnum + letter) &^ alnum & ends
	}
	// Hash the words first, then feed them to the counters: loops with few
	// live values keep them in registers. Words longer than 8 bytes get
	// their first chunk here and the rest in a second, rare loop.
	var (
		xs       = &sc.xs
		nonAlpha uint32 // bit j: word j has no letters
		n        int    // words
	)
	if letter == alnum {
		for st, en := starts, ends; st != 0; st, en = st&(st-1), en&(en-1) {
			p := bits.TrailingZeros64(st)
			xs[n&31] = (repLoad64(blk, p) | repFold8) & repLenMask[(bits.TrailingZeros64(en)-p)&63] * repMul
			n++
		}
	} else {
		for st, en := starts, ends; st != 0; st, en = st&(st-1), en&(en-1) {
			p := bits.TrailingZeros64(st)
			xs[n&31] = (repLoad64(blk, p) | repFold8) & repLenMask[(bits.TrailingZeros64(en)-p)&63] * repMul
			if alphaEnds&en&-en == 0 {
				nonAlpha |= 1 << (n & 31)
			}
			n++
		}
	}
	// Words longer than 8 bytes (9 ones in a row in alnum from their
	// start) get the rest of their bytes here.
	r := alnum & (alnum >> 1) // 2 ones from here
	r &= r >> 2               // 4
	r &= r >> 4               // 8
	for long := starts & r & (alnum >> 8); long != 0; long &= long - 1 {
		p := bits.TrailingZeros64(long)
		j := bits.OnesCount64(starts & (1<<p - 1))
		l := bits.TrailingZeros64(^(alnum >> p)) - 8
		x := xs[j&31]
		for p += 8; l > 8; p, l = p+8, l-8 {
			x = (x ^ (repLoad64(blk, p) | repFold8)) * repMul
		}
		xs[j&31] = (x ^ (repLoad64(blk, p)|repFold8)&repLenMask[l&63]) * repMul
	}
	sc.words += n
	sc.alpha += n - bits.OnesCount32(nonAlpha)
	if newline == 0 {
		sc.feed(xs[:n], nonAlpha)
	} else {
		// Words and line breaks in order.
		a := 0
		for ; newline != 0; newline &= newline - 1 {
			q := bits.TrailingZeros64(newline)
			b := bits.OnesCount64(starts & (1<<q - 1))
			sc.feed(xs[a:b], nonAlpha>>a)
			sc.endLine(sc.letters + bits.OnesCount64(letter&(1<<q-1)))
			a = b
		}
		sc.feed(xs[a:n], nonAlpha>>a)
	}
	sc.letters += bits.OnesCount64(letter)
	sc.alnum += bits.OnesCount64(alnum)
	return lim
}

// repLenMask[l] keeps the first min(l, 8) bytes of a uint64.
var repLenMask = func() (t [64]uint64) {
	for l := range t {
		t[l] = ^uint64(0)
		if l < 8 {
			t[l] = 1<<(8*l) - 1
		}
	}
	return t
}()

// feed feeds the hashes of consecutive words to the counters; bit j of
// nonAlpha is set when word j has no letters.
func (sc *repScreen) feed(xs []uint64, nonAlpha uint32) {
	ring, run, maxRun, adjacent, lineHash := sc.ring, sc.run, sc.maxRun, sc.adjacent, sc.lineHash
	for _, x := range xs {
		fp := x >> 56
		d := ring ^ fp*repLo8
		// Some lane of d is zero: the word's fingerprint is among the last
		// 8. The lowest lane's bit is exact: the one word before.
		t := (d - repLo8) &^ d & repHi8
		adjacent += t & 0x80
		if t != 0 {
			run++
		} else {
			run = 0
		}
		maxRun = max(maxRun, run)
		ring = ring<<8 | fp
		lineHash = bits.RotateLeft64(lineHash, 11) ^ x
		if nonAlpha&1 == 0 {
			sc.bitmap[x>>58] |= 1 << (x >> 52 & 63)
		}
		nonAlpha >>= 1
	}
	sc.ring, sc.run, sc.maxRun, sc.adjacent, sc.lineHash = ring, run, maxRun, adjacent, lineHash
}

// repMoveMask gathers the high bits of the 8 lanes of m into 8 bits.
func repMoveMask(m uint64) uint64 {
	return ((m & repHi8) >> 7 * 0x0102040810204080) >> 56
}

// repHashLong hashes the l ASCII letters and digits at s[a:], case folded,
// as scan does byte by byte: (h ^ chunk) * repMul over 8-byte chunks.
// s must hold 8 bytes past each chunk's start.
func repHashLong(s string, a, l int) uint64 {
	var h uint64
	for ; l > 8; a, l = a+8, l-8 {
		h = (h ^ (repLoad64(s, a) | repFold8)) * repMul
	}
	return (h ^ (repLoad64(s, a)|repFold8)&(1<<(8*l)-1)) * repMul
}

// repLoad64 returns the 8 bytes of s at i, little-endian.
func repLoad64(s string, i int) uint64 {
	b := s[i : i+8]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// repCharRunMay reports whether s might hold a run of 100 or more of one
// non-space character. Such a run is either 100 equal ASCII bytes or lies
// in 100 or more bytes ≥ 0x80 in a row; either covers 9 bytes starting at
// a multiple of 64, which are checked with two 8-byte loads.
func repCharRunMay(s string) bool {
	const minRun = 100
	for i := 0; i+9 <= len(s); i += 64 {
		w := repLoad64(s, i)
		switch {
		case w&repHi8 == 0 && w == repLoad64(s, i+1):
			c := s[i]
			if repKind[c] == repKindSpace || repKind[c] == repKindNewline {
				continue
			}
			a, b := i, i+9
			for a > 0 && s[a-1] == c {
				a--
			}
			for b < len(s) && s[b] == c {
				b++
			}
			if b-a >= minRun {
				return true
			}
		case w&repHi8 == repHi8:
			a, b := i, i+8
			for a > 0 && s[a-1] >= utf8.RuneSelf {
				a--
			}
			for b < len(s) && s[b] >= utf8.RuneSelf {
				b++
			}
			if b-a >= minRun && repRuneRunMay(s[a:b], minRun) {
				return true
			}
			i = b - b%64 // the next check starts past the segment
		}
	}
	return false
}

// repRuneRunMay reports whether s holds min or more of one non-space rune
// in a row. s must start at a rune boundary of the full text, as it does
// when the byte before it is ASCII.
func repRuneRunMay(s string, min int) bool {
	prev, run := rune(-1), 0
	for _, r := range s {
		if r == prev {
			run++
		} else {
			prev, run = r, 1
			if unicode.IsSpace(r) {
				prev = -1
			}
		}
		if run >= min {
			return true
		}
	}
	return false
}
