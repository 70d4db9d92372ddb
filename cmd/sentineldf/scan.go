package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sentineldf/sentineldf/corpus"
	"github.com/sentineldf/sentineldf/dataset"
	"github.com/sentineldf/sentineldf/detect"
	"github.com/sentineldf/sentineldf/mbom"
	"github.com/sentineldf/sentineldf/scan"
)

// scanFlags are the flags of `sentineldf scan`.
type scanFlags struct {
	out, cleanOut, quarantineOut string
	format                       string
	textFields                   []string
	idField, split, formatIn     string
	include, exclude             []string
	threshold                    int
	config, rules                string
	workers                      int
	failOnQuarantine, strict     bool
	cache                        string
	mbom, signingKey, approver   string
	mbomTimestamp                string
	quiet                        bool
	progress                     string
	datasetDetectors             bool
	classifier                   bool
	classifierModel              string
	model                        modelFlags
}

// maxMalformedWarnings is how many malformed records are reported on stderr
// as they happen; the rest are counted.
const maxMalformedWarnings = 20

func newScanCmd(io stdio) *cobra.Command {
	var f scanFlags
	cmd := &cobra.Command{
		Use:   "scan [flags] PATH...",
		Short: "Scan datasets for poisoned or malicious samples",
		Long: `Scan datasets (JSONL, JSON, CSV/TSV, Parquet, text; gzip or zstd compressed; files or
directories) for poisoned or malicious samples, write one result per document, split the
records into clean and quarantined parts, and optionally sign an MBOM of the scan.

Exit status: 0 ok, 1 when --fail-on-quarantine trips, 2 on usage or input errors.`,
		Example: `  sentineldf scan data/ --out results.jsonl
  sentineldf scan train.jsonl --clean-out clean.jsonl --quarantine-out bad.jsonl --fail-on-quarantine
  sentineldf scan train.jsonl --out results.jsonl --mbom scan.mbom.json --signing-key key.pem --approver me@example.com`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScan(cmd, io, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.out, "out", "o", "", "write one JSON result per document to `FILE` (- for stdout)")
	fl.StringVar(&f.cleanOut, "clean-out", "", "write the clean and elevated records, unchanged, to `FILE` (- for stdout)")
	fl.StringVar(&f.quarantineOut, "quarantine-out", "", "write the quarantined records, unchanged, to `FILE` (- for stdout)")
	fl.StringVar(&f.format, "format", "table", "summary format: table or json")
	fl.StringArrayVar(&f.textFields, "text-field", nil, "a field to scan (dotted path; repeatable; default: auto-detect)")
	fl.StringVar(&f.idField, "id-field", "", "the field holding a record's id (default \"id\")")
	fl.StringVar(&f.split, "split", "", "text files: one document per file or per line (file|lines)")
	fl.StringVar(&f.formatIn, "format-in", "", "force the input format (jsonl|json|csv|tsv|parquet|text)")
	fl.StringArrayVar(&f.include, "include", nil, "only scan files under directories matching `GLOB` (repeatable)")
	fl.StringArrayVar(&f.exclude, "exclude", nil, "skip files matching `GLOB` (repeatable)")
	fl.IntVar(&f.threshold, "threshold", -1, "quarantine threshold, risk `0-100` (overrides the config)")
	fl.StringVar(&f.config, "config", "", "scan configuration `FILE` (YAML)")
	fl.StringVar(&f.rules, "rules", "", "rules `FILE` replacing the built-in rules")
	fl.IntVar(&f.workers, "workers", 0, "scanning goroutines (default: number of CPUs)")
	fl.BoolVar(&f.failOnQuarantine, "fail-on-quarantine", false, "exit 1 when any document is quarantined")
	fl.BoolVar(&f.strict, "strict", false, "fail (exit 2) on the first malformed record")
	fl.StringVar(&f.cache, "cache", "", "cache results in `DIR` to speed up rescans")
	fl.StringVar(&f.mbom, "mbom", "", "sign an MBOM of the scan into `FILE` (needs --out, --signing-key, --approver)")
	fl.StringVar(&f.signingKey, "signing-key", "", "Ed25519 private key `FILE` (PEM) for --mbom")
	fl.StringVar(&f.approver, "approver", "", "e-mail of the person approving the scan, for --mbom")
	fl.StringVar(&f.mbomTimestamp, "mbom-timestamp", "", "MBOM timestamp (RFC 3339), for reproducible MBOMs")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print no summary and no progress")
	fl.StringVar(&f.progress, "progress", "auto", "progress bar on stderr: auto|always|never")
	addDatasetDetectorsFlag(cmd, &f)
	addClassifierFlags(cmd, &f)
	addModelFlags(cmd, &f.model)
	_ = fl.MarkHidden("mbom-timestamp")
	return cmd
}

// runScan turns the flags into a scan.Config, runs the scan and reports.
func runScan(cmd *cobra.Command, std stdio, f scanFlags, paths []string) error {
	ctx := cmd.Context()
	fl := cmd.Flags()
	if err := checkScanFlags(f); err != nil {
		return usageErr(err)
	}
	cfg, err := scanConfig(f, fl.Changed, paths)
	if err != nil {
		return usageErr(err)
	}

	var key []byte
	if f.mbom != "" {
		if key, err = os.ReadFile(f.signingKey); err != nil {
			return usageErr(fmt.Errorf("signing key: %w", err))
		}
	}
	var signer func(mbom.Statement) ([]byte, error)
	if f.mbom != "" {
		priv, err := mbom.LoadPrivateKey(key)
		if err != nil {
			return usageErr(fmt.Errorf("signing key %s: %w", f.signingKey, err))
		}
		signer = func(s mbom.Statement) ([]byte, error) { return mbom.Sign(s, priv) }
	}
	ts := mbom.Timestamp(time.Now())
	if f.mbomTimestamp != "" {
		t, err := time.Parse(time.RFC3339, f.mbomTimestamp)
		if err != nil {
			return usageErr(fmt.Errorf("--mbom-timestamp: %w", err))
		}
		ts = mbom.Timestamp(t)
	}

	// Data goes to stdout when any output is "-"; the summary then goes to
	// stderr so the two never mix.
	summaryW := std.out
	if f.out == "-" || f.cleanOut == "-" || f.quarantineOut == "-" {
		summaryW = std.err
	}
	out := scan.Output{CleanOut: f.cleanOut, QuarantineOut: f.quarantineOut, Stdout: std.out}

	var results *atomicFile
	switch f.out {
	case "":
	case "-":
		out.Results, out.ResultsName = std.out, "-"
	default:
		if results, err = createAtomic(f.out); err != nil {
			return usageErr(fmt.Errorf("--out: %w", err))
		}
		defer results.abort()
		out.Results, out.ResultsName = results, filepath.ToSlash(f.out)
	}

	var warned int64
	var mu sync.Mutex // the progress bar and warnings share stderr
	bar := &progressBar{w: std.err}
	out.OnMalformed = func(e *dataset.MalformedError) {
		warned++
		if warned <= maxMalformedWarnings {
			mu.Lock()
			bar.clear()
			fmt.Fprintf(std.err, "warning: %v\n", e)
			mu.Unlock()
		}
	}
	if !f.quiet && showProgress(f.progress, std.err) {
		out.OnProgress = func(p scan.Progress) {
			mu.Lock()
			bar.draw(p)
			mu.Unlock()
		}
	}

	sum, err := scan.Run(ctx, cfg, out)
	if err == nil {
		err = userModelErr(cfg.Engine)
	}
	mu.Lock()
	bar.clear()
	mu.Unlock()
	if warned > maxMalformedWarnings {
		fmt.Fprintf(std.err, "warning: %d more malformed records not shown\n", warned-maxMalformedWarnings)
	}
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return &exitError{code: exitInterrupted, err: errors.New("scan interrupted")}
		}
		return usageErr(err)
	}
	if results != nil {
		if err := results.commit(); err != nil {
			return usageErr(fmt.Errorf("--out: %w", err))
		}
	}
	if signer != nil {
		env, err := signer(mbom.NewStatement(sum.Predicate(version, f.approver, ts)))
		if err != nil {
			return usageErr(fmt.Errorf("sign MBOM: %w", err))
		}
		if err := os.WriteFile(f.mbom, env, 0o644); err != nil {
			return usageErr(fmt.Errorf("--mbom: %w", err))
		}
	}
	if !f.quiet {
		if err := writeSummary(summaryW, f.format, sum); err != nil {
			return usageErr(fmt.Errorf("write summary: %w", err))
		}
	}
	if f.failOnQuarantine && sum.Bands.Quarantine > 0 {
		return &exitError{code: exitFinding, err: fmt.Errorf("%d of %d documents quarantined", sum.Bands.Quarantine, sum.Documents)}
	}
	return nil
}

// exitInterrupted is the exit status of a scan stopped by a signal (128+SIGINT).
const exitInterrupted = 130

func checkScanFlags(f scanFlags) error {
	switch f.format {
	case "table", "json":
	default:
		return fmt.Errorf("--format: %q is not table or json", f.format)
	}
	switch f.progress {
	case "auto", "always", "never":
	default:
		return fmt.Errorf("--progress: %q is not auto, always or never", f.progress)
	}
	switch f.split {
	case "", "file", "lines":
	default:
		return fmt.Errorf("--split: %q is not file or lines", f.split)
	}
	if f.threshold != -1 && (f.threshold < 0 || f.threshold > 100) {
		return fmt.Errorf("--threshold: %d is not within 0–100", f.threshold)
	}
	if f.workers < 0 {
		return fmt.Errorf("--workers: must not be negative")
	}
	dashes := 0
	for _, o := range []string{f.out, f.cleanOut, f.quarantineOut} {
		if o == "-" {
			dashes++
		}
	}
	if dashes > 1 {
		return errors.New("only one of --out, --clean-out and --quarantine-out can be - (stdout)")
	}
	set := 0
	for _, o := range []string{f.mbom, f.signingKey, f.approver} {
		if o != "" {
			set++
		}
	}
	if set != 0 && set != 3 {
		return errors.New("--mbom, --signing-key and --approver go together")
	}
	if f.mbom != "" && (f.out == "" || f.out == "-") {
		return errors.New("--mbom needs --out FILE (the MBOM signs the results file)")
	}
	if f.mbom == "" && f.mbomTimestamp != "" {
		return errors.New("--mbom-timestamp needs --mbom")
	}
	return checkModelFlags(f.model)
}

// scanConfig merges the config file and the flags (flags win) into a
// scan.Config.
func scanConfig(f scanFlags, changed func(string) bool, paths []string) (scan.Config, error) {
	p := &scan.Policy{}
	if f.config != "" {
		data, err := os.ReadFile(f.config)
		if err != nil {
			return scan.Config{}, fmt.Errorf("--config: %w", err)
		}
		if p, err = scan.ParsePolicy(f.config, data); err != nil {
			return scan.Config{}, err
		}
	}
	cfg := scan.Config{
		Paths:   paths,
		Include: p.Include,
		Exclude: p.Exclude,
		Dataset: dataset.Options{
			TextFields:     p.TextFields,
			IDField:        p.IDField,
			Split:          p.Split,
			MaxRecordBytes: p.MaxRecordBytes,
		},
		Engine: detect.Options{
			Disable: p.Rules.Disable,
			Allow:   p.Allowlist,
		},
		Workers:  p.Workers,
		Strict:   f.strict,
		CacheDir: f.cache,
	}
	format := p.Format
	if changed("format-in") {
		format = f.formatIn
	}
	if format != "" {
		ff, err := scan.ParseFormat(format)
		if err != nil {
			return scan.Config{}, fmt.Errorf("--format-in: %w", err)
		}
		cfg.Dataset.Format = ff
	}
	if changed("text-field") {
		cfg.Dataset.TextFields = f.textFields
	}
	if changed("id-field") {
		cfg.Dataset.IDField = f.idField
	}
	if changed("split") {
		cfg.Dataset.Split = f.split
	}
	if changed("include") {
		cfg.Include = f.include
	}
	if changed("exclude") {
		cfg.Exclude = f.exclude
	}
	if changed("workers") {
		cfg.Workers = f.workers
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.NumCPU()
	}
	th := p.ApplyThresholds(detect.DefaultThresholds)
	if f.threshold >= 0 {
		th.Quarantine = f.threshold
		th.Elevated = min(th.Elevated, th.Quarantine)
	}
	cfg.Engine.Thresholds = th
	if f.rules != "" {
		rules, err := os.ReadFile(f.rules)
		if err != nil {
			return scan.Config{}, fmt.Errorf("--rules: %w", err)
		}
		if _, err := detect.ParseRules(rules); err != nil {
			return scan.Config{}, fmt.Errorf("--rules %s: %w", f.rules, err)
		}
		cfg.Engine.Rules = rules
	}
	if f.datasetDetectors {
		cfg.DatasetDetectors = corpus.Default(corpus.Options{})
	}
	if err := addClassifier(&cfg.Engine, f); err != nil {
		return scan.Config{}, err
	}
	if err := addUserModel(&cfg.Engine, f.model); err != nil {
		return scan.Config{}, err
	}
	return cfg, nil
}

// addDatasetDetectorsFlag registers --dataset-detectors on scan and eval.
func addDatasetDetectorsFlag(cmd *cobra.Command, f *scanFlags) {
	cmd.Flags().BoolVar(&f.datasetDetectors, "dataset-detectors", true,
		"run the dataset-level detectors: duplicates, outliers, backdoor-trigger mining, conflicting responses")
}

func showProgress(mode string, w io.Writer) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	return isTerminal(w)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressBar draws a one-line progress report with \r.
type progressBar struct {
	w     io.Writer
	drawn bool
}

func (b *progressBar) draw(p scan.Progress) {
	sec := p.Elapsed.Seconds()
	var mbps float64
	if sec > 0 {
		mbps = float64(p.BytesRead) / 1e6 / sec
	}
	line := fmt.Sprintf("scanning: %s docs  %.1f MB/s", thousands(p.Documents), mbps)
	if p.Phase == 2 {
		line = fmt.Sprintf("writing: %s docs", thousands(p.Documents))
	} else if p.TotalBytes > 0 {
		frac := min(float64(p.BytesRead)/float64(p.TotalBytes), 1)
		line += fmt.Sprintf("  %3.0f%%", frac*100)
		if frac > 0.01 && frac < 1 {
			eta := time.Duration(sec * (1 - frac) / frac * float64(time.Second))
			line += "  ETA " + eta.Round(time.Second).String()
		}
	}
	fmt.Fprintf(b.w, "\r%s\x1b[K", line)
	b.drawn = true
}

func (b *progressBar) clear() {
	if b.drawn {
		fmt.Fprint(b.w, "\r\x1b[K")
		b.drawn = false
	}
}

// thousands formats n with comma separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func writeSummary(w io.Writer, format string, s *scan.Summary) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	files := "files"
	if s.Files == 1 {
		files = "file"
	}
	fmt.Fprintf(w, "Scanned %s documents in %d %s (%s) in %.2fs: %s docs/s, %.1f MB/s\n",
		thousands(s.Documents), s.Files, files, humanBytes(s.Bytes), s.ElapsedSeconds, thousands(int64(s.DocsPerSecond)), s.MBPerSecond)
	fmt.Fprintf(w, "Malformed records: %s", thousands(s.Malformed))
	if s.CacheHits > 0 {
		fmt.Fprintf(w, "   Cache hits: %s", thousands(s.CacheHits))
	}
	fmt.Fprintln(w)
	pct := func(n int64) string {
		if s.Documents == 0 {
			return ""
		}
		return fmt.Sprintf("%.1f%%", float64(n)*100/float64(s.Documents))
	}
	table := func(head string, rows [][3]string) {
		if len(rows) == 0 {
			return
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", head, "DOCUMENTS", "")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\n", r[0], r[1], r[2])
		}
		tw.Flush()
	}
	row := func(name string, n int64) [3]string { return [3]string{name, thousands(n), pct(n)} }
	// Left-align the first column by padding it: tabwriter aligns every
	// column the same way.
	pad := func(rows [][3]string) [][3]string {
		width := 0
		for _, r := range rows {
			width = max(width, len([]rune(r[0])))
		}
		for i := range rows {
			rows[i][0] += strings.Repeat(" ", width-len([]rune(rows[i][0])))
		}
		return rows
	}
	table("BAND      ", pad([][3]string{
		row("clean", s.Bands.Clean), row("elevated", s.Bands.Elevated), row("quarantine", s.Bands.Quarantine),
	}))
	var cats [][3]string
	for _, c := range detect.Categories {
		if n := s.Categories[c]; n > 0 {
			cats = append(cats, row(string(c), n))
		}
	}
	for _, c := range slices.Sorted(maps.Keys(s.Categories)) {
		if !slices.Contains(detect.Categories, c) {
			cats = append(cats, row(string(c), s.Categories[c]))
		}
	}
	if len(cats) > 0 {
		table("CATEGORY"+strings.Repeat(" ", max(0, len(pad(cats)[0][0])-8)), cats)
	}
	var rules [][3]string
	for _, r := range s.TopRules {
		rules = append(rules, row(r.Rule, r.Documents))
	}
	if len(rules) > 0 {
		table("TOP RULE"+strings.Repeat(" ", max(0, len(pad(rules)[0][0])-8)), rules)
	}
	if len(s.MalformedSamples) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "MALFORMED RECORDS")
		for _, m := range s.MalformedSamples {
			fmt.Fprintf(w, "  %s: %s\n", m.Source, m.Reason)
		}
		if n := s.Malformed - int64(len(s.MalformedSamples)); n > 0 {
			fmt.Fprintf(w, "  … and %s more\n", thousands(n))
		}
	}
	return nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// atomicFile is a file written under a temporary name and renamed into
// place on commit, so a failed scan never leaves a partial results file.
type atomicFile struct {
	*os.File
	path string
}

func createAtomic(path string) (*atomicFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, err
	}
	return &atomicFile{File: f, path: path}, nil
}

func (a *atomicFile) commit() error {
	if a.File == nil {
		return nil
	}
	err := a.File.Close()
	if err == nil {
		err = os.Chmod(a.File.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(a.File.Name(), a.path)
	}
	if err != nil {
		os.Remove(a.File.Name())
	}
	a.File = nil
	return err
}

func (a *atomicFile) abort() {
	if a.File != nil {
		a.File.Close()
		os.Remove(a.File.Name())
		a.File = nil
	}
}
