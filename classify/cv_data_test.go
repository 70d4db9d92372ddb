package classify

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// dataDir is the labelled data of /work/shared/data, named by
// SENTINELDF_DATA; tests that need it skip without it.
func dataDir(t testing.TB) string {
	d := os.Getenv("SENTINELDF_DATA")
	if d == "" {
		t.Skip("SENTINELDF_DATA not set")
	}
	return d
}

func loadInjectionDev(t testing.TB) ([]Source, []float64) {
	f, err := os.Open(filepath.Join(dataDir(t), "injection-dev.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := NewNormalizer()
	if err != nil {
		t.Fatal(err)
	}
	var src []Source
	var rules []float64
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var r struct {
			Text   string `json:"text"`
			Label  int    `json:"label"`
			Source string `json:"source"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		norm, score := n.Normalize(r.Text)
		src = append(src, Source{Orig: r.Text, Doc: Doc{Norm: norm, Label: r.Label == 1, Group: r.Source}})
		rules = append(rules, score)
	}
	return src, rules
}

// TestCrossValidateData runs the leave-sources-out cross-validation on
// injection-dev.jsonl (SENTINELDF_DATA=../shared/data go test -run
// TestCrossValidateData -v ./classify/).
func TestCrossValidateData(t *testing.T) {
	start := time.Now()
	src, rules := loadInjectionDev(t)
	n, _ := NewNormalizer()
	aug := DefaultAugment
	aug.Normalize = func(s string) string { x, _ := n.Normalize(s); return x }
	t.Logf("loaded %d rows in %v", len(src), time.Since(start))
	c := DefaultTrainConfig
	if v := os.Getenv("LR"); v != "" {
		c.LR, _ = strconv.ParseFloat(v, 64)
	}
	if v := os.Getenv("DROPOUT"); v != "" {
		c.Dropout, _ = strconv.ParseFloat(v, 64)
	}
	if v := os.Getenv("GROUPPOWER"); v != "" {
		c.GroupPower, _ = strconv.ParseFloat(v, 64)
	}
	res, err := CrossValidate(src, rules, DefaultFolds, Unlicensed, aug, c, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	var a, r, ar, rr float64
	for _, x := range res {
		a += x.Fused.AUROC
		r += x.Fused.Recall1
		ar += x.Model.AUROC
		rr += x.Model.Recall1
		for _, g := range x.PerGroup {
			t.Logf("  %-50s label=%v n=%4d flagged=%.3f recall@fold1%%=%.3f", g.Group, g.Label, g.N, g.Flagged, g.RecallAt1)
		}
	}
	k := float64(len(res))
	t.Logf("mean fused AUROC %.4f recall@1%%FPR %.4f | classifier AUROC %.4f recall %.4f | %v", a/k, r/k, ar/k, rr/k, time.Since(start))
}

type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) { l.t.Log(string(p)); return len(p), nil }
