package detect

import (
	"bytes"
	_ "embed"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

//go:embed rules.yaml
var defaultRules []byte

// DefaultRules returns the embedded rules file.
func DefaultRules() []byte { return slices.Clone(defaultRules) }

// parsedDefault is the embedded rule set, parsed once: a parsed RuleSet is
// never modified, and its compiled regexps are safe for concurrent use.
var parsedDefault = sync.OnceValues(func() (*RuleSet, error) { return ParseRules(defaultRules) })

// RuleSet is a parsed rules file.
type RuleSet struct {
	Version string `yaml:"version"`
	Rules   []Rule `yaml:"rules"`
}

// Rule is one pattern rule. A rule fires when one of its anchors occurs in
// the normalised text and its pattern matches near that anchor, and its
// unless pattern does not match the matched text's surroundings.
type Rule struct {
	ID          string   `yaml:"id"`
	Category    Category `yaml:"category"`
	Severity    Severity `yaml:"severity"`
	Score       float64  `yaml:"score"`
	Description string   `yaml:"description"`
	// Lang is the language of the rule's phrasing, if any (en, de, es, fr, ...).
	Lang string `yaml:"lang,omitempty"`
	// Anchors are literal strings, in normalised form (lower case), at least
	// one of which occurs in every text the rule matches.
	Anchors []string `yaml:"anchors"`
	// Requires are literal strings of which at least one must also occur
	// within Window bytes of an anchor before the pattern is tried: a cheap
	// co-occurrence test that keeps common anchor words ("ignore", "show")
	// from costing a regexp run each.
	Requires []string `yaml:"requires,omitempty"`
	// Pattern is a Go regexp run on the normalised text near anchors.
	Pattern string `yaml:"pattern"`
	// Unless is a Go regexp; when it matches the context around a match
	// (Window bytes each side), the match is discarded.
	Unless string `yaml:"unless,omitempty"`
	// Window is how many bytes around an anchor the pattern may span.
	Window int `yaml:"window,omitempty"`
	// Match says how anchors relate to matches. "start" (the default): every
	// match begins exactly where an anchor occurs, so the pattern is tried
	// anchored at each anchor and fails within a few bytes on ordinary text.
	// "window": the pattern is searched for anywhere within Window bytes of
	// an anchor (for patterns with leading context, e.g. "(?:^|[.!?] )new task").
	Match string `yaml:"match,omitempty"`
	// Preceded (match: start only) is a Go regexp that the text just before
	// a match must end with, e.g. `^|[.!?:]` for "at the start of a sentence";
	// Go regexps have no look-behind.
	Preceded string `yaml:"preceded,omitempty"`
	// Tests are examples the rule must and must not match.
	Tests RuleTests `yaml:"tests"`

	re     *regexp.Regexp
	unless *regexp.Regexp
	// atCtx is the pattern anchored at its start (match: start), preceded by
	// one rune of context so that \b sees the real preceding character.
	atCtx *regexp.Regexp
	// dfa screens anchors for atCtx (see ruleDFA).
	dfa      *lazyDFA
	preceded *regexp.Regexp
	// caret is set when the pattern uses ^: its candidate regions then start
	// at a line start, so that ^ never matches in the middle of a line.
	caret bool
	// musts is the pattern's prefilter (see regexpQuery) for match: window,
	// where the regexp searches a whole region; nil when it has none.
	musts pfQuery
}

// RuleTests hold a rule's examples.
type RuleTests struct {
	Positive []string `yaml:"positive"`
	Negative []string `yaml:"negative"`
}

const defaultWindow = 160

// ParseRules parses and validates a rules file.
func ParseRules(src []byte) (*RuleSet, error) {
	var rs RuleSet
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&rs); err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	if rs.Version == "" {
		return nil, fmt.Errorf("rules: missing version")
	}
	seen := map[string]bool{}
	known := map[Category]bool{}
	for _, c := range Categories {
		known[c] = true
	}
	for i := range rs.Rules {
		r := &rs.Rules[i]
		where := fmt.Sprintf("rules: rule %d (%s)", i+1, r.ID)
		if r.ID == "" {
			return nil, fmt.Errorf("%s: missing id", where)
		}
		if seen[r.ID] {
			return nil, fmt.Errorf("%s: duplicate id", where)
		}
		seen[r.ID] = true
		if !known[r.Category] {
			return nil, fmt.Errorf("%s: unknown category %q", where, r.Category)
		}
		if _, err := ParseSeverity(string(r.Severity)); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if r.Score <= 0 || r.Score > 1 {
			return nil, fmt.Errorf("%s: score %v not in (0,1]", where, r.Score)
		}
		if len(r.Anchors) == 0 {
			return nil, fmt.Errorf("%s: no anchors", where)
		}
		for _, a := range append(slices.Clip(r.Anchors), r.Requires...) {
			if a == "" || a != strings.ToLower(a) {
				return nil, fmt.Errorf("%s: anchor %q must be non-empty and lower case", where, a)
			}
		}
		if r.Pattern == "" {
			return nil, fmt.Errorf("%s: missing pattern", where)
		}
		var err error
		r.caret = strings.Contains(r.Pattern, "^")
		if r.Preceded != "" {
			if r.preceded, err = regexp.Compile(`(?:` + r.Preceded + `)\s*$`); err != nil {
				return nil, fmt.Errorf("%s: preceded: %w", where, err)
			}
		}
		switch r.Match {
		case "", "start":
			r.Match = "start"
			// Compiling is most of an engine's start-up time: compile
			// only the form the rule is matched with.
			if r.atCtx, err = regexp.Compile(`^(?s:.)(?:` + r.Pattern + `)`); err != nil {
				return nil, fmt.Errorf("%s: pattern: %w", where, err)
			}
			r.dfa = &lazyDFA{pattern: r.Pattern}
		case "window":
			if r.re, err = regexp.Compile(r.Pattern); err != nil {
				return nil, fmt.Errorf("%s: pattern: %w", where, err)
			}
			r.musts = regexpQuery(r.Pattern)
			if r.Preceded != "" {
				return nil, fmt.Errorf("%s: preceded needs match: start", where)
			}
		default:
			return nil, fmt.Errorf("%s: match %q: want start or window", where, r.Match)
		}
		if r.Unless != "" {
			if r.unless, err = regexp.Compile(r.Unless); err != nil {
				return nil, fmt.Errorf("%s: unless: %w", where, err)
			}
		}
		if r.Window == 0 {
			r.Window = defaultWindow
		}
	}
	return &rs, nil
}

// ruleDetector runs a RuleSet through one Aho–Corasick automaton over all
// anchors, confirming candidates with each rule's regexp.
type ruleDetector struct {
	rules []*Rule
	ac    *acDFA
	// byAnchor[i] lists the rules (indexes into rules) anchored by term i.
	byAnchor [][]int
	// requires[r] is the set (a bitset over term ids) of terms rule r
	// requires near an anchor; nil when it requires none.
	requires [][]uint64
	// maxTerm is the length of the longest term.
	maxTerm int
	reqIDs  [][]int
	// terms are every anchor and required string, indexed by automaton pattern id.
	terms []string
}

func newRuleDetector(rs *RuleSet, disabled map[string]bool) (*ruleDetector, error) {
	d := &ruleDetector{}
	idx := map[string]int{}
	term := func(s string) int {
		// A prefix of an anchor finds every place the anchor occurs, and
		// the pattern confirms the rest; short terms keep the automaton
		// small enough to stay in cache.
		s = truncateTerm(s)
		ti, ok := idx[s]
		if !ok {
			ti = len(d.terms)
			idx[s] = ti
			d.terms = append(d.terms, s)
			d.byAnchor = append(d.byAnchor, nil)
		}
		return ti
	}
	for i := range rs.Rules {
		r := &rs.Rules[i]
		if disabled[r.ID] || disabled[string(r.Category)] {
			continue
		}
		ri := len(d.rules)
		d.rules = append(d.rules, r)
		for _, a := range r.Anchors {
			ai := term(a)
			if !slices.Contains(d.byAnchor[ai], ri) {
				d.byAnchor[ai] = append(d.byAnchor[ai], ri)
			}
		}
		var req []int
		for _, q := range r.Requires {
			req = append(req, term(q))
		}
		d.reqIDs = append(d.reqIDs, req)
	}
	for _, req := range d.reqIDs {
		var set []uint64
		if len(req) > 0 {
			set = make([]uint64, (len(d.terms)+63)/64)
			for _, ti := range req {
				set[ti>>6] |= 1 << (ti & 63)
			}
		}
		d.requires = append(d.requires, set)
	}
	for _, t := range d.terms {
		d.maxTerm = max(d.maxTerm, len(t))
	}
	if len(d.terms) > 0 {
		if d.ac = newACDFA(d.terms); d.ac == nil {
			return nil, fmt.Errorf("rules: the %d anchors need more than 65,536 automaton states", len(d.terms))
		}
	}
	return d, nil
}

// maxTermLen is the longest anchor or required term the automaton holds.
const maxTermLen = 8

// truncateTerm shortens a term to maxTermLen bytes on a rune boundary.
func truncateTerm(s string) string {
	if len(s) <= maxTermLen {
		return s
	}
	i := maxTermLen
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

func (d *ruleDetector) Name() string { return "rules" }

// keywords are the single words leetspeak folding may produce.
func (d *ruleDetector) keywords() map[string]bool {
	kw := map[string]bool{}
	for _, a := range d.terms {
		for _, w := range strings.Fields(a) {
			if len(w) >= 3 && isLetters(w) {
				kw[w] = true
			}
		}
	}
	return kw
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

type span struct{ lo, hi int }

func (d *ruleDetector) Detect(t *Text, emit func(Finding)) {
	if d.ac == nil {
		return
	}
	text := t.Norm.Text
	sc := ruleScratchPool.Get().(*ruleScratch)
	defer sc.put()
	// Candidate regions per rule: anchor positions widened by the window,
	// merged when they overlap, kept only where a required term is near.
	ms := d.ac.findAllAux(text, sc.ms[:0], &sc.aux)
	sc.ms = ms
	if len(ms) == 0 {
		return
	}
	// near reports whether a term rule ri requires starts in [lo,hi).
	// Matches come sorted by end, and every term is at most d.maxTerm
	// bytes long, so the candidates lie in a short stretch of ms.
	near := func(ri int, lo, hi int) bool {
		req := d.requires[ri]
		if req == nil {
			return true
		}
		// The first match that ends at lo or later.
		i, j := 0, len(ms)
		for i < j {
			h := int(uint(i+j) >> 1)
			if ms[h].End < lo {
				i = h + 1
			} else {
				j = h
			}
		}
		for ; i < len(ms) && ms[i].End-d.maxTerm < hi; i++ {
			m := ms[i]
			if m.Start >= lo && m.Start < hi && req[m.PatternID>>6]&(1<<(m.PatternID&63)) != 0 {
				return true
			}
		}
		return false
	}
	var regions map[int][]span
	// lastEnd[ri] is the end of rule ri's last anchored match, so that an
	// anchor inside a reported match does not report it again.
	var lastEnd []int
	for _, m := range ms {
		for _, ri := range d.byAnchor[m.PatternID] {
			r := d.rules[ri]
			w := r.Window
			lo, hi := max(0, m.Start-w), min(len(text), m.End+w)
			if !near(ri, lo, hi) {
				continue
			}
			if r.atCtx != nil {
				if lastEnd == nil {
					lastEnd = sc.lastEnd(len(d.rules))
				}
				if m.Start < lastEnd[ri] {
					continue
				}
				if e := d.matchAt(t, r, m.Start, emit); e > 0 {
					lastEnd[ri] = e
				}
				continue
			}
			if regions == nil {
				regions = map[int][]span{}
			}
			rs := regions[ri]
			if n := len(rs); n > 0 && lo <= rs[n-1].hi {
				rs[n-1].hi = max(rs[n-1].hi, hi)
			} else {
				rs = append(rs, span{lo, hi})
			}
			regions[ri] = rs
		}
	}
	if len(regions) == 0 {
		return
	}
	ids := make([]int, 0, len(regions))
	for ri := range regions {
		ids = append(ids, ri)
	}
	slices.Sort(ids)
	for _, ri := range ids {
		r := d.rules[ri]
		for _, reg := range regions[ri] {
			d.match(t, r, reg, emit)
		}
	}
}

// ruleScratch holds the buffers of one Detect call.
type ruleScratch struct {
	ms   []acMatch
	aux  acAux
	ends []int
}

// ruleScratchPool recycles ruleScratch across Detect calls.
var ruleScratchPool = sync.Pool{New: func() any { return new(ruleScratch) }}

// lastEnd returns n zeros.
func (sc *ruleScratch) lastEnd(n int) []int {
	if cap(sc.ends) < n {
		sc.ends = make([]int, n)
	}
	sc.ends = sc.ends[:n]
	clear(sc.ends)
	return sc.ends
}

// put returns sc to the pool unless a very long text made it large.
func (sc *ruleScratch) put() {
	const maxMatches = 1 << 14
	if cap(sc.ms) > maxMatches || cap(sc.aux[0]) > maxMatches || cap(sc.aux[1]) > maxMatches || cap(sc.aux[2]) > maxMatches {
		return
	}
	ruleScratchPool.Put(sc)
}

// matchAt tries rule r anchored at byte pos of the normalised text and
// returns the end of the match, or 0.
func (d *ruleDetector) matchAt(t *Text, r *Rule, pos int, emit func(Finding)) int {
	text := t.Norm.Text
	if r.preceded != nil && !r.preceded.MatchString(text[max(0, pos-precededContext):pos]) {
		return 0
	}
	hi := min(len(text), pos+maxMatch)
	if d := r.dfa.get(); d != nil && !d.mayMatch(text[pos:hi]) {
		return 0
	}
	var s, e int
	if pos == 0 {
		// No preceding rune: a space stands in for the start of text.
		m := r.atCtx.FindStringIndex(" " + text[:hi])
		if m == nil {
			return 0
		}
		s, e = 0, m[1]-1
	} else {
		_, size := utf8.DecodeLastRuneInString(text[:pos])
		m := r.atCtx.FindStringIndex(text[pos-size : hi])
		if m == nil {
			return 0
		}
		s, e = pos, pos-size+m[1]
	}
	if s == e {
		return 0
	}
	d.report(t, r, s, e, emit)
	return e
}

// maxMatch bounds how far an anchored match may run past its anchor. It
// also keeps the input small enough for Go's backtracking matcher, which is
// much faster than its NFA on the short anchored attempts made here.
const maxMatch = 320

// precededContext is how much text before a match Preceded sees.
const precededContext = 12

func (d *ruleDetector) report(t *Text, r *Rule, s, e int, emit func(Finding)) {
	text := t.Norm.Text
	if r.unless != nil {
		lo, hi := max(0, s-r.Window), min(len(text), e+r.Window)
		if r.unless.MatchString(text[lo:hi]) {
			return
		}
	}
	sp := t.Norm.OrigSpan(s, e)
	emit(Finding{
		Detector: "rules",
		Rule:     r.ID,
		Category: r.Category,
		Severity: r.Severity,
		Score:    r.Score,
		Message:  r.Description,
		Span:     sp,
		Evidence: t.Orig[sp[0]:sp[1]],
	})
}

func (d *ruleDetector) match(t *Text, r *Rule, reg span, emit func(Finding)) {
	text := t.Norm.Text
	if r.caret && reg.lo > 0 {
		// Go regexps have no "match ^ only at the real start" option for
		// a substring: start the region at the beginning of its line (or
		// give up on ^ there if the line is very long, by skipping to a
		// position ^ cannot fake: a space boundary is not a line start, so
		// widen by one byte and drop matches anchored at the region start).
		from := max(0, reg.lo-512)
		if i := strings.LastIndexByte(text[from:reg.lo], '\n'); i >= 0 {
			reg.lo = from + i + 1
		} else if from == 0 {
			reg.lo = 0
		} else {
			d.matchFrom(t, r, reg, emit, true)
			return
		}
	}
	d.matchFrom(t, r, reg, emit, false)
}

func (d *ruleDetector) matchFrom(t *Text, r *Rule, reg span, emit func(Finding), midLine bool) {
	text := t.Norm.Text
	sub := text[reg.lo:reg.hi]
	if !r.musts.mayMatch(sub) {
		return
	}
	for _, m := range r.re.FindAllStringIndex(sub, -1) {
		if midLine && m[0] == 0 {
			continue // ^ matched at an artificial region start
		}
		if m[0] == m[1] {
			continue
		}
		d.report(t, r, reg.lo+m[0], reg.lo+m[1], emit)
	}
}
