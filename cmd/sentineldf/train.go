package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sentineldf/sentineldf/classify"
	"github.com/sentineldf/sentineldf/dataset"
	"github.com/sentineldf/sentineldf/scan"
)

// trainFlags are the flags of `sentineldf train`.
type trainFlags struct {
	out           string
	labelField    string
	groupField    string
	excludeGroups []string
	textFields    []string
	epochs        int
	seed          uint64
	hardNegatives int
	spliced       int
	cv            bool
	format        string
}

func newTrainCmd(io stdio) *cobra.Command {
	var f trainFlags
	cmd := &cobra.Command{
		Use:   "train [flags] FILE...",
		Short: "Train the learned classifier on labelled data",
		Long: `Train SentinelDF's learned classifier (hashed word, bigram, symbol and character n-gram
features; one hidden layer; INT8 embeddings) on labelled datasets and write the model file.

Training is deterministic: the same data, flags and seed give the same model, byte for byte.
Whole groups (sources, --group-field) are held out to choose the number of epochs and to
calibrate the output; the model is then retrained on everything. Generated hard negatives
(benign texts that mention attack words) and attacks spliced into long benign documents are
added to the data.

With --cv, run leave-sources-out cross-validation instead (the folds of
classify.DefaultFolds, for injection-dev.jsonl) and report, per fold, the rules alone, the
classifier alone and both fused, as the engine fuses them.

Exit status: 0 ok, 2 on usage or input errors.`,
		Example: `  sentineldf train --group-field source --exclude-group tensor-trust/ --out model.bin data.jsonl
  sentineldf train --cv --group-field source ../shared/data/injection-dev.jsonl`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTrain(cmd, io, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.out, "out", "o", "", "write the model to `FILE`")
	fl.StringVar(&f.labelField, "label-field", "label", "the field holding each row's label")
	fl.StringVar(&f.groupField, "group-field", "source", "the field naming each row's source")
	fl.StringArrayVar(&f.excludeGroups, "exclude-group", nil, "never train on rows whose group starts with `PREFIX` (repeatable; e.g. sources whose licence forbids training); --cv still measures them when held out")
	fl.StringArrayVar(&f.textFields, "text-field", nil, "a field to train on (dotted path; repeatable; default: auto-detect)")
	fl.IntVar(&f.epochs, "epochs", classify.DefaultTrainConfig.Epochs, "most training epochs")
	fl.Uint64Var(&f.seed, "seed", classify.DefaultTrainConfig.Seed, "random seed")
	fl.IntVar(&f.hardNegatives, "hard-negatives", classify.DefaultAugment.HardNegatives, "generated hard negatives to add")
	fl.IntVar(&f.spliced, "spliced", classify.DefaultAugment.Spliced, "most attacks to splice into long benign documents")
	fl.BoolVar(&f.cv, "cv", false, "run leave-sources-out cross-validation instead of training")
	fl.StringVar(&f.format, "format", "table", "--cv report format: table or json")
	return cmd
}

func runTrain(cmd *cobra.Command, std stdio, f trainFlags, paths []string) error {
	switch {
	case f.format != "table" && f.format != "json":
		return usageErr(fmt.Errorf("--format: %q is not table or json", f.format))
	case !f.cv && f.out == "":
		return usageErr(errors.New("--out is required (or --cv)"))
	case f.labelField == "" || f.groupField == "" || f.labelField == f.groupField:
		return usageErr(errors.New("--label-field and --group-field must be set and differ"))
	case f.epochs < 1:
		return usageErr(errors.New("--epochs must be positive"))
	case f.hardNegatives < 0 || f.spliced < 0:
		return usageErr(errors.New("--hard-negatives and --spliced must not be negative"))
	}
	start := time.Now()
	norm, err := classify.NewNormalizer()
	if err != nil {
		return err
	}
	src, rules, err := readTrainingData(cmd, f, paths, norm)
	if err != nil {
		return usageErr(err)
	}
	if len(src) == 0 {
		return usageErr(errors.New("no labelled rows"))
	}
	fmt.Fprintf(std.err, "read %d labelled rows in %.1fs\n", len(src), time.Since(start).Seconds())
	cfg := classify.DefaultTrainConfig
	cfg.Epochs, cfg.Seed = f.epochs, f.seed
	aug := classify.Augment{HardNegatives: f.hardNegatives, Spliced: f.spliced, Normalize: func(s string) string {
		n, _ := norm.Normalize(s)
		return n
	}}
	if f.cv {
		res, err := classify.CrossValidate(src, rules, classify.DefaultFolds, f.excludeGroups, aug, cfg, nil)
		if err != nil {
			return usageErr(err)
		}
		fmt.Fprintf(std.err, "cross-validated in %.1fs\n", time.Since(start).Seconds())
		return writeCV(std.out, f.format, res)
	}
	cfg.Log = std.err
	m, rep, err := classify.TrainSelect(src, aug, cfg)
	if err != nil {
		return usageErr(err)
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encode model: %w", err)
	}
	if err := os.WriteFile(f.out, b, 0o644); err != nil {
		return usageErr(fmt.Errorf("--out: %w", err))
	}
	fmt.Fprintf(std.err, "trained %d epochs on %d windows (validation AUROC %.4f, recall@1%%FPR %.4f; Platt a=%.4f b=%.4f) in %.1fs\n",
		rep.Epochs, rep.Windows, rep.ValAUROC, rep.ValRecall1, rep.PlattA, rep.PlattB, time.Since(start).Seconds())
	fmt.Fprintf(std.out, "%s %s (%d bytes)\n", f.out, m.Digest(), len(b))
	return nil
}

// readTrainingData reads the labelled rows of paths, normalised as the
// engine normalises them, with their rules-only scores.
func readTrainingData(cmd *cobra.Command, f trainFlags, paths []string, norm *classify.Normalizer) ([]classify.Source, []float64, error) {
	cfg := scan.Config{Paths: paths, Dataset: dataset.Options{TextFields: f.textFields, KeepFields: []string{f.labelField, f.groupField}}}
	recs, err := newRecordStream(cfg)
	if err != nil {
		return nil, nil, err
	}
	defer recs.close()
	var src []classify.Source
	var rules []float64
	for {
		if err := cmd.Context().Err(); err != nil {
			return nil, nil, err
		}
		rec, err := recs.next()
		if err != nil {
			return nil, nil, err
		}
		if rec == nil {
			return src, rules, nil
		}
		label, known := parseLabel(rec.Meta[f.labelField])
		if !known {
			continue
		}
		group := rec.Meta[f.groupField]
		if !f.cv && excluded(group, f.excludeGroups) {
			continue
		}
		var b strings.Builder
		for i, fl := range rec.Fields {
			if i > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(fl.Text)
		}
		text := b.String()
		n, score := norm.Normalize(text)
		src = append(src, classify.Source{Orig: text, Doc: classify.Doc{Norm: n, Label: label, Group: group}})
		rules = append(rules, score)
	}
}

func excluded(group string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(group, p) {
			return true
		}
	}
	return false
}

// writeCV prints cross-validation results with their means.
func writeCV(w io.Writer, format string, res []classify.CVResult) error {
	mean := func(get func(classify.CVResult) float64) float64 {
		var s float64
		for _, r := range res {
			s += get(r)
		}
		return s / float64(len(res))
	}
	type means struct {
		RulesAUROC, ClassifierAUROC, FusedAUROC       float64
		RulesRecall1, ClassifierRecall1, FusedRecall1 float64
	}
	m := means{
		RulesAUROC:        mean(func(r classify.CVResult) float64 { return r.Rules.AUROC }),
		ClassifierAUROC:   mean(func(r classify.CVResult) float64 { return r.Model.AUROC }),
		FusedAUROC:        mean(func(r classify.CVResult) float64 { return r.Fused.AUROC }),
		RulesRecall1:      mean(func(r classify.CVResult) float64 { return r.Rules.Recall1 }),
		ClassifierRecall1: mean(func(r classify.CVResult) float64 { return r.Model.Recall1 }),
		FusedRecall1:      mean(func(r classify.CVResult) float64 { return r.Fused.Recall1 }),
	}
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Folds []classify.CVResult `json:"folds"`
			Mean  means               `json:"mean"`
		}{res, m})
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	io.WriteString(tw, "FOLD\tATTACKS\tBENIGN\tAUROC rules/clf/fused\tR@1%FPR rules/clf/fused\tR@0.1%FPR fused\tBENIGN FLAGGED\n")
	for _, r := range res {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s / %s / %s\t%s / %s / %s\t%s\t%s\n", r.Fold, r.Attacks, r.Benign,
			f3(r.Rules.AUROC), f3(r.Model.AUROC), f3(r.Fused.AUROC), f3(r.Rules.Recall1), f3(r.Model.Recall1), f3(r.Fused.Recall1),
			f3(r.Fused.Recall01), f3(r.Fused.Flagged))
	}
	fmt.Fprintf(tw, "MEAN\t\t\t%s / %s / %s\t%s / %s / %s\t\t\n", f3(m.RulesAUROC), f3(m.ClassifierAUROC), f3(m.FusedAUROC),
		f3(m.RulesRecall1), f3(m.ClassifierRecall1), f3(m.FusedRecall1))
	if err := tw.Flush(); err != nil {
		return err
	}
	io.WriteString(w, "\nPER HELD-OUT SOURCE (fused: flagged = risk ≥ 50; recall at the fold's 1% FPR threshold)\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	io.WriteString(tw, "FOLD\tSOURCE\tLABEL\tN\tFLAGGED\tRECALL@1%FPR\n")
	for _, r := range res {
		for _, g := range r.PerGroup {
			label, recall := "benign", "-"
			if g.Label {
				label, recall = "attack", f3(g.RecallAt1)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.Fold, g.Group, label, g.N, f3(g.Flagged), recall)
		}
	}
	return tw.Flush()
}

func f3(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}
