package detect

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// htmlDetector finds executable HTML and JavaScript: script tags, event
// handlers inside tags, javascript:/vbscript:/data:text/html URIs, embedding
// tags (iframe, object, embed, frameset), meta refresh and base href
// redirections, CSS expressions and split-tag obfuscation. Text that carries
// HTML entities or JavaScript escapes is decoded first, and findings in it
// are mapped back to the original bytes.
//
// The detector never runs a regexp over a whole text: candidates are found
// with strings.IndexByte on '<' and ':', and everything else is examined
// only around them.
type htmlDetector struct{}

func newHTMLDetector() Detector { return htmlDetector{} }

func (htmlDetector) Name() string { return "html" }

// Limits that bound the work done per candidate.
const (
	htmlMaxTag     = 4096     // longest tag (from '<' to '>') examined
	htmlMaxContent = 64 << 10 // longest <script>/<style> body examined
	htmlMaxCode    = 2048     // longest script snippet searched for sinks
	htmlMaxDecode  = 4 << 20  // texts longer than this are not entity-decoded
	htmlSchemeLook = 16       // letters looked at before a colon for a scheme
	htmlSchemeSkip = 1024     // bytes looked at before a colon, with the controls browsers strip
	htmlShortCode  = 256      // inline scripts shorter than this that call alert() are payloads
	htmlObfLook    = 256      // longest inner tag of a split-tag obfuscation
	htmlDataLook   = 64       // bytes looked at after "data:" for a MIME type
	htmlScoreHigh  = 0.9      // inline payloads
	htmlScoreAuto  = 0.85     // auto-firing handlers, js/data URIs
	htmlScoreMed   = 0.45     // markup that is usually benign in web text
	htmlScoreLow   = 0.3      // javascript:void(0) and the like
	htmlRulePrefix = "html."  // every rule id starts with it
	htmlDecodedMsg = " (after decoding HTML entities/JavaScript escapes)"
)

func (htmlDetector) Detect(t *Text, emit func(Finding)) {
	s := t.Orig
	decode := len(s) <= htmlMaxDecode && htmlNeedsDecode(s)
	if !decode && strings.IndexByte(s, '<') < 0 && strings.IndexByte(s, ':') < 0 {
		return
	}
	h := htmlScan{orig: s, text: s, emit: emit}
	if decode {
		h.text, h.off = htmlDecode(s)
	}
	h.tags()
	h.schemes()
}

// htmlScan is the state of one Detect call.
type htmlScan struct {
	orig string  // the original text
	text string  // the text examined: orig, or orig decoded
	off  []int32 // off[i] is the byte of orig that text[i] came from; nil when text == orig
	emit func(Finding)
}

// report emits a finding for text[lo:hi].
func (h *htmlScan) report(rule string, sev Severity, score float64, msg string, lo, hi int) {
	sp := [2]int{lo, hi}
	if h.off != nil {
		sp = [2]int{int(h.off[lo]), int(h.off[hi])}
		if h.orig[sp[0]:sp[1]] != h.text[lo:hi] {
			msg += htmlDecodedMsg
		}
	}
	ev := h.text[lo:hi]
	h.emit(Finding{
		Detector: "html",
		Rule:     htmlRulePrefix + rule,
		Category: CatHTML,
		Severity: sev,
		Score:    score,
		Message:  msg,
		Span:     sp,
		Evidence: ev,
	})
}

// tags examines every '<' that opens a tag.
func (h *htmlScan) tags() {
	s := h.text
	for i := 0; i < len(s); {
		k := strings.IndexByte(s[i:], '<')
		if k < 0 {
			return
		}
		i += k
		i = h.tag(i)
	}
}

// htmlTag is one parsed start tag.
type htmlTag struct {
	name       string // lower case
	start, end int    // text[start:end] is the tag, '<' to '>' (or where it was cut)
	closed     bool   // whether the tag ended with '>'
	attrs      []htmlAttr
}

type htmlAttr struct {
	name       string // lower case
	value      string
	start, end int // text[start:end] is name=value
	vstart     int // offset of value in text
}

func (t *htmlTag) attr(name string) (htmlAttr, bool) {
	for _, a := range t.attrs {
		if a.name == name {
			return a, true
		}
	}
	return htmlAttr{}, false
}

// htmlDangerousTags are the element names split-tag obfuscation aims at.
var htmlDangerousTags = []string{"script", "iframe", "object", "embed", "svg", "img", "body", "frameset", "applet", "meta", "base", "style"}

// tag examines the tag opening at s[i] == '<' and returns where scanning
// resumes.
func (h *htmlScan) tag(i int) int {
	s := h.text
	j := i + 1
	if j >= len(s) || !htmlIsLetter(s[j]) {
		return j
	}
	for j < len(s) && htmlIsTagNameByte(s[j]) {
		j++
	}
	name := strings.ToLower(s[i+1 : j])
	if j < len(s) && s[j] == '<' {
		if end, ok := h.splitTag(i, name, j); ok {
			return end
		}
		return j
	}
	t := htmlParseTag(s, i, j, name)
	h.judgeTag(&t)
	switch name {
	case "script":
		return h.script(&t)
	case "style":
		return h.style(&t)
	}
	// Resume inside the tag, so that markup hidden in an attribute value
	// ("<x title='><img onerror=...>'>") is looked at too.
	return j
}

// splitTag recognises "<scr<script>ipt>": a tag name cut by an inner tag
// that a naive filter removes, leaving a dangerous name behind.
func (h *htmlScan) splitTag(i int, head string, j int) (int, bool) {
	s := h.text
	lim := min(len(s), j+htmlObfLook)
	k := strings.IndexByte(s[j:lim], '>')
	if k < 0 {
		return 0, false
	}
	k += j + 1
	e := k
	for e < len(s) && e-k < 10 && htmlIsLetter(s[e]) {
		e++
	}
	whole := head + strings.ToLower(s[k:e])
	for _, d := range htmlDangerousTags {
		if len(head) < len(d) && strings.HasPrefix(whole, d) {
			h.report("split_tag", SevHigh, htmlScoreHigh,
				"Tag name <"+d+"> split by an inner tag to evade filters", i, e)
			return e, true
		}
	}
	return 0, false
}

// htmlParseTag reads the attributes of the tag whose name is s[i+1:j].
func htmlParseTag(s string, i, j int, name string) htmlTag {
	t := htmlTag{name: name, start: i}
	lim := min(len(s), i+htmlMaxTag)
	p := j
	for p < lim {
		c := s[p]
		if c == '>' {
			t.closed = true
			p++
			break
		}
		if isHTMLSpace(c) || c == '/' || c == '"' || c == '\'' {
			p++
			continue
		}
		as := p
		for p < lim && !isHTMLSpace(s[p]) && s[p] != '=' && s[p] != '>' && s[p] != '/' {
			p++
		}
		a := htmlAttr{name: strings.ToLower(s[as:p]), start: as}
		q := p
		for q < lim && isHTMLSpace(s[q]) {
			q++
		}
		if q < lim && s[q] == '=' {
			q++
			for q < lim && isHTMLSpace(s[q]) {
				q++
			}
			p = q
			if q < lim && (s[q] == '"' || s[q] == '\'') {
				quote := s[q]
				q++
				e := strings.IndexByte(s[q:lim], quote)
				if e < 0 {
					e = lim - q
				}
				a.value, a.vstart = s[q:q+e], q
				p = min(lim, q+e+1)
			} else {
				for p < lim && !isHTMLSpace(s[p]) && s[p] != '>' {
					p++
				}
				a.value, a.vstart = s[q:p], q
			}
		}
		a.end = p
		if a.name != "" {
			t.attrs = append(t.attrs, a)
		}
	}
	t.end = p
	return t
}

// htmlAutoEvents fire without user interaction (or with autofocus).
var htmlAutoEvents = map[string]bool{
	"onerror": true, "onload": true, "onfocus": true, "onfocusin": true, "onblur": true,
	"onpageshow": true, "onbegin": true, "onend": true, "onrepeat": true, "ontoggle": true,
	"onstart": true, "onfinish": true, "onbounce": true, "onscroll": true, "onreadystatechange": true,
	"onanimationstart": true, "onanimationend": true, "onanimationiteration": true, "onanimationcancel": true,
	"ontransitionend": true, "ontransitionrun": true, "ontransitionstart": true, "ontransitioncancel": true,
	"onbeforescriptexecute": true, "onafterscriptexecute": true, "onhashchange": true, "onmessage": true,
	"onpopstate": true, "onresize": true, "onunload": true, "onbeforeunload": true, "oncanplay": true,
	"onloadstart": true, "onprogress": true, "onplay": true, "onsearch": true, "onwebkitanimationstart": true,
}

// judgeTag reports what is dangerous about one start tag.
func (h *htmlScan) judgeTag(t *htmlTag) {
	for _, a := range t.attrs {
		if htmlIsEventAttr(a.name) && strings.TrimSpace(a.value) != "" {
			sev, score := SevMedium, htmlScoreMed
			msg := "Event handler " + a.name + " in <" + t.name + "> runs JavaScript"
			switch {
			case htmlJSDanger(a.value):
				sev, score = SevHigh, htmlScoreHigh
				msg += " that calls a dangerous function"
			case htmlAutoEvents[a.name]:
				sev, score = SevHigh, htmlScoreAuto
				msg += " without user interaction"
			}
			h.report("event_handler", sev, score, msg, a.start, a.end)
			h.sinks(a.value, a.vstart)
		}
		if a.name == "style" && a.value != "" {
			h.css(a.value, a.vstart)
		}
	}
	switch t.name {
	case "iframe", "frame", "frameset", "object", "embed", "applet":
		h.report("embed_tag", SevMedium, htmlScoreMed,
			"<"+t.name+"> embeds another document or plugin", t.start, t.end)
	case "meta":
		if a, ok := t.attr("http-equiv"); ok && strings.EqualFold(strings.TrimSpace(a.value), "refresh") {
			h.report("meta_refresh", SevMedium, 0.55, "<meta http-equiv=refresh> redirects the page", t.start, t.end)
		}
	case "base":
		if _, ok := t.attr("href"); ok {
			h.report("base_href", SevMedium, 0.55, "<base href> rebases every relative URL of the page", t.start, t.end)
		}
	}
}

// script examines a <script> element and returns where scanning resumes.
func (h *htmlScan) script(t *htmlTag) int {
	s := h.text
	body, bstart, end, closed := "", t.end, t.end, false
	if t.closed {
		lim := min(len(s), t.end+htmlMaxContent)
		k := htmlIndexFold(s[t.end:lim], "</script")
		if k < 0 {
			k = lim - t.end
			end = lim
		} else {
			end, closed = t.end+k, true
		}
		body = s[t.end : t.end+k]
	}
	code := strings.TrimSpace(body)
	src, hasSrc := t.attr("src")
	switch {
	case code != "" && (htmlHasSink(code) || len(code) < htmlShortCode && htmlJSDanger(code)):
		h.report("script_inline", SevHigh, htmlScoreHigh,
			"Inline <script> calls a dangerous function", t.start, end)
	case hasSrc && htmlSuspiciousSrc(t, src.value):
		h.report("script_inline", SevHigh, htmlScoreAuto,
			"<script> loads code from a suspicious source", t.start, t.end)
	case code != "" && closed:
		h.report("script_tag", SevMedium, htmlScoreMed, "Inline <script> element", t.start, end)
	case !hasSrc:
		// "<script>" named in prose, not an element.
	default:
		h.report("script_tag", SevMedium, htmlScoreMed, "<script> element loads external code", t.start, t.end)
	}
	if code != "" {
		h.sinks(body, bstart)
	}
	return max(end, t.start+1)
}

// htmlSuspiciousSrc reports script includes shaped like attacks rather
// than like a page's own code: malformed tags, scheme-less or unusual
// sources, sources that are not .js files.
func htmlSuspiciousSrc(t *htmlTag, src string) bool {
	v := strings.ToLower(strings.TrimSpace(src))
	if v == "" {
		return false
	}
	for _, a := range t.attrs {
		switch a.name {
		case "src", "type", "async", "defer", "charset", "crossorigin", "integrity", "id", "nonce",
			"referrerpolicy", "language", "nomodule", "data-main", "class":
		default:
			if !strings.HasPrefix(a.name, "data-") {
				return true // "<script/xss src=...>", "<script a=">" src=...>"
			}
		}
	}
	if strings.HasPrefix(v, "data:") || strings.Contains(v, "javascript:") {
		return true
	}
	path := v
	if k := strings.IndexAny(path, "?#"); k >= 0 {
		path = path[:k]
	}
	if !strings.HasSuffix(path, ".js") && !strings.HasSuffix(path, ".mjs") && strings.Contains(path, ".") &&
		!strings.Contains(path, "/") {
		return true // src=x.png, src=.
	}
	return strings.Contains(path, "xss")
}

// style examines a <style> element and returns where scanning resumes.
func (h *htmlScan) style(t *htmlTag) int {
	if !t.closed {
		return t.start + 1
	}
	s := h.text
	lim := min(len(s), t.end+htmlMaxContent)
	k := htmlIndexFold(s[t.end:lim], "</style")
	if k < 0 {
		k = lim - t.end
	}
	h.css(s[t.end:t.end+k], t.end)
	return t.end + k
}

// htmlCSSDanger are CSS constructs that run script in some browsers.
var htmlCSSDanger = []string{"expression(", "-moz-binding", "behavior:", "behaviour:"}

// css reports script-running CSS in css, which starts at text[at].
func (h *htmlScan) css(css string, at int) {
	for _, d := range htmlCSSDanger {
		k := htmlIndexFold(css, d)
		if k < 0 {
			continue
		}
		h.report("css_expression", SevHigh, htmlScoreAuto,
			"CSS "+strings.TrimSuffix(d, "(")+" runs script", at+k, at+k+len(d))
		return
	}
}

// htmlJSSinks are calls that steal data or run strings as code.
var htmlJSSinks = []string{"document.cookie", "eval(", "fromcharcode", "document.write", "atob(", ".innerhtml", "xmlhttprequest", "fetch("}

// sinks reports dangerous sinks in script code, which starts at text[at].
func (h *htmlScan) sinks(code string, at int) {
	if len(code) > htmlMaxCode {
		code = code[:htmlMaxCode]
	}
	for _, d := range htmlJSSinks {
		k := htmlIndexFold(code, d)
		if k < 0 {
			continue
		}
		h.report("js_sink", SevHigh, htmlScoreAuto,
			"Script uses "+strings.TrimSuffix(d, "(")+", a common payload sink", at+k, at+k+len(d))
	}
}

// htmlHasSink reports whether code uses one of htmlJSSinks.
func htmlHasSink(code string) bool {
	if len(code) > htmlMaxCode {
		code = code[:htmlMaxCode]
	}
	for _, d := range htmlJSSinks {
		if htmlIndexFold(code, d) >= 0 {
			return true
		}
	}
	return false
}

// htmlJSCalls are the calls XSS payloads make to prove execution or run code.
var htmlJSCalls = []string{
	"alert", "prompt(", "prompt`", "confirm(", "confirm`", "eval(", "eval`", "document.cookie", "document.write",
	"fromcharcode", "window.location", "document.location", "location.href", "location=", "location =",
	"atob(", "fetch(", "xmlhttprequest", "settimeout(", "setinterval(", "function(", "import(", "constructor",
	"innerhtml", "top[", "self[", "window[", "parent[", "frames[", "globalthis", ".src=", "print(",
	"javascript:", "window.open", "document.domain", "msgbox", "execscript",
}

// htmlJSDanger reports whether script code calls something XSS payloads call.
func htmlJSDanger(code string) bool {
	if len(code) > htmlMaxCode {
		code = code[:htmlMaxCode]
	}
	for _, c := range htmlJSCalls {
		if htmlIndexFold(code, c) >= 0 {
			return true
		}
	}
	return false
}

// schemes finds javascript:, vbscript: and data:text/html URIs.
func (h *htmlScan) schemes() {
	s := h.text
	for i := 0; i < len(s); {
		k := strings.IndexByte(s[i:], ':')
		if k < 0 {
			return
		}
		c := i + k
		i = c + 1
		if c == 0 {
			continue
		}
		// Every scheme judged ends in 't' or 'a': most colons are rejected
		// here without looking further back.
		switch b := s[c-1]; b | 0x20 {
		case 't', 'a':
		default:
			if b != '\t' && b != '\n' && b != '\r' && b != 0 {
				continue
			}
		}
		word, start := htmlSchemeBefore(s, c)
		switch word {
		case "javascript", "vbscript", "livescript":
			h.scriptURI(word, start, c)
		case "data":
			h.dataURI(start, c)
		}
	}
}

// htmlSchemeBefore returns the lower-case letters that end at s[c] == ':',
// skipping the tabs, newlines and NULs browsers strip from URLs, and where
// they start.
func htmlSchemeBefore(s string, c int) (string, int) {
	var buf [htmlSchemeLook]byte
	n := 0
	p := c - 1
	for p >= 0 && c-p <= htmlSchemeSkip {
		b := s[p]
		if b == '\t' || b == '\n' || b == '\r' || b == 0 {
			p--
			continue
		}
		if !htmlIsLetter(b) {
			break
		}
		if n == len(buf) {
			return "", 0
		}
		buf[n] = b | 0x20
		n++
		p--
	}
	if n < 4 {
		return "", 0
	}
	if p >= 0 && (htmlIsAlnum(s[p]) || s[p] == '_' || s[p] == '.' || s[p] == '-') {
		return "", 0
	}
	var w [htmlSchemeLook]byte
	for k := range n {
		w[k] = buf[n-1-k]
	}
	for _, sch := range htmlSchemes {
		if string(w[:n]) == sch {
			return sch, p + 1
		}
	}
	return "", 0
}

// htmlSchemes are the URI schemes the detector judges.
var htmlSchemes = []string{"javascript", "vbscript", "livescript", "data"}

// scriptURI judges a javascript: (or vbscript:) URI whose scheme spans
// text[start:c+1].
func (h *htmlScan) scriptURI(scheme string, start, c int) {
	s := h.text
	rest := s[c+1 : min(len(s), c+1+htmlMaxCode)]
	body := strings.TrimLeft(rest, " \t\r\n\x00")
	end := c + 1 + (len(rest) - len(body))
	// The URI ends at a quote, '>' or whitespace outside parentheses.
	depth, e := 0, 0
	for e < len(body) {
		b := body[e]
		if b == '(' {
			depth++
		} else if b == ')' && depth > 0 {
			depth--
		} else if depth == 0 && (b == '"' || b == '\'' || b == '>' || b == ' ' || b == '\n') {
			break
		}
		e++
	}
	end += e
	code := body[:e]
	inAttr := htmlAttrContext(s, start)
	lower := strings.ToLower(code)
	switch {
	case lower == "" || lower == ";" || strings.HasPrefix(lower, "void(0)") || strings.HasPrefix(lower, "void 0"):
		if inAttr {
			h.report("js_uri", SevLow, htmlScoreLow, scheme+": URI that does nothing", start, end)
		}
	case inAttr || htmlJSDanger(code) || htmlLooksLikeCode(code):
		h.report("js_uri", SevHigh, htmlScoreAuto, scheme+": URI runs script", start, end)
		h.sinks(code, end-len(code))
	}
}

// htmlAttrContext reports whether the text before s[start] puts it in an
// attribute value or CSS url(): '=', a quote, '(' or '`'.
func htmlAttrContext(s string, start int) bool {
	p := start - 1
	for p >= 0 && (isHTMLSpace(s[p]) || s[p] == 0) {
		p--
	}
	if p < 0 {
		return false
	}
	switch s[p] {
	case '=', '"', '\'', '(', '`':
		return true
	}
	return false
}

// htmlLooksLikeCode reports whether a URI body starts like a script statement:
// an identifier followed by a call, member access, index or assignment.
func htmlLooksLikeCode(code string) bool {
	k := 0
	for k < len(code) && (htmlIsAlnum(code[k]) || code[k] == '_' || code[k] == '$') {
		k++
	}
	if k == 0 {
		return len(code) > 0 && (code[0] == '[' || code[0] == '(' || code[0] == '\'' || code[0] == '"' || code[0] == '/')
	}
	if k == len(code) {
		return false
	}
	switch code[k] {
	case '(', '[', '`', '=':
		return true
	case '.':
		return k+1 < len(code) && htmlIsLetter(code[k+1])
	}
	return false
}

// htmlDataMIMEs are the data: URI types a browser renders as a document or runs.
var htmlDataMIMEs = []string{"text/html", "text/javascript", "application/javascript", "application/x-javascript",
	"application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml", "text/vbscript"}

// dataURI judges a data: URI whose scheme spans text[start:c+1].
func (h *htmlScan) dataURI(start, c int) {
	s := h.text
	rest := s[c+1 : min(len(s), c+1+htmlDataLook)]
	body := strings.TrimLeft(rest, " \t\r\n")
	for _, m := range htmlDataMIMEs {
		if len(body) < len(m) || !strings.EqualFold(body[:len(m)], m) {
			continue
		}
		end := c + 1 + len(rest) - len(body) + len(m)
		sev, score := SevHigh, htmlScoreAuto
		if m == "image/svg+xml" || m == "text/xml" || m == "application/xml" {
			sev, score = SevMedium, htmlScoreMed
		}
		if !htmlAttrContext(s, start) && score < htmlScoreAuto {
			return
		}
		h.report("data_uri", sev, score, "data: URI with a scriptable type ("+m+")", start, end)
		return
	}
}

// htmlNeedsDecode reports whether s holds an HTML character reference or a
// JavaScript escape that could hide markup.
func htmlNeedsDecode(s string) bool {
	for i := 0; i < len(s); {
		k := strings.IndexByte(s[i:], '&')
		if k < 0 {
			break
		}
		i += k + 1
		if i < len(s) && (s[i] == '#' || htmlIsLetter(s[i])) {
			return true
		}
	}
	for i := 0; i < len(s); {
		k := strings.IndexByte(s[i:], '\\')
		if k < 0 {
			break
		}
		i += k + 1
		if i < len(s) && (s[i] == 'u' || s[i] == 'x' || s[i] == '"' || s[i] == '\'' || s[i] == '/') {
			return true
		}
	}
	return false
}

// htmlEntities are the named character references payloads use.
var htmlEntities = map[string]string{
	"lt": "<", "gt": ">", "amp": "&", "quot": "\"", "apos": "'", "colon": ":", "tab": "\t",
	"newline": "\n", "lpar": "(", "rpar": ")", "sol": "/", "bsol": "\\", "semi": ";", "comma": ",",
	"period": ".", "equals": "=", "excl": "!", "num": "#", "percnt": "%", "plus": "+", "lowbar": "_",
	"grave": "`", "lsqb": "[", "rsqb": "]", "lbrack": "[", "rbrack": "]", "lcub": "{", "rcub": "}",
	"nbsp": " ", "dollar": "$", "quest": "?", "ast": "*", "verbar": "|", "hyphen": "-", "dash": "-",
}

// htmlDecode decodes HTML character references (named, decimal and hex,
// with or without ';') and JavaScript escapes (\xHH, \uHHHH, \u{H..},
// \" \' \/). It returns the decoded text and, for every byte of it (and one
// past the end), the offset in s of the byte that produced it.
func htmlDecode(s string) (string, []int32) {
	var b strings.Builder
	b.Grow(len(s))
	off := make([]int32, 0, len(s)+1)
	put := func(r string, from int) {
		b.WriteString(r)
		for range len(r) {
			off = append(off, int32(from))
		}
	}
	putRune := func(r rune, from int) {
		if r == 0 || r > utf8.MaxRune || (r >= 0xD800 && r < 0xE000) {
			r = utf8.RuneError
		}
		var buf [4]byte
		n := utf8.EncodeRune(buf[:], r)
		put(string(buf[:n]), from)
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '&':
			if r, n, ok := htmlCharRef(s[i:]); ok {
				put(r, i)
				i += n
				continue
			}
		case c == '\\' && i+1 < len(s):
			if r, n, ok := htmlJSEscape(s[i:]); ok {
				putRune(r, i)
				i += n
				continue
			}
		}
		b.WriteByte(c)
		off = append(off, int32(i))
		i++
	}
	off = append(off, int32(len(s)))
	return b.String(), off
}

// htmlCharRef decodes the character reference at the start of s.
func htmlCharRef(s string) (string, int, bool) {
	if len(s) < 3 {
		return "", 0, false
	}
	if s[1] == '#' {
		p, base := 2, 10
		if p < len(s) && (s[p] == 'x' || s[p] == 'X') {
			p, base = 3, 16
		}
		q := p
		for q < len(s) && q-p < 10 && htmlIsDigit(s[q], base) {
			q++
		}
		if q == p {
			return "", 0, false
		}
		v, err := strconv.ParseUint(s[p:q], base, 32)
		if err != nil || v > utf8.MaxRune {
			v = utf8.RuneError
		}
		if q < len(s) && s[q] == ';' {
			q++
		}
		return string(rune(v)), q, true
	}
	q := 1
	for q < len(s) && q < 10 && htmlIsAlnum(s[q]) {
		q++
	}
	r, ok := htmlEntities[strings.ToLower(s[1:q])]
	if !ok {
		return "", 0, false
	}
	if q < len(s) && s[q] == ';' {
		q++
	} else if q-1 > 3 && !strings.EqualFold(s[1:q], "newline") && !strings.EqualFold(s[1:q], "colon") {
		return "", 0, false
	}
	return r, q, true
}

// htmlJSEscape decodes the JavaScript escape at the start of s (s[0] == '\\').
func htmlJSEscape(s string) (rune, int, bool) {
	switch s[1] {
	case '"', '\'', '/':
		return rune(s[1]), 2, true
	case 'x':
		if len(s) >= 4 && htmlIsDigit(s[2], 16) && htmlIsDigit(s[3], 16) {
			v, _ := strconv.ParseUint(s[2:4], 16, 8)
			return rune(v), 4, true
		}
	case 'u':
		if len(s) >= 4 && s[2] == '{' {
			e := strings.IndexByte(s[3:min(len(s), 12)], '}')
			if e > 0 {
				if v, err := strconv.ParseUint(s[3:3+e], 16, 32); err == nil && v <= utf8.MaxRune {
					return rune(v), 4 + e, true
				}
			}
			return 0, 0, false
		}
		if len(s) >= 6 {
			if v, err := strconv.ParseUint(s[2:6], 16, 32); err == nil {
				return rune(v), 6, true
			}
		}
	}
	return 0, 0, false
}

func htmlIsEventAttr(name string) bool {
	if len(name) < 5 || name[0] != 'o' || name[1] != 'n' {
		return false
	}
	for i := 2; i < len(name); i++ {
		if name[i] < 'a' || name[i] > 'z' {
			return false
		}
	}
	return true
}

func htmlIsLetter(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }

func htmlIsAlnum(c byte) bool { return htmlIsLetter(c) || (c >= '0' && c <= '9') }

func htmlIsTagNameByte(c byte) bool { return htmlIsAlnum(c) || c == '-' || c == ':' || c == '_' }

func isHTMLSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func htmlIsDigit(c byte, base int) bool {
	if c >= '0' && c <= '9' {
		return true
	}
	return base == 16 && (c|0x20) >= 'a' && (c|0x20) <= 'f'
}

// htmlIndexFold is strings.Index for an ASCII lower-case needle, ignoring the
// case of ASCII letters in s.
func htmlIndexFold(s, needle string) int {
	if len(needle) == 0 {
		return 0
	}
	first := needle[0]
	up := first
	if first >= 'a' && first <= 'z' {
		up = first - 32
	}
	for i := 0; i+len(needle) <= len(s); {
		k := htmlIndexEither(s[i:len(s)-len(needle)+1], first, up)
		if k < 0 {
			return -1
		}
		i += k
		if htmlHasPrefixFold(s[i:], needle) {
			return i
		}
		i++
	}
	return -1
}

// htmlIndexEither returns the first index of a or b in s.
func htmlIndexEither(s string, a, b byte) int {
	if a == b {
		return strings.IndexByte(s, a)
	}
	i := strings.IndexByte(s, a)
	if i < 0 {
		return strings.IndexByte(s, b)
	}
	if j := strings.IndexByte(s[:i], b); j >= 0 {
		return j
	}
	return i
}

// htmlHasPrefixFold reports whether s starts with the ASCII lower-case prefix,
// ignoring the case of ASCII letters in s.
func htmlHasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 32
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}
