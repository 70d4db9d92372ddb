package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/sentineldf/sentineldf/detect"
	"github.com/sentineldf/sentineldf/onnx"
)

// modelFlags are the flags that plug a user's own ONNX sequence-
// classification model into scan and eval.
type modelFlags struct {
	path, tokenizer string
	labelIndex      int
	threshold       float64
}

// addModelFlags registers --model, --tokenizer, --model-label-index and
// --model-threshold on scan and eval.
func addModelFlags(cmd *cobra.Command, f *modelFlags) {
	fl := cmd.Flags()
	fl.StringVar(&f.path, "model", "", "also run the user's sequence-classification ONNX model `FILE` (needs --tokenizer and a build with -tags ort; ONNXRUNTIME_LIB names libonnxruntime)")
	fl.StringVar(&f.tokenizer, "tokenizer", "", "the HuggingFace tokenizer.json `FILE` of --model")
	fl.IntVar(&f.labelIndex, "model-label-index", 1, "index of the malicious class in --model's output")
	fl.Float64Var(&f.threshold, "model-threshold", 0.5, "report text windows whose malicious-class probability reaches `P` (0 < P ≤ 1)")
}

// checkModelFlags validates the model flags without loading anything.
func checkModelFlags(f modelFlags) error {
	switch {
	case f.path == "" && f.tokenizer != "":
		return errors.New("--tokenizer needs --model")
	case f.path == "":
		return nil
	case f.tokenizer == "":
		return errors.New("--model needs --tokenizer (the model's tokenizer.json)")
	case f.labelIndex < 0:
		return fmt.Errorf("--model-label-index: %d is negative", f.labelIndex)
	case f.threshold <= 0 || f.threshold > 1:
		return fmt.Errorf("--model-threshold: %v is not within (0, 1]", f.threshold)
	case !onnx.ORTAvailable:
		return fmt.Errorf("--model: %w", onnx.ErrNoRuntime)
	}
	return nil
}

// addUserModel loads --model into ONNX Runtime and appends its detector to
// the engine's detectors.
func addUserModel(o *detect.Options, f modelFlags) error {
	if err := checkModelFlags(f); err != nil || f.path == "" {
		return err
	}
	d, err := onnx.LoadUserDetector(f.path, f.tokenizer,
		onnx.ORTOptions{Library: os.Getenv("ONNXRUNTIME_LIB")},
		onnx.UserModelOptions{LabelIndex: f.labelIndex, Threshold: f.threshold})
	if err != nil {
		return fmt.Errorf("--model: %w", err)
	}
	o.Extra = append(o.Extra, d)
	return nil
}

// userModelErr returns the first error a user model failed with during a
// scan: its detector cannot return errors while scanning.
func userModelErr(o detect.Options) error {
	for _, d := range o.Extra {
		if u, ok := d.(*onnx.UserDetector); ok {
			if err := u.Err(); err != nil {
				return fmt.Errorf("--model: %w", err)
			}
		}
	}
	return nil
}
