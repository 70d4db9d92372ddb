package detect

import (
	"strings"
	"testing"
)

// scanRule runs only the rule detector over s and returns the ids it fired.
func scanRule(t *testing.T, d *ruleDetector, n *Normalizer, s string) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	txt := &Text{Field: "text", Orig: s, Norm: n.Normalize(s)}
	d.Detect(txt, func(f Finding) {
		if f.Span[0] < 0 || f.Span[1] > len(s) || f.Span[0] > f.Span[1] {
			t.Errorf("rule %s: span %v outside text of %d bytes", f.Rule, f.Span, len(s))
		}
		got[f.Rule] = true
	})
	return got
}

// TestRuleExamples checks every rule of the embedded rule set against its own
// positive and negative examples.
func TestRuleExamples(t *testing.T) {
	rs, err := ParseRules(defaultRules)
	if err != nil {
		t.Fatal(err)
	}
	d, err := newRuleDetector(rs, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := &Normalizer{Keywords: d.keywords()}
	for _, r := range rs.Rules {
		t.Run(r.ID, func(t *testing.T) {
			if len(r.Tests.Positive) == 0 || len(r.Tests.Negative) == 0 {
				t.Fatalf("rule %s needs at least one positive and one negative example", r.ID)
			}
			for _, s := range r.Tests.Positive {
				if !scanRule(t, d, n, s)[r.ID] {
					t.Errorf("positive example not matched: %q", s)
				}
			}
			for _, s := range r.Tests.Negative {
				if scanRule(t, d, n, s)[r.ID] {
					t.Errorf("negative example matched: %q", s)
				}
			}
		})
	}
}

func TestParseRulesErrors(t *testing.T) {
	base := "version: \"1\"\nrules:\n  - id: x\n    category: prompt_injection\n    severity: high\n    score: 0.5\n    description: d\n    anchors: [a]\n    pattern: 'a'\n"
	cases := []struct{ name, src, want string }{
		{"no version", "rules: []\n", "missing version"},
		{"unknown field", base + "    colour: red\n", "colour"},
		{"bad category", strings.Replace(base, "prompt_injection", "nope", 1), "unknown category"},
		{"bad severity", strings.Replace(base, "severity: high", "severity: huge", 1), "unknown severity"},
		{"bad score", strings.Replace(base, "score: 0.5", "score: 1.5", 1), "score"},
		{"upper anchor", strings.Replace(base, "anchors: [a]", "anchors: [A]", 1), "lower case"},
		{"bad regexp", strings.Replace(base, "pattern: 'a'", "pattern: 'a('", 1), "pattern"},
		{"duplicate", base + strings.TrimPrefix(base, "version: \"1\"\nrules:\n"), "duplicate id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseRules([]byte(c.src))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want error containing %q", err, c.want)
			}
		})
	}
	if _, err := ParseRules([]byte(base)); err != nil {
		t.Fatalf("valid rules rejected: %v", err)
	}
}
