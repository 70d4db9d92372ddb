package scan

import (
	"reflect"
	"testing"

	"github.com/sentineldf/sentineldf/detect"
)

func sampleResults() []detect.Result {
	return []detect.Result{
		{SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Band: detect.BandClean, Findings: []detect.Finding{}},
		{
			SHA256: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
			Risk:   93, Score: 0.925123, Band: detect.BandQuarantine,
			Findings: []detect.Finding{
				{Detector: "rules", Rule: "injection.ignore_previous.en", Category: detect.CatInjection, Severity: detect.SevHigh,
					Score: 0.9, Message: "Instruction override", Field: "text", Span: [2]int{4, 31}, Evidence: "Ignore all previous instructions"},
				{Detector: "html", Rule: "html.script", Category: detect.CatHTML, Severity: detect.SevCritical,
					Score: 0.3, Message: "base64-decoded text: <script>", Field: "messages[2].content", Span: [2]int{0, 1 << 20}, Evidence: "<script>alert(1)</script> ü…"},
			},
		},
		{Risk: 55, Score: 0.55, Band: detect.BandElevated, Findings: []detect.Finding{}},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for i, r := range sampleResults() {
		t.Run(string(r.Band), func(t *testing.T) {
			b := appendResult(nil, &r)
			got, err := decodeResult(b)
			if err != nil {
				t.Fatalf("result %d: %v", i, err)
			}
			if !reflect.DeepEqual(got, r) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
			}
		})
	}
}

func TestCodecRejectsDamage(t *testing.T) {
	r := sampleResults()[1]
	b := appendResult(nil, &r)
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"truncated", b[:len(b)-1]},
		{"trailing", append(append([]byte{}, b...), 0)},
		{"version", append([]byte{99}, b[1:]...)},
		{"header only", b[:33]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeResult(tt.b); err == nil {
				t.Error("decoded damaged bytes without error")
			}
		})
	}
}

func FuzzDecodeResult(f *testing.F) {
	for _, r := range sampleResults() {
		f.Add(appendResult(nil, &r))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeResult(b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to the same bytes, except for a
		// sha256 that was not valid hex (encoded as zeros).
		again := appendResult(nil, &r)
		r2, err := decodeResult(again)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("re-encoding changed the result: %v", err)
		}
	})
}
