package detect

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// hiddenDetector finds text a reader does not see or misreads: zero-width
// characters inside words, bidirectional overrides, Unicode tag characters
// ("ASCII smuggling"), bytes smuggled as variation selectors, words spelled
// in mathematical or fullwidth lookalike letters, and words that mix Latin
// with Cyrillic or Greek lookalikes. Smuggled payloads are decoded and
// rescanned by every detector.
//
// Legitimate uses stay clean: emoji ZWJ sequences and variation selectors,
// ZWNJ/ZWJ in Persian and Indic scripts, ZWSP in Thai or Japanese, bidi
// controls in Arabic or Hebrew text, subdivision flag tag sequences,
// fullwidth letters in CJK text.
type hiddenDetector struct{}

func newHiddenDetector() Detector { return hiddenDetector{} }

func (hiddenDetector) Name() string { return "hidden" }

// Limits and scores of the hidden-text rules.
const (
	hiddenMaxFindings = 10 // findings per rule per text; more add nothing to the score
	zwStegoRun        = 8  // a run this long of zero-width characters encodes data
	zwManyRuns        = 3  // this many in-word zero-width runs split words on purpose
	tagHighRun        = 4  // a run this long of tag characters is smuggled text
	vsMinRun          = 4  // shorter runs of variation selectors are ignored
	vsBinaryRun       = 16 // a run this long is smuggled data even if not text
	lookalikeMinRun   = 3  // lookalike letters needed to spell a word
	hiddenMaxDecode   = 64 << 10
)

func (hiddenDetector) Detect(t *Text, emit func(Finding)) {
	s := t.Orig
	if t.Norm != nil && t.Norm.ascii || hidIsASCII(s) {
		return // the normaliser has seen that s is ASCII, or it is
	}
	h := hiddenScan{t: t, s: s, emit: emit}
	h.scan()
	h.finish()
}

// hidIsASCII reports whether s is pure ASCII, eight bytes at a time.
func hidIsASCII(s string) bool {
	for len(s) >= 8 {
		lo := uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
		hi := uint32(s[4]) | uint32(s[5])<<8 | uint32(s[6])<<16 | uint32(s[7])<<24
		if (lo|hi)&0x80808080 != 0 {
			return false
		}
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// hiddenScan is the state of one Detect call.
type hiddenScan struct {
	t    *Text
	s    string
	emit func(Finding)

	rtl, cjk bool // the text has right-to-left letters, CJK characters

	zwRuns    [][2]int // suspicious zero-width runs
	zwLongest int
	bidi      []hidBidiMark
	fullwidth [][2]int // runs of fullwidth letters (judged once cjk is known)
	counts    map[string]int
}

type hidBidiMark struct {
	r   rune
	pos int
}

func (h *hiddenScan) report(f Finding) {
	if h.counts == nil {
		h.counts = map[string]int{}
	}
	if h.counts[f.Rule] >= hiddenMaxFindings {
		return
	}
	h.counts[f.Rule]++
	f.Detector = "hidden"
	f.Category = CatHidden
	h.emit(f)
}

// scan walks the non-ASCII runes of the text.
func (h *hiddenScan) scan() {
	s := h.s
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			// Skip ASCII eight bytes at a time.
			i++
			for i+8 <= len(s) && load64(s, i)&swarHigh == 0 {
				i += 8
			}
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case hidIsZeroWidth(r):
			i = h.zeroWidth(i)
			continue
		case hidIsBidi(r):
			h.bidi = append(h.bidi, hidBidiMark{r, i})
		case r >= 0xE0000 && r <= 0xE007F:
			i = h.tags(i)
			continue
		case hidIsVS(r):
			i = h.selectors(i)
			continue
		case r >= 0x1D400 && r <= 0x1D7FF:
			i = h.lookalike(i, hidIsMathAlnum, "mathematical alphanumeric")
			continue
		case hidIsFullwidth(r):
			e := hidRunEnd(s, i, hidIsFullwidth)
			h.fullwidth = append(h.fullwidth, [2]int{i, e})
			i = e
			continue
		case hidIsCyrillic(r) || hidIsGreek(r):
			i = h.word(i)
			continue
		case hidIsRTL(r):
			h.rtl = true
		case hidIsCJK(r):
			h.cjk = true
		}
		i += n
	}
}

// finish judges what needs the whole text: zero-width runs, bidi controls
// and fullwidth runs.
func (h *hiddenScan) finish() {
	h.judgeZeroWidth()
	h.judgeBidi()
	if !h.cjk {
		for _, sp := range h.fullwidth {
			h.lookalikeRun(sp[0], sp[1], "fullwidth")
		}
	}
}

func hidIsZeroWidth(r rune) bool {
	return (r >= 0x200B && r <= 0x200D) || r == 0x2060 || r == 0xFEFF || r == 0x180E
}

func hidIsBidi(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}

func hidIsVS(r rune) bool {
	return (r >= 0xFE00 && r <= 0xFE0F) || (r >= 0xE0100 && r <= 0xE01EF)
}

func hidIsMathAlnum(r rune) bool { return r >= 0x1D400 && r <= 0x1D7FF }

func hidIsFullwidth(r rune) bool {
	return (r >= 0xFF10 && r <= 0xFF19) || (r >= 0xFF21 && r <= 0xFF3A) || (r >= 0xFF41 && r <= 0xFF5A)
}

func hidIsCyrillic(r rune) bool { return r >= 0x0400 && r <= 0x052F }

func hidIsGreek(r rune) bool { return (r >= 0x0370 && r <= 0x03FF) || (r >= 0x1F00 && r <= 0x1FFF) }

func hidIsLatin(r rune) bool {
	return (r < 0x80 && htmlIsLetter(byte(r))) || (r >= 0xC0 && r <= 0x24F && r != 0xD7 && r != 0xF7) ||
		(r >= 0x1E00 && r <= 0x1EFF)
}

// hidIsRTL reports right-to-left letters: Hebrew, Arabic, Syriac, Thaana, NKo,
// Samaritan, Mandaic and their presentation forms.
func hidIsRTL(r rune) bool {
	return (r >= 0x0590 && r <= 0x08FF) || (r >= 0xFB1D && r <= 0xFDFF) || (r >= 0xFE70 && r <= 0xFEFC) ||
		(r >= 0x10800 && r <= 0x10FFF) || (r >= 0x1E800 && r <= 0x1EFFF)
}

// hidIsCJK reports Han, kana, Hangul and CJK punctuation.
func hidIsCJK(r rune) bool {
	return (r >= 0x3000 && r <= 0x9FFF) || (r >= 0xAC00 && r <= 0xD7AF) || (r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0x20000 && r <= 0x3FFFF)
}

// hidJoinerScript reports letters of scripts that use ZWJ, ZWNJ or ZWSP
// legitimately: everything but Latin, Cyrillic, Greek and Armenian.
func hidJoinerScript(r rune) bool {
	if r < 0x250 || hidIsCyrillic(r) || hidIsGreek(r) || (r >= 0x0530 && r <= 0x058F) || (r >= 0x1E00 && r <= 0x1EFF) {
		return false
	}
	return unicode.IsLetter(r) || unicode.IsMark(r)
}

// hidIsEmojiLike reports runes that take part in emoji sequences.
func hidIsEmojiLike(r rune) bool {
	return r >= 0x1F000 || (r >= 0x2190 && r <= 0x2BFF) || r == 0xFE0F || r == 0x20E3 ||
		(r >= 0x1F3FB && r <= 0x1F3FF) || unicode.Is(unicode.So, r)
}

// hidRunEnd returns the end of the run of runes satisfying in that starts at i.
func hidRunEnd(s string, i int, in func(rune) bool) int {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !in(r) {
			break
		}
		i += n
	}
	return i
}

// zeroWidth examines the run of zero-width characters at s[i] and returns
// its end.
func (h *hiddenScan) zeroWidth(i int) int {
	s := h.s
	e := hidRunEnd(s, i, hidIsZeroWidth)
	n := utf8.RuneCountInString(s[i:e])
	if i == 0 && n == 1 && s[:e] == "\uFEFF" {
		return e // byte order mark
	}
	prev, _ := utf8.DecodeLastRuneInString(s[:i])
	next, _ := utf8.DecodeRuneInString(s[e:])
	if i == 0 {
		prev = ' '
	}
	if e == len(s) {
		next = ' '
	}
	wordy := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) }
	suspicious := false
	switch {
	case n >= 3:
		suspicious = true
	case hidIsEmojiLike(prev) && hidIsEmojiLike(next):
		// emoji ZWJ sequence
	case hidJoinerScript(prev) || hidJoinerScript(next):
		// Persian, Indic, Thai, Japanese ...
	default:
		suspicious = wordy(prev) && wordy(next)
	}
	if suspicious {
		h.zwRuns = append(h.zwRuns, [2]int{i, e})
		h.zwLongest = max(h.zwLongest, n)
	}
	return e
}

// judgeZeroWidth reports the suspicious zero-width runs.
func (h *hiddenScan) judgeZeroWidth() {
	if len(h.zwRuns) == 0 {
		return
	}
	sev, score := SevLow, 0.3
	msg := "Zero-width character inside a word"
	switch {
	case h.zwLongest >= zwStegoRun:
		sev, score = SevHigh, 0.85
		msg = fmt.Sprintf("Run of %d zero-width characters, a way to hide encoded data", h.zwLongest)
	case len(h.zwRuns) >= zwManyRuns:
		sev, score = SevHigh, 0.75
		msg = fmt.Sprintf("Zero-width characters inside %d words, a way to split words past filters", len(h.zwRuns))
	}
	for _, r := range h.zwRuns {
		h.report(Finding{Rule: "hidden.zero_width", Severity: sev, Score: score, Message: msg,
			Span: r, Evidence: hidVisible(h.s, r[0], r[1])})
	}
}

// hidVisible returns the text around s[i:j] with invisible characters spelled
// as <U+XXXX>.
func hidVisible(s string, i, j int) string {
	lo, hi := i, j
	for k := 0; k < 12 && lo > 0; k++ {
		_, n := utf8.DecodeLastRuneInString(s[:lo])
		lo -= n
	}
	for k := 0; k < 12 && hi < len(s); k++ {
		_, n := utf8.DecodeRuneInString(s[hi:])
		hi += n
	}
	var b strings.Builder
	for _, r := range s[lo:hi] {
		if hidIsZeroWidth(r) || hidIsBidi(r) || hidIsVS(r) || (r >= 0xE0000 && r <= 0xE007F) ||
			unicode.Is(unicode.Cf, r) {
			fmt.Fprintf(&b, "<U+%04X>", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// judgeBidi reports bidirectional controls that do not serve
// right-to-left text.
func (h *hiddenScan) judgeBidi() {
	if len(h.bidi) == 0 {
		return
	}
	open := 0
	for _, m := range h.bidi {
		switch m.r {
		case 0x202C, 0x2069: // PDF, PDI
			open--
		default:
			open++
		}
	}
	for _, m := range h.bidi {
		sp := [2]int{m.pos, m.pos + utf8.RuneLen(m.r)}
		ev := hidVisible(h.s, sp[0], sp[1])
		switch {
		case m.r == 0x202D || m.r == 0x202E: // LRO, RLO
			sev, score := SevHigh, 0.85
			msg := fmt.Sprintf("Bidi override U+%04X in left-to-right text reorders what the reader sees (Trojan Source)", m.r)
			if h.rtl {
				sev, score = SevMedium, 0.4
				msg = fmt.Sprintf("Bidi override U+%04X reorders what the reader sees", m.r)
			}
			h.report(Finding{Rule: "hidden.bidi_override", Severity: sev, Score: score, Message: msg, Span: sp, Evidence: ev})
		case !h.rtl:
			sev, score := SevMedium, 0.55
			if m.r == 0x202C || m.r == 0x2069 {
				sev, score = SevLow, 0.3
			}
			h.report(Finding{Rule: "hidden.bidi_control", Severity: sev, Score: score, Evidence: ev, Span: sp,
				Message: fmt.Sprintf("Bidi control U+%04X in text without right-to-left letters", m.r)})
		case open != 0:
			h.report(Finding{Rule: "hidden.bidi_control", Severity: SevLow, Score: 0.3, Evidence: ev, Span: sp,
				Message: fmt.Sprintf("Unbalanced bidi control U+%04X", m.r)})
		}
	}
}

// tags examines the run of Unicode tag characters at s[i] and returns its
// end.
func (h *hiddenScan) tags(i int) int {
	s := h.s
	e := hidRunEnd(s, i, func(r rune) bool { return r >= 0xE0000 && r <= 0xE007F })
	prev, _ := utf8.DecodeLastRuneInString(s[:i])
	var dec strings.Builder
	n, flag := 0, prev == 0x1F3F4
	for k, r := range s[i:e] {
		n++
		a := r - 0xE0000
		last := i+k+utf8.RuneLen(r) == e
		switch {
		case a == 0x7F:
			flag = flag && last
		case (a >= 'a' && a <= 'z') || (a >= '0' && a <= '9'):
		default:
			flag = false
		}
		if a >= 0x20 && a < 0x7F || a == '\n' || a == '\t' {
			dec.WriteByte(byte(a))
		}
	}
	if flag && n <= 8 && strings.HasSuffix(s[:e], "\U000E007F") {
		return e // subdivision flag such as England's
	}
	text := dec.String()
	sev, score := SevMedium, 0.5
	if n >= tagHighRun {
		sev, score = SevHigh, 0.9
	}
	ev := text
	if ev == "" {
		ev = hidVisible(s, i, e)
	}
	h.report(Finding{Rule: "hidden.unicode_tags", Severity: sev, Score: score, Span: [2]int{i, e}, Evidence: ev,
		Message: fmt.Sprintf("%d invisible Unicode tag characters smuggle text: %q", n, truncate(text, 80))})
	if hidHasLetter(text) {
		h.t.Rescan(text, [2]int{i, e}, "unicode-tags")
	}
	return e
}

// selectors examines the run of variation selectors at s[i] and returns
// its end. Runs decode to bytes: VS1–VS16 are 0–15, VS17–VS256 16–255.
func (h *hiddenScan) selectors(i int) int {
	s := h.s
	e := hidRunEnd(s, i, hidIsVS)
	n := utf8.RuneCountInString(s[i:e])
	if n < vsMinRun {
		return e
	}
	buf := make([]byte, 0, min(n, hiddenMaxDecode))
	for _, r := range s[i:e] {
		if len(buf) == cap(buf) {
			break
		}
		if r <= 0xFE0F {
			buf = append(buf, byte(r-0xFE00))
		} else {
			buf = append(buf, byte(r-0xE0100+16))
		}
	}
	text := string(buf)
	readable := decodedReadable(text)
	sp := [2]int{i, e}
	switch {
	case readable:
		h.report(Finding{Rule: "hidden.variation_selector_payload", Severity: SevHigh, Score: 0.85, Span: sp,
			Evidence: text, Message: fmt.Sprintf("%d variation selectors smuggle text: %q", n, truncate(text, 80))})
		h.t.Rescan(text, sp, "variation-selectors")
	case n >= vsBinaryRun:
		h.report(Finding{Rule: "hidden.variation_selector_payload", Severity: SevMedium, Score: 0.6, Span: sp,
			Evidence: hidVisible(s, i, min(e, i+64)), Message: fmt.Sprintf("%d variation selectors in a row smuggle %d bytes", n, len(buf))})
	default:
		h.report(Finding{Rule: "hidden.variation_selector_payload", Severity: SevLow, Score: 0.3, Span: sp,
			Evidence: hidVisible(s, i, e), Message: fmt.Sprintf("%d variation selectors in a row", n)})
	}
	return e
}

// lookalike examines the run of lookalike letters at s[i] and returns its
// end.
func (h *hiddenScan) lookalike(i int, in func(rune) bool, kind string) int {
	e := hidRunEnd(h.s, i, in)
	h.lookalikeRun(i, e, kind)
	return e
}

// lookalikeRun reports s[i:e] when it spells an ASCII word in lookalike
// letters.
func (h *hiddenScan) lookalikeRun(i, e int, kind string) {
	n := utf8.RuneCountInString(h.s[i:e])
	if n < lookalikeMinRun {
		return
	}
	folded, ok := hidFoldLookalike(h.s[i:e])
	if !ok || !hidHasLetter(folded) {
		return
	}
	h.report(Finding{Rule: "hidden.lookalike_alphabet", Severity: SevMedium, Score: 0.45, Span: [2]int{i, e},
		Evidence: folded, Message: fmt.Sprintf("Word %q spelled in %s lookalike letters", folded, kind)})
}

// hidFoldLookalike maps fullwidth and mathematical alphanumeric letters and
// digits to ASCII; ok is false when s holds anything else (such as
// mathematical Greek).
func hidFoldLookalike(s string) (string, bool) {
	b := make([]byte, 0, len(s)/3)
	for _, r := range s {
		switch {
		case hidIsFullwidth(r):
			b = append(b, byte(r-0xFEE0))
		case r >= 0x1D400 && r < 0x1D400+13*52:
			k := (r - 0x1D400) % 52
			if k < 26 {
				b = append(b, byte('A'+k))
			} else {
				b = append(b, byte('a'+k-26))
			}
		case r >= 0x1D7CE && r <= 0x1D7FF:
			b = append(b, byte('0'+(r-0x1D7CE)%10))
		default:
			return "", false
		}
	}
	return string(b), true
}

// word examines the word around the Cyrillic or Greek letter at s[i] and
// returns the word's end.
func (h *hiddenScan) word(i int) int {
	s := h.s
	inWord := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsMark(r) }
	lo := i
	for lo > 0 {
		r, n := utf8.DecodeLastRuneInString(s[:lo])
		if !inWord(r) {
			break
		}
		lo -= n
	}
	hi := hidRunEnd(s, i, inWord)
	var latin, other, latinLook, otherLook int
	var first rune
	for _, r := range s[lo:hi] {
		switch {
		case hidIsLatin(r):
			latin++
			if hidLatinLooksCyrillic(r) {
				latinLook++
			}
		case hidIsCyrillic(r) || hidIsGreek(r):
			other++
			if _, ok := hidLookalikes[r]; ok {
				otherLook++
				if first == 0 {
					first = r
				}
			}
		case hidIsRTL(r):
			h.rtl = true
		case hidIsCJK(r):
			h.cjk = true
		}
	}
	if latin == 0 || other == 0 || latin+other < 3 {
		return hi
	}
	var msg string
	switch {
	case other <= latin && otherLook == other:
		msg = fmt.Sprintf("Latin word with %d Cyrillic/Greek lookalike letter(s), e.g. %q (U+%04X)", other, first, first)
	case latin < other && latinLook == latin:
		msg = fmt.Sprintf("Cyrillic/Greek word with %d Latin lookalike letter(s)", latin)
	default:
		return hi
	}
	h.report(Finding{Rule: "hidden.mixed_script_word", Severity: SevMedium, Score: 0.45, Span: [2]int{lo, hi},
		Evidence: s[lo:hi], Message: msg})
	return hi
}

// hidLookalikes are Cyrillic and Greek letters drawn like Latin ones.
var hidLookalikes = map[rune]rune{
	'а': 'a', 'в': 'b', 'е': 'e', 'о': 'o', 'р': 'p', 'с': 'c', 'у': 'y', 'х': 'x', 'ѕ': 's', 'і': 'i',
	'ј': 'j', 'ӏ': 'l', 'һ': 'h', 'ԁ': 'd', 'ԛ': 'q', 'ԝ': 'w', 'ү': 'y', 'к': 'k', 'м': 'm', 'н': 'h', 'т': 't',
	'А': 'A', 'В': 'B', 'Е': 'E', 'К': 'K', 'М': 'M', 'Н': 'H', 'О': 'O', 'Р': 'P', 'С': 'C', 'Т': 'T',
	'Х': 'X', 'У': 'Y', 'Ѕ': 'S', 'І': 'I', 'Ј': 'J', 'Ү': 'Y', 'Ԁ': 'D', 'Ԛ': 'Q', 'Ԝ': 'W',
	'ο': 'o', 'α': 'a', 'ν': 'v', 'ρ': 'p', 'ι': 'i', 'κ': 'k', 'υ': 'u', 'τ': 't', 'χ': 'x', 'ϲ': 'c', 'ϳ': 'j',
	'Α': 'A', 'Β': 'B', 'Ε': 'E', 'Ζ': 'Z', 'Η': 'H', 'Ι': 'I', 'Κ': 'K', 'Μ': 'M', 'Ν': 'N', 'Ο': 'O',
	'Ρ': 'P', 'Τ': 'T', 'Υ': 'Y', 'Χ': 'X',
}

// hidLatinLooksCyrillic reports Latin letters drawn like Cyrillic ones.
func hidLatinLooksCyrillic(r rune) bool {
	return strings.ContainsRune("aceopxyABCEHKMOPTXY", r)
}

func hidHasLetter(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) {
			return true
		}
	}
	return false
}

// decodedReadable reports whether s is valid UTF-8 text that is at least
// 85% printable and at least a quarter letters or digits: what decoded
// natural language, code or a nested encoding looks like, and what decoded
// binary (images, hashes) does not.
func decodedReadable(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	var n, printable, letters int
	for _, r := range s {
		n++
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			letters++
			printable++
		case r == '\n' || r == '\t' || r == '\r' || (r >= 0x20 && r != 0x7F && unicode.IsPrint(r)):
			printable++
		}
	}
	return printable*100 >= n*85 && letters*4 >= n
}
