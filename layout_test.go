package sentineldf_test

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// An edgeRule forbids packages matching From to depend, directly or
// transitively, on packages matching any of To, except those matching
// Except. Patterns are paths relative to the module root: "detect" matches
// detect and everything under it, "." matches the root package only, and "*"
// matches every package of the module. A package may always depend on its
// own subtree, and a rule's From subtree may depend on itself (a generator
// under detect/ may import detect).
type edgeRule struct {
	From   string
	To     []string
	Except []string
	Why    string
}

// backends implement the root package's seams; they never import each
// other, and only cmd/sentineldf names them.
var backends = []string{"sqlite", "postgres", "localfs", "s3", "redis", "inmem", "stripe"}

// layoutRules is the dependency rule of docs/ARCHITECTURE.md. Extend it when
// a package is added.
func layoutRules() []edgeRule {
	rules := []edgeRule{
		{From: ".", To: []string{"*"}, Why: "the root package holds domain types and imports nothing of ours"},
		{From: "detect", To: []string{"*"}, Why: "the engine stands alone"},
		{From: "dataset", To: []string{"*"}, Why: "readers and writers depend only on the standard library and format libraries"},
		{From: "mbom", To: []string{"*"}, Why: "signed records depend only on the standard library"},
		{From: "eval", To: []string{"*"}, Why: "metrics are pure functions"},
		{From: "client", To: []string{"*"}, Except: []string{"."}, Why: "the public SDK shares the wire types of the root package and must not drag the server in"},
		{From: "telemetry", To: []string{"*"}, Why: "logging, metrics and tracing setup stand alone"},
		{From: "api", To: []string{"worker", "client"}, Why: "the control plane does not run jobs and is not its own client"},
		{From: "worker", To: []string{"api", "client"}, Why: "the data plane does not serve HTTP"},
		{From: "scan", To: []string{"*"}, Except: []string{"detect", "dataset", "mbom"}, Why: "the pipeline wires the engine, readers and records only"},
		{From: "corpus", To: []string{"*"}, Except: []string{"detect"}, Why: "dataset-level detectors use the engine only"},
		{From: "classify", To: []string{"*"}, Except: []string{"detect", "dataset"}, Why: "the classifier is a detector: it sees the engine's types and reads training data"},
		{From: "onnx", To: []string{"*"}, Except: []string{"detect", "classify"}, Why: "the ONNX runtime adapter serves detectors only"},
		{From: "*", To: []string{"cmd"}, Why: "commands are leaves: nothing imports them"},
	}
	for _, b := range backends {
		rules = append(rules, edgeRule{From: b, To: without(backends, b), Why: "backends never import each other"})
	}
	for _, p := range []string{"storetest", "blobtest", "cachetest"} {
		rules = append(rules, edgeRule{From: p, To: backends, Why: "a conformance suite is written against the seam, never a backend"})
	}
	for _, p := range []string{"api", "web", "worker", "billing"} {
		rules = append(rules, edgeRule{From: p, To: backends, Why: "only cmd/sentineldf names concrete backends"})
	}
	return rules
}

func without(list []string, drop string) []string {
	var out []string
	for _, s := range list {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}

// match reports whether the module-relative package path rel matches pattern.
func match(pattern, rel string) bool {
	switch pattern {
	case "*":
		return true
	case ".":
		return rel == "."
	}
	return rel == pattern || strings.HasPrefix(rel, pattern+"/")
}

func matchAny(patterns []string, rel string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, rel) })
}

// violations returns every forbidden edge of deps, a map from each package
// of the module to the module packages it depends on (module-relative).
func violations(deps map[string][]string, rules []edgeRule) []string {
	var out []string
	pkgs := make([]string, 0, len(deps))
	for p := range deps {
		pkgs = append(pkgs, p)
	}
	slices.Sort(pkgs)
	for _, from := range pkgs {
		for _, to := range deps[from] {
			if from != "." && match(from, to) {
				continue // its own subtree
			}
			if from == to {
				continue
			}
			for _, r := range rules {
				inside := r.From != "*" && r.From != "." && match(r.From, to)
				if match(r.From, from) && !inside && matchAny(r.To, to) && !matchAny(r.Except, to) {
					out = append(out, from+" -> "+to+": "+r.Why)
					break
				}
			}
		}
	}
	return out
}

// moduleDeps lists the module's packages with the module packages each
// depends on, directly or not, ignoring tests.
func moduleDeps(t *testing.T) map[string][]string {
	t.Helper()
	mod, err := exec.Command("go", "list", "-m").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	module := strings.TrimSpace(string(mod))
	// -e: a package that is mid-edit and does not compile still lists its imports.
	cmd := exec.Command("go", "list", "-e", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	rel := func(p string) (string, bool) {
		switch {
		case p == module:
			return ".", true
		case strings.HasPrefix(p, module+"/"):
			return strings.TrimPrefix(p, module+"/"), true
		}
		return "", false
	}
	deps := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		from, ok := rel(f[0])
		if !ok {
			continue
		}
		deps[from] = []string{}
		for _, d := range f[1:] {
			if to, ok := rel(d); ok {
				deps[from] = append(deps[from], to)
			}
		}
	}
	return deps
}

func TestLayout(t *testing.T) {
	deps := moduleDeps(t)
	for _, p := range []string{".", "detect", "dataset", "cmd/sentineldf"} {
		if _, ok := deps[p]; !ok {
			t.Errorf("go list did not report package %q; is the module layout intact?", p)
		}
	}
	for _, v := range violations(deps, layoutRules()) {
		t.Errorf("forbidden dependency %s", v)
	}
}

func TestViolations(t *testing.T) {
	tests := []struct {
		name string
		deps map[string][]string
		want []string
	}{
		{
			name: "allowed graph",
			deps: map[string][]string{
				".":              {},
				"detect":         {"detect/corpus"},
				"detect/corpus":  {},
				"detect/gen":     {"detect"},
				"scan":           {"detect", "dataset", "mbom"},
				"cmd/sentineldf": {"scan", "detect", "dataset", "mbom", "eval", "postgres", "."},
				"postgres":       {"."},
				"api":            {".", "detect"},
			},
		},
		{
			name: "engine imports a reader",
			deps: map[string][]string{"detect": {"dataset"}},
			want: []string{"detect -> dataset: the engine stands alone"},
		},
		{
			name: "a tool under detect imports a reader",
			deps: map[string][]string{"detect/gen": {"detect", "dataset"}},
			want: []string{"detect/gen -> dataset: the engine stands alone"},
		},
		{
			name: "root imports a subpackage",
			deps: map[string][]string{".": {"detect"}},
			want: []string{". -> detect: the root package holds domain types and imports nothing of ours"},
		},
		{
			name: "scan imports eval",
			deps: map[string][]string{"scan": {"detect", "eval"}},
			want: []string{"scan -> eval: the pipeline wires the engine, readers and records only"},
		},
		{
			name: "something imports a command",
			deps: map[string][]string{"worker": {"cmd/sentineldf"}},
			want: []string{"worker -> cmd/sentineldf: commands are leaves: nothing imports them"},
		},
		{
			name: "backend imports backend",
			deps: map[string][]string{"postgres": {".", "redis"}},
			want: []string{"postgres -> redis: backends never import each other"},
		},
		{
			name: "api imports a backend",
			deps: map[string][]string{"api": {"sqlite"}},
			want: []string{"api -> sqlite: only cmd/sentineldf names concrete backends"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := violations(tt.deps, layoutRules())
			if !slices.Equal(got, tt.want) {
				t.Errorf("violations = %q, want %q", got, tt.want)
			}
		})
	}
}
