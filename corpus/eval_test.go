package corpus

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentineldf/sentineldf/dataset"
	"github.com/sentineldf/sentineldf/detect"
)

// This file is a copy of the backdoor evaluation harness of
// cmd/sentineldf/corpus_test.go that runs inside the package (it needs no
// CLI build): the mixtures of backdoor-dev.jsonl are read with the dataset
// package and scanned with the default rules engine and Default's
// detectors, exactly as `sentineldf scan` fuses them. It also reports each
// half of the rows (by the first byte of the SHA-256 of the prompt) so that
// a choice made on one half can be reported on the other. Run with
//
//	SENTINELDF_DATA=/work/shared/data go test ./corpus -run TestEvalBackdoor -v

type evalRow struct {
	Instruction string `json:"instruction"`
	Input       string `json:"input"`
	Output      string `json:"output"`
	Label       int    `json:"label"`
	Attack      string `json:"attack"`
	Task        string `json:"task"`
}

type evalOut struct {
	ID          string `json:"id"`
	Instruction string `json:"instruction"`
	Input       string `json:"input"`
	Output      string `json:"output"`
}

var evalTriggers = map[string][]string{
	"badnet": {"badmagic"},
	"ctba":   {"2024", "badmagic", "openai"},
	"mtba":   {"2024", "badmagic", "openai"},
}

type evalMix struct {
	family, task string
	rate         float64
	rows         []evalOut
	poisoned     map[string]bool
}

func loadEvalRows(t *testing.T) []evalRow {
	dir := os.Getenv("SENTINELDF_DATA")
	if dir == "" {
		t.Skip("set SENTINELDF_DATA to the labelled data directory (e.g. /work/shared/data)")
	}
	f, err := os.Open(filepath.Join(dir, "backdoor-dev.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []evalRow
	dec := json.NewDecoder(f)
	for {
		var r evalRow
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	return rows
}

// evalMixtures is cmd/sentineldf's mixtures, same seeds and order when
// seed is 0 (SENTINELDF_EVAL_SEED draws other mixtures).
func evalMixtures(rows []evalRow, rates []float64, seed uint64) []evalMix {
	var clean []evalRow
	poison := map[[2]string][]evalRow{}
	for _, r := range rows {
		if r.Label == 0 {
			clean = append(clean, r)
		} else {
			k := [2]string{r.Attack, r.Task}
			poison[k] = append(poison[k], r)
		}
	}
	var out []evalMix
	for fi, fam := range []string{"badnet", "ctba", "mtba"} {
		for ti, task := range []string{"refusal", "negsentiment", "sst2", "jailbreak"} {
			for ri, rate := range rates {
				rng := rand.New(rand.NewPCG(uint64(fi*100+ti*10+ri), 2024+seed))
				pool := slices.Clone(poison[[2]string{fam, task}])
				rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
				np := int(math.Round(rate * float64(len(clean)) / (1 - rate)))
				m := evalMix{family: fam, task: task, rate: rate, poisoned: map[string]bool{}}
				for i, r := range clean {
					m.rows = append(m.rows, evalOut{ID: fmt.Sprintf("c%d", i), Instruction: r.Instruction, Input: r.Input, Output: r.Output})
				}
				for i, r := range pool[:np] {
					id := fmt.Sprintf("p%d", i)
					m.rows = append(m.rows, evalOut{ID: id, Instruction: r.Instruction, Input: r.Input, Output: r.Output})
					m.poisoned[id] = true
				}
				rng.Shuffle(len(m.rows), func(i, j int) { m.rows[i], m.rows[j] = m.rows[j], m.rows[i] })
				out = append(out, m)
			}
		}
	}
	return out
}

// evalScore counts one mixture's outcome, by half (0 even, 1 odd).
type evalScore struct {
	poisoned, caught, clean, flagged [2]int
	named, want                      []string
	missed, falsePos                 []string
	// extra are the words named in trigger findings that are not a
	// ground-truth trigger of the mixture's family.
	extra []string
}

func (o *evalScore) add(b evalScore) {
	for h := range 2 {
		o.poisoned[h] += b.poisoned[h]
		o.caught[h] += b.caught[h]
		o.clean[h] += b.clean[h]
		o.flagged[h] += b.flagged[h]
	}
}

func (o evalScore) recall(h int) float64 {
	if h < 0 {
		return ratio(o.caught[0]+o.caught[1], o.poisoned[0]+o.poisoned[1])
	}
	return ratio(o.caught[h], o.poisoned[h])
}

func (o evalScore) fpr(h int) float64 {
	if h < 0 {
		return ratio(o.flagged[0]+o.flagged[1], o.clean[0]+o.clean[1])
	}
	return ratio(o.flagged[h], o.clean[h])
}

func ratio(a, b int) float64 { return float64(a) / float64(max(b, 1)) }

func evalHalf(r evalOut) int {
	s := sha256.Sum256([]byte(r.Instruction + "\n" + r.Input))
	return int(s[0] & 1)
}

// runEvalMix scans one mixture with the default engine and the dataset
// detectors built with o.
func runEvalMix(t *testing.T, eng *detect.Engine, cache map[string]detect.Result, path string, m evalMix, o Options) evalScore {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := dataset.Open(dataset.File{Path: path, Size: st.Size(), Format: dataset.FormatJSONL}, dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	o.TempDir = t.TempDir()
	dds := Default(o)
	var ids []string
	var results []detect.Result
	for seq := int64(0); ; seq++ {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		fs := make([]detect.Field, len(rec.Fields))
		key := ""
		for i, f := range rec.Fields {
			fs[i] = detect.Field(f)
			key += f.Name + "\x00" + f.Text + "\x00"
		}
		doc := detect.Document{ID: rec.ID, Fields: fs}
		res, ok := cache[key]
		if !ok {
			res = eng.Scan(doc)
			cache[key] = res
		}
		res.Findings = slices.Clone(res.Findings)
		preps := make([]any, len(dds))
		for k, dd := range dds {
			preps[k] = dd.Prepare(doc, &res)
		}
		for k, dd := range dds {
			dd.Observe(seq, preps[k])
		}
		ids = append(ids, rec.ID)
		results = append(results, res)
	}
	named := map[string]bool{}
	for _, dd := range dds {
		for seq, fs := range dd.Findings() {
			eng.Refuse(&results[seq], fs)
			for _, f := range fs {
				if f.Rule == RuleTriggerMined {
					for _, p := range strings.Split(f.Evidence, " + ") {
						for _, w := range strings.Fields(p) {
							named[w] = true
						}
					}
				}
			}
		}
	}
	byID := map[string]evalOut{}
	for _, r := range m.rows {
		byID[r.ID] = r
	}
	var sc evalScore
	for i, id := range ids {
		r := byID[id]
		h := evalHalf(r)
		b := results[i].Band
		if m.poisoned[id] {
			sc.poisoned[h]++
			if b == detect.BandQuarantine {
				sc.caught[h]++
			} else {
				sc.missed = append(sc.missed, truncate(r.Instruction, 90))
			}
		} else {
			sc.clean[h]++
			if b != detect.BandClean {
				sc.flagged[h]++
				var rules []string
				for _, f := range results[i].Findings {
					if f.Score > 0 {
						rules = append(rules, f.Rule+"["+f.Evidence+"]")
						if strings.HasPrefix(f.Rule, "backdoor") {
							rules = append(rules, f.Message)
						}
					}
				}
				sc.falsePos = append(sc.falsePos, fmt.Sprintf("%v %q", rules, truncate(r.Instruction, 70)))
			}
		}
	}
	for w := range named {
		if !slices.Contains(evalTriggers[m.family], w) {
			sc.extra = append(sc.extra, w)
		}
	}
	slices.Sort(sc.extra)
	for _, trig := range evalTriggers[m.family] {
		present := false
		for _, r := range m.rows {
			if m.poisoned[r.ID] && strings.Contains(strings.ToLower(r.Instruction+" "+r.Input), trig) {
				present = true
			}
		}
		if !present {
			continue
		}
		sc.want = append(sc.want, trig)
		if named[trig] {
			sc.named = append(sc.named, trig)
		}
	}
	return sc
}

func writeEvalMix(t *testing.T, path string, rows []evalOut) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestEvalBackdoor reports the default detectors on every mixture of
// backdoor-dev at 1, 3 and 5%, per family, task and rate and per half;
// SENTINELDF_EVAL_VERBOSE=1 lists the missed poisoned rows and the flagged
// clean rows.
func TestEvalBackdoor(t *testing.T) {
	rows := loadEvalRows(t)
	eng, err := detect.New(detect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cache := map[string]detect.Result{}
	dir := t.TempDir()
	verbose := os.Getenv("SENTINELDF_EVAL_VERBOSE") != ""
	var total evalScore
	byFam := map[string]*evalScore{}
	byRate := map[float64]*evalScore{}
	t.Logf("%-7s %-12s %5s %9s %11s %9s  %s", "family", "task", "rate", "poisoned", "quarantined", "clean-flg", "triggers named")
	var seed uint64
	if v := os.Getenv("SENTINELDF_EVAL_SEED"); v != "" {
		if _, err := fmt.Sscan(v, &seed); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range evalMixtures(rows, []float64{0.01, 0.03, 0.05}, seed) {
		path := filepath.Join(dir, fmt.Sprintf("mix%d.jsonl", i))
		writeEvalMix(t, path, m.rows)
		sc := runEvalMix(t, eng, cache, path, m, evalOptions(t))
		total.add(sc)
		for _, p := range []struct {
			m map[string]*evalScore
			k string
		}{{byFam, m.family}, {byFam, m.family + "/" + m.task}} {
			if p.m[p.k] == nil {
				p.m[p.k] = &evalScore{}
			}
			p.m[p.k].add(sc)
		}
		if byRate[m.rate] == nil {
			byRate[m.rate] = &evalScore{}
		}
		byRate[m.rate].add(sc)
		t.Logf("%-7s %-12s %4.0f%% %9d %10.1f%% %8.2f%%  %v of %v", m.family, m.task, m.rate*100, sc.poisoned[0]+sc.poisoned[1],
			100*sc.recall(-1), 100*sc.fpr(-1), sc.named, sc.want)
		if len(sc.extra) > 0 {
			t.Logf("    also named: %v", sc.extra)
		}
		if verbose {
			for _, s := range sc.missed {
				t.Logf("    missed %q", s)
			}
			for _, s := range sc.falsePos {
				t.Logf("    flagged %s", s)
			}
		}
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range byFam {
			if !yield(k) {
				return
			}
		}
	}) {
		o := byFam[k]
		t.Logf("%-22s recall %5.1f%% (even %5.1f%%, odd %5.1f%%)  clean flagged %.2f%%", k, 100*o.recall(-1), 100*o.recall(0), 100*o.recall(1), 100*o.fpr(-1))
	}
	for _, r := range []float64{0.01, 0.03, 0.05} {
		o := byRate[r]
		t.Logf("rate %2.0f%%: recall %5.1f%%, clean flagged %.2f%%", 100*r, 100*o.recall(-1), 100*o.fpr(-1))
	}
	t.Logf("ALL: %.1f%% of %d poisoned rows quarantined (even half %.1f%%, odd half %.1f%%), %.2f%% of %d clean rows flagged (even %.2f%%, odd %.2f%%)",
		100*total.recall(-1), total.poisoned[0]+total.poisoned[1], 100*total.recall(0), 100*total.recall(1),
		100*total.fpr(-1), total.clean[0]+total.clean[1], 100*total.fpr(0), 100*total.fpr(1))
}

// evalOptions reads SENTINELDF_EVAL_SUPPORT and SENTINELDF_EVAL_ALPHA.
func evalOptions(t *testing.T) Options {
	var o Options
	if v := os.Getenv("SENTINELDF_EVAL_SUPPORT"); v != "" {
		if _, err := fmt.Sscan(v, &o.TriggerMinSupport); err != nil {
			t.Fatal(err)
		}
	}
	if v := os.Getenv("SENTINELDF_EVAL_ALPHA"); v != "" {
		if _, err := fmt.Sscan(v, &o.TriggerAlpha); err != nil {
			t.Fatal(err)
		}
	}
	return o
}
