package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/sentineldf/sentineldf/classify"
	"github.com/sentineldf/sentineldf/detect"
)

// addClassifierFlags registers the learned-classifier flags shared by scan
// and eval.
func addClassifierFlags(cmd *cobra.Command, f *scanFlags) {
	fl := cmd.Flags()
	// Off by default until the shipped model meets the quality bar on
	// held-out sources (docs/classifier.md).
	fl.BoolVar(&f.classifier, "classifier", false, "also run the learned classifier (experimental; see docs/classifier.md)")
	fl.StringVar(&f.classifierModel, "classifier-model", "", "run the classifier model `FILE` written by 'sentineldf train' instead of the built-in one (implies --classifier)")
}

// addClassifier appends the learned classifier to the engine's detectors
// when --classifier or --classifier-model asks for it.
func addClassifier(o *detect.Options, f scanFlags) error {
	if !f.classifier && f.classifierModel == "" {
		return nil
	}
	var d *classify.Detector
	var err error
	if f.classifierModel != "" {
		b, rerr := os.ReadFile(f.classifierModel)
		if rerr != nil {
			return fmt.Errorf("--classifier-model: %w", rerr)
		}
		var m classify.Model
		if err := m.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("--classifier-model %s: %w", f.classifierModel, err)
		}
		d, err = classify.NewDetector(&m)
	} else {
		d, err = classify.Default()
	}
	if err != nil {
		return fmt.Errorf("classifier: %w", err)
	}
	o.Extra = append(o.Extra, d)
	return nil
}
