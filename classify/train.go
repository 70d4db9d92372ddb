package classify

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
)

// Doc is one labelled training document.
type Doc struct {
	// Norm is the document's text normalised as the engine normalises it
	// (see Normalizer).
	Norm string
	// Label is true for an attack.
	Label bool
	// Group is the document's source; validation splits and balancing are by
	// group.
	Group string
}

// TrainConfig configures training. The zero value of a field means its
// default (DefaultTrainConfig).
type TrainConfig struct {
	Name                 string
	Buckets, Dim, Hidden int
	// MinN and MaxN are the character n-gram sizes (both 0: none; unlike
	// the other sizes, 0 is not replaced by a default).
	MinN, MaxN                 int
	WindowTokens, WindowStride int
	MaxFeatures                int
	// Salt seeds the feature hash; Seed the initialisation and the order of
	// examples.
	Salt, Seed uint64
	// Epochs is the most epochs; the best on the validation groups wins.
	Epochs int
	// LR is the initial learning rate of SGD, decayed linearly to zero.
	LR float64
	// L2 is the weight decay of the dense layers.
	L2 float64
	// GroupPower balances groups: a document's weight is proportional to
	// 1/size(group)^GroupPower (0: every document counts the same; 1: every
	// group counts the same). Classes are balanced after that.
	GroupPower float64
	// Dropout is the probability of dropping each feature of a training
	// window, a regulariser against memorising sources.
	Dropout float64
	// Floor is the probability below which the detector emits nothing.
	Floor float64
	// Log, when set, receives one line per epoch.
	Log io.Writer
}

// DefaultTrainConfig is the configuration of the shipped model.
var DefaultTrainConfig = TrainConfig{
	Name:         "sentineldf-injection-classifier",
	Buckets:      1 << 16,
	Dim:          16,
	Hidden:       32,
	MinN:         0,
	MaxN:         0,
	WindowTokens: 32,
	WindowStride: 16,
	MaxFeatures:  4096,
	Salt:         0x5e471e1df,
	Seed:         1,
	Epochs:       12,
	LR:           0.1,
	L2:           1e-5,
	GroupPower:   0.5,
	Dropout:      0.2,
	Floor:        0.2,
}

func (c TrainConfig) withDefaults() TrainConfig {
	d := DefaultTrainConfig
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&c.Buckets, d.Buckets)
	set(&c.Dim, d.Dim)
	set(&c.Hidden, d.Hidden)
	set(&c.WindowTokens, d.WindowTokens)
	set(&c.WindowStride, d.WindowStride)
	set(&c.MaxFeatures, d.MaxFeatures)
	set(&c.Epochs, d.Epochs)
	if c.Name == "" {
		c.Name = d.Name
	}
	if c.Salt == 0 {
		c.Salt = d.Salt
	}
	if c.LR == 0 {
		c.LR = d.LR
	}
	return c
}

// TrainReport says how training went.
type TrainReport struct {
	// Epochs is the number of epochs of the returned model.
	Epochs int
	// ValAUROC and ValRecall1 are the validation metrics at that epoch
	// (window maximum per document, before calibration); NaN without
	// validation documents.
	ValAUROC, ValRecall1 float64
	// PlattA and PlattB calibrate the logit: p = sigmoid(A·logit + B).
	PlattA, PlattB float64
	// Windows is the number of training windows.
	Windows int
}

// featurized is a document cut into windows of feature ids.
type featurized struct {
	wins   [][]uint32
	label  bool
	group  string
	weight float32
}

// Featurize cuts docs into windows and hashes their features with the
// feature configuration of c; the result can be reused across trainings
// with the same configuration (cross-validation).
func Featurize(docs []Doc, c TrainConfig) []Featurized {
	c = c.withDefaults()
	m := c.skeleton()
	out := make([]Featurized, len(docs))
	for i, d := range docs {
		ids, _ := m.Features(d.Norm)
		out[i] = Featurized{f: featurized{wins: ids, label: d.Label, group: d.Group}}
	}
	return out
}

// Featurized is a featurised document (see Featurize).
type Featurized struct{ f featurized }

// Label reports the document's label.
func (f Featurized) Label() bool { return f.f.label }

// Group reports the document's group.
func (f Featurized) Group() string { return f.f.group }

// skeleton is a model with c's configuration and no weights.
func (c TrainConfig) skeleton() *Model {
	return &Model{
		Name: c.Name, Buckets: c.Buckets, Dim: c.Dim, Hidden: c.Hidden, Salt: c.Salt,
		MinN: c.MinN, MaxN: c.MaxN, WindowTokens: c.WindowTokens, WindowStride: c.WindowStride,
		MaxFeatures: c.MaxFeatures, Floor: float32(c.Floor), h: newHasher(c.Buckets, c.Salt),
	}
}

// net is the float model being trained.
type net struct {
	d, hd      int
	emb        []float32
	w1, b1, w2 []float32
	b2         float32
}

func newNet(c TrainConfig, rng *rand.Rand) *net {
	n := &net{d: c.Dim, hd: c.Hidden, emb: make([]float32, c.Buckets*c.Dim),
		w1: make([]float32, c.Hidden*c.Dim), b1: make([]float32, c.Hidden), w2: make([]float32, c.Hidden)}
	// The embedding starts at zero, so buckets never seen in training add
	// nothing; the dense layers start random so that gradients flow.
	s1 := float32(math.Sqrt(6 / float64(c.Dim+c.Hidden)))
	for i := range n.w1 {
		n.w1[i] = s1 * float32(2*rng.Float64()-1)
	}
	s2 := float32(math.Sqrt(6 / float64(c.Hidden+1)))
	for i := range n.w2 {
		n.w2[i] = s2 * float32(2*rng.Float64()-1)
	}
	for i := range n.b1 {
		n.b1[i] = 0.01
	}
	return n
}

func (n *net) clone() *net {
	return &net{d: n.d, hd: n.hd, emb: slices.Clone(n.emb), w1: slices.Clone(n.w1), b1: slices.Clone(n.b1), w2: slices.Clone(n.w2), b2: n.b2}
}

// scratch holds one forward pass.
type fwd struct {
	h, a, dz, dh []float32
}

func (n *net) newFwd() *fwd {
	return &fwd{h: make([]float32, n.d), a: make([]float32, n.hd), dz: make([]float32, n.hd), dh: make([]float32, n.d)}
}

// logit runs the forward pass over ids, leaving the activations in f.
func (n *net) logit(ids []uint32, f *fwd) float32 {
	clear(f.h)
	if len(ids) > 0 {
		w := 1 / float32(len(ids))
		for _, id := range ids {
			row := n.emb[int(id)*n.d : int(id)*n.d+n.d]
			for k, v := range row {
				f.h[k] += w * v
			}
		}
	}
	out := n.b2
	for j := 0; j < n.hd; j++ {
		z := n.b1[j]
		row := n.w1[j*n.d : j*n.d+n.d]
		for k, v := range row {
			z += v * f.h[k]
		}
		f.a[j] = z
		if z > 0 {
			out += n.w2[j] * z
		}
	}
	return out
}

// step does one SGD step on one window with gradient g = weight·(p − y) of
// the logit.
func (n *net) step(ids []uint32, f *fwd, g, lr, l2 float32) {
	for j := 0; j < n.hd; j++ {
		if f.a[j] > 0 {
			f.dz[j] = g * n.w2[j]
			n.w2[j] -= lr * (g*f.a[j] + l2*n.w2[j])
		} else {
			f.dz[j] = 0
			n.w2[j] -= lr * l2 * n.w2[j]
		}
	}
	n.b2 -= lr * g
	clear(f.dh)
	for j := 0; j < n.hd; j++ {
		dz := f.dz[j]
		row := n.w1[j*n.d : j*n.d+n.d]
		if dz == 0 {
			if l2 != 0 {
				for k := range row {
					row[k] -= lr * l2 * row[k]
				}
			}
			continue
		}
		for k, v := range row {
			f.dh[k] += dz * v
			row[k] -= lr * (dz*f.h[k] + l2*v)
		}
		n.b1[j] -= lr * dz
	}
	if len(ids) == 0 {
		return
	}
	// Every row of the window gets the whole gradient of h (not 1/n of
	// it): with mean pooling the rows would otherwise learn n times more
	// slowly than the dense layers.
	w := lr
	for _, id := range ids {
		row := n.emb[int(id)*n.d : int(id)*n.d+n.d]
		for k := range row {
			row[k] -= w * f.dh[k]
		}
	}
}

// docScore is the highest window logit of a document.
func (n *net) docScore(wins [][]uint32, f *fwd) (best float32, arg int) {
	best = float32(math.Inf(-1))
	for i, w := range wins {
		if l := n.logit(w, f); l > best {
			best, arg = l, i
		}
	}
	return best, arg
}

// Train trains a model on train, choosing the epoch and calibrating on val
// (documents of other groups). With no val documents the model trains for
// c.Epochs and is not calibrated. Training is deterministic: the same data
// and configuration give the same model, byte for byte.
func Train(train, val []Featurized, c TrainConfig) (*Model, TrainReport, error) {
	c = c.withDefaults()
	if len(train) == 0 {
		return nil, TrainReport{}, errors.New("train: no training documents")
	}
	docs := weigh(train, c.GroupPower)
	rng := rand.New(rand.NewPCG(c.Seed, 0x5eed))
	n := newNet(c, rng)
	f := n.newFwd()
	rep := TrainReport{ValAUROC: math.NaN(), ValRecall1: math.NaN(), PlattA: 1}
	var best *net
	bestScore := math.Inf(-1)
	order := make([]int, len(docs))
	var kept []uint32
	totalSteps := float64(c.Epochs * len(docs))
	step := 0.0
	for epoch := 1; epoch <= c.Epochs; epoch++ {
		for i := range order {
			order[i] = i
		}
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var loss float64
		for _, di := range order {
			d := &docs[di]
			lr := float32(c.LR * max(1-step/totalSteps, 0.01))
			step++
			y := float32(0)
			wins := d.wins
			if d.label {
				y = 1
				if len(wins) > 1 {
					// Multiple-instance learning: an attack document is
					// an attack because of its worst window.
					_, arg := n.docScore(wins, f)
					wins = wins[arg : arg+1]
				}
			}
			for _, w := range wins {
				kept = dropout(kept[:0], w, c.Dropout, rng)
				l := n.logit(kept, f)
				p := sigmoid(l)
				loss += float64(d.weight) * logLoss(p, y)
				n.step(kept, f, d.weight*(p-y), lr, float32(c.L2))
			}
		}
		line := fmt.Sprintf("epoch %d: train loss %.4f", epoch, loss/float64(len(docs)))
		if len(val) > 0 {
			auc, r1 := n.evaluate(val, f)
			line += fmt.Sprintf(", val AUROC %.4f, recall@1%%FPR %.4f", auc, r1)
			if s := auc + r1; s > bestScore {
				bestScore, best = s, n.clone()
				rep.Epochs, rep.ValAUROC, rep.ValRecall1 = epoch, auc, r1
			}
		}
		if c.Log != nil {
			fmt.Fprintln(c.Log, line)
		}
	}
	if best == nil {
		best = n
		rep.Epochs = c.Epochs
	}
	for _, d := range docs {
		rep.Windows += len(d.wins)
	}
	m := c.skeleton()
	quantize(best, m)
	if len(val) > 0 {
		// Calibrate the quantised model: its scores are what ships.
		xs := make([]float64, len(val))
		ys := make([]bool, len(val))
		for i, v := range val {
			xs[i] = float64(logitOf(m.maxProb(v.f.wins)))
			ys[i] = v.f.label
		}
		rep.PlattA, rep.PlattB = platt(xs, ys)
		if rep.PlattA <= 0 {
			// The validation sources rank the other way round: no
			// calibration is better than an inverted one.
			rep.PlattA, rep.PlattB = 1, 0
		}
		m.Calibrate(rep.PlattA, rep.PlattB)
	}
	return m, rep, nil
}

// Calibrate folds Platt scaling p = sigmoid(a·logit + b) into the output
// layer.
func (m *Model) Calibrate(a, b float64) {
	for j := range m.W2 {
		m.W2[j] = float32(a * float64(m.W2[j]))
	}
	m.B2 = float32(a*float64(m.B2) + b)
}

func logitOf(p float32) float32 {
	p = min(max(p, 1e-7), 1-1e-7)
	return float32(math.Log(float64(p) / float64(1-p)))
}

func logLoss(p, y float32) float64 {
	q := float64(min(max(p, 1e-7), 1-1e-7))
	if y > 0.5 {
		return -math.Log(q)
	}
	return -math.Log(1 - q)
}

func dropout(dst, ids []uint32, rate float64, rng *rand.Rand) []uint32 {
	if rate <= 0 {
		return append(dst, ids...)
	}
	for _, id := range ids {
		if rng.Float64() >= rate {
			dst = append(dst, id)
		}
	}
	return dst
}

// weigh copies docs with weights: 1/size(group)^power, then scaled so that
// each class has a total weight of half the number of documents.
func weigh(in []Featurized, power float64) []featurized {
	size := map[string]int{}
	for _, d := range in {
		size[d.f.group]++
	}
	docs := make([]featurized, len(in))
	var tot [2]float64
	for i, d := range in {
		docs[i] = d.f
		w := math.Pow(float64(size[d.f.group]), -power)
		docs[i].weight = float32(w)
		tot[b2i(d.f.label)] += w
	}
	for i := range docs {
		t := tot[b2i(docs[i].label)]
		docs[i].weight = float32(float64(docs[i].weight) * float64(len(docs)) / 2 / t)
	}
	return docs
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// evaluate returns the AUROC and recall at 1% FPR of the window maximum.
func (n *net) evaluate(val []Featurized, f *fwd) (auroc, recall1 float64) {
	s := make([]float64, len(val))
	y := make([]bool, len(val))
	for i, v := range val {
		l, _ := n.docScore(v.f.wins, f)
		s[i] = float64(l)
		y[i] = v.f.label
	}
	return AUROC(s, y), RecallAtFPR(s, y, 0.01)
}

// quantize writes n's weights into m, with the embedding quantised to INT8
// per row (symmetric, zero point 0).
func quantize(n *net, m *Model) {
	m.Emb = make([]int8, len(n.emb))
	m.EmbScale = make([]float32, m.Buckets)
	for r := 0; r < m.Buckets; r++ {
		row := n.emb[r*n.d : r*n.d+n.d]
		var mx float32
		for _, v := range row {
			mx = max(mx, float32(math.Abs(float64(v))))
		}
		if mx == 0 || r == 0 {
			continue
		}
		s := mx / 127
		m.EmbScale[r] = s
		q := m.Emb[r*n.d : r*n.d+n.d]
		for k, v := range row {
			q[k] = int8(max(-127, min(127, math.Round(float64(v/s)))))
		}
	}
	m.W1 = slices.Clone(n.w1)
	m.B1 = slices.Clone(n.b1)
	m.W2 = slices.Clone(n.w2)
	m.B2 = n.b2
}

// maxProb is the highest window probability of a featurised document.
func (m *Model) maxProb(wins [][]uint32) float32 {
	var best float32
	for _, w := range wins {
		best = max(best, m.Prob(w))
	}
	return best
}

// ScoreFeaturized is the model's probability for a featurised document: the
// highest of its windows'.
func (m *Model) ScoreFeaturized(d Featurized) float32 { return m.maxProb(d.f.wins) }

// platt fits p = sigmoid(a·x + b) to labels: Newton's method with a
// backtracking line search on the log loss with Platt's smoothed targets
// (Lin, Lin and Weng, "A note on Platt's probabilistic outputs", 2007).
func platt(xs []float64, ys []bool) (a, b float64) {
	var npos, nneg float64
	for _, y := range ys {
		if y {
			npos++
		} else {
			nneg++
		}
	}
	if npos == 0 || nneg == 0 {
		return 1, 0
	}
	hi, lo := (npos+1)/(npos+2), 1/(nneg+2)
	target := func(i int) float64 {
		if ys[i] {
			return hi
		}
		return lo
	}
	loss := func(a, b float64) float64 {
		var f float64
		for i, x := range xs {
			z := a*x + b
			// log(1+e^z) - t·z, computed stably.
			if z >= 0 {
				f += z*(1-target(i)) + math.Log1p(math.Exp(-z))
			} else {
				f += -z*target(i) + math.Log1p(math.Exp(z))
			}
		}
		return f
	}
	a, b = 1, math.Log((npos+1)/(nneg+1))
	f := loss(a, b)
	for it := 0; it < 100; it++ {
		var ga, gb float64
		haa, hbb, hab := 1e-12, 1e-12, 0.0
		for i, x := range xs {
			p := 1 / (1 + math.Exp(-(a*x + b)))
			d := p - target(i)
			w := p * (1 - p)
			ga += d * x
			gb += d
			haa += w * x * x
			hab += w * x
			hbb += w
		}
		if math.Abs(ga) < 1e-6 && math.Abs(gb) < 1e-6 {
			break
		}
		det := haa*hbb - hab*hab
		da := -(hbb*ga - hab*gb) / det
		db := -(haa*gb - hab*ga) / det
		gd := ga*da + gb*db
		step := 1.0
		for step >= 1e-10 {
			na, nb := a+step*da, b+step*db
			if nf := loss(na, nb); nf < f+1e-4*step*gd {
				a, b, f = na, nb, nf
				break
			}
			step /= 2
		}
		if step < 1e-10 {
			break
		}
	}
	return a, b
}

// AUROC is the area under the ROC curve of scores s for labels y, with ties
// counted half.
func AUROC(s []float64, y []bool) float64 {
	idx := sortedDesc(s)
	var pos, neg float64
	for _, l := range y {
		if l {
			pos++
		} else {
			neg++
		}
	}
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	var area, tp, fp float64
	for i := 0; i < len(idx); {
		j := i
		var bp, bn float64
		for ; j < len(idx) && s[idx[j]] == s[idx[i]]; j++ {
			if y[idx[j]] {
				bp++
			} else {
				bn++
			}
		}
		area += bn * (tp + bp/2)
		tp += bp
		fp += bn
		i = j
	}
	return area / (pos * neg)
}

// RecallAtFPR is the recall at the lowest threshold whose false-positive
// rate is at most target; a block of tied scores is flagged whole or not at
// all.
func RecallAtFPR(s []float64, y []bool, target float64) float64 {
	idx := sortedDesc(s)
	var pos, neg float64
	for _, l := range y {
		if l {
			pos++
		} else {
			neg++
		}
	}
	if pos == 0 {
		return math.NaN()
	}
	var tp, fp float64
	for i := 0; i < len(idx); {
		j := i
		var bp, bn float64
		for ; j < len(idx) && s[idx[j]] == s[idx[i]]; j++ {
			if y[idx[j]] {
				bp++
			} else {
				bn++
			}
		}
		if neg > 0 && (fp+bn)/neg > target {
			break
		}
		tp += bp
		fp += bn
		i = j
	}
	return tp / pos
}

func sortedDesc(s []float64) []int {
	idx := make([]int, len(s))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return s[idx[a]] > s[idx[b]] })
	return idx
}
