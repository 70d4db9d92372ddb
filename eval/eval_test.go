package eval

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

// mk builds examples: pos and neg are the scores of positives and negatives.
func mk(pos, neg []float64) []Scored {
	var s []Scored
	for _, p := range pos {
		s = append(s, Scored{Score: p, Label: true})
	}
	for _, n := range neg {
		s = append(s, Scored{Score: n})
	}
	return s
}

func near(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) < 1e-12
}

func TestAUROC(t *testing.T) {
	tests := []struct {
		name     string
		pos, neg []float64
		want     float64
	}{
		{"perfect", []float64{0.9, 0.8}, []float64{0.1, 0.2}, 1},
		{"inverted", []float64{0.1, 0.2}, []float64{0.9, 0.8}, 0},
		{"all tied", []float64{0.5, 0.5}, []float64{0.5, 0.5, 0.5}, 0.5},
		// Pairs: (.5,.5)=½ (.5,.2)=1 (.8,.5)=1 (.8,.2)=1 → 3.5/4.
		{"one tie", []float64{0.5, 0.8}, []float64{0.5, 0.2}, 0.875},
		// pos .3: 0+1+½; pos .6: ½+1+1 twice → 6.5/9.
		{"ties both ways", []float64{0.3, 0.6, 0.6}, []float64{0.6, 0.1, 0.3}, 6.5 / 9},
		{"no negatives", []float64{0.3}, nil, math.NaN()},
		{"no positives", nil, []float64{0.3}, math.NaN()},
		{"empty", nil, nil, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AUROC(mk(tt.pos, tt.neg)); !near(got, tt.want) {
				t.Errorf("AUROC = %v, want %v", got, tt.want)
			}
		})
	}
}

// bruteAUROC compares every positive with every negative.
func bruteAUROC(s []Scored) float64 {
	var u float64
	var pairs int
	for _, p := range s {
		if !p.Label {
			continue
		}
		for _, n := range s {
			if n.Label {
				continue
			}
			pairs++
			switch {
			case p.Score > n.Score:
				u++
			case p.Score == n.Score:
				u += 0.5
			}
		}
	}
	return u / float64(pairs)
}

func TestAUROCMatchesPairwise(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 50 {
		var s []Scored
		for range 5 + r.IntN(60) {
			// Few distinct scores, so ties are common.
			s = append(s, Scored{Score: float64(r.IntN(6)) / 5, Label: r.IntN(3) == 0})
		}
		s = append(s, Scored{Score: 0.4, Label: true}, Scored{Score: 0.6})
		if got, want := AUROC(s), bruteAUROC(s); !near(got, want) {
			t.Fatalf("case %d: AUROC = %v, pairwise %v", i, got, want)
		}
	}
}

func TestAUROCRandomClassifier(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	s := make([]Scored, 20000)
	for i := range s {
		s[i] = Scored{Score: r.Float64(), Label: r.IntN(2) == 0}
	}
	// The standard error of AUROC here is about 0.004.
	if got := AUROC(s); math.Abs(got-0.5) > 0.02 {
		t.Errorf("random classifier AUROC = %v, want ≈ 0.5", got)
	}
}

func TestAveragePrecision(t *testing.T) {
	tests := []struct {
		name     string
		pos, neg []float64
		want     float64
	}{
		{"perfect", []float64{0.9, 0.8}, []float64{0.1}, 1},
		// Ranked P N P N: 1·½ + ⅔·½.
		{"interleaved", []float64{0.9, 0.7}, []float64{0.8, 0.6}, 0.5 + 1.0/3},
		// Block .9 {P,N}: ½·½; block .5 {P}: ⅔·½.
		{"tie at top", []float64{0.9, 0.5}, []float64{0.9, 0.1}, 0.25 + 1.0/3},
		// Everything tied: precision is the base rate.
		{"all tied", []float64{0.5}, []float64{0.5, 0.5, 0.5}, 0.25},
		{"no positives", nil, []float64{0.1}, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AveragePrecision(mk(tt.pos, tt.neg)); !near(got, tt.want) {
				t.Errorf("AveragePrecision = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRecallAtFPR(t *testing.T) {
	// Ten negatives, five positives.
	s := mk(
		[]float64{0.95, 0.9, 0.6, 0.5, 0.05},
		[]float64{0.9, 0.5, 0.5, 0.3, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1},
	)
	tests := []struct {
		name      string
		s         []Scored
		target    float64
		threshold float64
		recall    float64
		fpr       float64
	}{
		{"zero FPR stops before the first negative", s, 0, 0.95, 0.2, 0},
		{"one false positive allowed", s, 0.1, 0.6, 0.6, 0.1},
		// Flagging the 0.5 tie would add two negatives at once (FPR 0.3):
		// the tie is kept whole, so the threshold stays at 0.6.
		{"tie is not split", s, 0.2, 0.6, 0.6, 0.1},
		{"tie fits", s, 0.3, 0.5, 0.8, 0.3},
		{"everything", s, 1, 0.05, 1, 1},
		{"negative on top", mk([]float64{0.5}, []float64{0.9, 0.1}), 0.01, math.Inf(1), 0, 0},
		{"no negatives", mk([]float64{0.5, 0.7}, nil), 0.01, 0.5, 1, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := RecallAtFPR(tt.s, tt.target)
			if float64(op.Threshold) != tt.threshold || !near(float64(op.Recall), tt.recall) || !near(float64(op.FPR), tt.fpr) {
				t.Errorf("RecallAtFPR(%v) = threshold %v recall %v fpr %v, want %v %v %v",
					tt.target, op.Threshold, op.Recall, op.FPR, tt.threshold, tt.recall, tt.fpr)
			}
			if !math.IsNaN(float64(op.FPR)) && float64(op.FPR) > tt.target {
				t.Errorf("achieved FPR %v exceeds target %v", op.FPR, tt.target)
			}
			// The operating point must agree with the confusion matrix at its threshold.
			if c := ConfusionAt(tt.s, float64(op.Threshold)); c.TP != op.TP || c.FP != op.FP {
				t.Errorf("ConfusionAt(threshold) = %+v, operating point TP %d FP %d", c, op.TP, op.FP)
			}
		})
	}
}

func TestConfusion(t *testing.T) {
	s := mk([]float64{0.9, 0.7, 0.2}, []float64{0.8, 0.1, 0.1, 0.0})
	tests := []struct {
		name                 string
		threshold            float64
		want                 Confusion
		precision, recall, f float64
		fpr                  float64
	}{
		{"at 0.7", 0.7, Confusion{TP: 2, FP: 1, TN: 3, FN: 1}, 2.0 / 3, 2.0 / 3, 2.0 / 3, 0.25},
		{"at 0.95 flags nothing", 0.95, Confusion{TN: 4, FN: 3}, math.NaN(), 0, 0, 0},
		{"at 0 flags all", 0, Confusion{TP: 3, FP: 4}, 3.0 / 7, 1, 6.0 / 10, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(s, Decision{Name: "x", Threshold: tt.threshold})
			if d.Confusion != tt.want {
				t.Fatalf("confusion = %+v, want %+v", d.Confusion, tt.want)
			}
			for _, c := range []struct {
				name      string
				got, want float64
			}{
				{"precision", float64(d.Precision), tt.precision},
				{"recall", float64(d.Recall), tt.recall},
				{"f1", float64(d.F1), tt.f},
				{"fpr", float64(d.FPR), tt.fpr},
			} {
				if !near(c.got, c.want) {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
		})
	}
}

func TestGroups(t *testing.T) {
	s := []Scored{
		{Score: 0.9, Label: true, Group: "b"},
		{Score: 0.6, Label: true, Group: "b"},
		{Score: 0.1, Label: false, Group: "b"},
		{Score: 0.8, Label: false, Group: "a"},
		{Score: 0.0, Label: false, Group: "a"},
	}
	gs := Groups(s, []Decision{{"flag", 0.5}, {"quarantine", 0.7}})
	if len(gs) != 2 || gs[0].Group != "a" || gs[1].Group != "b" {
		t.Fatalf("groups = %+v, want a then b", gs)
	}
	a, b := gs[0], gs[1]
	if a.N != 2 || a.Positives != 0 || a.Negatives != 2 || b.N != 3 || b.Positives != 2 || b.Negatives != 1 {
		t.Errorf("counts: a %+v b %+v", a, b)
	}
	tests := []struct {
		name              string
		got               GroupRate
		flagged           int
		rate, recall, fpr float64
	}{
		{"a flag", a.Rates[0], 1, 0.5, math.NaN(), 0.5},
		{"a quarantine", a.Rates[1], 1, 0.5, math.NaN(), 0.5},
		{"b flag", b.Rates[0], 2, 2.0 / 3, 1, 0},
		{"b quarantine", b.Rates[1], 1, 1.0 / 3, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := tt.got
			if g.Flagged != tt.flagged || !near(float64(g.Rate), tt.rate) || !near(float64(g.Recall), tt.recall) || !near(float64(g.FPR), tt.fpr) {
				t.Errorf("rate = %+v, want flagged %d rate %v recall %v fpr %v", g, tt.flagged, tt.rate, tt.recall, tt.fpr)
			}
		})
	}
}

func TestEvaluateIgnoresOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	s := make([]Scored, 500)
	for i := range s {
		s[i] = Scored{Score: float64(r.IntN(20)) / 20, Label: r.IntN(2) == 0, Group: string(rune('a' + r.IntN(4)))}
	}
	targets := []float64{0.01, 0.001}
	ds := []Decision{{"flagged", 0.5}, {"quarantine", 0.7}}
	want, err := json.Marshal(Evaluate(s, targets, ds))
	if err != nil {
		t.Fatal(err)
	}
	r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	got, err := json.Marshal(Evaluate(s, targets, ds))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("report depends on input order:\n%s\n%s", got, want)
	}
	var back Report
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if back.N != 500 || back.Positives+back.Negatives != 500 || len(back.Groups) != 4 {
		t.Errorf("round trip: n %d pos %d neg %d groups %d", back.N, back.Positives, back.Negatives, len(back.Groups))
	}
}

func TestFloatJSON(t *testing.T) {
	tests := []struct {
		in   Float
		want string
	}{
		{Float(math.NaN()), "null"},
		{Float(math.Inf(1)), "null"},
		{Float(0.25), "0.25"},
		{Float(1), "1"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			b, err := json.Marshal(tt.in)
			if err != nil || string(b) != tt.want {
				t.Errorf("Marshal(%v) = %s, %v; want %s", float64(tt.in), b, err, tt.want)
			}
		})
	}
}

func BenchmarkEvaluate(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	s := make([]Scored, 1_000_000)
	groups := []string{"a", "b", "c", "d", "e"}
	for i := range s {
		s[i] = Scored{Score: math.Round(r.Float64()*1e4) / 1e4, Label: r.IntN(2) == 0, Group: groups[r.IntN(len(groups))]}
	}
	targets := []float64{0.01, 0.001}
	ds := []Decision{{"flagged", 0.5}, {"quarantine", 0.7}}
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(s, targets, ds)
	}
}
