package detect

import (
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"
)

// A rule's prefilter is made of sets of literal strings at least one of
// which occurs in every match of its pattern (codesearch-style "must"
// literals, derived from the parsed pattern). A region that holds none of
// them cannot match, so the regexp is not searched there: searching a region
// for a large pattern costs tens of microseconds, a few substring searches
// far less. Rules with match: window use it (see pfQuery); anchored
// attempts are screened by a DFA instead (see ruleDFA).

// Limits of the analysis: sets of exact strings larger than this, or
// prefilters of more strings, are given up.
const (
	pfMaxExact = 16
	pfMaxMusts = 24
	// pfMinLen is the shortest literal worth searching for.
	pfMinLen = 3
)

// A pfQuery is a stronger prefilter for patterns whose alternatives each
// need several literals: a match holds, for some alternative (conjunction)
// of the query, one string of every set of that conjunction. Nil means no
// constraint.
type pfQuery [][][]string

// regexpQuery returns the query of a Go regexp pattern, or nil: the
// pattern's top-level alternatives, each with every useful must set of its
// parts (a set of at least pfMinLen-byte strings, at most pfMaxMusts of
// them). An alternative with no such set makes the query nil.
func regexpQuery(pattern string) pfQuery {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	alts := []*syntax.Regexp{re}
	if re.Op == syntax.OpAlternate {
		alts = re.Sub
	}
	var q pfQuery
	for _, alt := range alts {
		var conj [][]string
		for _, set := range pfConj(alt) {
			if pfUseful(set) {
				conj = append(conj, set)
			}
		}
		if len(conj) == 0 {
			return nil
		}
		q = append(q, conj)
	}
	return q
}

// pfUseful reports whether a must set is worth searching for.
func pfUseful(set []string) bool {
	return len(set) > 0 && len(set) <= pfMaxMusts && pfMinLength(set) >= pfMinLen
}

// pfConj returns must sets that every match of re satisfies together: for
// a concatenation, those of its parts and of its runs of exact parts; else
// re's must set.
func pfConj(re *syntax.Regexp) [][]string {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	if re.Op != syntax.OpConcat {
		if m := pfAnalyze(re).mustSet(); m != nil {
			return [][]string{m}
		}
		return nil
	}
	var conj [][]string
	cur := []string{""}
	flush := func() {
		if m := pfSimplify(cur); m != nil {
			conj = append(conj, m)
		}
		cur = []string{""}
	}
	for _, sub := range re.Sub {
		p := pfAnalyze(sub)
		if p.exact != nil && len(cur)*len(p.exact) <= pfMaxExact {
			cur = pfCross(cur, p.exact)
			continue
		}
		flush()
		if m := p.mustSet(); m != nil {
			conj = append(conj, m)
		}
		if p.exact != nil {
			cur = slices.Clone(p.exact)
		}
	}
	flush()
	return conj
}

// mayMatch reports whether s satisfies the query (always, for nil).
func (q pfQuery) mayMatch(s string) bool {
	if q == nil {
		return true
	}
next:
	for _, conj := range q {
		for _, set := range conj {
			if !pfMayMatch(set, s) {
				continue next
			}
		}
		return true
	}
	return false
}

// pfInfo describes what a pattern node matches: exactly one of the strings
// of exact (when known), and some string that contains one of musts as a
// substring (when known: nil means no constraint).
type pfInfo struct {
	exact []string
	musts []string
}

// pfMustSet returns the strings one of which every match of pattern holds,
// however short or many, or nil.
func pfMustSet(pattern string) []string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	return pfAnalyze(re.Simplify()).mustSet()
}

// pfMayMatch reports whether s holds one of musts (always true for none).
func pfMayMatch(musts []string, s string) bool {
	if len(musts) == 0 {
		return true
	}
	for _, m := range musts {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// mustSet returns the strings one of which every match contains, or nil.
func (p pfInfo) mustSet() []string {
	if p.exact != nil {
		return pfSimplify(p.exact)
	}
	return pfSimplify(p.musts)
}

// pfSimplify drops the strings of a must set that contain another of its
// strings (finding the shorter one is enough), sorted; a set that holds ""
// constrains nothing and becomes nil.
func pfSimplify(set []string) []string {
	if set == nil {
		return nil
	}
	var out []string
	for _, s := range set {
		if s == "" {
			return nil
		}
		covered := false
		for _, t := range set {
			if t != s && strings.Contains(s, t) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// pfBetter reports whether must set a is more selective than b: longer
// shortest string, then fewer strings. A nil set is the least selective.
func pfBetter(a, b []string) bool {
	if a == nil {
		return false
	}
	if b == nil {
		return true
	}
	ma, mb := pfMinLength(a), pfMinLength(b)
	if ma != mb {
		return ma > mb
	}
	return len(a) < len(b)
}

func pfMinLength(set []string) int {
	m := -1
	for _, s := range set {
		if m < 0 || len(s) < m {
			m = len(s)
		}
	}
	return m
}

// pfAnalyze computes a node's pfInfo. It only ever claims less than is
// true: exact is set only when the node matches nothing else, and every
// match contains one of musts.
func pfAnalyze(re *syntax.Regexp) pfInfo {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return pfInfo{exact: []string{""}}
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return pfInfo{}
		}
		for _, r := range re.Rune {
			if r == utf8.RuneError || !utf8.ValidRune(r) {
				return pfInfo{}
			}
		}
		return pfInfo{exact: []string{string(re.Rune)}}
	case syntax.OpCharClass:
		// A small class is a set of one-rune strings. (U+FFFD also
		// matches invalid bytes: such a class is left alone.)
		var set []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if hi-lo >= pfMaxExact || len(set)+int(hi-lo)+1 > pfMaxExact {
				return pfInfo{}
			}
			for r := lo; r <= hi; r++ {
				if r == utf8.RuneError || !utf8.ValidRune(r) {
					return pfInfo{}
				}
				set = append(set, string(r))
			}
		}
		if len(set) == 0 {
			return pfInfo{} // matches nothing: claim nothing either
		}
		return pfInfo{exact: set}
	case syntax.OpCapture:
		return pfAnalyze(re.Sub[0])
	case syntax.OpQuest:
		sub := pfAnalyze(re.Sub[0])
		if sub.exact != nil && len(sub.exact) < pfMaxExact {
			return pfInfo{exact: append(slices.Clip(sub.exact), "")}
		}
		return pfInfo{}
	case syntax.OpPlus:
		return pfInfo{musts: pfAnalyze(re.Sub[0]).mustSet()}
	case syntax.OpRepeat:
		if re.Min == 0 {
			return pfInfo{}
		}
		return pfInfo{musts: pfAnalyze(re.Sub[0]).mustSet()}
	case syntax.OpConcat:
		return pfConcat(re.Sub)
	case syntax.OpAlternate:
		var exact, musts []string
		exactOK, mustsOK := true, true
		for _, sub := range re.Sub {
			p := pfAnalyze(sub)
			if exactOK && p.exact != nil && len(exact)+len(p.exact) <= pfMaxExact {
				exact = append(exact, p.exact...)
			} else {
				exactOK = false
			}
			if m := p.mustSet(); mustsOK && m != nil {
				musts = append(musts, m...)
			} else {
				mustsOK = false
			}
		}
		if exactOK {
			return pfInfo{exact: exact}
		}
		if mustsOK {
			return pfInfo{musts: musts}
		}
		return pfInfo{}
	}
	// Star, any character, and whatever else: no constraint.
	return pfInfo{}
}

// pfConcat analyses a concatenation: runs of parts with exact sets are
// multiplied out while small; every part's must set, and every such run,
// is a must set of the whole, of which the most selective is kept.
func pfConcat(subs []*syntax.Regexp) pfInfo {
	cur := []string{""} // exact strings of the current run of parts
	exactAll := true
	var best []string
	flush := func() {
		if m := pfSimplify(cur); pfBetter(m, best) {
			best = m
		}
		cur = []string{""}
	}
	for _, sub := range subs {
		p := pfAnalyze(sub)
		if p.exact != nil && len(cur)*len(p.exact) <= pfMaxExact {
			cur = pfCross(cur, p.exact)
			continue
		}
		exactAll = false
		flush()
		if m := p.mustSet(); pfBetter(m, best) {
			best = m
		}
		if p.exact != nil {
			cur = slices.Clone(p.exact)
		}
	}
	if exactAll {
		return pfInfo{exact: cur}
	}
	flush()
	return pfInfo{musts: best}
}

// pfCross returns every a+b for a in as and b in bs.
func pfCross(as, bs []string) []string {
	out := make([]string, 0, len(as)*len(bs))
	for _, a := range as {
		for _, b := range bs {
			out = append(out, a+b)
		}
	}
	return out
}
