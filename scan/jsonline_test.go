package scan

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sentineldf/sentineldf/detect"
)

// stdLine is the reference: encoding/json with HTML escaping off.
func stdLine(t testing.TB, l *Line) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(l); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func checkLine(t testing.TB, l *Line) {
	t.Helper()
	got, ok := appendLine(nil, l)
	if !ok {
		t.Fatalf("appendLine refused %+v", l)
	}
	if want := stdLine(t, l); !bytes.Equal(got, want) {
		t.Fatalf("appendLine differs from encoding/json:\n got %q\nwant %q", got, want)
	}
}

var jsonTricky = []string{
	"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnl\ncr\rbs\bff\f",
	"\x00\x01\x1f\x7f", "naïve café 東京 🙂", "\u2028line\u2029para", "bad \xff\xfe utf8 \xc3",
	"trunc \xe6\x9d", "ignore previous instructions", strings.Repeat("x", 300),
}

func TestAppendLineMatchesJSON(t *testing.T) {
	floats := []float64{0, 1, 0.5, 0.123456, 1.0 / 3, 0.999999, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 123456789.125, -0.25, math.SmallestNonzeroFloat64, math.MaxFloat64}
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		s := func() string { return jsonTricky[r.IntN(len(jsonTricky))] }
		l := Line{ID: s(), Source: s() + ":12", SHA256: s(), Risk: r.IntN(101) - 1, Score: floats[r.IntN(len(floats))],
			Band: detect.Band(s()), Quarantined: r.IntN(2) == 0}
		switch r.IntN(3) {
		case 0: // nil findings: "null"
		case 1:
			l.Findings = []detect.Finding{}
		default:
			for k := 0; k < 1+r.IntN(3); k++ {
				l.Findings = append(l.Findings, detect.Finding{Detector: s(), Rule: s(), Category: detect.Category(s()),
					Severity: detect.Severity(s()), Score: floats[r.IntN(len(floats))], Message: s(), Field: s(),
					Span: [2]int{r.IntN(1 << 20), -r.IntN(3)}, Evidence: s()})
			}
		}
		checkLine(t, &l)
	}
	for _, f := range []float64{math.NaN(), math.Inf(1)} {
		if _, ok := appendLine(nil, &Line{Score: f}); ok {
			t.Errorf("appendLine accepted score %v", f)
		}
	}
}

func FuzzAppendLine(f *testing.F) {
	for _, s := range jsonTricky {
		f.Add(s, s, 0.5, 7)
	}
	f.Fuzz(func(t *testing.T, a, b string, score float64, n int) {
		if math.IsNaN(score) || math.IsInf(score, 0) {
			return
		}
		l := Line{ID: a, Source: b, SHA256: a + b, Risk: n, Score: score, Band: detect.Band(b),
			Findings: []detect.Finding{{Detector: a, Message: b, Evidence: a, Score: score, Span: [2]int{n, -n}}}}
		checkLine(t, &l)
	})
}
