// Package eval measures a detector against labelled data: ranking metrics
// (AUROC, average precision), recall at a fixed false-positive rate, the
// confusion matrix at a decision threshold, and the same rates per group
// (e.g. per data source).
//
// Every function is pure and deterministic: the result depends only on the
// multiset of scored examples, never on their order. Ties in score are
// treated as one block: a threshold flags either every example of a tie or
// none of them.
//
// Undefined values (a recall with no positives, an AUROC with only one
// class) are NaN; Float marshals them to JSON null.
package eval

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"strconv"
)

// Scored is one labelled example with the detector's score.
type Scored struct {
	// Score is the detector's score; higher means more likely positive.
	Score float64
	// Label is true for a positive (attack, poisoned) example.
	Label bool
	// Group names the example's group (e.g. its source) for per-group rates.
	Group string
}

// Float is a metric value. NaN and ±Inf mean "undefined" and marshal to
// JSON null.
type Float float64

// MarshalJSON writes f as a JSON number, or null when f is NaN or infinite.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON reads a number, or null as NaN.
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// block is a run of examples with the same score.
type block struct {
	score    float64
	pos, neg int
}

// blocks groups examples by score, in descending score order, and returns
// the total positives and negatives. NaN scores sort lowest.
func blocks(s []Scored) (bs []block, pos, neg int) {
	sorted := slices.Clone(s)
	// cmp.Compare orders NaN below every number and equal to itself.
	slices.SortFunc(sorted, func(a, b Scored) int { return cmp.Compare(b.Score, a.Score) })
	for i, x := range sorted {
		if i == 0 || cmp.Compare(x.Score, bs[len(bs)-1].score) != 0 {
			bs = append(bs, block{score: x.Score})
		}
		b := &bs[len(bs)-1]
		if x.Label {
			b.pos++
			pos++
		} else {
			b.neg++
			neg++
		}
	}
	return bs, pos, neg
}

// ratio returns a/b, or NaN when b is 0.
func ratio(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// AUROC returns the area under the ROC curve: the probability that a random
// positive scores higher than a random negative, ties counting one half (the
// Mann–Whitney U statistic divided by positives×negatives). It is NaN unless
// there is at least one positive and one negative.
func AUROC(s []Scored) float64 {
	return auroc(blocks(s))
}

func auroc(bs []block, pos, neg int) float64 {
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	// Walk from the lowest score up, counting negatives below each block.
	var u float64
	below := 0
	for i := len(bs) - 1; i >= 0; i-- {
		b := bs[i]
		u += float64(b.pos) * (float64(below) + float64(b.neg)/2)
		below += b.neg
	}
	return u / (float64(pos) * float64(neg))
}

// AveragePrecision returns the area under the precision–recall curve as
// average precision: Σ (Rₖ − Rₖ₋₁)·Pₖ over the distinct scores taken as
// thresholds from the highest down, where Pₖ and Rₖ are the precision and
// recall of flagging every example scoring at least the k-th score. It is NaN
// when there are no positives.
func AveragePrecision(s []Scored) float64 {
	return averagePrecision(blocks(s))
}

func averagePrecision(bs []block, pos, _ int) float64 {
	if pos == 0 {
		return math.NaN()
	}
	var ap float64
	tp, fp := 0, 0
	for _, b := range bs {
		tp += b.pos
		fp += b.neg
		if b.pos == 0 {
			continue
		}
		ap += float64(b.pos) / float64(pos) * float64(tp) / float64(tp+fp)
	}
	return ap
}

// Confusion counts the outcomes of a yes/no decision against labels.
type Confusion struct {
	TP int `json:"tp"`
	FP int `json:"fp"`
	TN int `json:"tn"`
	FN int `json:"fn"`
}

// Add counts one example.
func (c *Confusion) Add(label, flagged bool) {
	switch {
	case label && flagged:
		c.TP++
	case label:
		c.FN++
	case flagged:
		c.FP++
	default:
		c.TN++
	}
}

// Precision is TP/(TP+FP), NaN when nothing was flagged.
func (c Confusion) Precision() float64 { return ratio(c.TP, c.TP+c.FP) }

// Recall (true-positive rate) is TP/(TP+FN), NaN without positives.
func (c Confusion) Recall() float64 { return ratio(c.TP, c.TP+c.FN) }

// FPR (false-positive rate) is FP/(FP+TN), NaN without negatives.
func (c Confusion) FPR() float64 { return ratio(c.FP, c.FP+c.TN) }

// F1 is the harmonic mean of precision and recall: 2TP/(2TP+FP+FN). It is NaN
// when there are no positives and nothing was flagged.
func (c Confusion) F1() float64 { return ratio(2*c.TP, 2*c.TP+c.FP+c.FN) }

// ConfusionAt counts the outcomes of flagging every example whose score is
// at least threshold.
func ConfusionAt(s []Scored, threshold float64) Confusion {
	var c Confusion
	for _, x := range s {
		c.Add(x.Label, x.Score >= threshold)
	}
	return c
}

// OperatingPoint is a threshold and the rates of flagging every example
// scoring at least that threshold.
type OperatingPoint struct {
	// TargetFPR is the false-positive rate the point was chosen for.
	TargetFPR float64 `json:"target_fpr"`
	// Threshold is the lowest score threshold whose FPR is at most
	// TargetFPR; +Inf (JSON null) when even the highest score exceeds it,
	// i.e. only flagging nothing meets the target.
	Threshold Float `json:"threshold"`
	// Recall and FPR are achieved at Threshold.
	Recall Float `json:"recall"`
	FPR    Float `json:"fpr"`
	TP     int   `json:"tp"`
	FP     int   `json:"fp"`
}

// RecallAtFPR finds the lowest threshold at which the false-positive rate is
// at most target and reports the recall there. Ties are handled
// conservatively: a block of equal scores is flagged whole or not at all, so
// the achieved FPR never exceeds target. With no negatives the lowest score
// is chosen; with no positives Recall is NaN.
func RecallAtFPR(s []Scored, target float64) OperatingPoint {
	bs, pos, neg := blocks(s)
	return recallAtFPR(bs, pos, neg, target)
}

func recallAtFPR(bs []block, pos, neg int, target float64) OperatingPoint {
	op := OperatingPoint{TargetFPR: target, Threshold: Float(math.Inf(1))}
	tp, fp := 0, 0
	for _, b := range bs {
		if neg > 0 && ratio(fp+b.neg, neg) > target {
			break
		}
		tp += b.pos
		fp += b.neg
		op.Threshold = Float(b.score)
	}
	op.TP, op.FP = tp, fp
	op.Recall = Float(ratio(tp, pos))
	op.FPR = Float(ratio(fp, neg))
	return op
}

// Decision is a named threshold: examples scoring at least Threshold are
// flagged.
type Decision struct {
	Name      string
	Threshold float64
}

// DecisionResult is the confusion matrix of a decision and its rates.
type DecisionResult struct {
	Name      string    `json:"name"`
	Threshold Float     `json:"threshold"`
	Confusion Confusion `json:"confusion"`
	Precision Float     `json:"precision"`
	Recall    Float     `json:"recall"`
	FPR       Float     `json:"fpr"`
	F1        Float     `json:"f1"`
}

// Decide evaluates a decision over s.
func Decide(s []Scored, d Decision) DecisionResult {
	c := ConfusionAt(s, d.Threshold)
	return DecisionResult{
		Name:      d.Name,
		Threshold: Float(d.Threshold),
		Confusion: c,
		Precision: Float(c.Precision()),
		Recall:    Float(c.Recall()),
		FPR:       Float(c.FPR()),
		F1:        Float(c.F1()),
	}
}

// GroupRate is one decision's rates within a group.
type GroupRate struct {
	Name string `json:"name"`
	// Flagged is how many of the group's examples the decision flags, and
	// Rate that count over the group's size.
	Flagged int   `json:"flagged"`
	Rate    Float `json:"rate"`
	// Recall is over the group's positives, FPR over its negatives.
	Recall Float `json:"recall"`
	FPR    Float `json:"fpr"`
}

// GroupResult holds the counts and per-decision rates of one group.
type GroupResult struct {
	Group     string      `json:"group"`
	N         int         `json:"n"`
	Positives int         `json:"positives"`
	Negatives int         `json:"negatives"`
	Rates     []GroupRate `json:"rates"`
}

// Groups computes per-group counts and, for each decision, the flag rate,
// recall and FPR. Groups are sorted by name.
func Groups(s []Scored, ds []Decision) []GroupResult {
	idx := map[string]int{}
	var out []GroupResult
	var cs [][]Confusion
	for _, x := range s {
		i, ok := idx[x.Group]
		if !ok {
			i = len(out)
			idx[x.Group] = i
			out = append(out, GroupResult{Group: x.Group})
			cs = append(cs, make([]Confusion, len(ds)))
		}
		g := &out[i]
		g.N++
		if x.Label {
			g.Positives++
		} else {
			g.Negatives++
		}
		for j, d := range ds {
			cs[i][j].Add(x.Label, x.Score >= d.Threshold)
		}
	}
	for i := range out {
		for j, d := range ds {
			c := cs[i][j]
			out[i].Rates = append(out[i].Rates, GroupRate{
				Name:    d.Name,
				Flagged: c.TP + c.FP,
				Rate:    Float(ratio(c.TP+c.FP, out[i].N)),
				Recall:  Float(c.Recall()),
				FPR:     Float(c.FPR()),
			})
		}
	}
	slices.SortFunc(out, func(a, b GroupResult) int { return cmp.Compare(a.Group, b.Group) })
	return out
}

// Report is the full evaluation of a scored, labelled dataset.
type Report struct {
	N         int              `json:"n"`
	Positives int              `json:"positives"`
	Negatives int              `json:"negatives"`
	AUROC     Float            `json:"auroc"`
	PRAUC     Float            `json:"pr_auc"`
	AtFPR     []OperatingPoint `json:"recall_at_fpr"`
	Decisions []DecisionResult `json:"decisions"`
	Groups    []GroupResult    `json:"groups"`
}

// Evaluate computes every metric of the package over s: ranking metrics,
// recall at each target FPR, each decision's confusion matrix, and per-group
// rates for each decision.
func Evaluate(s []Scored, targets []float64, ds []Decision) Report {
	bs, pos, neg := blocks(s)
	r := Report{
		N:         len(s),
		Positives: pos,
		Negatives: neg,
		AUROC:     Float(auroc(bs, pos, neg)),
		PRAUC:     Float(averagePrecision(bs, pos, neg)),
	}
	for _, t := range targets {
		r.AtFPR = append(r.AtFPR, recallAtFPR(bs, pos, neg, t))
	}
	for _, d := range ds {
		r.Decisions = append(r.Decisions, Decide(s, d))
	}
	r.Groups = Groups(s, ds)
	return r
}
