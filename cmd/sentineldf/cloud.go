package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/client"
	"github.com/sentineldf/sentineldf/dataset"
)

// The environment variables that configure `sentineldf cloud`.
const (
	envCloudURL = "SENTINELDF_API_URL"
	envCloudKey = "SENTINELDF_API_KEY"
)

// cloudFlags are the flags every `sentineldf cloud` command shares.
type cloudFlags struct {
	apiURL, apiKey string
	insecureHTTP   bool
}

// newCloudCmd is `sentineldf cloud`: the client of a SentinelDF server.
func newCloudCmd(io stdio) *cobra.Command {
	g := &cloudFlags{}
	cmd := &cobra.Command{
		Use:   "cloud",
		Short: "Scan through a SentinelDF server; manage its scans, keys and usage",
		Long: `Scan datasets through a SentinelDF server (sentineldf serve) and manage its scans, API keys
and usage.

The server's URL and the API key come from --api-url and --api-key, or from the environment
variables ` + envCloudURL + ` and ` + envCloudKey + `. Prefer the variable for the key: command
lines are visible to other users of the machine. The key is never printed.`,
		Example: `  export ` + envCloudURL + `=http://127.0.0.1:8080 ` + envCloudKey + `=sdf_live_…
  sentineldf cloud scan examples/ --out results.jsonl
  sentineldf cloud status scan_…
  sentineldf cloud usage`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&g.apiURL, "api-url", "", "the server's `URL` (default $"+envCloudURL+")")
	pf.StringVar(&g.apiKey, "api-key", "", "the API `KEY` (default $"+envCloudKey+", which is safer: a command line is visible to other users)")
	pf.BoolVar(&g.insecureHTTP, "insecure-http", false, "allow a plain http:// URL to a host other than loopback (the key crosses the network unencrypted)")
	cmd.AddCommand(
		newCloudScanCmd(io, g),
		newCloudStatusCmd(io, g),
		newCloudResultsCmd(io, g),
		newCloudScansCmd(io, g),
		newCloudCancelCmd(io, g),
		newCloudUsageCmd(io, g),
		newCloudKeysCmd(io, g),
		newCloudWhoamiCmd(io, g),
	)
	return cmd
}

// client returns the API client the flags and environment configure. A
// missing URL or key is a usage error.
func (g *cloudFlags) client() (*client.Client, error) {
	u := g.apiURL
	if u == "" {
		u = os.Getenv(envCloudURL)
	}
	k := g.apiKey
	if k == "" {
		k = os.Getenv(envCloudKey)
	}
	var missing []string
	if u == "" {
		missing = append(missing, "the server URL: pass --api-url or set "+envCloudURL)
	}
	if k == "" {
		missing = append(missing, "the API key: pass --api-key or set "+envCloudKey)
	}
	if len(missing) > 0 {
		return nil, usageErr(errors.New("missing " + strings.Join(missing, "; missing ")))
	}
	opts := []client.Option{client.WithUserAgent("sentineldf-cli/" + version)}
	if g.insecureHTTP {
		opts = append(opts, client.WithInsecureHTTP())
	}
	c, err := client.New(u, k, opts...)
	if err != nil {
		return nil, usageErr(err)
	}
	return c, nil
}

// checkCloudFormat validates a --format value.
func checkCloudFormat(format string) error {
	if format != "table" && format != "json" {
		return usageErr(fmt.Errorf("--format: %q is not table or json", format))
	}
	return nil
}

// writeCloudJSON writes v as indented JSON.
func writeCloudJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// shownStatus is a status fit to print: without its presigned result URLs,
// which grant access to the results to whoever reads a log they land in.
func shownStatus(st sentineldf.ScanStatus) sentineldf.ScanStatus {
	st.Results = nil
	return st
}

// cloudScanFlags are the flags of `sentineldf cloud scan`.
type cloudScanFlags struct {
	out, cleanOut, quarantineOut string
	mbom, approver               string
	format, priority, progress   string
	noWait, failOnQuarantine     bool
	quiet                        bool
	pollInterval                 time.Duration
}

func newCloudScanCmd(io stdio, g *cloudFlags) *cobra.Command {
	var f cloudScanFlags
	cmd := &cobra.Command{
		Use:   "scan [flags] PATH...",
		Short: "Scan files and directories through the server",
		Long: `Upload files and directories to the server, scan them there and download the outputs.
Directories are walked for the formats that ` + "`sentineldf scan`" + ` reads; a file is uploaded under
its path relative to the directory given (a file given directly: its base name).

The scan's job id and a summary are printed; a progress bar is drawn on stderr when it is a
terminal. Interrupting the command does not stop a scan the server has queued: see
` + "`sentineldf cloud status`" + ` and ` + "`sentineldf cloud cancel`" + `.

Exit status: 0 ok, 1 when the scan failed or --fail-on-quarantine trips, 2 on usage, input
or API errors, 130 when interrupted.`,
		Example: `  sentineldf cloud scan data/ --out results.jsonl
  sentineldf cloud scan train.jsonl --clean-out clean.jsonl --quarantine-out bad.jsonl --fail-on-quarantine
  sentineldf cloud scan data/ --out results.jsonl --mbom scan.mbom.json --approver me@example.com
  sentineldf cloud scan data/ --no-wait`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCloudScan(cmd.Context(), io, g, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.out, "out", "o", "", "write one JSON result per document to `FILE` (- for stdout)")
	fl.StringVar(&f.cleanOut, "clean-out", "", "write the clean and elevated records to `FILE` (- for stdout)")
	fl.StringVar(&f.quarantineOut, "quarantine-out", "", "write the quarantined records to `FILE` (- for stdout)")
	fl.StringVar(&f.mbom, "mbom", "", "have the server sign an MBOM of the scan and write it to `FILE` (needs --approver)")
	fl.StringVar(&f.approver, "approver", "", "e-mail of the person approving the scan, for --mbom")
	fl.StringVar(&f.format, "format", "table", "summary format: table or json")
	fl.StringVar(&f.priority, "priority", "", "queue priority: high, normal or low (bounded by the plan)")
	fl.StringVar(&f.progress, "progress", "auto", "progress bar on stderr: auto|always|never")
	fl.BoolVar(&f.noWait, "no-wait", false, "return once the files are uploaded and the scan is queued; print its job id")
	fl.BoolVar(&f.failOnQuarantine, "fail-on-quarantine", false, "exit 1 when any document is quarantined")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print no summary and no progress")
	fl.DurationVar(&f.pollInterval, "poll-interval", client.DefaultPollInterval, "first wait between status polls (it grows while the scan makes no progress)")
	_ = fl.MarkHidden("poll-interval")
	return cmd
}

func checkCloudScanFlags(f cloudScanFlags) error {
	if err := checkCloudFormat(f.format); err != nil {
		return err
	}
	switch f.progress {
	case "auto", "always", "never":
	default:
		return usageErr(fmt.Errorf("--progress: %q is not auto, always or never", f.progress))
	}
	switch f.priority {
	case "", "high", "normal", "low":
	default:
		return usageErr(fmt.Errorf("--priority: %q is not high, normal or low", f.priority))
	}
	if (f.mbom == "") != (f.approver == "") {
		return usageErr(errors.New("--mbom and --approver go together"))
	}
	if f.mbom == "-" {
		return usageErr(errors.New("--mbom needs a file name"))
	}
	dashes := 0
	for _, o := range []string{f.out, f.cleanOut, f.quarantineOut} {
		if o == "-" {
			dashes++
		}
	}
	if dashes > 1 {
		return usageErr(errors.New("only one of --out, --clean-out and --quarantine-out can be - (stdout)"))
	}
	if f.noWait && (f.out != "" || f.cleanOut != "" || f.quarantineOut != "" || f.mbom != "" || f.failOnQuarantine) {
		return usageErr(errors.New("--no-wait does not wait for the outputs: drop --out, --clean-out, --quarantine-out, --mbom and --fail-on-quarantine, or use `sentineldf cloud results` later"))
	}
	return nil
}

// cloudBar draws the progress of a cloud scan on stderr; its methods are
// safe for concurrent use.
type cloudBar struct {
	mu  sync.Mutex
	bar *progressBar
	on  bool
}

func (b *cloudBar) upload(done, total int64) {
	if !b.on {
		return
	}
	line := fmt.Sprintf("uploading: %s / %s", humanBytes(done), humanBytes(total))
	if total > 0 {
		line += fmt.Sprintf("  %3.0f%%", float64(done)*100/float64(total))
	}
	b.draw(line)
}

func (b *cloudBar) status(st sentineldf.ScanStatus) {
	if !b.on {
		return
	}
	p := st.Progress
	switch {
	case sentineldf.Terminal(st.State):
		b.clear()
		return
	case st.State != sentineldf.StateRunning:
		b.draw(st.State + ": " + st.JobID)
		return
	}
	line := fmt.Sprintf("scanning: %s", thousands(p.DocsDone))
	if p.DocsTotal > 0 {
		line += " / " + thousands(p.DocsTotal)
	}
	line += " docs"
	if p.BytesTotal > 0 {
		line += fmt.Sprintf("  %s / %s  %3.0f%%", humanBytes(p.BytesDone), humanBytes(p.BytesTotal),
			min(float64(p.BytesDone)/float64(p.BytesTotal), 1)*100)
	}
	b.draw(line)
}

func (b *cloudBar) draw(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(b.bar.w, "\r%s\x1b[K", line)
	b.bar.drawn = true
}

func (b *cloudBar) clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bar.clear()
}

func runCloudScan(ctx context.Context, std stdio, g *cloudFlags, f cloudScanFlags, paths []string) error {
	if err := checkCloudScanFlags(f); err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	// Data goes to stdout when an output is "-"; the summary then goes to
	// stderr so the two never mix.
	summaryW := std.out
	if f.out == "-" || f.cleanOut == "-" || f.quarantineOut == "-" {
		summaryW = std.err
	}
	bar := &cloudBar{bar: &progressBar{w: std.err}, on: !f.quiet && showProgress(f.progress, std.err)}
	var jobID string
	opts := client.ScanOptions{
		Priority:     f.priority,
		NoWait:       f.noWait,
		PollInterval: f.pollInterval,
		// Like `sentineldf scan`: directories contribute the files of a
		// format it reads; files named explicitly are always sent.
		Filter: func(name string) bool {
			format, _ := dataset.DetectFormat(name)
			return format != ""
		},
		UploadProgress: bar.upload,
		Progress: func(st sentineldf.ScanStatus) {
			jobID = st.JobID
			bar.status(st)
		},
	}
	res, err := c.ScanFiles(ctx, paths, opts)
	bar.clear()
	if err != nil {
		var se *client.ScanError
		switch {
		case errors.As(err, &se):
			if !f.quiet {
				_ = writeCloudScanSummary(summaryW, f.format, se.Status)
			}
			return &exitError{code: exitFinding, err: err}
		case ctx.Err() != nil && jobID != "":
			return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted; scan %s goes on on the server (sentineldf cloud status %s)", jobID, jobID)}
		case ctx.Err() != nil:
			return &exitError{code: exitInterrupted, err: errors.New("scan interrupted")}
		}
		return err
	}
	if f.noWait {
		if f.format == "json" {
			return writeCloudJSON(std.out, shownStatus(res.Status))
		}
		fmt.Fprintln(std.out, res.JobID())
		if !f.quiet {
			fmt.Fprintf(std.err, "scan %s is %s; follow it with: sentineldf cloud status %s\n", res.JobID(), res.Status.State, res.JobID())
		}
		return nil
	}
	if err := saveCloudOutputs(ctx, std, res, f.out, f.cleanOut, f.quarantineOut); err != nil {
		return err
	}
	if f.mbom != "" {
		if err := signCloudMBOM(ctx, c, res.JobID(), f.approver, f.mbom); err != nil {
			return err
		}
	}
	if !f.quiet {
		if err := writeCloudScanSummary(summaryW, f.format, res.Status); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
	}
	if q := res.Status.Counts.Quarantine; f.failOnQuarantine && q > 0 {
		return &exitError{code: exitFinding, err: fmt.Errorf("%d of %d documents quarantined", q, res.Status.Counts.Total())}
	}
	return nil
}

// saveCloudOutputs downloads the requested outputs of a succeeded scan; a
// path of "-" is stdout.
func saveCloudOutputs(ctx context.Context, std stdio, res *client.ScanResult, out, cleanOut, quarantineOut string) error {
	for _, o := range []struct {
		flag, path string
		output     client.Output
	}{
		{"--out", out, client.OutputResults},
		{"--clean-out", cleanOut, client.OutputClean},
		{"--quarantine-out", quarantineOut, client.OutputQuarantine},
	} {
		var err error
		switch o.path {
		case "":
			continue
		case "-":
			err = res.Download(ctx, o.output, std.out)
		default:
			err = res.Save(ctx, o.output, o.path)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", o.flag, err)
		}
	}
	return nil
}

// signCloudMBOM has the server sign the scan's MBOM and writes the
// envelope to path.
func signCloudMBOM(ctx context.Context, c *client.Client, jobID, approver, path string) error {
	resp, err := c.SignMBOM(ctx, sentineldf.SignMBOMRequest{JobID: jobID, ApprovedBy: approver})
	if err != nil {
		return fmt.Errorf("sign MBOM: %w", err)
	}
	if len(resp.Envelope) == 0 {
		if resp.URL == "" {
			return errors.New("sign MBOM: the server returned neither the envelope nor its URL")
		}
		if err := c.DownloadFile(ctx, resp.URL, path); err != nil {
			return fmt.Errorf("--mbom: %w", err)
		}
		return nil
	}
	af, err := createAtomic(path)
	if err != nil {
		return usageErr(fmt.Errorf("--mbom: %w", err))
	}
	defer af.abort()
	if _, err := af.Write(resp.Envelope); err != nil {
		return fmt.Errorf("--mbom: %w", err)
	}
	if err := af.commit(); err != nil {
		return fmt.Errorf("--mbom: %w", err)
	}
	return nil
}

// writeCloudScanSummary prints a finished scan's job id and counts.
func writeCloudScanSummary(w io.Writer, format string, st sentineldf.ScanStatus) error {
	if format == "json" {
		return writeCloudJSON(w, shownStatus(st))
	}
	total := st.Counts.Total()
	fmt.Fprintf(w, "Job %s %s: %s documents", st.JobID, st.State, thousands(total))
	if st.Progress.BytesTotal > 0 {
		fmt.Fprintf(w, " (%s)", humanBytes(st.Progress.BytesTotal))
	}
	fmt.Fprintln(w)
	if st.Error != "" {
		fmt.Fprintf(w, "Error: %s\n", st.Error)
	}
	fmt.Fprintf(w, "Malformed records: %s   Cache hits: %s\n", thousands(st.Malformed), thousands(st.CacheHits))
	if total == 0 {
		return nil
	}
	fmt.Fprintln(w)
	width := max(len("DOCUMENTS"), len(thousands(total)))
	fmt.Fprintf(w, "%-10s  %*s\n", "BAND", width, "DOCUMENTS")
	for _, r := range []struct {
		name string
		n    int64
	}{{"clean", st.Counts.Clean}, {"elevated", st.Counts.Elevated}, {"quarantine", st.Counts.Quarantine}} {
		fmt.Fprintf(w, "%-10s  %*s  %5.1f%%\n", r.name, width, thousands(r.n), float64(r.n)*100/float64(total))
	}
	return nil
}

func newCloudStatusCmd(io stdio, g *cloudFlags) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "status JOB_ID",
		Short: "Show a scan's state, progress and counts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkCloudFormat(format); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			st, err := c.ScanStatus(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if format == "json" {
				return writeCloudJSON(io.out, shownStatus(*st))
			}
			return writeCloudStatus(io.out, st)
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

// writeCloudStatus prints one scan's status as a list of fields.
func writeCloudStatus(w io.Writer, st *sentineldf.ScanStatus) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := st.Progress
	fmt.Fprintf(tw, "Job:\t%s\n", st.JobID)
	fmt.Fprintf(tw, "State:\t%s\n", st.State)
	fmt.Fprintf(tw, "Progress:\t%s / %s documents, %s / %s\n", thousands(p.DocsDone), thousands(p.DocsTotal), humanBytes(p.BytesDone), humanBytes(p.BytesTotal))
	fmt.Fprintf(tw, "Counts:\tclean %s, elevated %s, quarantine %s\n", thousands(st.Counts.Clean), thousands(st.Counts.Elevated), thousands(st.Counts.Quarantine))
	fmt.Fprintf(tw, "Malformed:\t%s\n", thousands(st.Malformed))
	fmt.Fprintf(tw, "Cache hits:\t%s\n", thousands(st.CacheHits))
	if len(st.Files) > 0 {
		fmt.Fprintf(tw, "Files:\t%d\n", len(st.Files))
	}
	if !st.CreatedAt.IsZero() {
		fmt.Fprintf(tw, "Created:\t%s\n", st.CreatedAt.UTC().Format(time.RFC3339))
	}
	if st.FinishedAt != nil {
		fmt.Fprintf(tw, "Finished:\t%s\n", st.FinishedAt.UTC().Format(time.RFC3339))
	}
	if st.Error != "" {
		fmt.Fprintf(tw, "Error:\t%s\n", st.Error)
	}
	return tw.Flush()
}

func newCloudResultsCmd(io stdio, g *cloudFlags) *cobra.Command {
	var out, cleanOut, quarantineOut string
	cmd := &cobra.Command{
		Use:   "results JOB_ID --out FILE [--clean-out FILE] [--quarantine-out FILE]",
		Short: "Download a finished scan's outputs",
		Long: `Download a succeeded scan's outputs. Exit status: 0 ok, 1 when the scan failed or was
canceled, 2 on usage or API errors (a scan that has not finished yet included).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" && cleanOut == "" && quarantineOut == "" {
				return usageErr(errors.New("nothing to download: give --out, --clean-out or --quarantine-out"))
			}
			n := 0
			for _, o := range []string{out, cleanOut, quarantineOut} {
				if o == "-" {
					n++
				}
			}
			if n > 1 {
				return usageErr(errors.New("only one of --out, --clean-out and --quarantine-out can be - (stdout)"))
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			res, err := c.Result(cmd.Context(), args[0])
			var se *client.ScanError
			if errors.As(err, &se) {
				return &exitError{code: exitFinding, err: err}
			}
			if err != nil {
				return err
			}
			return saveCloudOutputs(cmd.Context(), io, res, out, cleanOut, quarantineOut)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&out, "out", "o", "", "write one JSON result per document to `FILE` (- for stdout)")
	fl.StringVar(&cleanOut, "clean-out", "", "write the clean and elevated records to `FILE` (- for stdout)")
	fl.StringVar(&quarantineOut, "quarantine-out", "", "write the quarantined records to `FILE` (- for stdout)")
	return cmd
}

func newCloudScansCmd(io stdio, g *cloudFlags) *cobra.Command {
	var (
		limit  int
		cursor string
		format string
	)
	cmd := &cobra.Command{
		Use:   "scans",
		Short: "List the org's scans, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkCloudFormat(format); err != nil {
				return err
			}
			if limit < 0 {
				return usageErr(errors.New("--limit must not be negative"))
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			page, err := c.ListScans(cmd.Context(), limit, cursor)
			if err != nil {
				return err
			}
			if format == "json" {
				for i := range page.Scans {
					page.Scans[i] = shownStatus(page.Scans[i])
				}
				return writeCloudJSON(io.out, page)
			}
			tw := tabwriter.NewWriter(io.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "JOB\tSTATE\tDOCUMENTS\tQUARANTINE\tCREATED")
			for _, s := range page.Scans {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.JobID, s.State, thousands(s.Counts.Total()), thousands(s.Counts.Quarantine), s.CreatedAt.UTC().Format(time.RFC3339))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if page.NextCursor != "" {
				fmt.Fprintf(io.err, "more: sentineldf cloud scans --cursor %s\n", page.NextCursor)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "scans per page")
	cmd.Flags().StringVar(&cursor, "cursor", "", "the page after the one that printed this cursor")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

func newCloudCancelCmd(io stdio, g *cloudFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel JOB_ID",
		Short: "Cancel a scan that has not finished",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			st, err := c.CancelScan(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(io.out, "scan %s %s\n", st.JobID, st.State)
			return nil
		},
	}
}

func newCloudUsageCmd(io stdio, g *cloudFlags) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Show the org's usage this month against its quota",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkCloudFormat(format); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			u, err := c.Usage(cmd.Context())
			if err != nil {
				return err
			}
			if format == "json" {
				return writeCloudJSON(io.out, u)
			}
			tw := tabwriter.NewWriter(io.out, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "Plan:\t%s\n", u.Plan)
			fmt.Fprintf(tw, "Period:\t%s\n", u.Period)
			docs := thousands(u.Docs)
			switch {
			case u.Quota == nil:
				docs += " (unlimited)"
			case u.Remain != nil:
				docs += fmt.Sprintf(" of %s (%s left)", thousands(*u.Quota), thousands(*u.Remain))
			default:
				docs += " of " + thousands(*u.Quota)
			}
			fmt.Fprintf(tw, "Documents:\t%s\n", docs)
			fmt.Fprintf(tw, "Bytes:\t%s\n", humanBytes(u.Bytes))
			if len(u.Daily) > 0 {
				fmt.Fprintln(tw)
				fmt.Fprintln(tw, "DATE\tDOCUMENTS\tBYTES")
				for _, d := range u.Daily {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Date, thousands(d.Docs), humanBytes(d.Bytes))
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

func newCloudKeysCmd(io stdio, g *cloudFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "List, create and revoke the org's API keys",
	}
	var listFormat string
	list := &cobra.Command{
		Use:   "list",
		Short: "List the org's API keys (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkCloudFormat(listFormat); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			keys, err := c.ListKeys(cmd.Context())
			if err != nil {
				return err
			}
			if listFormat == "json" {
				return writeCloudJSON(io.out, sentineldf.KeysResponse{Keys: keys})
			}
			tw := tabwriter.NewWriter(io.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tLAST USED\tREVOKED")
			day := func(t *time.Time) string {
				if t == nil {
					return "-"
				}
				return t.UTC().Format(time.DateOnly)
			}
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), day(&k.CreatedAt), day(k.LastUsedAt), day(k.RevokedAt))
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&listFormat, "format", "table", "output format: table or json")

	var (
		scopes       []string
		createFormat string
	)
	create := &cobra.Command{
		Use:   "create NAME [--scope SCOPE...]",
		Short: "Create an API key; its secret is printed once",
		Long: `Create an API key of the org. The key is printed on stdout, once: store it now. Scopes: ` +
			strings.Join(sentineldf.AllScopes, ", ") + ` (default: all but admin).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkCloudFormat(createFormat); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			resp, err := c.CreateKey(cmd.Context(), sentineldf.CreateKeyRequest{Name: args[0], Scopes: scopes})
			if err != nil {
				return err
			}
			if createFormat == "json" {
				return writeCloudJSON(io.out, resp)
			}
			fmt.Fprintln(io.out, resp.APIKey)
			if resp.Key != nil {
				fmt.Fprintf(io.err, "created key %s %q (scopes %s); store it now: it is not shown again\n",
					resp.Key.ID, resp.Key.Name, strings.Join(resp.Key.Scopes, ","))
			}
			return nil
		},
	}
	create.Flags().StringArrayVar(&scopes, "scope", nil, "grant `SCOPE` (repeatable)")
	create.Flags().StringVar(&createFormat, "format", "table", "output format: table (the key alone) or json")

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			k, err := c.RevokeKey(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			id := args[0]
			if k != nil {
				id = k.ID
			}
			fmt.Fprintf(io.out, "revoked key %s\n", id)
			return nil
		},
	}
	cmd.AddCommand(list, create, revoke)
	return cmd
}

func newCloudWhoamiCmd(io stdio, g *cloudFlags) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show the org and API key the key belongs to",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkCloudFormat(format); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			me, err := c.WhoAmI(cmd.Context())
			if err != nil {
				return err
			}
			if format == "json" {
				return writeCloudJSON(io.out, me)
			}
			tw := tabwriter.NewWriter(io.out, 0, 0, 2, ' ', 0)
			if me.Org != nil {
				fmt.Fprintf(tw, "Org:\t%s (%s)\n", me.Org.Name, me.Org.ID)
				fmt.Fprintf(tw, "Plan:\t%s\n", me.Org.Plan)
			}
			if me.Key != nil {
				fmt.Fprintf(tw, "Key:\t%s (%s)\n", me.Key.Name, me.Key.ID)
				fmt.Fprintf(tw, "Scopes:\t%s\n", strings.Join(me.Key.Scopes, ", "))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}
