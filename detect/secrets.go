package detect

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/bits"
	"strings"
)

// secretsDetector finds leaked credentials (category secret) and personal
// data (category pii): cloud and SaaS API keys by their documented formats,
// private key blocks, JWTs, password and key assignments with high-entropy
// values, email addresses, payment card numbers (Luhn-checked), US social
// security numbers and IBANs (mod-97-checked).
//
// Candidates are found with strings.IndexByte on rare bytes ('_', '-', '@',
// '=', ':') and literal prefixes; nothing runs a regexp over the text.
// Evidence is always redacted, so results do not leak what they report.
type secretsDetector struct{}

func newSecretsDetector() Detector { return secretsDetector{} }

func (secretsDetector) Name() string { return "secrets" }

// Scores of the secret and PII rules.
const (
	secScoreCritical = 0.95 // private keys
	secScoreLive     = 0.9  // live API tokens
	secScoreCloud    = 0.85 // cloud access key ids
	secScoreJWT      = 0.6
	secScoreGeneric  = 0.45
	secScorePII      = 0.45 // card numbers, SSNs
	secScoreIBAN     = 0.3
	secScoreEmail    = 0.1
	secScoreExample  = 0.1 // documented example and test credentials
	secMaxFindings   = 20  // findings per rule per text
	secAWSNear       = 300 // bytes around an AWS key id searched for its secret
	secMaxKeyBody    = 16 << 10
)

func (secretsDetector) Detect(t *Text, emit func(Finding)) {
	sc := secScan{s: t.Orig, emit: emit}
	sc.underscores()
	sc.hyphens()
	sc.awsKeys()
	sc.slackWebhooks()
	sc.jwts()
	sc.emails()
	sc.numbers()
	sc.assignments()
}

// secScan is the state of one Detect call.
type secScan struct {
	s      string
	emit   func(Finding)
	counts map[string]int
	// taken are spans already reported as specific secrets, so that the
	// generic assignment rule does not report them again.
	taken [][2]int
}

func (sc *secScan) report(rule string, cat Category, sev Severity, score float64, msg string, lo, hi int, ev string) {
	if sc.counts == nil {
		sc.counts = map[string]int{}
	}
	if sc.counts[rule] >= secMaxFindings {
		return
	}
	sc.counts[rule]++
	if cat == CatSecret {
		sc.taken = append(sc.taken, [2]int{lo, hi})
	}
	sc.emit(Finding{Detector: "secrets", Rule: rule, Category: cat, Severity: sev, Score: score,
		Message: msg, Span: [2]int{lo, hi}, Evidence: ev})
}

// secret reports a credential token s[lo:hi], redacted, scored low when it
// is a documented example or a placeholder.
func (sc *secScan) secret(rule, what string, score float64, lo, hi int, example bool) {
	tok := sc.s[lo:hi]
	sev := SevMedium
	switch {
	case score >= secScoreCritical:
		sev = SevCritical
	case score >= 0.7:
		sev = SevHigh
	}
	msg := what
	if example || secPlaceholder(tok) {
		sev, score = SevLow, secScoreExample
		msg += " (documented example or placeholder)"
	}
	sc.report(rule, CatSecret, sev, score, msg, lo, hi, secRedact(tok))
}

// secRedact keeps at most a quarter of a secret, four characters at each
// end at most, and masks the rest.
func secRedact(tok string) string {
	k := min(4, len(tok)/4)
	return tok[:k] + strings.Repeat("*", len(tok)-2*k) + tok[len(tok)-k:]
}

// secPlaceholder reports tokens that are examples, not secrets: the word
// example, runs of x or *, or very low entropy.
func secPlaceholder(tok string) bool {
	l := strings.ToLower(tok)
	for _, w := range []string{"example", "xxxxxx", "******", "000000", "123456", "abcdef", "dummy", "placeholder", "your_", "yourkey", "redacted", "sample"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	return secEntropy(tok) < 3
}

// secEntropy is the Shannon entropy of s in bits per byte.
func secEntropy(s string) float64 {
	if s == "" {
		return 0
	}
	var freq [256]int
	for i := 0; i < len(s); i++ {
		freq[s[i]]++
	}
	h := 0.0
	for _, f := range freq {
		if f > 0 {
			p := float64(f) / float64(len(s))
			h -= p * math.Log2(p)
		}
	}
	return h
}

func secIsTok(c byte) bool { return htmlIsAlnum(c) || c == '_' || c == '-' }

// secBoundary reports whether s[i-1] (if any) does not continue a token.
func secBoundary(s string, i int) bool { return i == 0 || !secIsTok(s[i-1]) }

// secSpan returns the end of the token at s[i] made of bytes accepted by ok.
func secSpan(s string, i int, ok func(byte) bool) int {
	for i < len(s) && ok(s[i]) {
		i++
	}
	return i
}

func secAlnum(c byte) bool      { return htmlIsAlnum(c) }
func secAlnumUnder(c byte) bool { return htmlIsAlnum(c) || c == '_' }

// underscores finds GitHub tokens (ghp_ gho_ ghu_ ghs_ ghr_ github_pat_)
// and Stripe keys (sk_live_ rk_live_ sk_test_ rk_test_).
func (sc *secScan) underscores() {
	s := sc.s
	for i := 0; i < len(s); {
		k := strings.IndexByte(s[i:], '_')
		if k < 0 {
			return
		}
		p := i + k
		i = p + 1
		switch {
		case p >= 3 && s[p-3:p-1] == "gh" && strings.IndexByte("pousr", s[p-1]) >= 0 && secBoundary(s, p-3):
			e := secSpan(s, p+1, secAlnum)
			if e-p-1 >= 36 && e-p-1 <= 255 && (e == len(s) || !secIsTok(s[e])) {
				sc.secret("secrets.github_token", "GitHub token", secScoreLive, p-3, e, false)
				i = e
			}
		case p >= 6 && s[p-6:p+1] == "github_" && strings.HasPrefix(s[p:], "_pat_") && secBoundary(s, p-6):
			e := secSpan(s, p+5, secAlnumUnder)
			if e-p-5 >= 60 {
				sc.secret("secrets.github_token", "GitHub fine-grained token", secScoreLive, p-6, e, false)
				i = e
			}
		case p >= 2 && (s[p-2:p] == "sk" || s[p-2:p] == "rk") && secBoundary(s, p-2) &&
			(strings.HasPrefix(s[p:], "_live_") || strings.HasPrefix(s[p:], "_test_")):
			e := secSpan(s, p+6, secAlnum)
			if e-p-6 >= 16 {
				test := s[p+1:p+5] == "test"
				sc.secret("secrets.stripe_key", "Stripe secret key", secScoreLive, p-2, e, test)
				i = e
			}
		}
	}
}

// hyphens finds GitLab, Slack, OpenAI and Anthropic tokens and private key
// blocks.
func (sc *secScan) hyphens() {
	s := sc.s
	for i := 0; i < len(s); {
		k := strings.IndexByte(s[i:], '-')
		if k < 0 {
			return
		}
		p := i + k
		i = p + 1
		switch {
		case strings.HasPrefix(s[p:], "-----BEGIN "):
			i = sc.privateKey(p)
		case p >= 5 && s[p-5:p] == "glpat" && secBoundary(s, p-5):
			e := secSpan(s, p+1, secIsTok)
			if e-p-1 >= 20 {
				sc.secret("secrets.gitlab_token", "GitLab personal access token", secScoreLive, p-5, e, false)
				i = e
			}
		case p >= 4 && s[p-4:p-1] == "xox" && strings.IndexByte("baprse", s[p-1]) >= 0 && secBoundary(s, p-4):
			e := secSpan(s, p+1, func(c byte) bool { return htmlIsAlnum(c) || c == '-' })
			if e-p-1 >= 20 {
				sc.secret("secrets.slack_token", "Slack token", secScoreCloud, p-4, e, false)
				i = e
			}
		case p >= 2 && s[p-2:p] == "sk" && secBoundary(s, p-2):
			e := secSpan(s, p+1, secIsTok)
			body := s[p+1 : e]
			switch {
			case strings.HasPrefix(body, "ant-") && len(body) >= 40:
				sc.secret("secrets.anthropic_key", "Anthropic API key", secScoreLive, p-2, e, false)
			case (strings.HasPrefix(body, "proj-") || strings.HasPrefix(body, "svcacct-") ||
				strings.HasPrefix(body, "admin-")) && len(body) >= 40,
				len(body) >= 32 && secAllAlnum(body) && secMixed(body):
				sc.secret("secrets.openai_key", "OpenAI API key", secScoreLive, p-2, e, false)
			default:
				continue
			}
			i = e
		}
	}
}

func secAllAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if !htmlIsAlnum(s[i]) {
			return false
		}
	}
	return true
}

// secMixed reports whether s has upper case, lower case and digits, as
// random tokens do and words do not.
func secMixed(s string) bool {
	var u, l, d bool
	for i := 0; i < len(s); i++ {
		c := s[i]
		u = u || (c >= 'A' && c <= 'Z')
		l = l || (c >= 'a' && c <= 'z')
		d = d || (c >= '0' && c <= '9')
	}
	return u && l && d
}

// privateKey judges the "-----BEGIN " at s[p] and returns where scanning
// resumes.
func (sc *secScan) privateKey(p int) int {
	s := sc.s
	hdrEnd := strings.Index(s[p+11:min(len(s), p+80)], "-----")
	if hdrEnd < 0 {
		return p + 1
	}
	label := s[p+11 : p+11+hdrEnd]
	if !strings.HasSuffix(label, "PRIVATE KEY") && label != "PGP PRIVATE KEY BLOCK" {
		return p + 1
	}
	bodyStart := p + 11 + hdrEnd + 5
	lim := min(len(s), bodyStart+secMaxKeyBody)
	end := lim
	if k := strings.Index(s[bodyStart:lim], "-----END"); k >= 0 {
		end = bodyStart + k
		if k2 := strings.Index(s[end+8:min(len(s), end+80)], "-----"); k2 >= 0 {
			end += 8 + k2 + 5
		}
	}
	b64 := 0
	for i := bodyStart; i < end; i++ {
		if encClass[s[i]]&encB64Std != 0 {
			b64++
		}
	}
	hdr := s[p:bodyStart]
	if b64 < 64 {
		sc.report("secrets.private_key", CatSecret, SevLow, secScoreExample,
			"Private key header without key material (placeholder)", p, end, hdr)
		return end
	}
	sc.report("secrets.private_key", CatSecret, SevCritical, secScoreCritical,
		fmt.Sprintf("%s block with %d bytes of key material", strings.TrimSpace(label), b64), p, end,
		hdr+" [redacted]")
	return end
}

// awsKeys finds AWS access key ids (AKIA, ASIA ...) and the secret access
// keys near them, and Google API keys (AIza and 35 more characters).
func (sc *secScan) awsKeys() {
	s := sc.s
	for i := 0; i < len(s); {
		k := strings.IndexByte(s[i:], 'A')
		if k < 0 {
			return
		}
		p := i + k
		i = p + 1
		if p+20 > len(s) || !secBoundary(s, p) {
			continue // both key kinds are at least 20 bytes long
		}
		pre := s[p : p+4]
		if pre == "AIza" {
			e := secSpan(s, p+4, secIsTok)
			if e-p == 39 {
				sc.secret("secrets.google_api_key", "Google API key", 0.8, p, e, false)
				i = e
			}
			continue
		}
		if pre != "AKIA" && pre != "ASIA" && pre != "ABIA" && pre != "ACCA" {
			continue
		}
		ok := true
		for _, c := range []byte(s[p+4 : p+20]) {
			if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7' || c >= '0' && c <= '9') {
				ok = false
				break
			}
		}
		if !ok || (p+20 < len(s) && secIsTok(s[p+20])) {
			continue
		}
		score := secScoreCloud
		if pre == "ASIA" {
			score = 0.8
		}
		sc.secret("secrets.aws_access_key", "AWS access key id", score, p, p+20, strings.HasSuffix(s[p:p+20], "EXAMPLE"))
		sc.awsSecretNear(p)
		i = p + 20
	}
}

// awsSecretNear reports a 40-character secret access key near the key id
// at s[p].
func (sc *secScan) awsSecretNear(p int) {
	s := sc.s
	lo, hi := max(0, p-secAWSNear), min(len(s), p+20+secAWSNear)
	isKey := func(c byte) bool { return htmlIsAlnum(c) || c == '/' || c == '+' }
	for i := lo; i < hi; {
		if !isKey(s[i]) {
			i++
			continue
		}
		e := secSpan(s, i, isKey)
		if e-i == 40 && secMixed(s[i:e]) {
			sc.secret("secrets.aws_secret_key", "AWS secret access key", secScoreLive, i, e,
				strings.Contains(s[i:e], "EXAMPLE"))
			return
		}
		i = e
	}
}

// slackWebhooks finds Slack incoming webhook URLs.
func (sc *secScan) slackWebhooks() {
	const host = "hooks.slack.com/services/"
	const slash = 15 // the first '/' of host, rare in prose: find it, then look back
	s := sc.s
	// A URL may start at from or later; the search for '/' starts where
	// such a URL has it.
	for from := 0; from+slash < len(s); {
		k := strings.IndexByte(s[from+slash:], '/')
		if k < 0 {
			return
		}
		p := from + k
		from = p + 1
		if !strings.HasPrefix(s[p:], host) {
			continue
		}
		e := secSpan(s, p+len(host), func(c byte) bool { return htmlIsAlnum(c) || c == '/' || c == '_' })
		from = max(e, p+1)
		if e-p-len(host) >= 20 && strings.Count(s[p+len(host):e], "/") >= 2 {
			sc.secret("secrets.slack_webhook", "Slack webhook URL", 0.8, p, e, false)
		}
	}
}

// secJWTExample is the signature of jwt.io's example token.
const secJWTExample = "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"

// jwts finds JSON Web Tokens: three base64url parts, the first a JSON
// header naming "alg".
func (sc *secScan) jwts() {
	s := sc.s
	b64url := func(c byte) bool { return htmlIsAlnum(c) || c == '-' || c == '_' }
	for i := 2; i < len(s); {
		// 'J' is rare in prose: find it, then look back for "ey".
		k := strings.IndexByte(s[i:], 'J')
		if k < 0 {
			return
		}
		p := i + k - 2
		i += k + 1
		if s[p] != 'e' || s[p+1] != 'y' || !secBoundary(s, p) {
			continue
		}
		e1 := secSpan(s, p, b64url)
		if e1 >= len(s) || s[e1] != '.' {
			continue
		}
		e2 := secSpan(s, e1+1, b64url)
		if e2 == e1+1 || e2 >= len(s) || s[e2] != '.' {
			continue
		}
		e3 := secSpan(s, e2+1, b64url)
		hdr, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s[p:e1], "="))
		if err != nil || !strings.Contains(string(hdr), `"alg"`) {
			continue
		}
		sc.secret("secrets.jwt", "JSON Web Token (bearer credential)", secScoreJWT, p, e3,
			strings.HasPrefix(s[e2+1:e3], secJWTExample))
		i = e3
	}
}

// emails finds email addresses.
func (sc *secScan) emails() {
	s := sc.s
	local := func(c byte) bool { return htmlIsAlnum(c) || strings.IndexByte("._%+-", c) >= 0 }
	domain := func(c byte) bool { return htmlIsAlnum(c) || c == '.' || c == '-' }
	for i := 0; i < len(s); {
		k := strings.IndexByte(s[i:], '@')
		if k < 0 {
			return
		}
		p := i + k
		i = p + 1
		lo := p
		for lo > 0 && p-lo < 64 && local(s[lo-1]) {
			lo--
		}
		hi := secSpan(s, p+1, domain)
		for hi > p+1 && (s[hi-1] == '.' || s[hi-1] == '-') {
			hi--
		}
		for lo < p && s[lo] == '.' {
			lo++
		}
		if lo == p || hi == p+1 {
			continue
		}
		dom := strings.ToLower(s[p+1 : hi])
		dot := strings.LastIndexByte(dom, '.')
		if dot <= 0 || len(dom)-dot-1 < 2 || !secAllLetters(dom[dot+1:]) {
			continue
		}
		if secExampleDomain(dom) {
			continue
		}
		i = hi
		ev := s[lo:lo+1] + "***@" + s[p+1:hi]
		sc.report("pii.email", CatPII, SevLow, secScoreEmail, "Email address", lo, hi, ev)
	}
}

func secAllLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if !htmlIsLetter(s[i]) {
			return false
		}
	}
	return true
}

// secExampleDomain reports the domains reserved for documentation (RFC 2606).
func secExampleDomain(d string) bool {
	for _, x := range []string{"example.com", "example.org", "example.net", "example.edu", "test.com"} {
		if d == x || strings.HasSuffix(d, "."+x) {
			return true
		}
	}
	return strings.HasSuffix(d, ".example") || strings.HasSuffix(d, ".invalid") || strings.HasSuffix(d, ".test") ||
		strings.HasSuffix(d, ".localhost")
}

// numbers finds card numbers, SSNs and IBANs.
func (sc *secScan) numbers() {
	s := sc.s
	for i := 0; i < len(s); i++ {
		// Skip digit-free bytes sixteen at a time, then to the first digit.
		for i+16 <= len(s) {
			m0, m1 := secDigits(load64(s, i)), secDigits(load64(s, i+8))
			if m0|m1 != 0 {
				if m0 == 0 {
					i, m0 = i+8, m1
				}
				i += bits.TrailingZeros64(m0) >> 3
				break
			}
			i += 16
		}
		for i+8 <= len(s) {
			if m := secDigits(load64(s, i)); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < '0' || c > '9' {
			continue
		}
		if i > 0 && (htmlIsAlnum(s[i-1]) || s[i-1] == '.' || s[i-1] == ',') {
			if i >= 2 && htmlIsLetter(s[i-1]) && htmlIsLetter(s[i-2]) {
				if e, ok := sc.iban(i - 2); ok {
					i = e
					continue
				}
			}
			// Skip the rest of this token.
			for i+1 < len(s) && htmlIsAlnum(s[i+1]) {
				i++
			}
			continue
		}
		e := sc.digitGroup(i)
		i = max(i, e-1)
	}
}

// secDigits marks the ASCII digits of the little-endian word x with the high
// bit of their byte: x XOR '0' has a byte below 10 exactly where x has a
// digit. Only the lowest mark is exact (a borrow can mark bytes above it).
func secDigits(x uint64) uint64 {
	t := x ^ 0x3030303030303030
	return (t - 0x0A0A0A0A0A0A0A0A) &^ t & 0x8080808080808080
}

// digitGroup judges the number starting at s[i] and returns its end.
func (sc *secScan) digitGroup(i int) int {
	s := sc.s
	var digits [19]byte
	var groups [8]int
	n, g, sep := 0, 0, byte(0)
	p := i
	for p < len(s) {
		q := p
		for q < len(s) && s[q] >= '0' && s[q] <= '9' {
			q++
		}
		if n+q-p > len(digits) || g == len(groups) {
			return secSkipNumber(s, q)
		}
		for k := p; k < q; k++ {
			digits[n] = s[k]
			n++
		}
		groups[g] = q - p
		g++
		if q+1 < len(s) && (s[q] == ' ' || s[q] == '-') && s[q+1] >= '0' && s[q+1] <= '9' && (sep == 0 || sep == s[q]) {
			sep = s[q]
			p = q + 1
			continue
		}
		p = q
		break
	}
	if p < len(s) && (htmlIsAlnum(s[p]) || (p+1 < len(s) && (s[p] == '.' || s[p] == ',') && s[p+1] >= '0' && s[p+1] <= '9')) {
		return secSkipNumber(s, p)
	}
	switch {
	case g == 3 && sep == '-' && groups[0] == 3 && groups[1] == 2 && groups[2] == 4:
		sc.ssn(string(digits[:n]), i, p)
	case n >= 13 && n <= 19 && secCardShape(groups[:g]):
		sc.card(string(digits[:n]), i, p)
	}
	return p
}

// secSkipNumber returns the end of the digit-and-separator run at s[p].
func secSkipNumber(s string, p int) int {
	for p < len(s) && (htmlIsAlnum(s[p]) || s[p] == '-' || s[p] == '.' || s[p] == ',') {
		p++
	}
	return p
}

// secCardShape accepts a card number's grouping: unbroken, 4-4-4-4(-3),
// 4-6-5 (Amex) or 4-6-4 (Diners).
func secCardShape(gs []int) bool {
	if len(gs) == 1 {
		return true
	}
	if len(gs) == 3 && gs[0] == 4 && gs[1] == 6 && (gs[2] == 5 || gs[2] == 4) {
		return true
	}
	for k, n := range gs {
		if n != 4 && !(k == len(gs)-1 && n >= 1 && n <= 4) {
			return false
		}
	}
	return len(gs) >= 4
}

// secTestCards are the card numbers payment processors document for tests.
var secTestCards = map[string]bool{
	"4111111111111111": true, "4242424242424242": true, "4012888888881881": true, "4000056655665556": true,
	"5555555555554444": true, "5105105105105100": true, "5200828282828210": true, "378282246310005": true,
	"371449635398431": true, "6011111111111117": true, "6011000990139424": true, "3530111333300000": true,
	"30569309025904": true, "38520000023237": true, "4222222222222": true, "2223003122003222": true,
}

// card reports a Luhn-valid number with a known issuer prefix.
func (sc *secScan) card(d string, lo, hi int) {
	if !secLuhn(d) {
		return
	}
	brand := secCardBrand(d)
	if brand == "" {
		return
	}
	sev, score, msg := SevMedium, secScorePII, brand+" card number (Luhn-valid)"
	if secTestCards[d] {
		sev, score, msg = SevLow, secScoreExample, brand+" test card number"
	}
	sc.report("pii.credit_card", CatPII, sev, score, msg, lo, hi, d[:min(6, len(d)-4)]+strings.Repeat("*", len(d)-min(6, len(d)-4)-4)+d[len(d)-4:])
}

func secLuhn(d string) bool {
	sum, dbl := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if dbl {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		dbl = !dbl
	}
	return sum%10 == 0
}

// secCardBrand names the card network of an issuer prefix, or "".
func secCardBrand(d string) string {
	n := len(d)
	p2 := int(d[0]-'0')*10 + int(d[1]-'0')
	p4 := p2*100 + int(d[2]-'0')*10 + int(d[3]-'0')
	p3 := p4 / 10
	switch {
	case d[0] == '4' && (n == 13 || n == 16 || n == 19):
		return "Visa"
	case (p2 >= 51 && p2 <= 55 || p4 >= 2221 && p4 <= 2720) && n == 16:
		return "Mastercard"
	case (p2 == 34 || p2 == 37) && n == 15:
		return "American Express"
	case (p4 == 6011 || p2 == 65 || p3 >= 644 && p3 <= 649) && n >= 16:
		return "Discover"
	case p4 >= 3528 && p4 <= 3589 && n >= 16:
		return "JCB"
	case (p3 >= 300 && p3 <= 305 || p2 == 36 || p2 == 38) && n == 14:
		return "Diners Club"
	case p2 == 62 && n >= 16:
		return "UnionPay"
	}
	return ""
}

// ssn reports a US social security number in NNN-NN-NNNN form with valid
// area, group and serial.
func (sc *secScan) ssn(d string, lo, hi int) {
	area, group, serial := d[:3], d[3:5], d[5:]
	if area == "000" || area == "666" || area[0] == '9' || group == "00" || serial == "0000" {
		return
	}
	sev, score, msg := SevMedium, secScorePII, "US social security number"
	if d == "078051120" || d == "123456789" || d == "219099999" {
		sev, score, msg = SevLow, secScoreExample, "US social security number (well-known example)"
	}
	sc.report("pii.ssn", CatPII, sev, score, msg, lo, hi, "***-**-"+serial)
}

// secIBANLen is the IBAN length of each country that uses IBANs widely.
var secIBANLen = map[string]int{
	"AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20,
	"ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27,
	"LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25,
	"RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26, "AE": 23, "SA": 24, "IL": 23, "BR": 29,
}

// iban judges an IBAN starting at s[i] (two capital letters) and returns
// its end.
func (sc *secScan) iban(i int) (int, bool) {
	s := sc.s
	if !(s[i] >= 'A' && s[i] <= 'Z' && s[i+1] >= 'A' && s[i+1] <= 'Z') || !secBoundary(s, i) {
		return 0, false
	}
	want, ok := secIBANLen[s[i:i+2]]
	if !ok {
		return 0, false
	}
	var b strings.Builder
	p := i
	for p < len(s) && b.Len() < want {
		c := s[p]
		switch {
		case htmlIsAlnum(c):
			b.WriteByte(c)
			p++
		case c == ' ' && (b.Len()%4 == 0) && p+1 < len(s) && htmlIsAlnum(s[p+1]):
			p++
		default:
			return 0, false
		}
	}
	if b.Len() != want || (p < len(s) && htmlIsAlnum(s[p])) {
		return 0, false
	}
	code := b.String()
	if !secIBANValid(code) {
		return 0, false
	}
	sev, score, msg := SevLow, secScoreIBAN, "IBAN (checksum-valid)"
	if code == "GB82WEST12345698765432" || code == "DE89370400440532013000" || code == "GB29NWBK60161331926819" {
		score, msg = secScoreExample, "IBAN (well-known example)"
	}
	sc.report("pii.iban", CatPII, sev, score, msg, i, p, code[:4]+strings.Repeat("*", len(code)-8)+code[len(code)-4:])
	return p, true
}

// secIBANValid checks an IBAN's mod-97 checksum.
func secIBANValid(code string) bool {
	r := code[4:] + code[:4]
	rem := 0
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case c >= '0' && c <= '9':
			rem = (rem*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			rem = (rem*100 + int(c-'A'+10)) % 97
		default:
			return false
		}
	}
	return rem == 1
}

// secKeywords end the names of variables that hold secrets.
var secKeywords = []string{"password", "passwd", "passphrase", "pwd", "secret", "secret_key", "api_key", "apikey",
	"access_key", "token", "auth_token", "access_token", "private_key", "client_secret", "credentials"}

// assignments finds secrets assigned to variables named like secrets:
// password = "...", api_key: ..., with a high-entropy value.
func (sc *secScan) assignments() {
	s := sc.s
	for _, op := range []byte{'=', ':'} {
		for i := 0; i < len(s); {
			k := strings.IndexByte(s[i:], op)
			if k < 0 {
				break
			}
			p := i + k
			i = p + 1
			sc.assignment(p)
		}
	}
}

// assignment judges the '=' or ':' at s[p].
func (sc *secScan) assignment(p int) {
	s := sc.s
	if p+1 < len(s) && (s[p+1] == '=' || s[p+1] == ':') || p > 0 && strings.IndexByte("=!<>:", s[p-1]) >= 0 {
		return // ==, !=, ::, :=, <=
	}
	e := p
	for e > 0 && (s[e-1] == ' ' || s[e-1] == '"' || s[e-1] == '\'' || s[e-1] == '\t') {
		e--
	}
	b := e
	for b > 0 && e-b < 48 && (secAlnumUnder(s[b-1]) || s[b-1] == '-' || s[b-1] == '.') {
		b--
	}
	if b == e {
		return
	}
	name := strings.ToLower(strings.ReplaceAll(s[b:e], "-", "_"))
	match := false
	for _, kw := range secKeywords {
		if strings.HasSuffix(name, kw) {
			match = true
			break
		}
	}
	if !match {
		return
	}
	v := p + 1
	for v < len(s) && (s[v] == ' ' || s[v] == '\t') {
		v++
	}
	var lo, hi int
	if v < len(s) && (s[v] == '"' || s[v] == '\'' || s[v] == '`') {
		q := s[v]
		lo = v + 1
		k := strings.IndexByte(s[lo:min(len(s), lo+256)], q)
		if k < 0 {
			return
		}
		hi = lo + k
	} else {
		lo = v
		hi = secSpan(s, v, func(c byte) bool {
			return c > ' ' && c < 0x7F && strings.IndexByte(",;)]}\"'<>", c) < 0
		})
	}
	val := s[lo:hi]
	if len(val) < 8 || len(val) > 200 || strings.ContainsAny(val, "\n(){}[]$<>%") {
		return
	}
	for _, t := range sc.taken {
		if lo < t[1] && t[0] < hi {
			return
		}
	}
	if secPlaceholder(val) || !secStrong(val) {
		return
	}
	lv := strings.ToLower(val)
	for _, w := range []string{"password", "secret", "changeme", "token", "null", "none", "true", "false", "env", "process.", "os.", "config"} {
		if strings.Contains(lv, w) {
			return
		}
	}
	sc.report("secrets.generic_assignment", CatSecret, SevMedium, secScoreGeneric,
		"High-entropy value assigned to "+s[b:e], lo, hi, s[b:e]+"="+secRedact(val))
}

// secStrong reports values that look generated: three character classes
// (or two with length ≥ 16) and high entropy.
func secStrong(v string) bool {
	var u, l, d, o int
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'A' && c <= 'Z':
			u = 1
		case c >= 'a' && c <= 'z':
			l = 1
		case c >= '0' && c <= '9':
			d = 1
		default:
			o = 1
		}
	}
	classes := u + l + d + o
	if d == 0 && o == 0 {
		return false // words, identifiers
	}
	return (classes >= 3 || classes == 2 && len(v) >= 16) && secEntropy(v) >= 3.0
}
