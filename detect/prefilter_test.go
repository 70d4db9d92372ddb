package detect

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// prefilterPatterns exercise every kind of node the analysis looks at.
var prefilterPatterns = []string{
	`abc`, `abc|abd`, `a(?:b|c)d`, `ab?cd`, `ab*cd`, `ab+cd`, `(?:ab)+c`, `a{2,3}bc`, `a{0,2}bcd`,
	`\babc\b`, `^abc`, `abc$`, `(?:abc|b)d`, `[ab]cd`, `[a-d]{3}`, `(a)(b)(c)`, `a.cd`, `(?:a|b|c)dd`,
	`abc(?:d|)`, `(?:abc)?dab`, `a\s+bcd`, `a(?:bc|cb)d|dcba`, `(?:a+|b)cdd`, `ab(?:c|d)*ab`,
	`(?:ab|ba)(?:cd|dc)`, `a[^b]cd`, `(?:^|[.!?]\s*)abc`, `ab{2}c`, `(?:a|b)(?:a|b)(?:a|b)(?:a|b)(?:a|b)c`,
	`abc.*dab|cab`, `(abc)\s*(bad)|dcb`,
}

// prefilterTexts returns every string over a small alphabet up to length 6.
func prefilterTexts() []string {
	const alphabet = "abcd .!"
	var texts []string
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		texts = append(texts, prefix)
		if n == 0 {
			return
		}
		for i := range len(alphabet) {
			gen(prefix+alphabet[i:i+1], n-1)
		}
	}
	gen("", 6)
	return texts
}

// TestPrefilterSound checks the prefilter's one promise on every string
// over a small alphabet: wherever a pattern matches, its must set, and its
// query, are satisfied.
func TestPrefilterSound(t *testing.T) {
	texts := prefilterTexts()
	queries := 0
	for _, p := range prefilterPatterns {
		re := regexp.MustCompile(p)
		musts := pfMustSet(p) // all of them, however short
		if musts == nil {
			t.Errorf("%q: no must set", p)
		}
		q := regexpQuery(p)
		if q != nil {
			queries++
		}
		for _, s := range texts {
			if !re.MatchString(s) {
				continue
			}
			if !pfMayMatch(musts, s) {
				t.Fatalf("%q matches %q, which holds none of %q", p, s, musts)
			}
			if !q.mayMatch(s) {
				t.Fatalf("%q matches %q, which fails its query %q", p, s, q)
			}
		}
	}
	if queries < 10 {
		t.Errorf("only %d patterns have a query", queries)
	}
}

func TestRegexpQuery(t *testing.T) {
	for _, c := range []struct {
		pattern string
		want    pfQuery
	}{
		{`\bignore\s+(?:all|any)\b`, pfQuery{{{"ignore"}, {"all", "any"}}}},
		{`(?:show|print)\s+your\s+(?:prompt|rules)`, pfQuery{{{"print", "show"}, {"your"}, {"prompt", "rules"}}}},
		{`a(?:bc|cd)e`, pfQuery{{{"abce", "acde"}}}},
		{`when\s+user\s+asks|letters\s+of\s+your`, pfQuery{{{"when"}, {"user"}, {"asks"}}, {{"letters"}, {"your"}}}},
		{`(?:foo|ba)r+`, nil},       // "bar" has a must of two bytes only
		{`x*`, nil},                 // matches ""
		{`(?:hello|world)|.*`, nil}, // one alternative has none
		{`sent\s+to\s+(?:http|ftp)`, pfQuery{{{"sent"}, {"ftp", "http"}}}},
	} {
		if got := regexpQuery(c.pattern); !equalQuery(got, c.want) {
			t.Errorf("regexpQuery(%q) = %q, want %q", c.pattern, got, c.want)
		}
	}
	q := regexpQuery(`when\s+user\s+asks|letters\s+of\s+your`)
	for s, want := range map[string]bool{"when the user asks": true, "when user": false, "your letters": true, "asks user when": true, "": false} {
		if q.mayMatch(s) != want {
			t.Errorf("mayMatch(%q) = %v, want %v", s, !want, want)
		}
	}
}

func equalQuery(a, b pfQuery) bool {
	return slices.EqualFunc(a, b, func(x, y [][]string) bool {
		return slices.EqualFunc(x, y, func(u, v []string) bool { return slices.Equal(u, v) })
	})
}

// TestRuleQueriesSound checks, for every rule, that the texts its pattern
// matches among its own examples pass its query, and that the rules with
// match: window carry it.
func TestRuleQueriesSound(t *testing.T) {
	rs, err := parsedDefault()
	if err != nil {
		t.Fatal(err)
	}
	n := Normalizer{}
	windows := 0
	for i := range rs.Rules {
		r := &rs.Rules[i]
		rx := regexp.MustCompile(r.Pattern)
		q := regexpQuery(r.Pattern)
		if r.Match == "window" {
			windows++
			if !equalQuery(r.musts, q) {
				t.Errorf("rule %s: query %q, want %q", r.ID, r.musts, q)
			}
		}
		for _, ex := range slices.Concat(r.Tests.Positive, r.Tests.Negative) {
			norm := n.Normalize(ex).Text
			for _, s := range []string{ex, strings.ToLower(ex), norm} {
				if rx.MatchString(s) && !q.mayMatch(s) {
					t.Errorf("rule %s: pattern matches %q, which fails its query %q", r.ID, s, q)
				}
			}
		}
	}
	if windows == 0 {
		t.Error("no rule with match: window")
	}
}
