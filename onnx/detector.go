package onnx

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/sentineldf/sentineldf/detect"
)

// UserDetectorName is the detector name of user models in findings.
const UserDetectorName = "onnx-model"

// UserModelOptions configure a UserDetector. The zero value uses the
// defaults.
type UserModelOptions struct {
	// LabelIndex is the index of the malicious class in the model's output,
	// used as given: binary classifiers with labels [benign, malicious]
	// (Prompt Guard among them) want 1, the CLI's default. For a model with
	// one output logit, 1 takes its sigmoid and 0 one minus it.
	LabelIndex int
	// Threshold is the class probability from which a window is reported
	// (default 0.5).
	Threshold float64
	// MaxLength caps the tokens per window, special tokens included; 0 uses
	// the tokenizer's max_length (and the model's fixed input length, if
	// it has one).
	MaxLength int
	// Stride is how many tokens consecutive windows share; 0 means
	// MaxLength/8.
	Stride int
	// BatchSize is how many windows go to the model in one run (default 8).
	BatchSize int
}

// UserDetector is a detect.Detector over a user's own sequence-
// classification model (for example an exported Prompt Guard): it
// tokenizes each text, cuts it into overlapping windows that fit the
// model, runs them in batches, takes the softmax of the logits and reports
// every window whose malicious-class probability reaches the threshold,
// with the window's byte span. It is safe for concurrent use.
type UserDetector struct {
	sess   Runner
	tok    *Tokenizer
	name   string
	digest string
	o      UserModelOptions

	ids, mask, types string // input names; mask and types may be ""
	output           string

	mu  sync.Mutex
	err error
}

var (
	_ detect.Detector      = (*UserDetector)(nil)
	_ detect.ModelDetector = (*UserDetector)(nil)
)

// LoadUserDetector loads a user model and its tokenizer.json from files
// into ONNX Runtime. In builds without ONNX Runtime it fails with
// ErrNoRuntime.
func LoadUserDetector(modelPath, tokenizerPath string, ort ORTOptions, o UserModelOptions) (*UserDetector, error) {
	if !ORTAvailable {
		return nil, ErrNoRuntime
	}
	model, err := os.ReadFile(modelPath)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	tj, err := os.ReadFile(tokenizerPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	tok, err := ParseTokenizer(tj)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tokenizerPath, err)
	}
	sess, err := NewORTSession(model, ort)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", modelPath, err)
	}
	h := sha256.New()
	h.Write(model)
	h.Write(tj)
	name := strings.TrimSuffix(filepath.Base(modelPath), filepath.Ext(modelPath))
	d, err := NewUserDetector(name, "sha256:"+hex.EncodeToString(h.Sum(nil)), sess, tok, o)
	if err != nil {
		sess.Close()
		return nil, fmt.Errorf("%s: %w", modelPath, err)
	}
	return d, nil
}

// NewUserDetector builds a detector over a loaded model (an ONNX Runtime
// session, or a pure-Go Model when its operators allow). name names the
// model in findings (rule "model.<name>"); digest identifies the model and
// tokenizer in scan records. The model must take int64 input ids
// ("input_ids", else its first input) and may take "attention_mask" and
// "token_type_ids"; its first output ("logits" if present) must be
// [N, classes].
func NewUserDetector(name, digest string, sess Session, tok *Tokenizer, o UserModelOptions) (*UserDetector, error) {
	if o.Threshold == 0 {
		o.Threshold = 0.5
	}
	if o.Threshold < 0 || o.Threshold > 1 {
		return nil, fmt.Errorf("threshold %v is not within (0, 1]", o.Threshold)
	}
	if o.LabelIndex < 0 {
		return nil, fmt.Errorf("label index %d is negative", o.LabelIndex)
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 8
	}
	if o.MaxLength <= 0 || o.MaxLength > tok.MaxLength {
		o.MaxLength = tok.MaxLength
	}
	d := &UserDetector{sess: sess, tok: tok, name: name, digest: digest}
	var other []string
	for _, in := range sess.InputNames() {
		switch in {
		case "input_ids":
			d.ids = in
		case "attention_mask":
			d.mask = in
		case "token_type_ids":
			d.types = in
		default:
			other = append(other, in)
		}
	}
	if d.ids == "" && len(other) == 1 {
		d.ids, other = other[0], nil
	}
	if d.ids == "" || len(other) > 0 {
		return nil, fmt.Errorf("model inputs %v: want input_ids and optionally attention_mask and token_type_ids", sess.InputNames())
	}
	for _, in := range []string{d.ids, d.mask, d.types} {
		if in == "" {
			continue
		}
		typ, shape, _ := sess.InputInfo(in)
		if typ != Int64 {
			return nil, fmt.Errorf("model input %q has element type %v; int64 token ids are supported", in, typ)
		}
		if len(shape) != 2 {
			return nil, fmt.Errorf("model input %q has shape %v; want [batch, sequence]", in, shape)
		}
		if shape[1] > 0 && int(shape[1]) < o.MaxLength {
			o.MaxLength = int(shape[1])
		}
	}
	if len(tok.Prefix)+len(tok.Suffix) >= o.MaxLength {
		return nil, fmt.Errorf("max length %d leaves no room after the special tokens", o.MaxLength)
	}
	if o.Stride <= 0 {
		o.Stride = o.MaxLength / 8
	}
	outs := sess.OutputNames()
	if len(outs) == 0 {
		return nil, errors.New("model has no outputs")
	}
	d.output = outs[0]
	for _, out := range outs {
		if out == "logits" {
			d.output = out
		}
	}
	d.o = o
	return d, nil
}

// Name implements detect.Detector.
func (d *UserDetector) Name() string { return UserDetectorName }

// Model implements detect.ModelDetector.
func (d *UserDetector) Model() detect.Model {
	return detect.Model{Name: "model." + d.name, Digest: d.digest}
}

// Err returns the first error a model run failed with, if any. Detect
// cannot return errors: callers check Err after a scan.
func (d *UserDetector) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

func (d *UserDetector) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err == nil {
		d.err = err
	}
}

// Detect implements detect.Detector.
func (d *UserDetector) Detect(t *detect.Text, emit func(detect.Finding)) {
	wins := d.tok.Windows(t.Orig, d.o.MaxLength, d.o.Stride)
	for start := 0; start < len(wins); start += d.o.BatchSize {
		batch := wins[start:min(start+d.o.BatchSize, len(wins))]
		probs, err := d.Score(batch)
		if err != nil {
			d.fail(err)
			return
		}
		for i, p := range probs {
			if p < d.o.Threshold {
				continue
			}
			w := batch[i]
			sev := detect.SevMedium
			if p >= 0.9 {
				sev = detect.SevHigh
			}
			emit(detect.Finding{
				Detector: UserDetectorName,
				Rule:     "model." + d.name,
				Category: detect.CatClassifier,
				Severity: sev,
				Score:    p,
				Message:  fmt.Sprintf("model %s: class %d probability %.3f in bytes %d–%d", d.name, d.o.LabelIndex, p, w.Start, w.End),
				Field:    t.Field,
				Span:     [2]int{w.Start, w.End},
				Evidence: t.Orig[w.Start:w.End],
			})
		}
	}
}

// Score runs one batch of windows and returns each window's probability
// of the malicious class.
func (d *UserDetector) Score(batch []Window) ([]float64, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	l := 0
	for _, w := range batch {
		l = max(l, len(w.IDs))
	}
	n := len(batch)
	ids := make([]int64, n*l)
	mask := make([]int64, n*l)
	for i, w := range batch {
		for j := range l {
			if j < len(w.IDs) {
				ids[i*l+j] = w.IDs[j]
				mask[i*l+j] = 1
			} else {
				ids[i*l+j] = d.tok.PadID
			}
		}
	}
	shape := []int64{int64(n), int64(l)}
	in := map[string]Tensor{d.ids: Int64Tensor(shape, ids)}
	if d.mask != "" {
		in[d.mask] = Int64Tensor(shape, mask)
	}
	if d.types != "" {
		in[d.types] = Int64Tensor(shape, make([]int64, n*l))
	}
	out, err := d.sess.Run(in)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", d.name, err)
	}
	logits, ok := out[d.output]
	if !ok || logits.Type != Float || len(logits.Shape) != 2 || logits.Shape[0] != int64(n) {
		return nil, fmt.Errorf("model %s: output %q is %v %v; want float [%d, classes]", d.name, d.output, logits.Type, logits.Shape, n)
	}
	c := int(logits.Shape[1])
	if c == 1 && d.o.LabelIndex > 1 || c > 1 && d.o.LabelIndex >= c {
		return nil, fmt.Errorf("model %s: label index %d, but the model has %d classes", d.name, d.o.LabelIndex, c)
	}
	probs := make([]float64, n)
	for i := range n {
		row := logits.Float[i*c : (i+1)*c]
		if c == 1 {
			// One logit: a sigmoid, the probability of class 1.
			p := 1 / (1 + math.Exp(-float64(row[0])))
			if d.o.LabelIndex == 0 {
				p = 1 - p
			}
			probs[i] = p
			continue
		}
		mx := math.Inf(-1)
		for _, v := range row {
			mx = max(mx, float64(v))
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v) - mx)
		}
		probs[i] = math.Exp(float64(row[d.o.LabelIndex])-mx) / sum
	}
	return probs, nil
}

// Close releases the model.
func (d *UserDetector) Close() error {
	if c, ok := d.sess.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}
