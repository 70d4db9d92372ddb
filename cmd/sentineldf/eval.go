package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sentineldf/sentineldf/detect"
	"github.com/sentineldf/sentineldf/eval"
	"github.com/sentineldf/sentineldf/scan"
)

// evalFlags are the flags of `sentineldf eval`. The dataset and engine flags
// share their names and meaning with `sentineldf scan`.
type evalFlags struct {
	scan       scanFlags
	labelField string
	groupField string
}

// evalTargetFPRs are the false-positive rates at which eval reports recall.
var evalTargetFPRs = []float64{0.01, 0.001}

// maxUnlabelledSamples is how many rows with a missing or unknown label the
// report lists; the rest are counted.
const maxUnlabelledSamples = 20

func newEvalCmd(io stdio) *cobra.Command {
	var f evalFlags
	cmd := &cobra.Command{
		Use:   "eval [flags] PATH...",
		Short: "Measure the detectors on labelled data",
		Long: `Scan labelled datasets exactly as 'sentineldf scan' does and measure the verdicts against
the labels: AUROC, PR-AUC (average precision), recall at 1% and 0.1% false-positive rate,
precision/recall/F1 and the confusion matrix when flagging every document outside the clean
band ("flagged") and when flagging the quarantine band ("quarantine"), and the same rates per
group (e.g. per source).

The label and group fields are read as metadata and never scanned. Labels: 1, true, attack,
malicious or poisoned mark an attack; 0, false, benign or clean a benign document (case does not
matter). A row with a missing or other label is counted and listed as unlabelled, and left out
of the metrics.

Exit status: 0 ok, 2 on usage or input errors (or when no row is labelled).`,
		Example: `  sentineldf eval --label-field label --group-field source examples/prompts.jsonl
  sentineldf eval --label-field label --group-field attack --format json backdoor.jsonl`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEval(cmd, io, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.labelField, "label-field", "label", "the field holding each row's label")
	fl.StringVar(&f.groupField, "group-field", "", "the field to group rates by (e.g. source)")
	fl.StringVar(&f.scan.format, "format", "table", "report format: table or json")
	fl.StringArrayVar(&f.scan.textFields, "text-field", nil, "a field to scan (dotted path; repeatable; default: auto-detect)")
	fl.StringVar(&f.scan.idField, "id-field", "", "the field holding a record's id (default \"id\")")
	fl.StringVar(&f.scan.split, "split", "", "text files: one document per file or per line (file|lines)")
	fl.StringVar(&f.scan.formatIn, "format-in", "", "force the input format (jsonl|json|csv|tsv|parquet|text)")
	fl.StringArrayVar(&f.scan.include, "include", nil, "only scan files under directories matching `GLOB` (repeatable)")
	fl.StringArrayVar(&f.scan.exclude, "exclude", nil, "skip files matching `GLOB` (repeatable)")
	fl.IntVar(&f.scan.threshold, "threshold", -1, "quarantine threshold, risk `0-100` (overrides the config)")
	fl.StringVar(&f.scan.config, "config", "", "scan configuration `FILE` (YAML)")
	fl.StringVar(&f.scan.rules, "rules", "", "rules `FILE` replacing the built-in rules")
	fl.IntVar(&f.scan.workers, "workers", 0, "scanning goroutines (default: number of CPUs)")
	fl.StringVar(&f.scan.progress, "progress", "auto", "progress bar on stderr: auto|always|never")
	addDatasetDetectorsFlag(cmd, &f.scan)
	addClassifierFlags(cmd, &f.scan)
	addModelFlags(cmd, &f.scan.model)
	return cmd
}

// evalReport is what `sentineldf eval` prints: the metrics of package eval
// and how the rows were read.
type evalReport struct {
	LabelField string `json:"label_field"`
	GroupField string `json:"group_field,omitempty"`
	// Scanned counts the documents scanned, labelled or not.
	Scanned int64 `json:"scanned"`
	// Malformed counts the records that could not be read.
	Malformed        int64            `json:"malformed"`
	MalformedSamples []scan.Malformed `json:"malformed_samples"`
	// Unlabelled counts the documents whose label was missing or unknown.
	Unlabelled        int64             `json:"unlabelled"`
	UnlabelledSamples []scan.Malformed  `json:"unlabelled_samples"`
	Thresholds        detect.Thresholds `json:"thresholds"`
	Engine            detect.Info       `json:"engine"`
	eval.Report
}

func runEval(cmd *cobra.Command, std stdio, f evalFlags, paths []string) error {
	if err := checkScanFlags(f.scan); err != nil {
		return usageErr(err)
	}
	if f.labelField == "" {
		return usageErr(errors.New("--label-field must not be empty"))
	}
	if f.groupField == f.labelField {
		return usageErr(errors.New("--group-field must differ from --label-field"))
	}
	cfg, err := scanConfig(f.scan, cmd.Flags().Changed, paths)
	if err != nil {
		return usageErr(err)
	}
	cfg.Dataset.KeepFields = []string{f.labelField}
	if f.groupField != "" {
		cfg.Dataset.KeepFields = append(cfg.Dataset.KeepFields, f.groupField)
	}

	var mu sync.Mutex // the progress bar and the report share stderr
	bar := &progressBar{w: std.err}
	var onProgress func(scan.Progress)
	if showProgress(f.scan.progress, std.err) {
		onProgress = func(p scan.Progress) {
			mu.Lock()
			bar.draw(p)
			mu.Unlock()
		}
	}
	rep, err := evaluate(cmd.Context(), cfg, f.labelField, f.groupField, onProgress)
	if err == nil {
		err = userModelErr(cfg.Engine)
	}
	mu.Lock()
	bar.clear()
	mu.Unlock()
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return &exitError{code: exitInterrupted, err: errors.New("eval interrupted")}
		}
		return usageErr(err)
	}
	if err := writeEvalReport(std.out, f.scan.format, rep); err != nil {
		return usageErr(fmt.Errorf("write report: %w", err))
	}
	if rep.N == 0 {
		return usageErr(fmt.Errorf("no labelled documents (label field %q)", f.labelField))
	}
	return nil
}

// evaluate scans cfg's inputs with scan.Run, so that documents are judged
// exactly as `sentineldf scan` judges them (workers, dataset-level detectors
// and all), and pairs each final result with its record's label and group,
// which the scan carries through (dataset.Options.KeepFields) without
// scanning them.
func evaluate(ctx context.Context, cfg scan.Config, labelField, groupField string, onProgress func(scan.Progress)) (*evalReport, error) {
	th := cfg.Engine.Thresholds
	rep := &evalReport{LabelField: labelField, GroupField: groupField, Thresholds: th}
	elevated, quarantine := scoreAtRisk(th.Elevated), scoreAtRisk(th.Quarantine)
	groups := map[string]string{} // interned group names
	var scored []eval.Scored
	onResult := func(l *scan.Line, meta map[string]string) error {
		// The decisions are score thresholds; they must agree with the
		// engine's bands or the report would not describe the product.
		if (l.Score >= quarantine) != (l.Band == detect.BandQuarantine) || (l.Score >= elevated) != (l.Band != detect.BandClean) {
			return fmt.Errorf("internal error: %s: score %v (risk %d) is inconsistent with band %s", l.Source, l.Score, l.Risk, l.Band)
		}
		raw, ok := meta[labelField]
		label, known := parseLabel(raw)
		if !ok || !known {
			rep.Unlabelled++
			if len(rep.UnlabelledSamples) < maxUnlabelledSamples {
				reason := fmt.Sprintf("no %q field", labelField)
				if ok {
					reason = fmt.Sprintf("unknown label %q in field %q", raw, labelField)
				}
				rep.UnlabelledSamples = append(rep.UnlabelledSamples, scan.Malformed{Source: l.Source, Reason: reason})
			}
			return nil
		}
		g := meta[groupField]
		if in, ok := groups[g]; ok {
			g = in
		} else {
			groups[g] = g
		}
		scored = append(scored, eval.Scored{Score: l.Score, Label: label, Group: g})
		return nil
	}
	sum, err := scan.Run(ctx, cfg, scan.Output{OnResult: onResult, OnProgress: onProgress})
	if err != nil {
		return nil, err
	}
	rep.Scanned = sum.Documents
	rep.Malformed = sum.Malformed
	rep.MalformedSamples = sum.MalformedSamples
	if rep.MalformedSamples == nil {
		rep.MalformedSamples = []scan.Malformed{}
	}
	if rep.UnlabelledSamples == nil {
		rep.UnlabelledSamples = []scan.Malformed{}
	}
	rep.Engine = sum.Engine
	rep.Report = eval.Evaluate(scored, evalTargetFPRs, []eval.Decision{
		{Name: "flagged", Threshold: scoreAtRisk(th.Elevated)},
		{Name: "quarantine", Threshold: scoreAtRisk(th.Quarantine)},
	})
	return rep, nil
}

// parseLabel reads a label: 1, true, attack, malicious, poisoned (true);
// 0, false, benign, clean (false). known is false for anything else.
func parseLabel(s string) (label, known bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "attack", "malicious", "poisoned":
		return true, true
	case "0", "false", "benign", "clean":
		return false, true
	}
	// Numbers written as 1.0 or 0e0.
	if v, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil && (v == 0 || v == 1) {
		return v == 1, true
	}
	return false, false
}

// scoreAtRisk returns the lowest score whose risk is at least risk. The
// engine rounds scores to 1e-6 and risk is round(score·100), so a document
// has risk ≥ r exactly when its score is at least scoreAtRisk(r).
func scoreAtRisk(risk int) float64 {
	k := sort.Search(1_000_001, func(k int) bool {
		return int(math.Round(float64(k)/1e6*100)) >= risk
	})
	if k > 1_000_000 {
		return math.Inf(1)
	}
	return float64(k) / 1e6
}

// writeEvalReport prints rep as indented JSON or as tables.
func writeEvalReport(w io.Writer, format string, rep *evalReport) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	pct := func(v eval.Float) string {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return "-"
		}
		return strconv.FormatFloat(100*float64(v), 'f', 1, 64) + "%"
	}
	num := func(v eval.Float) string {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return "-"
		}
		return strconv.FormatFloat(float64(v), 'f', 4, 64)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "documents\t%s labelled (%s attack, %s benign)\n", thousands(int64(rep.N)), thousands(int64(rep.Positives)), thousands(int64(rep.Negatives)))
	fmt.Fprintf(tw, "unlabelled\t%s\n", thousands(rep.Unlabelled))
	fmt.Fprintf(tw, "malformed\t%s\n", thousands(rep.Malformed))
	fmt.Fprintf(tw, "AUROC\t%s\n", num(rep.AUROC))
	fmt.Fprintf(tw, "PR-AUC\t%s\n", num(rep.PRAUC))
	for _, op := range rep.AtFPR {
		at := "score ≥ " + num(op.Threshold)
		if math.IsInf(float64(op.Threshold), 1) {
			at = "no score threshold meets it"
		}
		fmt.Fprintf(tw, "recall at %s FPR\t%s (%s, FPR %s)\n",
			strconv.FormatFloat(100*op.TargetFPR, 'g', -1, 64)+"%", pct(op.Recall), at, pct(op.FPR))
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "DECISION\tRISK\tPRECISION\tRECALL\tF1\tFPR\tTP\tFP\tTN\tFN\n")
	for _, d := range rep.Decisions {
		risk := rep.Thresholds.Elevated
		if d.Name == "quarantine" {
			risk = rep.Thresholds.Quarantine
		}
		c := d.Confusion
		fmt.Fprintf(tw, "%s\t≥ %d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n",
			d.Name, risk, pct(d.Precision), pct(d.Recall), num(d.F1), pct(d.FPR), c.TP, c.FP, c.TN, c.FN)
	}
	if rep.GroupField != "" {
		fmt.Fprintln(tw)
		fmt.Fprintf(tw, "GROUP\tN\tATTACK\tBENIGN\tFLAGGED\tQUARANTINED\tRECALL(Q)\tFPR(Q)\tRECALL(F)\tFPR(F)\n")
		for _, g := range rep.Groups {
			name := g.Group
			if name == "" {
				name = "(none)"
			}
			f, q := g.Rates[0], g.Rates[1]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", name, g.N, g.Positives, g.Negatives,
				pct(f.Rate), pct(q.Rate), pct(q.Recall), pct(q.FPR), pct(f.Recall), pct(f.FPR))
		}
	}
	samples := func(title string, n int64, ms []scan.Malformed) {
		if len(ms) == 0 {
			return
		}
		fmt.Fprintln(tw)
		fmt.Fprintf(tw, "%s\tREASON\n", title)
		for _, m := range ms {
			fmt.Fprintf(tw, "%s\t%s\n", m.Source, m.Reason)
		}
		if more := n - int64(len(ms)); more > 0 {
			fmt.Fprintf(tw, "… %s more\t\n", thousands(more))
		}
	}
	samples("MALFORMED", rep.Malformed, rep.MalformedSamples)
	samples("UNLABELLED", rep.Unlabelled, rep.UnlabelledSamples)
	return tw.Flush()
}
