package classify

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Augment is the training-set augmentation of TrainSelect.
type Augment struct {
	// HardNegatives is how many generated hard negatives to add.
	HardNegatives int
	// Spliced is the most attacks to splice into long benign documents.
	Spliced int
	// Normalize normalises generated text as the engine does.
	Normalize func(string) string
}

// Source is a labelled document in original and normalised form.
type Source struct {
	Orig string
	Doc
}

// augment returns the generated documents for a training set.
func (a Augment) augment(train []Source, seed uint64) []Doc {
	if a.Normalize == nil {
		return nil
	}
	var out []Doc
	for _, t := range HardNegatives(a.HardNegatives, seed) {
		out = append(out, Doc{Norm: a.Normalize(t), Group: GroupHardNegatives})
	}
	if a.Spliced > 0 {
		var attacks, hosts []string
		for _, s := range train {
			switch {
			case s.Label && len(s.Orig) <= 600:
				attacks = append(attacks, s.Orig)
			case !s.Label && len(s.Orig) >= 600 && len(s.Orig) <= 6000:
				hosts = append(hosts, s.Orig)
			}
		}
		// A deterministic sample of the attacks, spread over the list.
		if len(attacks) > a.Spliced {
			step := float64(len(attacks)) / float64(a.Spliced)
			pick := make([]string, a.Spliced)
			for i := range pick {
				pick[i] = attacks[int(float64(i)*step)]
			}
			attacks = pick
		}
		for _, t := range Splice(attacks, hosts, seed) {
			out = append(out, Doc{Norm: a.Normalize(t), Label: true, Group: GroupSpliced})
		}
	}
	return out
}

// DefaultAugment is the augmentation of the shipped model.
var DefaultAugment = Augment{HardNegatives: 400, Spliced: 400}

// TrainSelect is the full training procedure of a shipped model: it adds
// the augmentation, holds out validation groups (whole sources, chosen by
// ValGroups) to pick the number of epochs and calibrate the output, then
// retrains on every document for that many epochs and applies the
// calibration.
func TrainSelect(train []Source, aug Augment, c TrainConfig) (*Model, TrainReport, error) {
	c = c.withDefaults()
	docs := make([]Doc, 0, len(train))
	for _, s := range train {
		docs = append(docs, s.Doc)
	}
	docs = append(docs, aug.augment(train, c.Seed)...)
	feats := Featurize(docs, c)
	isVal := ValGroups(docs, c.Seed)
	var tr, va []Featurized
	for i, d := range docs {
		if isVal[d.Group] {
			va = append(va, feats[i])
		} else {
			tr = append(tr, feats[i])
		}
	}
	if len(va) == 0 {
		return nil, TrainReport{}, errors.New("train: no validation groups (need several sources of each label)")
	}
	if c.Log != nil {
		fmt.Fprintf(c.Log, "validation groups: %s\n", strings.Join(sortedTrue(isVal), ", "))
	}
	_, rep, err := Train(tr, va, c)
	if err != nil {
		return nil, rep, err
	}
	final := c
	final.Epochs = rep.Epochs
	m, rep2, err := Train(feats, nil, final)
	if err != nil {
		return nil, rep, err
	}
	m.Calibrate(rep.PlattA, rep.PlattB)
	rep.Windows = rep2.Windows
	return m, rep, nil
}

func sortedTrue(m map[string]bool) []string {
	var out []string
	for k, v := range m {
		if v {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// ValGroups picks validation groups: the groups that hold both labels (at
// least 100 of each), or else whole groups in a seeded order until the
// validation set holds at least a fifth of each label's documents.
// Generated groups are never picked.
func ValGroups(docs []Doc, seed uint64) map[string]bool {
	type g struct {
		name     string
		pos, neg int
		key      uint64
	}
	byName := map[string]*g{}
	var tot [2]int
	for _, d := range docs {
		if strings.HasPrefix(d.Group, "generated/") {
			continue
		}
		x := byName[d.Group]
		if x == nil {
			h := fnv.New64a()
			fmt.Fprintf(h, "%d/%s", seed, d.Group)
			x = &g{name: d.Group, key: h.Sum64()}
			byName[d.Group] = x
		}
		if d.Label {
			x.pos++
		} else {
			x.neg++
		}
		tot[b2i(d.Label)]++
	}
	gs := make([]*g, 0, len(byName))
	for _, x := range byName {
		gs = append(gs, x)
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].key < gs[j].key })
	val := map[string]bool{}
	var got [2]int
	// Groups holding both labels come first: one of them is a held-out
	// source in miniature, and is enough when it has 100 of each.
	sort.SliceStable(gs, func(i, j int) bool {
		return gs[i].pos > 0 && gs[i].neg > 0 && !(gs[j].pos > 0 && gs[j].neg > 0)
	})
	for _, x := range gs {
		if x.pos < 100 || x.neg < 100 || x.pos*2 > tot[1] || x.neg*2 > tot[0] {
			break
		}
		val[x.name] = true
		got[1] += x.pos
		got[0] += x.neg
	}
	if len(val) > 0 {
		return val
	}
	for _, x := range gs {
		needPos := got[1]*5 < tot[1]
		needNeg := got[0]*5 < tot[0]
		if !needPos && !needNeg {
			break
		}
		// Never hold out most of a label.
		if (x.pos > 0 && !needPos) || (x.neg > 0 && !needNeg) ||
			(got[1]+x.pos)*2 > tot[1] || (got[0]+x.neg)*2 > tot[0] {
			continue
		}
		val[x.name] = true
		got[1] += x.pos
		got[0] += x.neg
	}
	return val
}

// Fold is one fold of leave-sources-out cross-validation: the groups whose
// name starts with one of Prefixes are held out.
type Fold struct {
	Name     string
	Prefixes []string
}

// Holds reports whether the fold holds out group.
func (f Fold) Holds(group string) bool {
	for _, p := range f.Prefixes {
		if strings.HasPrefix(group, p) {
			return true
		}
	}
	return false
}

// Metrics are detection metrics over held-out documents.
type Metrics struct {
	AUROC    float64 `json:"auroc"`
	Recall1  float64 `json:"recall_at_1pct_fpr"`
	Recall01 float64 `json:"recall_at_0.1pct_fpr"`
	// Flagged is the share of benign documents scoring ≥ 0.5 (the elevated
	// band) and Detected the share of attacks.
	Flagged  float64 `json:"benign_flagged"`
	Detected float64 `json:"attacks_flagged"`
}

func metrics(s []float64, y []bool) Metrics {
	m := Metrics{AUROC: AUROC(s, y), Recall1: RecallAtFPR(s, y, 0.01), Recall01: RecallAtFPR(s, y, 0.001)}
	var pos, neg, tp, fp float64
	for i, v := range s {
		if y[i] {
			pos++
			if v >= 0.5 {
				tp++
			}
		} else {
			neg++
			if v >= 0.5 {
				fp++
			}
		}
	}
	m.Detected, m.Flagged = tp/pos, fp/neg
	return m
}

// CVResult is one fold's result.
type CVResult struct {
	Fold     string `json:"fold"`
	Attacks  int    `json:"attacks"`
	Benign   int    `json:"benign"`
	Epochs   int    `json:"epochs"`
	Rules    Metrics
	Model    Metrics `json:"classifier"`
	Fused    Metrics `json:"fused"`
	NoFloor  Metrics `json:"fused_no_floor"`
	PerGroup []GroupRate
}

// GroupRate is the share of one held-out group's documents flagged (fused
// score ≥ 0.5).
type GroupRate struct {
	Group   string  `json:"group"`
	Label   bool    `json:"label"`
	N       int     `json:"n"`
	Flagged float64 `json:"flagged"`
	// RecallAt1 is the share of the group's attacks above the fold's 1%-FPR
	// threshold of the fused score (attack groups; 0 for benign groups).
	RecallAt1 float64 `json:"recall_at_fold_1pct_fpr,omitempty"`
}

// CrossValidate runs leave-sources-out cross-validation: for each fold it
// trains with TrainSelect on every other source and scores the held-out
// sources with the classifier alone, the rules alone (rules[i] is the
// engine's score of src[i] without the classifier) and both fused as the
// engine fuses them (noisy-OR; the classifier counts only at or above its
// floor). Groups that start with a prefix in noTrain are measured when held
// out but never trained on (sources whose licence forbids training a
// shipped model), so the folds measure the shipped training procedure.
func CrossValidate(src []Source, rules []float64, folds []Fold, noTrain []string, aug Augment, c TrainConfig, log io.Writer) ([]CVResult, error) {
	c = c.withDefaults()
	out := make([]CVResult, len(folds))
	errs := make([]error, len(folds))
	// Folds are independent and each trains deterministically on one
	// goroutine: two run at a time.
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for k, f := range folds {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[k], errs[k] = cvFold(src, rules, f, noTrain, aug, c)
		}()
	}
	wg.Wait()
	for k, r := range out {
		if errs[k] != nil {
			return nil, errs[k]
		}
		if log != nil {
			fmt.Fprintf(log, "fold %-12s attacks %4d benign %4d epochs %2d | AUROC rules %.3f clf %.3f fused %.3f | R@1%% rules %.3f clf %.3f fused %.3f | benign flagged %.3f\n",
				r.Fold, r.Attacks, r.Benign, r.Epochs, r.Rules.AUROC, r.Model.AUROC, r.Fused.AUROC,
				r.Rules.Recall1, r.Model.Recall1, r.Fused.Recall1, r.Fused.Flagged)
		}
	}
	return out, nil
}

func cvFold(src []Source, rules []float64, f Fold, noTrain []string, aug Augment, c TrainConfig) (CVResult, error) {
	var tr []Source
	var held []int
	for i, s := range src {
		switch {
		case f.Holds(s.Group):
			held = append(held, i)
		case !(Fold{Prefixes: noTrain}).Holds(s.Group):
			tr = append(tr, s)
		}
	}
	if len(held) == 0 {
		return CVResult{}, fmt.Errorf("fold %s holds out nothing", f.Name)
	}
	c.Log = nil
	m, rep, err := TrainSelect(tr, aug, c)
	if err != nil {
		return CVResult{}, fmt.Errorf("fold %s: %w", f.Name, err)
	}
	res := CVResult{Fold: f.Name, Epochs: rep.Epochs}
	var sr, sm, sf, sn []float64
	var y []bool
	groups := []string{}
	for _, i := range held {
		p, _ := m.Score(src[i].Norm)
		r := rules[i]
		pf := Weight * float64(p)
		if p < m.Floor {
			pf = 0
		}
		sr = append(sr, r)
		sm = append(sm, float64(p))
		sf = append(sf, 1-(1-r)*(1-pf))
		sn = append(sn, 1-(1-r)*(1-Weight*float64(p)))
		y = append(y, src[i].Label)
		groups = append(groups, src[i].Group)
		if src[i].Label {
			res.Attacks++
		} else {
			res.Benign++
		}
	}
	res.Rules, res.Model, res.Fused, res.NoFloor = metrics(sr, y), metrics(sm, y), metrics(sf, y), metrics(sn, y)
	res.PerGroup = perGroup(sf, y, groups)
	return res, nil
}

func perGroup(s []float64, y []bool, groups []string) []GroupRate {
	// The fold's 1%-FPR threshold: the lowest score whose FPR ≤ 1%, with
	// ties whole.
	var neg []float64
	for i, v := range s {
		if !y[i] {
			neg = append(neg, v)
		}
	}
	slices.Sort(neg)
	thr := math.Inf(-1)
	if n := len(neg); n > 0 {
		allowed := int(math.Floor(0.01 * float64(n)))
		// Flag scores > neg[n-1-allowed]; i.e. threshold just above it.
		thr = math.Nextafter(neg[n-1-allowed], math.Inf(1))
	}
	idx := map[string]int{}
	var out []GroupRate
	for i, g := range groups {
		k := g + fmt.Sprint(y[i])
		j, ok := idx[k]
		if !ok {
			j = len(out)
			idx[k] = j
			out = append(out, GroupRate{Group: g, Label: y[i]})
		}
		out[j].N++
		if s[i] >= 0.5 {
			out[j].Flagged++
		}
		if y[i] && s[i] >= thr {
			out[j].RecallAt1++
		}
	}
	for j := range out {
		out[j].Flagged /= float64(out[j].N)
		out[j].RecallAt1 /= float64(out[j].N)
	}
	sort.Slice(out, func(a, b int) bool {
		return out[a].Group < out[b].Group || out[a].Group == out[b].Group && !out[a].Label
	})
	return out
}

// Unlicensed are the sources of injection-dev.jsonl whose licence does not
// allow training a shipped model on them (see MODEL_CARD.md).
var Unlicensed = []string{"tensor-trust/", "stanford_alpaca/", "InstructionWild", "original-samples"}

// DefaultFolds are the folds of SentinelDF's leave-sources-out evaluation
// on injection-dev.jsonl: every fold holds out attack sources together with
// benign sources, so that recall at a false-positive rate can be measured
// inside each fold.
var DefaultFolds = []Fold{
	{Name: "deepset", Prefixes: []string{"deepset/"}},
	{Name: "bipia", Prefixes: []string{"BIPIA"}},
	{Name: "jailbreaks", Prefixes: []string{"garak/", "GPTFuzz", "Giskard-AI", "InstructionWild"}},
	{Name: "tensor-trust", Prefixes: []string{"tensor-trust/", "stanford_alpaca"}},
	{Name: "xss-wiki", Prefixes: []string{"payloadbox/", "wikitext"}},
	{Name: "jbb-xstest", Prefixes: []string{"JailbreakBench", "XSTest", "BackdoorLLM"}},
}
