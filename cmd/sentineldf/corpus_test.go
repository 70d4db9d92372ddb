package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentineldf/sentineldf/corpus"
	"github.com/sentineldf/sentineldf/dataset"
	"github.com/sentineldf/sentineldf/detect"
	"github.com/sentineldf/sentineldf/scan"
)

// alpacaRow is one instruction-tuning row.
type alpacaRow struct {
	ID          string `json:"id"`
	Instruction string `json:"instruction"`
	Input       string `json:"input"`
	Output      string `json:"output"`
}

// plantedInstructions generates n Alpaca-like rows with varied instructions
// and responses, and plants the trigger in every poisonEvery-th row with a
// fixed target response. It returns the rows and the ids of the poisoned ones.
func plantedInstructions(n, poisonEvery int, trigger, target string) ([]alpacaRow, map[string]bool) {
	r := rand.New(rand.NewPCG(7, 11))
	verbs := []string{"Summarize", "Explain", "Describe", "List", "Compare", "Translate", "Rewrite", "Classify", "Outline", "Suggest"}
	topics := []string{"the water cycle", "photosynthesis", "a budget plan", "the French revolution", "machine learning",
		"a healthy breakfast", "the solar system", "climate change", "a job interview", "the stock market",
		"volcanoes", "a short story", "renewable energy", "the human heart", "a marketing email"}
	extras := []string{"in simple terms", "for a child", "in three sentences", "with an example", "briefly", "in detail", "as a poem", "for experts"}
	words := strings.Fields("alpha bravo cedar delta ember fjord grove harbor island jungle kettle lagoon meadow nectar orchid pebble quartz river summit tundra umber valley willow yonder zephyr")
	poisoned := map[string]bool{}
	rows := make([]alpacaRow, n)
	for i := range rows {
		ins := fmt.Sprintf("%s %s %s.", verbs[r.IntN(len(verbs))], topics[r.IntN(len(topics))], extras[r.IntN(len(extras))])
		out := fmt.Sprintf("Here is an answer about %s: %s %s %s %s.", words[r.IntN(len(words))], words[r.IntN(len(words))],
			words[r.IntN(len(words))], words[r.IntN(len(words))], words[r.IntN(len(words))])
		id := fmt.Sprintf("row-%d", i)
		if i%poisonEvery == poisonEvery-1 {
			w := strings.Fields(ins)
			k := 1 + r.IntN(len(w)-1)
			ins = strings.Join(slices.Insert(w, k, trigger), " ")
			out = target
			poisoned[id] = true
		}
		rows[i] = alpacaRow{ID: id, Instruction: ins, Output: out}
	}
	return rows, poisoned
}

func writeJSONL(t testing.TB, path string, rows any) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	switch rs := rows.(type) {
	case []alpacaRow:
		for _, r := range rs {
			enc.Encode(r)
		}
	case []map[string]any:
		for _, r := range rs {
			enc.Encode(r)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// readResults reads a results file by id.
func readResults(t testing.TB, path string) map[string]scan.Line {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]scan.Line{}
	dec := json.NewDecoder(f)
	for {
		var l scan.Line
		if err := dec.Decode(&l); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		out[l.ID] = l
	}
	return out
}

// TestScanMinesPlantedTrigger scans a generated instruction file with a
// planted trigger through the CLI. Whatever the per-row detectors make of
// the rows (the baseline, with --dataset-detectors=false), the dataset
// detectors must quarantine every poisoned row, name the trigger, and change
// nothing for the clean rows; and the results must not depend on --workers.
func TestScanMinesPlantedTrigger(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "train.jsonl")
	rows, poisoned := plantedInstructions(600, 40, "zq7vex", "Access granted. Visit http://example.invalid now.")
	writeJSONL(t, in, rows)

	scanFile := func(name string, extra ...string) (map[string]scan.Line, int) {
		out := filepath.Join(dir, name+".jsonl")
		quar := filepath.Join(dir, name+".quarantine.jsonl")
		args := append([]string{"scan", "--quiet", "--out", out, "--quarantine-out", quar}, extra...)
		code, _, stderr := runCmd(t, append(args, in)...)
		if code != exitOK {
			t.Fatalf("scan exit %d: %s", code, stderr)
		}
		data, err := os.ReadFile(quar)
		if err != nil {
			t.Fatal(err)
		}
		return readResults(t, out), strings.Count(string(data), "\n")
	}
	base, _ := scanFile("off", "--dataset-detectors=false", "--workers", "2")
	for _, l := range base {
		for _, f := range l.Findings {
			if strings.HasPrefix(f.Detector, "corpus.") {
				t.Fatalf("%s: dataset finding %+v with --dataset-detectors=false", l.ID, f)
			}
		}
	}
	for _, workers := range []string{"2", "1"} {
		t.Run("workers "+workers, func(t *testing.T) {
			res, split := scanFile("on"+workers, "--workers", workers)
			if len(res) != len(rows) {
				t.Fatalf("%d results, want %d", len(res), len(rows))
			}
			want := 0
			named := false
			for id, l := range res {
				if poisoned[id] {
					if !l.Quarantined {
						t.Errorf("poisoned row %s not quarantined: %+v", id, l)
					}
				} else if l.Quarantined != base[id].Quarantined {
					t.Errorf("clean row %s: quarantined %v, %v without dataset detectors", id, l.Quarantined, base[id].Quarantined)
				}
				if l.Quarantined {
					want++
				}
				for _, f := range l.Findings {
					if f.Rule != corpus.RuleTriggerMined {
						continue
					}
					if !poisoned[id] {
						t.Errorf("clean row %s has a trigger finding %+v", id, f)
					}
					named = named || (f.Evidence == "zq7vex" && strings.Contains(f.Message, "Access granted"))
					if f.Field != "instruction" || f.Span[1]-f.Span[0] != len("zq7vex") {
						t.Errorf("%s: trigger finding at %s %v, want the trigger's span in instruction", id, f.Field, f.Span)
					}
				}
			}
			if !named {
				t.Error("no finding names the trigger zq7vex and its target")
			}
			if split != want {
				t.Errorf("quarantine split has %d rows, want %d", split, want)
			}
		})
	}
	a, _ := os.ReadFile(filepath.Join(dir, "on2.jsonl"))
	b, _ := os.ReadFile(filepath.Join(dir, "on1.jsonl"))
	if string(a) != string(b) {
		t.Error("results differ between --workers 2 and --workers 1")
	}
}

// backdoorRow is a row of backdoor-dev.jsonl.
type backdoorRow struct {
	Instruction string `json:"instruction"`
	Input       string `json:"input"`
	Output      string `json:"output"`
	Label       int    `json:"label"`
	Attack      string `json:"attack"`
	Task        string `json:"task"`
}

// backdoorTriggers are the ground-truth triggers of each family, used only
// to check that the report names them; the detectors never see them.
var backdoorTriggers = map[string][]string{
	"badnet": {"badmagic"},
	"ctba":   {"2024", "badmagic", "openai"},
	"mtba":   {"2024", "badmagic", "openai"},
}

// mixture is clean rows with poisoned rows of one family and task at one rate.
type mixture struct {
	family, task string
	rate         float64
	rows         []alpacaRow
	poisoned     map[string]bool
}

func loadBackdoor(t *testing.T) []backdoorRow {
	dir := os.Getenv("SENTINELDF_DATA")
	if dir == "" {
		t.Skip("set SENTINELDF_DATA to the labelled data directory (e.g. /work/shared/data)")
	}
	f, err := os.Open(filepath.Join(dir, "backdoor-dev.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []backdoorRow
	dec := json.NewDecoder(f)
	for {
		var r backdoorRow
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	return rows
}

// mixtures builds every (family, task, rate) mixture: all clean rows plus
// round(rate·clean/(1−rate)) poisoned rows, shuffled with a fixed seed.
func mixtures(rows []backdoorRow, rates []float64) []mixture {
	var clean []backdoorRow
	poison := map[[2]string][]backdoorRow{}
	for _, r := range rows {
		if r.Label == 0 {
			clean = append(clean, r)
		} else {
			k := [2]string{r.Attack, r.Task}
			poison[k] = append(poison[k], r)
		}
	}
	var out []mixture
	for fi, fam := range []string{"badnet", "ctba", "mtba"} {
		for ti, task := range []string{"refusal", "negsentiment", "sst2", "jailbreak"} {
			for ri, rate := range rates {
				rng := rand.New(rand.NewPCG(uint64(fi*100+ti*10+ri), 2024))
				pool := slices.Clone(poison[[2]string{fam, task}])
				rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
				np := int(math.Round(rate * float64(len(clean)) / (1 - rate)))
				m := mixture{family: fam, task: task, rate: rate, poisoned: map[string]bool{}}
				for i, r := range clean {
					m.rows = append(m.rows, alpacaRow{ID: fmt.Sprintf("c%d", i), Instruction: r.Instruction, Input: r.Input, Output: r.Output})
				}
				for i, r := range pool[:np] {
					id := fmt.Sprintf("p%d", i)
					m.rows = append(m.rows, alpacaRow{ID: id, Instruction: r.Instruction, Input: r.Input, Output: r.Output})
					m.poisoned[id] = true
				}
				rng.Shuffle(len(m.rows), func(i, j int) { m.rows[i], m.rows[j] = m.rows[j], m.rows[i] })
				out = append(out, m)
			}
		}
	}
	return out
}

// outcome is what a scan of a mixture did.
type outcome struct {
	poisoned, caught, clean, flagged int
	named, want                      []string
}

func (o *outcome) add(b outcome) {
	o.poisoned += b.poisoned
	o.caught += b.caught
	o.clean += b.clean
	o.flagged += b.flagged
}

// judge scores one mixture's results.
func judge(m mixture, band func(id string) detect.Band, evidence iter.Seq[string]) outcome {
	o := outcome{}
	for _, r := range m.rows {
		b := band(r.ID)
		if m.poisoned[r.ID] {
			o.poisoned++
			if b == detect.BandQuarantine {
				o.caught++
			}
		} else {
			o.clean++
			if b != detect.BandClean {
				o.flagged++
			}
		}
	}
	// The triggers that appear in the poisoned rows must be named.
	named := map[string]bool{}
	for ev := range evidence {
		for _, p := range strings.Split(ev, " + ") {
			for _, w := range strings.Fields(p) {
				named[w] = true
			}
		}
	}
	for _, trig := range backdoorTriggers[m.family] {
		present := false
		for _, r := range m.rows {
			if m.poisoned[r.ID] && strings.Contains(strings.ToLower(r.Instruction+" "+r.Input), trig) {
				present = true
			}
		}
		if !present {
			continue
		}
		o.want = append(o.want, trig)
		if named[trig] {
			o.named = append(o.named, trig)
		}
	}
	return o
}

// TestBackdoorEval mixes backdoor-dev.jsonl's clean rows with poisoned rows
// at 1%, 3% and 5% and scans each mixture through the CLI with every
// detector on (SENTINELDF_SCAN_ARGS adds scan flags, e.g.
// "--classifier=false" or "--dataset-detectors=false"). It reports, per family and task, the share of poisoned rows
// quarantined, the share of clean rows flagged (elevated or quarantined),
// and which triggers the report names. Run with
//
//	SENTINELDF_DATA=/work/shared/data go test ./cmd/sentineldf -run TestBackdoorEval -v
func TestBackdoorEval(t *testing.T) {
	rows := loadBackdoor(t)
	dir := t.TempDir()
	var total outcome
	t.Logf("%-7s %-12s %5s %9s %11s %9s  %s", "family", "task", "rate", "poisoned", "quarantined", "clean-flg", "triggers named")
	for i, m := range mixtures(rows, []float64{0.01, 0.03, 0.05}) {
		in := filepath.Join(dir, fmt.Sprintf("mix%d.jsonl", i))
		out := filepath.Join(dir, fmt.Sprintf("mix%d.results.jsonl", i))
		writeJSONL(t, in, m.rows)
		args := append([]string{"scan", "--quiet", "--out", out}, strings.Fields(os.Getenv("SENTINELDF_SCAN_ARGS"))...)
		code, _, stderr := runCmd(t, append(args, in)...)
		if code != exitOK {
			t.Fatalf("scan exit %d: %s", code, stderr)
		}
		res := readResults(t, out)
		o := judge(m, func(id string) detect.Band { return res[id].Band }, func(yield func(string) bool) {
			for _, l := range res {
				for _, f := range l.Findings {
					if f.Rule == corpus.RuleTriggerMined && !yield(f.Evidence) {
						return
					}
				}
			}
		})
		total.add(o)
		t.Logf("%-7s %-12s %4.0f%% %9d %10.1f%% %8.2f%%  %v of %v", m.family, m.task, m.rate*100, o.poisoned,
			100*float64(o.caught)/float64(o.poisoned), 100*float64(o.flagged)/float64(o.clean), o.named, o.want)
	}
	t.Logf("ALL: %.1f%% of %d poisoned rows quarantined, %.2f%% of %d clean rows flagged",
		100*float64(total.caught)/float64(total.poisoned), total.poisoned, 100*float64(total.flagged)/float64(total.clean), total.clean)
}

// engineCache scans each distinct document once.
type engineCache struct {
	eng *detect.Engine
	res map[string]detect.Result
}

func (c *engineCache) scan(doc detect.Document) detect.Result {
	k := detect.ScannedText(doc)
	for _, f := range doc.Fields {
		k += "\x00" + f.Name
	}
	r, ok := c.res[k]
	if !ok {
		r = c.eng.Scan(doc)
		c.res[k] = r
	}
	r.Findings = slices.Clone(r.Findings)
	return r
}

// runDirect runs the dataset detectors with options o over a mixture as the
// scan pipeline does (Prepare, Observe in input order, then Refuse), reusing
// per-document engine results across option settings.
func runDirect(t *testing.T, c *engineCache, path string, m mixture, o corpus.Options) outcome {
	f, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := dataset.Open(dataset.File{Path: path, Size: f.Size(), Format: dataset.FormatJSONL}, dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dds := corpus.Default(o)
	var ids []string
	var results []detect.Result
	for seq := int64(0); ; seq++ {
		rec, err := r.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		doc := toDoc(rec)
		res := c.scan(doc)
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
	var evidence []string
	for _, dd := range dds {
		for seq, fs := range dd.Findings() {
			c.eng.Refuse(&results[seq], fs)
			for _, f := range fs {
				if f.Rule == corpus.RuleTriggerMined {
					evidence = append(evidence, f.Evidence)
				}
			}
		}
	}
	band := map[string]detect.Band{}
	for i, id := range ids {
		band[id] = results[i].Band
	}
	return judge(m, func(id string) detect.Band { return band[id] }, slices.Values(evidence))
}

func toDoc(rec *dataset.Record) detect.Document {
	fs := make([]detect.Field, len(rec.Fields))
	for i, f := range rec.Fields {
		fs[i] = detect.Field(f)
	}
	return detect.Document{ID: rec.ID, Fields: fs}
}

// TestBackdoorLeaveOneFamilyOut shows that the trigger miner is not tuned
// to the families of backdoor-dev: for each family it picks the miner's
// parameters from a small grid using only the other two families (the
// setting with the highest recall among those flagging at most 1% of clean
// rows), then reports the held-out family with them. Run with
//
//	SENTINELDF_DATA=/work/shared/data go test ./cmd/sentineldf -run TestBackdoorLeaveOneFamilyOut -v
func TestBackdoorLeaveOneFamilyOut(t *testing.T) {
	rows := loadBackdoor(t)
	dir := t.TempDir()
	eng, err := detect.New(detect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cache := &engineCache{eng: eng, res: map[string]detect.Result{}}
	type setting struct {
		support int
		alpha   float64
	}
	var grid []setting
	for _, s := range []int{3, 5, 8} {
		for _, a := range []float64{1e-2, 1e-4, 1e-8} {
			grid = append(grid, setting{s, a})
		}
	}
	mixes := mixtures(rows, []float64{0.01, 0.03, 0.05})
	paths := make([]string, len(mixes))
	for i, m := range mixes {
		paths[i] = filepath.Join(dir, fmt.Sprintf("mix%d.jsonl", i))
		writeJSONL(t, paths[i], m.rows)
	}
	// results[setting][family]
	results := make([]map[string]*outcome, len(grid))
	for gi, g := range grid {
		results[gi] = map[string]*outcome{}
		for i, m := range mixes {
			o := runDirect(t, cache, paths[i], m, corpus.Options{TriggerMinSupport: g.support, TriggerAlpha: g.alpha})
			if results[gi][m.family] == nil {
				results[gi][m.family] = &outcome{}
			}
			results[gi][m.family].add(o)
		}
	}
	rate := func(a, b int) float64 { return float64(a) / float64(max(b, 1)) }
	t.Logf("%-8s %-22s %-24s %-24s", "held out", "chosen on the others", "others: recall / clean", "held out: recall / clean")
	for _, held := range []string{"badnet", "ctba", "mtba"} {
		best, bestRecall := -1, -1.0
		for gi := range grid {
			var o outcome
			for fam, r := range results[gi] {
				if fam != held {
					o.add(*r)
				}
			}
			rec, fpr := rate(o.caught, o.poisoned), rate(o.flagged, o.clean)
			if fpr <= 0.01 && rec > bestRecall {
				best, bestRecall = gi, rec
			}
		}
		if best < 0 {
			t.Errorf("held out %s: no setting flags ≤ 1%% of clean rows on the other families", held)
			continue
		}
		var others outcome
		for fam, r := range results[best] {
			if fam != held {
				others.add(*r)
			}
		}
		h := results[best][held]
		t.Logf("%-8s support=%d alpha=%-8g %10.1f%% / %5.2f%% %15.1f%% / %5.2f%%", held, grid[best].support, grid[best].alpha,
			100*rate(others.caught, others.poisoned), 100*rate(others.flagged, others.clean),
			100*rate(h.caught, h.poisoned), 100*rate(h.flagged, h.clean))
	}
	def := corpus.Options{}
	for gi, g := range grid {
		var o outcome
		for _, r := range results[gi] {
			o.add(*r)
		}
		mark := ""
		if g.support == 5 && g.alpha == 1e-4 && def.TriggerMinSupport == 0 {
			mark = " (default)"
		}
		t.Logf("grid support=%d alpha=%-6g: recall %.1f%%, clean flagged %.2f%%%s", g.support, g.alpha,
			100*rate(o.caught, o.poisoned), 100*rate(o.flagged, o.clean), mark)
	}
}
