package detect

import (
	"regexp"
	"testing"
	"unicode/utf8"
)

// TestRuleDFASound checks the DFA's one promise on every string over a
// small alphabet, after every context character: where the pattern matches
// at the start, the DFA says it may.
func TestRuleDFASound(t *testing.T) {
	patterns := []string{
		`abc`, `a(?:b|c)d`, `ab?c`, `ab*c`, `a+b`, `a{2,3}b`, `\ba\b`, `\bab\s+c`, `^ab`, `ab$`, `a\B`,
		`(?:a|ab)c`, `[^a]b`, `a.b`, `(?s:a.b)`, `(?i)AB`, `é`, `a[^.\n]{0,3}b`, `(?:^|[.!?]\s*)a`, `ab|`,
		`(a)(b)`, `[a-c]{2}\b`, `a\s*$`, `(?:a\s+){2,}b`, `x`, `a{13}`, `(?:ab){7}`,
	}
	alphabet := []string{"a", "b", "c", " ", ".", "\n", "é", "A"}
	var texts []string
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		texts = append(texts, prefix)
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			gen(prefix+c, n-1)
		}
	}
	gen("", 5)
	for _, p := range patterns {
		d := newRuleDFA(p)
		if d == nil {
			t.Fatalf("%q: no DFA", p)
		}
		re := regexp.MustCompile(`^(?s:.)(?:` + p + `)`)
		for _, s := range texts {
			for _, ctx := range []string{" ", "a", "."} {
				if re.MatchString(ctx+s) && !d.mayMatch(s) {
					t.Fatalf("%q matches %q after %q, but the DFA says it cannot", p, s, ctx)
				}
			}
		}
	}
	// It does rule out what cannot match.
	d := newRuleDFA(`ignore\s+(?:all\s+)?previous`)
	for _, s := range []string{"ignored", "ignore the", "ignore all of", "ignore previously"[:10]} {
		if d.mayMatch(s) {
			t.Errorf("may match %q", s)
		}
	}
	for _, s := range []string{"ignore previous", "ignore all previous", "ignore\tprevious", "ignore all previous ones"} {
		if !d.mayMatch(s) {
			t.Errorf("cannot match %q", s)
		}
	}
}

// TestRuleDFAOnRules checks every anchored rule's DFA at every position of
// its own examples, normalised, as matchAt runs it.
func TestRuleDFAOnRules(t *testing.T) {
	rs, err := parsedDefault()
	if err != nil {
		t.Fatal(err)
	}
	n := Normalizer{}
	checked := 0
	for i := range rs.Rules {
		r := &rs.Rules[i]
		if r.atCtx == nil {
			continue
		}
		d := r.dfa.get()
		if d == nil {
			continue
		}
		checked++
		for _, ex := range append(append([]string(nil), r.Tests.Positive...), r.Tests.Negative...) {
			text := n.Normalize(ex).Text
			for pos := 0; pos < len(text); pos++ {
				if !utf8.RuneStart(text[pos]) {
					continue
				}
				hi := min(len(text), pos+maxMatch)
				in := " " + text[:hi]
				if pos > 0 {
					_, size := utf8.DecodeLastRuneInString(text[:pos])
					in = text[pos-size : hi]
				}
				if r.atCtx.MatchString(in) && !d.mayMatch(text[pos:hi]) {
					t.Errorf("rule %s matches %q at %d, but its DFA says it cannot", r.ID, text, pos)
				}
			}
		}
	}
	if checked < 30 {
		t.Errorf("only %d rules have a DFA", checked)
	}
}
