package scan

import (
	"slices"
	"strings"
	"testing"

	"github.com/sentineldf/sentineldf/dataset"
	"github.com/sentineldf/sentineldf/detect"
)

func TestParsePolicy(t *testing.T) {
	src := `# a policy
thresholds:
  quarantine: 80
rules:
  disable: [html_js, secrets]
allowlist:
  - rules: [secret.generic_api_key]
    pattern: 'EXAMPLE'
  - pattern: '^ok$'
text_fields: [instruction, output]
id_field: uid
split: lines
format: ndjson
include: ["*.jsonl"]
exclude: ["eval/**"]
workers: 3
max_record_bytes: 1024
`
	p, err := ParsePolicy("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	th := p.ApplyThresholds(detect.DefaultThresholds)
	if th != (detect.Thresholds{Elevated: 50, Quarantine: 80}) {
		t.Errorf("thresholds %+v", th)
	}
	if !slices.Equal(p.Rules.Disable, []string{"html_js", "secrets"}) || len(p.Allowlist) != 2 || p.Allowlist[0].Pattern != "EXAMPLE" ||
		!slices.Equal(p.TextFields, []string{"instruction", "output"}) || p.IDField != "uid" || p.Split != "lines" ||
		p.Workers != 3 || p.MaxRecordBytes != 1024 || p.Include[0] != "*.jsonl" || p.Exclude[0] != "eval/**" {
		t.Errorf("policy %+v", p)
	}
	if f, _ := ParseFormat(p.Format); f != dataset.FormatJSONL {
		t.Errorf("format %q", p.Format)
	}
}

func TestParsePolicyEmpty(t *testing.T) {
	for _, src := range []string{"", "# nothing\n", "---\n"} {
		p, err := ParsePolicy("p.yaml", []byte(src))
		if err != nil || p.ApplyThresholds(detect.DefaultThresholds) != detect.DefaultThresholds {
			t.Errorf("%q: %+v, %v", src, p, err)
		}
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // substrings of the error
	}{
		{"unknown top-level key", "workers: 2\nthreshold: 80\n", []string{"p.yaml:2:", `unknown key "threshold"`, "thresholds"}},
		{"unknown nested key", "thresholds:\n  quarantine: 80\n  elevatd: 40\n", []string{"p.yaml:3:", `unknown key "elevatd" in thresholds`}},
		{"unknown allowlist key", "allowlist:\n  - rules: [a]\n    patern: x\n", []string{"p.yaml:3:", `"patern" in allowlist[0]`}},
		{"unknown rules key", "rules:\n  enable: [x]\n", []string{"p.yaml:2:", `"enable" in rules`}},
		{"not a mapping", "- a\n- b\n", []string{"p.yaml:1:", "mapping"}},
		{"allowlist not a list", "allowlist: x\n", []string{"p.yaml:1:", "allowlist must be a list"}},
		{"bad type", "workers: many\n", []string{"p.yaml", "line 1"}},
		{"thresholds out of order", "thresholds:\n  elevated: 90\n  quarantine: 80\n", []string{"p.yaml:2:", "elevated"}},
		{"threshold too high", "thresholds:\n  quarantine: 101\n", []string{"p.yaml:2:"}},
		{"bad split", "split: words\n", []string{"p.yaml:1:", `"words"`}},
		{"bad format", "\nformat: xml\n", []string{"p.yaml:2:", `"xml"`}},
		{"bad regexp", "allowlist:\n  - pattern: ok\n  - pattern: '(['\n", []string{"p.yaml:3:", "allowlist entry 2"}},
		{"syntax", "thresholds: [\n", []string{"p.yaml"}},
		{"negative workers", "workers: -1\n", []string{"p.yaml:1:", "workers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy("p.yaml", []byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte("thresholds: {elevated: 40, quarantine: 60}\nallowlist: [{pattern: x}]\n"))
	f.Add([]byte("rules:\n  disable: [a]\ntext_fields: [t]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy("f.yaml", b)
		if err != nil {
			return
		}
		if th := p.ApplyThresholds(detect.DefaultThresholds); th.Validate() != nil {
			t.Errorf("accepted invalid thresholds %+v", th)
		}
	})
}
