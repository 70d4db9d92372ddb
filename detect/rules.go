package detect

import (
	"bytes"
	_ "embed"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/coregx/ahocorasick"
	"go.yaml.in/yaml/v3"
)

//go:embed rules.yaml
var defaultRules []byte

// DefaultRules returns the embedded rules file.
func DefaultRules() []byte { return slices.Clone(defaultRules) }

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
	// Pattern is a Go regexp run on the normalised text near anchors.
	Pattern string `yaml:"pattern"`
	// Unless is a Go regexp; when it matches the context around a match
	// (Window bytes each side), the match is discarded.
	Unless string `yaml:"unless,omitempty"`
	// Window is how many bytes around an anchor the pattern may span.
	Window int `yaml:"window,omitempty"`
	// Tests are examples the rule must and must not match.
	Tests RuleTests `yaml:"tests"`

	re     *regexp.Regexp
	unless *regexp.Regexp
}

// RuleTests hold a rule's examples.
type RuleTests struct {
	Positive []string `yaml:"positive"`
	Negative []string `yaml:"negative"`
}

const defaultWindow = 240

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
		for _, a := range r.Anchors {
			if a == "" || a != strings.ToLower(a) {
				return nil, fmt.Errorf("%s: anchor %q must be non-empty and lower case", where, a)
			}
		}
		if r.Pattern == "" {
			return nil, fmt.Errorf("%s: missing pattern", where)
		}
		var err error
		if r.re, err = regexp.Compile(r.Pattern); err != nil {
			return nil, fmt.Errorf("%s: pattern: %w", where, err)
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
	ac    *ahocorasick.Automaton
	// byAnchor[i] lists the rules (indexes into rules) anchored by pattern i.
	byAnchor [][]int
	anchors  []string
}

func newRuleDetector(rs *RuleSet, disabled map[string]bool) (*ruleDetector, error) {
	d := &ruleDetector{}
	idx := map[string]int{}
	for i := range rs.Rules {
		r := &rs.Rules[i]
		if disabled[r.ID] || disabled[string(r.Category)] {
			continue
		}
		ri := len(d.rules)
		d.rules = append(d.rules, r)
		for _, a := range r.Anchors {
			ai, ok := idx[a]
			if !ok {
				ai = len(d.anchors)
				idx[a] = ai
				d.anchors = append(d.anchors, a)
				d.byAnchor = append(d.byAnchor, nil)
			}
			if !slices.Contains(d.byAnchor[ai], ri) {
				d.byAnchor[ai] = append(d.byAnchor[ai], ri)
			}
		}
	}
	if len(d.anchors) > 0 {
		ac, err := ahocorasick.NewBuilder().AddStrings(d.anchors).Build()
		if err != nil {
			return nil, fmt.Errorf("rules: build automaton: %w", err)
		}
		d.ac = ac
	}
	return d, nil
}

func (d *ruleDetector) Name() string { return "rules" }

// keywords are the single words leetspeak folding may produce.
func (d *ruleDetector) keywords() map[string]bool {
	kw := map[string]bool{}
	for _, a := range d.anchors {
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
	hay := []byte(text)
	// Candidate regions per rule: anchor positions widened by the window,
	// merged when they overlap.
	regions := map[int][]span{}
	for _, m := range d.ac.FindAllOverlapping(hay) {
		for _, ri := range d.byAnchor[m.PatternID] {
			w := d.rules[ri].Window
			lo, hi := max(0, m.Start-w), min(len(text), m.End+w)
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

func (d *ruleDetector) match(t *Text, r *Rule, reg span, emit func(Finding)) {
	text := t.Norm.Text
	sub := text[reg.lo:reg.hi]
	for _, m := range r.re.FindAllStringIndex(sub, -1) {
		s, e := reg.lo+m[0], reg.lo+m[1]
		if r.unless != nil {
			lo, hi := max(0, s-r.Window), min(len(text), e+r.Window)
			if r.unless.MatchString(text[lo:hi]) {
				continue
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
}
