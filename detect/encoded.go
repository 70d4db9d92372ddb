package detect

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/bits"
	"strings"
)

// encodedDetector finds runs of base64, hex, URL-encoded and rot13 text.
// A run that decodes to readable text is handed back to the engine with
// Text.Rescan, so every detector judges the decoded payload; the detector
// itself only notes, with a low score, that a run decoded to text. Runs that
// decode to binary (images, hashes, git SHAs, UUIDs) are not reported.
type encodedDetector struct{}

func newEncodedDetector() Detector { return encodedDetector{} }

func (encodedDetector) Name() string { return "encoded" }

// Limits and scores of the encoded-payload rules.
const (
	encMinBase64    = 24       // shortest base64 run decoded
	encMinHex       = 32       // shortest hex run decoded
	encMinURLEsc    = 6        // fewest %XX escapes in a URL-encoded run
	encMinNeedless  = 4        // fewest escapes of letters/digits that mark obfuscation
	encMaxDecode    = 64 << 10 // most bytes of one run decoded
	encMaxRun       = 16 << 20 // runs longer than this are skipped whole
	encMIMELine     = 60       // base64 lines at least this long may continue on the next line
	encInfoScore    = 0.15
	encEvidence     = 80
	encRot13Window  = 1024 // bytes around a rot13 cue decoded
	encRot13Sample  = 256  // bytes sampled to guess uncued rot13
	encMaxFindings  = 20   // informational findings per rule per text
	encMinReadable  = 8    // shortest decoded text worth a rescan
	encCommonCutoff = 10   // percent of common English words below which a sample may be rot13
	encRot13Vowels  = 30   // percent of vowels below which a sample may be rot13
)

// Byte classes of the encodings' alphabets.
const (
	encB64Std = 1 << iota // A-Z a-z 0-9 + /
	encB64URL             // A-Z a-z 0-9 - _
	encHex                // 0-9 a-f A-F
)

var encClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		if htmlIsAlnum(b) {
			t[c] |= encB64Std | encB64URL
		}
		if htmlIsDigit(b, 16) {
			t[c] |= encHex
		}
	}
	t['+'] |= encB64Std
	t['/'] |= encB64Std
	t['-'] |= encB64URL
	t['_'] |= encB64URL
	return t
}()

func (encodedDetector) Detect(t *Text, emit func(Finding)) {
	e := encScan{t: t, s: t.Orig, emit: emit}
	e.runs()
	e.urls()
	e.rot13()
}

// encScan is the state of one Detect call.
type encScan struct {
	t      *Text
	s      string
	emit   func(Finding)
	counts map[string]int
}

// found reports a run s[lo:hi] that decoded to readable text and hands the
// text to the engine.
func (e *encScan) found(kind, decoded string, lo, hi int, info bool) {
	sp := [2]int{lo, hi}
	if info {
		rule := "encoded." + kind + "_text"
		if e.counts == nil {
			e.counts = map[string]int{}
		}
		if e.counts[rule] < encMaxFindings {
			e.counts[rule]++
			e.emit(Finding{
				Detector: "encoded",
				Rule:     rule,
				Category: CatEncoded,
				Severity: SevLow,
				Score:    encInfoScore,
				Message:  fmt.Sprintf("%s run of %d bytes decodes to text", encKindName[kind], hi-lo),
				Span:     sp,
				Evidence: truncate(decoded, encEvidence),
			})
		}
	}
	e.t.Rescan(decoded, sp, kind)
}

var encKindName = map[string]string{"base64": "Base64", "hex": "Hex", "url": "URL-encoded", "rot13": "Rot13"}

// runs finds base64 and hex runs. A run of encMinBase64 alphabet bytes
// must cover the byte encMinBase64-1 ahead of any position where one may
// start, so most of the text is skipped after looking at one byte in
// encMinBase64 (and at the word around it).
func (e *encScan) runs() {
	s := e.s
	for p := 0; p+encMinBase64 <= len(s); {
		q := p + encMinBase64 - 1
		if encClass[s[q]] == 0 {
			p = q + 1
			continue
		}
		// White space, a control character or a non-ASCII byte among the
		// eight bytes that end at q ends every run that could reach q: go on
		// after the last one. This skips prose with one load.
		if x := encLastSpace(load64(s, q-7)); x >= 0 {
			p = q - 7 + x + 1
			continue
		}
		st := q
		for st > p && encClass[s[st-1]] != 0 {
			st--
		}
		en := q + 1
		for en < len(s) && encClass[s[en]] != 0 {
			en++
		}
		if en-st >= encMinBase64 {
			en = e.runAt(st, en)
		}
		p = en + 1
	}
}

// encLastSpace returns the index of the last byte of the little-endian word
// w that is below '!' or not ASCII (never in an encoding's alphabet), or -1.
func encLastSpace(w uint64) int {
	m := (^((w & swarLow7) + (0x80-'!')*swarOnes) | w) & swarHigh
	if m == 0 {
		return -1
	}
	return (63 - bits.LeadingZeros64(m)) >> 3
}

// runAt judges the run of alphabet bytes s[start:end], extended over MIME
// line breaks and padding, and returns where scanning resumes.
func (e *encScan) runAt(start, end int) int {
	s := e.s
	var lines []int // offsets of line breaks inside the run
	seg, n := start, end-start
	for end-seg >= encMIMELine && n%4 == 0 {
		nl := end
		if nl < len(s) && s[nl] == '\r' {
			nl++
		}
		if nl >= len(s) || s[nl] != '\n' || nl+1 >= len(s) || encClass[s[nl+1]] == 0 {
			break
		}
		lines = append(lines, end)
		seg = nl + 1
		end = seg
		for end < len(s) && encClass[s[end]] != 0 {
			end++
		}
		n += end - seg
	}
	pad := end
	for pad < len(s) && s[pad] == '=' && pad-end < 2 {
		pad++
	}
	if end-start > encMaxRun {
		return pad
	}
	var cls uint8 = encB64Std | encB64URL | encHex
	for i := start; i < end; i++ {
		cls &= encClass[s[i]] | encLineBreak(s[i])
	}
	e.run(start, end, pad, cls, lines)
	return pad
}

// encLineBreak lets line breaks inside a MIME run keep every class.
func encLineBreak(c byte) uint8 {
	if c == '\r' || c == '\n' {
		return encB64Std | encB64URL | encHex
	}
	return 0
}

// run judges the run s[start:end] (padded up to pad, with line breaks at
// lines) whose bytes all belong to the classes cls.
func (e *encScan) run(start, end, pad int, cls uint8, lines []int) {
	s := e.s
	body := s[start:end]
	if len(lines) > 0 {
		var b strings.Builder
		prev := start
		for _, l := range lines {
			b.WriteString(s[prev:l])
			prev = l
			for prev < end && (s[prev] == '\r' || s[prev] == '\n') {
				prev++
			}
		}
		b.WriteString(s[prev:end])
		body = b.String()
	}
	if cls&encHex != 0 && len(body) >= encMinHex && len(body)%2 == 0 {
		n := min(len(body), 2*encMaxDecode)
		if dec, err := hex.DecodeString(body[:n]); err == nil && decodedReadable(string(dec)) {
			e.found("hex", string(dec), start, end, true)
			return
		}
	}
	if encBinaryDataURI(s, start) {
		return
	}
	var enc *base64.Encoding
	switch {
	case cls&encB64Std != 0:
		enc = base64.RawStdEncoding
	case cls&encB64URL != 0:
		enc = base64.RawURLEncoding
	default:
		return // mixes "+/" with "-_"
	}
	if !encLooksBase64(body) {
		return
	}
	n := min(len(body), encMaxDecode/3*4)
	if n == len(body) && n%4 == 1 {
		n--
	} else if n < len(body) {
		n -= n % 4
	}
	dec, err := enc.DecodeString(body[:n])
	if err != nil || len(dec) < encMinReadable {
		return
	}
	text := string(dec)
	if !decodedReadable(encTrimPartialRune(text)) {
		return
	}
	e.found("base64", text, start, pad, true)
}

// encLooksBase64 rejects runs that are words, paths or identifiers rather
// than base64: base64 of text mixes cases and usually has digits.
func encLooksBase64(body string) bool {
	var upper, lower, digit int
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c >= 'A' && c <= 'Z':
			upper++
		case c >= 'a' && c <= 'z':
			lower++
		case c >= '0' && c <= '9':
			digit++
		}
	}
	return upper > 0 && lower > 0 && upper+lower+digit >= len(body)*9/10
}

// encTrimPartialRune drops a UTF-8 sequence cut by a decoding cap.
func encTrimPartialRune(s string) string {
	for k := 1; k <= 3 && k <= len(s); k++ {
		c := s[len(s)-k]
		if c < 0x80 {
			return s
		}
		if c >= 0xC0 {
			return s[:len(s)-k]
		}
	}
	return s
}

// encBinaryMIMEs are data: URI types that are never text.
var encBinaryMIMEs = []string{"image/", "audio/", "video/", "font/", "application/octet-stream", "application/pdf",
	"application/zip", "application/gzip", "application/x-font", "application/font", "application/wasm",
	"application/vnd.", "application/x-protobuf", "application/x-shockwave-flash"}

// encBinaryDataURI reports whether the run at s[start] is the body of a
// data: URI of a binary type (SVG images excepted: they can carry script).
func encBinaryDataURI(s string, start int) bool {
	if !strings.HasSuffix(s[:start], "base64,") {
		return false
	}
	lo := max(0, start-128)
	k := strings.LastIndex(strings.ToLower(s[lo:start]), "data:")
	if k < 0 {
		return false
	}
	mime := strings.ToLower(s[lo+k+5 : start])
	if strings.HasPrefix(mime, "image/svg") {
		return false
	}
	for _, m := range encBinaryMIMEs {
		if strings.HasPrefix(mime, m) {
			return true
		}
	}
	return false
}

// urls finds URL-encoded runs: tokens with at least encMinURLEsc %XX escapes.
func (e *encScan) urls() {
	s := e.s
	for i := 0; i < len(s); {
		k := strings.IndexByte(s[i:], '%')
		if k < 0 {
			return
		}
		p := i + k
		lo := p
		for lo > i && lo > p-encMaxDecode && !encURLStop(s[lo-1]) {
			lo--
		}
		hi := p
		for hi < len(s) && hi-lo < encMaxDecode && !encURLStop(s[hi]) {
			hi++
		}
		i = max(hi, p+1)
		e.url(lo, hi)
	}
}

func encURLStop(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '"' || c == '\''
}

// url judges the token s[lo:hi].
func (e *encScan) url(lo, hi int) {
	tok := e.s[lo:hi]
	if strings.Count(tok, "%") < encMinURLEsc {
		return
	}
	var b strings.Builder
	esc, needless := 0, 0
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c == '%' && i+2 < len(tok) && htmlIsDigit(tok[i+1], 16) && htmlIsDigit(tok[i+2], 16) {
			v := encUnhex(tok[i+1])<<4 | encUnhex(tok[i+2])
			esc++
			if htmlIsAlnum(v) {
				needless++
			}
			b.WriteByte(v)
			i += 2
			continue
		}
		b.WriteByte(c)
	}
	if esc < encMinURLEsc {
		return
	}
	dec := b.String()
	if !decodedReadable(dec) {
		return
	}
	e.found("url", dec, lo, hi, needless >= encMinNeedless)
}

func encUnhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// rot13 finds rot13 text: near an explicit cue ("rot13", "rot-13",
// "decode this"), or a whole text whose rot13 has far more common
// English words than the text itself.
func (e *encScan) rot13() {
	norm := e.t.Norm.Text
	// "rot13" and its spellings: find the '3' of "13" (rarer in numbers
	// than '1'), then look back.
	for from := 1; from < len(norm); {
		k := strings.IndexByte(norm[from:], '3')
		if k < 0 {
			break
		}
		k += from - 1
		from = k + 3
		if norm[k] != '1' {
			continue
		}
		if k >= 3 && strings.HasPrefix(norm[k-3:], "rot") && e.rot13Near(e.t.Norm.OrigSpan(k-3, k+2)) {
			return
		}
		if k >= 4 && strings.HasPrefix(norm[k-4:], "rot") && strings.IndexByte(" -_", norm[k-1]) >= 0 &&
			e.rot13Near(e.t.Norm.OrigSpan(k-4, k+2)) {
			return
		}
	}
	// "decode " (which cannot overlap itself: every occurrence is found).
	for from := 0; ; {
		k := encIndexDecode(norm[from:])
		if k < 0 {
			break
		}
		k += from
		from = k + 7
		if (strings.HasPrefix(norm[from:], "this") || strings.HasPrefix(norm[from:], "the following")) &&
			e.rot13Near(e.t.Norm.OrigSpan(k, from)) {
			return
		}
	}
	e.rot13Whole()
}

// encIndexDecode returns the index of the first "decode " in s, or -1. It
// looks at eight positions at a time for a 'd' with a 'c' two bytes on,
// rare in text, where strings.Index would stop at every 'd'.
func encIndexDecode(s string) int {
	const pat = "decode "
	i := 0
	for ; i+10 <= len(s); i += 8 {
		for m := encEqLanes(load64(s, i), 'd') & encEqLanes(load64(s, i+2), 'c'); m != 0; m &= m - 1 {
			if k := i + bits.TrailingZeros64(m)>>3; strings.HasPrefix(s[k:], pat) {
				return k
			}
		}
	}
	if k := strings.Index(s[i:], pat); k >= 0 {
		return i + k
	}
	return -1
}

// encEqLanes marks, with the high bit of each byte, the bytes of w equal to
// the ASCII byte c; w may hold any bytes.
func encEqLanes(w uint64, c byte) uint64 {
	x := w ^ uint64(c)*swarOnes
	return ^((x&swarLow7 + swarLow7) | x) & swarHigh
}

// rot13Near tries the paragraphs after and before a cue at s[sp[0]:sp[1]].
func (e *encScan) rot13Near(sp [2]int) bool {
	s := e.s
	after := sp[1]
	// Skip the rest of the cue's phrase ("rot13 text:", "caesar cipher:").
	if k := strings.IndexAny(s[after:min(len(s), after+40)], ":\n"); k >= 0 {
		after += k + 1
	}
	aEnd := min(len(s), after+encRot13Window)
	if k := strings.Index(s[after:aEnd], "\n\n"); k > 0 {
		aEnd = after + k
	}
	before := sp[0]
	bStart := max(0, before-encRot13Window)
	if k := strings.LastIndex(s[bStart:before], "\n\n"); k >= 0 {
		bStart += k + 2
	}
	for _, r := range [][2]int{{after, aEnd}, {bStart, before}} {
		seg := s[r[0]:r[1]]
		dec := rot13(seg)
		orig, _ := encCommonWords(seg)
		got, words := encCommonWords(dec)
		if got >= 3 && got >= 2*orig+2 && got*5 >= words {
			lo, hi := encTrimSpace(s, r[0], r[1])
			e.found("rot13", rot13(s[lo:hi]), lo, hi, true)
			return true
		}
	}
	return false
}

// rot13Whole decodes a whole text whose sample has almost no common English
// words while its rot13 has many.
func (e *encScan) rot13Whole() {
	s := e.s
	sample := s[:min(len(s), encRot13Sample)]
	// English (and most languages) is about 38% vowels; its rot13 about 20%.
	// Counting vowels is much cheaper than looking words up.
	var vowels, letters int
	for i := 0; i < len(sample); i++ {
		v := encVowel[sample[i]]
		letters += int(v & 1)
		vowels += int(v >> 1)
	}
	if letters < 40 || vowels*100 >= letters*encRot13Vowels {
		return
	}
	orig, words := encCommonWords(sample)
	if words < 8 || orig*100 >= words*encCommonCutoff {
		return
	}
	got, _ := encCommonWords(rot13(sample))
	if got*100 < words*30 || got < 4 {
		return
	}
	hi := min(len(s), encMaxDecode)
	e.found("rot13", rot13(s[:hi]), 0, hi, true)
}

// encVowel is 1 for ASCII letters and 3 for vowels (a e i o u, either case),
// so that counting them needs no branches.
var encVowel = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = 1, 1
	}
	for _, c := range "aeiouAEIOU" {
		t[c] = 3
	}
	return t
}()

func encTrimSpace(s string, lo, hi int) (int, int) {
	for lo < hi && (s[lo] == ' ' || s[lo] == '\n' || s[lo] == '\r' || s[lo] == '\t' || s[lo] == ':') {
		lo++
	}
	for hi > lo && (s[hi-1] == ' ' || s[hi-1] == '\n' || s[hi-1] == '\r' || s[hi-1] == '\t') {
		hi--
	}
	return lo, hi
}

// rot13 rotates the ASCII letters of s by 13.
func rot13(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = 'a' + (c-'a'+13)%26
		case c >= 'A' && c <= 'Z':
			b[i] = 'A' + (c-'A'+13)%26
		}
	}
	return string(b)
}

// encCommon are the most frequent English words, and words injections use.
var encCommon = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`the be to of and a in that have i it for not on with he as you do at this but his by
		from they we say her she or an will my one all would there their what so up out if about who get which go me when
		make can like time no just him know take people into year your good some could them see other than then now look
		only come its over think also back after use two how our work first well way even new want because any these give
		day most us is are was were been has had did does said ignore previous instructions instruction prompt system
		secret password tell reveal print output say please write all above following rules must should`) {
		m[w] = true
	}
	return m
}()

// encCommonWords counts the common English words among the ASCII words of s.
func encCommonWords(s string) (common, words int) {
	var buf [16]byte
	n, long := 0, false
	// Words shorter than three letters are not counted: rot13 maps "n" to
	// "a" and "gb" to "to", so short tokens (table cells, initials) would
	// look like English either way.
	flush := func() {
		if n >= 3 || long {
			words++
			if !long && encCommon[string(buf[:n])] {
				common++
			}
		}
		n, long = 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if htmlIsLetter(c) {
			if n == len(buf) {
				long = true
				continue
			}
			buf[n] = c | 0x20
			n++
			continue
		}
		flush()
	}
	flush()
	return common, words
}
