package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
)

// labelledFile has 17 labelled rows (9 attack, 8 benign) in six sources, one
// row with an unknown label, one without a label, and one malformed line.
const labelledFile = "testdata/eval/labelled.jsonl"

// runCmd runs the CLI and returns its exit code, stdout and stderr.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func evalJSON(t *testing.T, args ...string) (evalReport, string) {
	t.Helper()
	code, out, stderr := runCmd(t, append([]string{"eval", "--format", "json"}, args...)...)
	if code != exitOK {
		t.Fatalf("eval exit %d, stderr:\n%s", code, stderr)
	}
	var rep evalReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval output is not a report: %v\n%s", err, out)
	}
	return rep, out
}

func TestEvalReport(t *testing.T) {
	rep, _ := evalJSON(t, "--label-field", "label", "--group-field", "source", labelledFile)

	if rep.N != 17 || rep.Positives != 9 || rep.Negatives != 8 {
		t.Errorf("n/positives/negatives = %d/%d/%d, want 17/9/8", rep.N, rep.Positives, rep.Negatives)
	}
	if rep.Scanned != 19 || rep.Unlabelled != 2 || rep.Malformed != 1 {
		t.Errorf("scanned/unlabelled/malformed = %d/%d/%d, want 19/2/1", rep.Scanned, rep.Unlabelled, rep.Malformed)
	}
	if len(rep.UnlabelledSamples) != 2 ||
		rep.UnlabelledSamples[0].Source != labelledFile+":18" || !strings.Contains(rep.UnlabelledSamples[0].Reason, `unknown label "maybe"`) ||
		rep.UnlabelledSamples[1].Source != labelledFile+":19" || !strings.Contains(rep.UnlabelledSamples[1].Reason, `no "label" field`) {
		t.Errorf("unlabelled samples = %+v", rep.UnlabelledSamples)
	}
	if len(rep.MalformedSamples) != 1 || rep.MalformedSamples[0].Source != labelledFile+":20" {
		t.Errorf("malformed samples = %+v", rep.MalformedSamples)
	}
	for name, v := range map[string]float64{"auroc": float64(rep.AUROC), "pr_auc": float64(rep.PRAUC)} {
		if math.IsNaN(v) || v < 0 || v > 1 {
			t.Errorf("%s = %v, want a value in [0,1]", name, v)
		}
	}
	if len(rep.AtFPR) != 2 || rep.AtFPR[0].TargetFPR != 0.01 || rep.AtFPR[1].TargetFPR != 0.001 {
		t.Errorf("recall_at_fpr = %+v, want targets 0.01 and 0.001", rep.AtFPR)
	}
	if len(rep.Decisions) != 2 || rep.Decisions[0].Name != "flagged" || rep.Decisions[1].Name != "quarantine" {
		t.Fatalf("decisions = %+v", rep.Decisions)
	}
	for _, d := range rep.Decisions {
		c := d.Confusion
		if c.TP+c.FN != 9 || c.FP+c.TN != 8 {
			t.Errorf("%s: confusion %+v does not add up to 9 attacks and 8 benign", d.Name, c)
		}
	}

	wantGroups := []struct {
		name     string
		n, p, ng int
	}{
		{"Giskard-AI/prompt_injections.csv", 3, 3, 0},
		{"XSTest safe prompts", 3, 0, 3},
		{"deepset/prompt-injections:train", 3, 2, 1},
		{"payloadbox/xss-payload-list", 3, 3, 0},
		{"sentineldf (hand-written)", 2, 1, 1},
		{"wikitext-2 valid paragraphs", 3, 0, 3},
	}
	if len(rep.Groups) != len(wantGroups) {
		t.Fatalf("groups = %+v, want %d", rep.Groups, len(wantGroups))
	}
	for i, w := range wantGroups {
		g := rep.Groups[i]
		if g.Group != w.name || g.N != w.n || g.Positives != w.p || g.Negatives != w.ng || len(g.Rates) != 2 {
			t.Errorf("group %d = %+v, want %s n=%d attack=%d benign=%d", i, g, w.name, w.n, w.p, w.ng)
		}
	}
}

// TestEvalMatchesScan checks eval's confusion matrices against the verdicts
// `sentineldf scan` writes for the same file.
func TestEvalMatchesScan(t *testing.T) {
	rep, _ := evalJSON(t, "--group-field", "source", labelledFile)

	code, out, stderr := runCmd(t, "scan", "--quiet", "--out", "-", labelledFile)
	if code != exitOK {
		t.Fatalf("scan exit %d: %s", code, stderr)
	}
	bands := map[string]string{}
	for line := range strings.Lines(out) {
		var l struct{ ID, Band string }
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("results line %q: %v", line, err)
		}
		bands[l.ID] = l.Band
	}
	labels := readLabels(t, labelledFile)
	var flagged, quarantine [4]int // tp, fp, tn, fn
	count := func(c *[4]int, label, hit bool) {
		switch {
		case label && hit:
			c[0]++
		case !label && hit:
			c[1]++
		case !label:
			c[2]++
		default:
			c[3]++
		}
	}
	for id, label := range labels {
		b, ok := bands[id]
		if !ok {
			t.Fatalf("scan has no result for %s", id)
		}
		count(&flagged, label, b != "clean")
		count(&quarantine, label, b == "quarantine")
	}
	for i, want := range [][4]int{flagged, quarantine} {
		c := rep.Decisions[i].Confusion
		if got := [4]int{c.TP, c.FP, c.TN, c.FN}; got != want {
			t.Errorf("%s: eval confusion %v, scan's bands give %v", rep.Decisions[i].Name, got, want)
		}
	}
}

// readLabels returns the labels of the rows of path that have a known one.
func readLabels(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct {
			ID    string `json:"id"`
			Label any    `json:"label"`
		}
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		switch r.Label {
		case 1.0, true, "attack":
			out[r.ID] = true
		case 0.0, false, "benign":
			out[r.ID] = false
		}
	}
	if len(out) != 17 {
		t.Fatalf("%s: %d labelled rows, want 17", path, len(out))
	}
	return out
}

func TestEvalDeterministic(t *testing.T) {
	_, one := evalJSON(t, "--workers", "1", "--group-field", "source", labelledFile)
	_, four := evalJSON(t, "--workers", "4", "--group-field", "source", labelledFile)
	if one != four {
		t.Errorf("report differs between 1 and 4 workers:\n%s\n%s", one, four)
	}
}

func TestEvalTable(t *testing.T) {
	code, out, stderr := runCmd(t, "eval", "--group-field", "source", labelledFile)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"17 labelled (9 attack, 8 benign)", "AUROC", "PR-AUC", "recall at 1% FPR", "recall at 0.1% FPR",
		"flagged", "quarantine", "payloadbox/xss-payload-list", "UNLABELLED", "MALFORMED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestEvalErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no labelled rows", []string{"eval", "--label-field", "nope", labelledFile}, "no labelled documents"},
		{"group is label", []string{"eval", "--group-field", "label", labelledFile}, "must differ"},
		{"bad format", []string{"eval", "--format", "xml", labelledFile}, "--format"},
		{"missing file", []string{"eval", "testdata/eval/missing.jsonl"}, "missing.jsonl"},
		{"no arguments", []string{"eval"}, "arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, tt.args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 mentioning %q", code, stderr, tt.want)
			}
		})
	}
}

func TestParseLabel(t *testing.T) {
	tests := []struct {
		in           string
		label, known bool
	}{
		{"1", true, true}, {"true", true, true}, {"Attack", true, true}, {" poisoned ", true, true},
		{"malicious", true, true}, {"1.0", true, true},
		{"0", false, true}, {"false", false, true}, {"BENIGN", false, true}, {"clean", false, true}, {"0e0", false, true},
		{"", false, false}, {"2", false, false}, {"maybe", false, false}, {"0.5", false, false}, {"null", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			label, known := parseLabel(tt.in)
			if label != tt.label || known != tt.known {
				t.Errorf("parseLabel(%q) = %v, %v; want %v, %v", tt.in, label, known, tt.label, tt.known)
			}
		})
	}
}

// TestScoreAtRisk checks that flagging score ≥ scoreAtRisk(r) is flagging
// risk ≥ r, with risk computed as the engine computes it.
func TestScoreAtRisk(t *testing.T) {
	risk := func(k int) int { return int(math.Round(float64(k) / 1e6 * 100)) }
	for r := 0; r <= 100; r++ {
		s := scoreAtRisk(r)
		k := int(math.Round(s * 1e6))
		if float64(k)/1e6 != s || risk(k) < r || (k > 0 && risk(k-1) >= r) {
			t.Errorf("scoreAtRisk(%d) = %v: risk there %d, one step below %d", r, s, risk(k), risk(k-1))
		}
	}
	if s := scoreAtRisk(101); !math.IsInf(s, 1) {
		t.Errorf("scoreAtRisk(101) = %v, want +Inf", s)
	}
}

func TestEvalInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"eval", labelledFile}, strings.NewReader(""), &out, &errb)
	if code != exitInterrupted || out.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and no report", code, out.String(), errb.String(), exitInterrupted)
	}
}
