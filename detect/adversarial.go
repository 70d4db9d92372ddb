package detect

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// The adversarial-suffix detector finds optimised "token salad" (GCG-style
// suffixes: word fragments, stray punctuation and brackets, capitals in the
// middle of words, mixed scripts) appended to prompts.
//
// It works on windows of advWindow whitespace-separated tokens. A cheap
// first pass marks odd tokens; only a text with a window holding at least
// advMinOdd of them is scored at all, so ordinary prose costs one pass over
// its bytes. A scored window is flagged when
//   - its mean cost under the character model (bits per symbol) is at least
//     the calibrated absolute threshold,
//   - it exceeds the document's own baseline (the median cost of its
//     ordinary tokens) by the calibrated relative threshold, so that text
//     that is all foreign, all code or all tables is judged against itself,
//   - and its share of odd tokens is at least the calibrated salad floor.
// Windows that are mostly non-Latin letters, or whose tokens are long runs
// (base64, hex, URLs), are never flagged.

const (
	// advWindow is the number of tokens in a window.
	advWindow = 12
	// advMinOdd is the fewest odd tokens a window needs to be considered.
	advMinOdd = 3
	// advMaxTokenLen: longer tokens (blobs, URLs) are left to other
	// detectors and break windows.
	advMaxTokenLen = 40
	// advMinBaseline is how many ordinary tokens a document needs for its
	// own baseline; shorter documents use advDefaultBaseline.
	advMinBaseline = 6
	// advDefaultBaseline is the baseline (bits per symbol) of a document
	// too short to have its own, about the median cost of English tokens.
	advDefaultBaseline = 2.5
	// advMaxScore caps the finding's score.
	advMaxScore = 0.9
)

type adversarialDetector struct {
	lm *CharLM // nil when the embedded model is unusable: the detector is off
}

var _ ModelDetector = adversarialDetector{}

func newAdversarialDetector() Detector {
	lm, _ := embeddedCharLM()
	return adversarialDetector{lm: lm}
}

// NewAdversarialDetector returns the adversarial-suffix detector backed by
// m instead of the embedded model (for evaluating retrained models).
func NewAdversarialDetector(m *CharLM) Detector { return adversarialDetector{lm: m} }

// Name implements Detector.
func (adversarialDetector) Name() string { return "adversarial" }

// Model implements ModelDetector.
func (adversarialDetector) Model() Model { return charLMModel() }

// Detect implements Detector.
func (d adversarialDetector) Detect(t *Text, emit func(Finding)) {
	if d.lm == nil {
		return
	}
	if !advMaySalad(t.Orig) {
		return
	}
	buf := advTokenPool.Get().(*[]advToken)
	toks, _ := advTokens(t.Orig, (*buf)[:0], true)
	if cap(toks) <= 1<<16 { // very long texts do not pin their tokens
		*buf = toks
		defer advTokenPool.Put(buf)
	}
	if !advMayFlag(d.lm, t.Orig, toks) {
		return
	}
	c := d.lm.calib
	var best advWindowStat
	var region [2]int
	found := false
	advWindows(d.lm, t.Orig, toks, false, func(w advWindowStat) {
		if !w.flagged(c) {
			return
		}
		if found && w.start <= region[1] {
			region[1] = max(region[1], w.end)
		} else if found {
			d.emit(t, region, best, emit)
			found = false
		}
		if !found {
			region = [2]int{w.start, w.end}
			best = w
			found = true
		}
		if w.margin(c) > best.margin(c) {
			best = w
		}
	})
	if found {
		d.emit(t, region, best, emit)
	}
}

func (d adversarialDetector) emit(t *Text, span [2]int, w advWindowStat, emit func(Finding)) {
	score := advScore(w.margin(d.lm.calib))
	sev := SevMedium
	if score >= 0.7 {
		sev = SevHigh
	}
	emit(Finding{
		Detector: "adversarial",
		Rule:     "adversarial.token_salad",
		Category: CatAdversarial,
		Severity: sev,
		Score:    score,
		Message: fmt.Sprintf("token salad typical of optimised adversarial suffixes: %.1f bits/char under the English character model (document baseline %.1f), %d of %d tokens odd",
			w.mean, w.base, w.odd, w.tokens),
		Span: span,
	})
}

// advTokenPool holds token slices for texts that pass the screen.
var advTokenPool = sync.Pool{New: func() any { return new([]advToken) }}

// advScore maps how far a window clears the thresholds to a finding score.
// A window just over every threshold scores 0.55 (elevated); one well past
// them scores up to advMaxScore.
func advScore(margin float64) float64 {
	s := 0.55 + 0.35*(1-math.Exp(-margin/1.5))
	return math.Round(math.Min(s, advMaxScore)*1000) / 1000
}

// advWindowStat describes one window of tokens.
type advWindowStat struct {
	start, end int // byte span in the text
	tokens     int
	odd        int
	mean       float64 // bits per symbol
	base       float64 // the document's baseline, bits per symbol
}

func (w advWindowStat) salad() float64 { return float64(w.odd) / float64(w.tokens) }

// score combines the window's cost and its share of odd tokens: each odd
// token in a window adds as much evidence as advSaladWeight/advWindow bits
// per symbol of cost.
func (w advWindowStat) score() float64 { return w.mean + advSaladWeight*w.salad() }

func (w advWindowStat) flagged(c AdversarialCalibration) bool {
	return w.clears(c) && w.mean-w.base >= float64(c.Rel)
}

// clears reports whether the window clears the thresholds that do not
// depend on the document's baseline.
func (w advWindowStat) clears(c AdversarialCalibration) bool {
	return w.score() >= float64(c.Abs) && w.mean >= float64(c.Mean) && w.salad() >= float64(c.Salad)
}

// margin sums, in bits per symbol, how far the window is past the cost
// thresholds, plus a bonus for the share of odd tokens past the floor.
func (w advWindowStat) margin(c AdversarialCalibration) float64 {
	return (w.score() - float64(c.Abs)) + (w.mean - w.base - float64(c.Rel))
}

// advToken is one whitespace-separated token.
type advToken struct {
	start, end int
	odd        bool
	words      bool // has letters
	latin      int  // ASCII and accented Latin letters
	other      int  // letters of other scripts
}

// Token classes of ASCII bytes for the odd-token scan.
const (
	advClsSpace   = 1 << iota // whitespace
	advClsLower               // a-z
	advClsUpper               // A-Z
	advClsDigit               // 0-9
	advClsPunct               // ordinary punctuation
	advClsSpecial             // brackets, backslash and other code-ish marks
)

var advASCIIClass = func() (t [128]uint8) {
	for c := range 128 {
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
			t[c] = advClsSpace
		case c >= 'a' && c <= 'z':
			t[c] = advClsLower
		case c >= 'A' && c <= 'Z':
			t[c] = advClsUpper
		case c >= '0' && c <= '9':
			t[c] = advClsDigit
		case c < 32 || c == 127:
			t[c] = advClsSpace
		}
	}
	for _, c := range ".,;:!?'\"-()/&" {
		t[c] = advClsPunct
	}
	for _, c := range "[]{}\\|@#$%^*~<>=+_`" {
		t[c] = advClsSpecial
	}
	return t
}()

// advTokens splits s into tokens and marks the odd ones. It reports
// whether some window of advWindow tokens holds advMinOdd odd tokens.
// Stretches of ASCII are split 64 bytes at a time (see advBlockTokens);
// the tokens are those advNextToken finds one by one.
//
// With store false it keeps no tokens (toks is only scratch space).
func advTokens(s string, toks []advToken, store bool) ([]advToken, bool) {
	any := false
	var w advOddWindow
	w.reset()
	stop := 0 // split tokens one by one up to here
	for i := 0; ; {
		if i >= stop && i+64 <= len(s) {
			// i is at white space or at the start of a token.
			from := len(toks)
			n, more := advBlockTokens(s, i, toks)
			if n > 0 {
				// Count the block's tokens in order, as below.
				for _, tk := range more[from:] {
					if w.next(tk.odd) {
						any = true
					}
				}
				toks = more
				if !store {
					toks = toks[:0]
					if any {
						return nil, true
					}
				}
				i += n
				continue
			}
			stop = i + 1
		}
		tk, ok := advNextToken(s, i)
		if !ok {
			break
		}
		i = tk.end
		if store {
			toks = append(toks, tk)
		}
		if w.next(tk.odd) {
			any = true
			if !store {
				return nil, true
			}
		}
	}
	return toks, any
}

// advBlockTokens appends to toks the tokens that lie wholly in the 64
// bytes at s[i:] (i at white space or at the start of a token) before the
// first byte ≥ 0x80 and the last token that touches it or the end of the
// block, and returns how many bytes it handled (none when a token at i
// touches such a byte or the block's end). A token of ASCII letters and
// digits with no capital after a letter cannot be odd and is counted from
// the block's bit masks; a token with a mark or such a capital is split by
// advNextToken, exactly.
func advBlockTokens(s string, i int, toks []advToken) (int, []advToken) {
	blk := s[i : i+64]
	var space, exact, letters, high uint64
	prevLet := uint64(0)
	for k := range 8 {
		x := repLoad64(blk, 8*k)
		high |= x
		sp := advSpaceLanes(x)
		y := x | repFold8
		let := (y + (0x80-'a')*repLo8) &^ (y + (0x7f-'z')*repLo8) & repHi8
		dig := (x + (0x80-'0')*repLo8) &^ (x + (0x7f-'9')*repLo8) & repHi8
		up := let &^ (x << 2) // a letter without bit 0x20
		camel := up & (let<<8 | prevLet>>56)
		prevLet = let
		space |= repMoveMask(sp) << (8 * k)
		letters |= repMoveMask(let) << (8 * k)
		exact |= repMoveMask(^(sp|let|dig)|camel) << (8 * k)
	}
	lim, tok := advBlockLimit(blk, high, space)
	if lim == 0 {
		return 0, toks
	}
	starts := tok &^ (tok << 1)
	ends := tok + starts // the byte after each token
	for st, en := starts, ends&^tok; st != 0; st, en = st&(st-1), en&(en-1) {
		p, e := bits.TrailingZeros64(st), bits.TrailingZeros64(en)
		in := (uint64(1)<<e - 1) &^ (uint64(1)<<p - 1)
		if exact&in != 0 {
			tk, _ := advNextToken(s, i+p)
			toks = append(toks, tk)
			continue
		}
		n := bits.OnesCount64(letters & in)
		toks = append(toks, advToken{start: i + p, end: i + e, words: n > 0, latin: n})
	}
	return lim, toks
}

// advBlockLimit returns how many bytes of a 64-byte block the bit-mask
// pass handles — up to its first byte ≥ 0x80 (high is the OR of its 8-byte
// words) and not into a token that may go on past that point — and the
// token bits (not space) of those bytes.
func advBlockLimit(blk string, high, space uint64) (lim int, tok uint64) {
	lim = 64
	if high&repHi8 != 0 {
		high = 0
		for k := range 8 {
			high |= repMoveMask(repLoad64(blk, 8*k)) << (8 * k)
		}
		lim = bits.TrailingZeros64(high)
	}
	mask := uint64(1)<<lim - 1 // all ones for lim 64
	tok = ^space & mask
	if lim > 0 && tok>>(lim-1)&1 != 0 {
		// The last token may go on past lim: leave it.
		lim = 64 - bits.LeadingZeros64(space&mask)
		mask = uint64(1)<<lim - 1
		tok &= mask
	}
	return lim, tok
}

// advOddWindow tracks whether some window of advWindow consecutive tokens
// holds advMinOdd odd ones: the token indices of the last odd tokens are
// enough.
type advOddWindow struct {
	n    int                // tokens so far
	last [advMinOdd - 1]int // indices of the latest odd tokens, newest first
}

func (w *advOddWindow) reset() {
	*w = advOddWindow{}
	for i := range w.last {
		w.last[i] = -advWindow
	}
}

// next counts a token and reports whether the window ending with it holds
// advMinOdd odd tokens.
func (w *advOddWindow) next(odd bool) bool {
	j := w.n
	w.n++
	if !odd {
		return false
	}
	hit := j-w.last[len(w.last)-1] < advWindow
	copy(w.last[1:], w.last[:len(w.last)-1])
	w.last[0] = j
	return hit
}

// advNextToken returns the first token of s at or after i, if any.
func advNextToken(s string, i int) (advToken, bool) {
	// Skip whitespace.
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if advASCIIClass[c] != advClsSpace {
				break
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += n
	}
	if i >= len(s) {
		return advToken{}, false
	}
	tk := advToken{start: i}
	var prev uint8
	camel, punct, digits, letters := false, false, false, 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			cl := advASCIIClass[c]
			if cl == advClsSpace {
				break
			}
			switch cl {
			case advClsLower:
				tk.latin++
				letters++
			case advClsUpper:
				tk.latin++
				letters++
				if prev == advClsLower || prev == advClsUpper {
					camel = true // an inner capital: advOddCase decides
				}
			case advClsPunct, advClsSpecial:
				punct = true
			case advClsDigit:
				digits = true
			}
			prev = cl
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			break
		}
		switch sym := lmRuneSym(r); {
		case sym == lmSymLatinExt:
			tk.latin++
			letters++
			prev = advClsLower
		case sym == lmSymLetter:
			if advIsCJK(r) {
				tk.latin++ // counts as ordinary in mixed Latin/CJK text
			} else {
				tk.other++
			}
			letters++
			prev = advClsLower
		default:
			prev = 0
		}
		i += n
	}
	tk.end = i
	tk.words = letters > 0
	tk.odd = advOdd(s[tk.start:tk.end], letters, tk.latin, tk.other, camel, punct, digits)
	return tk, true
}

// advOdd decides whether a token is odd from what advNextToken counted in
// it.
func advOdd(tok string, letters, latin, other int, camel, punct, digits bool) bool {
	if len(tok) > advMaxTokenLen {
		return false
	}
	switch {
	case letters > 0:
		mixed := other > 0 && latin > 0
		return camel && advOddCase(tok) || mixed || (punct && advOddPunct(tok))
	case punct && !digits:
		return advOddMarks(tok)
	}
	return false
}

// Characters that may open or close a word in ordinary text.
const (
	advOpeners = "([{\"'<*`$"
	advClosers = ")]}\"'>*`$.,;:!?"
)

// advOddPunct reports whether a token's punctuation is unlike prose: once
// ordinary opening and closing marks are stripped from its ends, what is
// left holds a bracket, backslash or other code-ish mark, or a cluster of
// two or more marks other than a dash or dot run. URLs are not odd.
func advOddPunct(tok string) bool {
	if strings.Contains(tok, "://") || strings.HasPrefix(tok, "www.") {
		return false
	}
	if len(tok) > 1 && tok[0] == '\\' && tok[1] >= 'a' && tok[1] <= 'z' {
		return false // a LaTeX command
	}
	lo, hi := 0, len(tok)
	for lo < hi && lo < 2 && advEdge[tok[lo]]&advOpener != 0 {
		lo++
	}
	for hi > lo && len(tok)-hi < 4 && advEdge[tok[hi-1]]&advCloser != 0 {
		hi--
	}
	if lo < hi && advEdge[tok[lo]]&advCloseBracket != 0 || hi > lo && advEdge[tok[hi-1]]&advOpenBracket != 0 {
		return true // a word that starts with a closing or ends with an opening bracket
	}
	run, runByte := 0, byte(0)
	for i := lo; i < hi; i++ {
		c := tok[i]
		if c >= utf8.RuneSelf {
			run = 0
			continue
		}
		switch advASCIIClass[c] {
		case advClsSpecial:
			// Identifiers (snake_case) and assignments (key=value) are
			// code, not salad.
			if (c == '_' || c == '=') && i > lo && i+1 < hi && advAlnum(tok[i-1]) && advAlnum(tok[i+1]) {
				run = 0
				continue
			}
			return true
		case advClsPunct:
			if run > 0 && c != runByte {
				return true
			}
			run++
			runByte = c
			if run >= 2 && c != '-' && c != '.' {
				return true
			}
		default:
			run = 0
		}
	}
	return false
}

// advOddCase reports whether the capitals inside a token are unlike names,
// brands and acronyms: a capital after three or more lower-case letters at
// the start ("similarlyNow", "tableView"), two or more capitals after a
// lower-case letter ("resGITHUB", "SureBEtera"), or two or more capitals
// followed by two or more lower-case letters ("DJstructor"). "iPhone",
// "McAllister", "PowerPoint", "PDFs" and "LaTeX" are not odd.
func advOddCase(tok string) bool {
	lower := func(i int) bool { return i < len(tok) && tok[i] >= 'a' && tok[i] <= 'z' }
	upper := func(i int) bool { return i >= 0 && i < len(tok) && tok[i] >= 'A' && tok[i] <= 'Z' }
	lead := 0
	for lower(lead) {
		lead++
	}
	if lead >= 3 && upper(lead) {
		return true
	}
	for i := 0; i < len(tok); i++ {
		// A capital, two or more lower-case letters, two or more capitals.
		if upper(i) && lower(i+1) {
			j := i + 1
			for lower(j) {
				j++
			}
			if j-i-1 >= 2 && upper(j) && upper(j+1) {
				return true
			}
		}
		// Two capitals then two lower-case letters.
		if upper(i) && upper(i+1) && lower(i+2) && lower(i+3) {
			return true
		}
	}
	return false
}

// advAlnum reports whether c is an ASCII letter or digit.
func advAlnum(c byte) bool {
	return c < utf8.RuneSelf && advASCIIClass[c]&(advClsLower|advClsUpper|advClsDigit) != 0
}

// advOddMarks reports whether a token of marks alone (no letters or
// digits) is unlike prose: a lone bracket of the kinds prose does not use
// alone, a backslash or similar, or a cluster of different marks. Lone
// dashes, slashes, operators and runs of one mark ("...", "--") are not odd.
func advOddMarks(tok string) bool {
	if len(tok) == 1 {
		return strings.IndexByte("[]{}\\@^~<>`", tok[0]) >= 0
	}
	for i := 1; i < len(tok); i++ {
		if tok[i] != tok[0] {
			return true
		}
	}
	return false
}

// advIsCJK reports whether r is a Han, kana or Hangul letter.
func advIsCJK(r rune) bool {
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r)
}

// scanAdversarial calls fn for the windows of s that may be token salad:
// those with at least advMinOdd odd tokens, mostly Latin letters, at most
// one line break and no overlong token. Texts without such a window are not
// scored by the model. With all set, it calls fn for every window that is
// mostly Latin, on one or two lines and without an overlong token, odd or
// not (for calibration).
func scanAdversarial(m *CharLM, s string, all bool, fn func(advWindowStat)) {
	if !all && !advMaySalad(s) {
		return
	}
	toks, _ := advTokens(s, nil, true)
	advWindows(m, s, toks, all, fn)
}

// advWindows calls fn for the windows of toks, the tokens of s, that
// scanAdversarial describes.
func advWindows(m *CharLM, s string, toks []advToken, all bool, fn func(advWindowStat)) {
	if len(toks) == 0 {
		return
	}
	// Cost of each token: the symbols from the end of the previous token
	// to its end, so the whitespace before a token counts toward it.
	costs := make([]int, len(toks))
	syms := make([]int, len(toks))
	hist := uint64(lmPadHist)
	ti := 0
	for i := 0; i < len(s) && ti < len(toks); {
		sym, n := lmNextSym(s, i)
		hist = hist<<7 | uint64(sym)
		costs[ti] += m.cost(hist)
		syms[ti]++
		i += n
		if i >= toks[ti].end {
			ti++
		}
	}
	// Baseline: the lower quartile of the cost per symbol of the ordinary
	// tokens (the median would be pulled up by the fragments of a long
	// suffix on a short prompt).
	var per []float64
	for k, tk := range toks {
		if !tk.odd && syms[k] > 0 && tk.end-tk.start <= advMaxTokenLen {
			per = append(per, float64(costs[k])/10/float64(syms[k]))
		}
	}
	base := advDefaultBaseline
	if len(per) >= advMinBaseline {
		slices.Sort(per)
		base = per[len(per)/4]
	}
	n := min(advWindow, len(toks))
	for lo := 0; lo+n <= len(toks); lo++ {
		w, ok := advShape(s, toks[lo:lo+n], all)
		if !ok {
			continue
		}
		cost, nsym := 0, 0
		for k := lo; k < lo+n; k++ {
			cost += costs[k]
			nsym += syms[k]
		}
		if nsym == 0 {
			continue
		}
		w.base = base
		w.mean = float64(cost) / 10 / float64(nsym)
		fn(w)
	}
}

// advShape describes the window of tokens win of s and reports whether it
// may be scored: it has advMinOdd odd tokens (or all is set), no overlong
// token, mostly Latin letters, mostly words, and no line break.
func advShape(s string, win []advToken, all bool) (advWindowStat, bool) {
	n := len(win)
	w := advWindowStat{start: win[0].start, end: win[n-1].end, tokens: n}
	latin, other, words, long := 0, 0, 0, false
	for _, tk := range win {
		if tk.odd {
			w.odd++
		}
		if tk.words {
			words++
		}
		if tk.end-tk.start > advMaxTokenLen {
			long = true
		}
		latin += tk.latin
		other += tk.other
	}
	// Salad is made of word pieces: runs of marks alone are left to the
	// repetition and other detectors.
	if (w.odd < advMinOdd && !all) || long || other > latin || 2*words < n {
		return w, false
	}
	// Code, tables, markup and lists span lines; suffixes do not.
	if strings.IndexByte(s[w.start:w.end], '\n') >= 0 {
		return w, false
	}
	return w, true
}

// advMayFlag reports whether advWindows might flag a window of toks, the
// tokens of s: whether some window that may be scored clears every
// threshold that does not depend on the document's baseline. Only those
// windows' tokens are scored, so a text with a few odd tokens in ordinary
// prose costs little; the baseline needs every token scored.
func advMayFlag(m *CharLM, s string, toks []advToken) bool {
	if len(toks) == 0 {
		return false
	}
	c := m.calib
	sc := advCoster{m: m, s: s, toks: toks}
	n := min(advWindow, len(toks))
	odd := 0 // odd tokens in the window
	for k := range n - 1 {
		if toks[k].odd {
			odd++
		}
	}
	for lo := 0; lo+n <= len(toks); lo++ {
		if toks[lo+n-1].odd {
			odd++
		}
		if lo > 0 && toks[lo-1].odd {
			odd--
		}
		// The share of odd tokens needs no scoring: check it first.
		if odd < advMinOdd || float64(odd)/float64(n) < float64(c.Salad) {
			continue
		}
		w, ok := advShape(s, toks[lo:lo+n], false)
		if !ok || w.salad() < float64(c.Salad) {
			continue
		}
		cost, nsym := sc.window(lo, lo+n)
		if nsym == 0 {
			continue
		}
		w.mean = float64(cost) / 10 / float64(nsym)
		if w.clears(c) {
			return true
		}
	}
	return false
}

// advCoster scores the tokens of a text under the model on demand, each
// token exactly as advWindows does: the symbols from the end of the
// previous token to its end.
type advCoster struct {
	m    *CharLM
	s    string
	toks []advToken
	// The costs and symbols of the advWindow tokens before next are in
	// cost and syms; hist and pos are the model's state at the end of
	// token next-1.
	next       int
	cost, syms [advWindow]int // by token index mod advWindow
	hist       uint64
	pos        int
}

// window returns the total cost and symbols of tokens [lo, hi), where
// hi-lo ≤ advWindow and lo never decreases between calls.
func (c *advCoster) window(lo, hi int) (cost, nsym int) {
	if lo > c.next || c.next == 0 {
		c.restart(lo)
	}
	for c.next < hi {
		k := c.next
		cost, nsym := 0, 0
		end := c.toks[k].end
		for c.pos < end {
			sym, n := lmNextSym(c.s, c.pos)
			c.hist = c.hist<<7 | uint64(sym)
			cost += c.m.cost(c.hist)
			nsym++
			c.pos += n
		}
		c.cost[k%advWindow], c.syms[k%advWindow] = cost, nsym
		c.next++
	}
	for k := lo; k < hi; k++ {
		cost += c.cost[k%advWindow]
		nsym += c.syms[k%advWindow]
	}
	return cost, nsym
}

// restart sets the model's state to the end of token lo-1: it reads the
// symbols of the advRestart tokens before, enough history for any model
// order, or the text from its start.
func (c *advCoster) restart(lo int) {
	const advRestart = lmMaxOrder - 1 // each token has a symbol at least
	c.next, c.hist, c.pos = lo, lmPadHist, 0
	if lo == 0 {
		return
	}
	if lo > advRestart {
		c.pos = c.toks[lo-advRestart].start
	}
	end := c.toks[lo-1].end
	for c.pos < end {
		sym, n := lmNextSym(c.s, c.pos)
		c.hist = c.hist<<7 | uint64(sym)
		c.pos += n
	}
}

// Design choices of the detector, not tuned on data: a window must beat
// its document's baseline by advRel bits per symbol and have at least a
// third of its tokens odd.
const (
	advRel         = 1.0
	advSalad       = 0.33
	advSaladWeight = 4.0
)

// CalibrateAdversarial chooses the detector's thresholds on benign text:
// Abs is the given quantile (e.g. 0.995) of the scores (mean cost plus
// weighted share of odd tokens) of all its windows, and Mean the same
// quantile of their mean costs alone. It returns the calibration and how
// many windows it examined.
func CalibrateAdversarial(m *CharLM, benign []string, quantile float64) (AdversarialCalibration, int) {
	c := AdversarialCalibration{Rel: advRel, Salad: advSalad, Abs: advDefaultBaseline + advRel, Mean: advDefaultBaseline + advRel}
	var scores, means []float64
	for _, s := range benign {
		scanAdversarial(m, s, true, func(w advWindowStat) {
			scores = append(scores, w.score())
			means = append(means, w.mean)
		})
	}
	if len(scores) == 0 {
		return c, 0
	}
	q := func(v []float64) float32 {
		slices.Sort(v)
		return float32(v[min(max(int(math.Ceil(quantile*float64(len(v))))-1, 0), len(v)-1)])
	}
	c.Abs, c.Mean = q(scores), q(means)
	return c, len(scores)
}

// The screen: advMaySalad finds whether some window of advWindow tokens
// holds advMinOdd odd tokens, as advTokens does, without looking at most
// tokens one by one. It reads 64 ASCII bytes at a time into bit masks of
// whitespace and of "suspect" bytes (marks, and capitals right after a
// letter); a token with no suspect byte cannot be odd, so only the few
// tokens with one are classified, exactly, by advOddASCII. Text around
// bytes ≥ 0x80 is split token by token by advNextToken.

// advMaySalad reports whether s has a window of advWindow tokens holding
// advMinOdd odd tokens.
func advMaySalad(s string) bool {
	var w advOddWindow
	w.reset()
	stop := 0 // split tokens one by one up to here
	for i := 0; i < len(s); {
		// i is at whitespace or at the start of a token.
		if i >= stop && i+64 <= len(s) {
			n, hit := advBlock(s, i, &w)
			if hit {
				return true
			}
			if n > 0 {
				i += n
				continue
			}
			stop = i + 1
		}
		tk, ok := advNextToken(s, i)
		if !ok {
			break
		}
		if w.next(tk.odd) {
			return true
		}
		i = tk.end
	}
	return false
}

// advSpaceLanes returns, for the 8 bytes of x (all < 0x80), 0x80 in the
// lanes of whitespace and control characters (advClsSpace).
func advSpaceLanes(x uint64) uint64 {
	lt := ^(x + (0x80-0x21)*repLo8) // high bit set below 0x21
	del := x ^ 0x7f*repLo8
	del = ^((del&repLow7 + repLow7) | del) // 0x7f
	return (lt | del) & repHi8
}

// advBlock screens the tokens that lie wholly in the 64 ASCII bytes at
// s[i:] before the first byte ≥ 0x80 and the last token touching it or
// the end of the block, feeding them to w. It returns how many bytes it
// handled (none when a token at i touches such a byte or the block's end)
// and whether a window is found.
func advBlock(s string, i int, w *advOddWindow) (int, bool) {
	blk := s[i : i+64]
	var space, marks, camels, high uint64
	prevLet := uint64(0)
	for k := range 8 {
		x := repLoad64(blk, 8*k)
		high |= x
		sp := advSpaceLanes(x)
		y := x | repFold8
		let := (y + (0x80-'a')*repLo8) &^ (y + (0x7f-'z')*repLo8) & repHi8
		dig := (x + (0x80-'0')*repLo8) &^ (x + (0x7f-'9')*repLo8) & repHi8
		up := let &^ (x << 2) // a letter without bit 0x20
		// A capital right after a letter (the lane before, possibly the
		// last lane of the previous word of 8).
		camel := up & (let<<8 | prevLet>>56)
		prevLet = let
		space |= repMoveMask(sp) << (8 * k)
		marks |= repMoveMask(^(sp | let | dig)) << (8 * k)
		camels |= repMoveMask(camel) << (8 * k)
	}
	lim, tok := advBlockLimit(blk, high, space)
	if lim == 0 {
		return 0, false
	}
	starts := tok &^ (tok << 1)
	// A word with one opening mark before it or one closing mark after it
	// ("(see", "end.") is not odd for its marks: advOddPunct strips them.
	// Only the rest are suspect.
	marks &= tok
	alnum := tok &^ marks
	for x := marks & (alnum << 1) & (space >> 1); x != 0; x &= x - 1 {
		if p := bits.TrailingZeros64(x); advEdge[blk[p]]&advCloser != 0 {
			marks &^= 1 << p
		}
	}
	for x := marks & (alnum >> 1) & (space<<1 | 1); x != 0; x &= x - 1 {
		if p := bits.TrailingZeros64(x); advEdge[blk[p]]&advOpener != 0 {
			marks &^= 1 << p
		}
	}
	suspect := (marks | camels) & tok
	// Adding its suspect bits to a token's run of ones carries just past
	// it: the byte after each token with a suspect byte.
	ends := (tok + suspect) &^ tok
	for ; ends != 0; ends &= ends - 1 {
		e := bits.TrailingZeros64(ends)
		before := starts & (1<<e - 1)
		p := 63 - bits.LeadingZeros64(before)
		if !advOddASCII(blk[p:e]) {
			continue
		}
		// Feed the ordinary tokens before this one, then it.
		j := w.n + bits.OnesCount64(before) - 1
		w.n = j
		if w.next(true) {
			return lim, true
		}
		starts &^= before
	}
	w.n += bits.OnesCount64(starts)
	return lim, false
}

// advEdge marks the bytes of advOpeners and advClosers, and brackets.
var advEdge = func() (t [256]uint8) {
	for i := range len(advOpeners) {
		t[advOpeners[i]] |= advOpener
	}
	for i := range len(advClosers) {
		t[advClosers[i]] |= advCloser
	}
	for _, c := range "([{" {
		t[c] |= advOpenBracket
	}
	for _, c := range ")]}" {
		t[c] |= advCloseBracket
	}
	return t
}()

const (
	advOpener = 1 << iota
	advCloser
	advOpenBracket
	advCloseBracket
)

// advOddASCII reports whether an ASCII token is odd, as advNextToken
// decides.
func advOddASCII(tok string) bool {
	if len(tok) > advMaxTokenLen {
		return false
	}
	var prev uint8
	camel, punct, digits, letters := false, false, false, 0
	first := -1 // the first mark
	for i := 0; i < len(tok); i++ {
		cl := advASCIIClass[tok[i]]
		switch cl {
		case advClsLower:
			letters++
		case advClsUpper:
			letters++
			if prev == advClsLower || prev == advClsUpper {
				camel = true
			}
		case advClsPunct, advClsSpecial:
			if !punct {
				first = i
			}
			punct = true
		case advClsDigit:
			digits = true
		}
		prev = cl
	}
	if letters > 0 && !camel && first >= 1 && len(tok)-first <= 4 {
		// A word and up to 4 closing marks ("end.", "it),"): advOddPunct
		// strips them and finds nothing odd.
		closers := true
		for i := first; i < len(tok); i++ {
			closers = closers && advEdge[tok[i]]&advCloser != 0
		}
		if closers {
			return false
		}
	}
	return advOdd(tok, letters, letters, 0, camel, punct, digits)
}
