package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/sentineldf/sentineldf"
)

// Defaults of ScanOptions.
const (
	// DefaultPollInterval is the first wait between status polls.
	DefaultPollInterval = 500 * time.Millisecond
	// DefaultMaxPollInterval caps the wait between status polls, which
	// grows while a scan makes no progress.
	DefaultMaxPollInterval = 5 * time.Second
	// DefaultUploadConcurrency is how many files upload at once.
	DefaultUploadConcurrency = 4
)

// uploadReportBytes is how many uploaded bytes make an UploadProgress call.
const uploadReportBytes = 1 << 20

// ScanOptions configure ScanFiles and Wait.
type ScanOptions struct {
	// Priority is "high", "normal" or "low" ("": the plan's default).
	Priority string
	// CallbackURL, when set, is notified when the scan ends.
	CallbackURL string
	// Filter, when set, keeps only the files found inside directory
	// arguments whose slash-separated name (relative to the directory) it
	// accepts. Files named explicitly are always kept.
	Filter func(name string) bool
	// UploadConcurrency is how many files upload at once (default
	// DefaultUploadConcurrency).
	UploadConcurrency int
	// UploadProgress, when set, is called as bytes are uploaded with the
	// bytes sent so far and the total. Calls are serialised.
	UploadProgress func(done, total int64)
	// NoWait returns as soon as the scan is confirmed (queued), without
	// waiting for it to end.
	NoWait bool
	// PollInterval is the first wait between status polls (default
	// DefaultPollInterval); the wait grows while the scan makes no
	// progress, up to MaxPollInterval (default DefaultMaxPollInterval).
	PollInterval    time.Duration
	MaxPollInterval time.Duration
	// Progress, when set, is called with every status fetched while
	// waiting, the last one terminal. Calls are serialised.
	Progress func(sentineldf.ScanStatus)
	// IdempotencyKey, when set, makes ScanFiles idempotent: running it
	// again with the same key and files replays the same scan instead of
	// creating another. The POSTs it makes use keys derived from it. By
	// default every run creates a new scan.
	IdempotencyKey string
}

// ScanError is the error of a scan that ended failed or canceled.
type ScanError struct {
	// Status is the scan's final status.
	Status sentineldf.ScanStatus
}

// Error says which scan ended how, and why.
func (e *ScanError) Error() string {
	s := fmt.Sprintf("scan %s %s", e.Status.JobID, e.Status.State)
	if e.Status.Error != "" {
		s += ": " + e.Status.Error
	}
	return s
}

// Output names one of a finished scan's result objects.
type Output string

// The outputs of a scan (see sentineldf.ResultURLs).
const (
	// OutputResults is one JSON result per document (like `sentineldf
	// scan --out`).
	OutputResults Output = "results"
	// OutputClean is the clean and elevated records, unchanged.
	OutputClean Output = "clean"
	// OutputQuarantine is the quarantined records, unchanged.
	OutputQuarantine Output = "quarantine"
	// OutputMBOM is the scan's MBOM envelope, once one was signed.
	OutputMBOM Output = "mbom"
	// OutputSummary is the scan's summary (JSON).
	OutputSummary Output = "summary"
	// OutputMalformed reports the records that could not be read (JSONL).
	OutputMalformed Output = "malformed"
)

// url returns the output's URL in r, "" when there is none.
func (o Output) url(r *sentineldf.ResultURLs) string {
	if r == nil {
		return ""
	}
	switch o {
	case OutputResults:
		return r.ResultsURL
	case OutputClean:
		return r.CleanURL
	case OutputQuarantine:
		return r.QuarantineURL
	case OutputMBOM:
		return r.MBOMURL
	case OutputSummary:
		return r.SummaryURL
	case OutputMalformed:
		return r.MalformedURL
	}
	return ""
}

// ScanResult is a scan found succeeded (or, with ScanOptions.NoWait, just
// queued). Its methods download the scan's outputs from their presigned
// URLs, fetching fresh URLs when the ones held have expired. It is not safe
// for concurrent use.
type ScanResult struct {
	// Status is the last status fetched.
	Status sentineldf.ScanStatus
	// Files are the files ScanFiles uploaded, in scan order (nil when the
	// result came from Result or Wait).
	Files []sentineldf.FileSpec

	c *Client
}

// JobID is the scan's id.
func (r *ScanResult) JobID() string { return r.Status.JobID }

// Download writes output o of the scan to w.
func (r *ScanResult) Download(ctx context.Context, o Output, w io.Writer) error {
	return r.fetch(ctx, o, func(u string) error { return r.c.Download(ctx, u, w) })
}

// Save writes output o of the scan to the file at path, atomically: the
// file appears whole or not at all.
func (r *ScanResult) Save(ctx context.Context, o Output, path string) error {
	return r.fetch(ctx, o, func(u string) error { return r.c.DownloadFile(ctx, u, path) })
}

// fetch calls get with output o's URL, and once more with a fresh URL when
// the presigned URL was refused (expired).
func (r *ScanResult) fetch(ctx context.Context, o Output, get func(url string) error) error {
	u := o.url(r.Status.Results)
	if u == "" {
		if err := r.refresh(ctx); err != nil {
			return err
		}
		if u = o.url(r.Status.Results); u == "" {
			return sentineldf.Errorf(sentineldf.ENOTFOUND, "scan %s (%s) has no %s output", r.Status.JobID, r.Status.State, o)
		}
	}
	err := get(u)
	var ae *Error
	if !errors.As(err, &ae) || !expired(ae.Status) {
		return err
	}
	if err := r.refresh(ctx); err != nil {
		return err
	}
	if u = o.url(r.Status.Results); u == "" {
		return sentineldf.Errorf(sentineldf.ENOTFOUND, "scan %s (%s) has no %s output", r.Status.JobID, r.Status.State, o)
	}
	return get(u)
}

// refresh fetches the scan's status, with fresh result URLs.
func (r *ScanResult) refresh(ctx context.Context) error {
	st, err := r.c.ScanStatus(ctx, r.Status.JobID)
	if err != nil {
		return err
	}
	r.Status = *st
	return nil
}

// expired reports whether a presigned request's status means its URL is no
// longer (or not) valid.
func expired(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusGone
}

// Result returns a succeeded scan, to download its outputs. A scan that
// failed or was canceled is a *ScanError; one that has not ended is
// sentineldf.ECONFLICT.
func (c *Client) Result(ctx context.Context, jobID string) (*ScanResult, error) {
	st, err := c.ScanStatus(ctx, jobID)
	if err != nil {
		return nil, err
	}
	if !sentineldf.Terminal(st.State) {
		return nil, sentineldf.Errorf(sentineldf.ECONFLICT, "scan %s is %s: its results are ready once it succeeds", st.JobID, st.State)
	}
	return c.ended(st, nil)
}

// ended turns a terminal status into the result or the *ScanError.
func (c *Client) ended(st *sentineldf.ScanStatus, files []sentineldf.FileSpec) (*ScanResult, error) {
	if st.State != sentineldf.StateSucceeded {
		return nil, &ScanError{Status: *st}
	}
	return &ScanResult{Status: *st, Files: files, c: c}, nil
}

// Wait polls a scan's status until it ends, calling opts.Progress with
// every status, and returns it like Result. Only the polling fields of
// opts are used.
func (c *Client) Wait(ctx context.Context, jobID string, opts ScanOptions) (*ScanResult, error) {
	st, err := c.ScanStatus(ctx, jobID)
	if err != nil {
		return nil, err
	}
	return c.waitFrom(ctx, st, opts, nil)
}

// waitFrom polls from a status already fetched.
func (c *Client) waitFrom(ctx context.Context, st *sentineldf.ScanStatus, opts ScanOptions, files []sentineldf.FileSpec) (*ScanResult, error) {
	interval := opts.PollInterval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	maxInterval := opts.MaxPollInterval
	if maxInterval <= 0 {
		maxInterval = DefaultMaxPollInterval
	}
	maxInterval = max(maxInterval, interval)
	for {
		if opts.Progress != nil {
			opts.Progress(*st)
		}
		if sentineldf.Terminal(st.State) {
			return c.ended(st, files)
		}
		if err := c.sleep(ctx, interval); err != nil {
			return nil, fmt.Errorf("wait for scan %s: %w", st.JobID, err)
		}
		next, err := c.ScanStatus(ctx, st.JobID)
		if err != nil {
			return nil, fmt.Errorf("wait for scan %s: %w", st.JobID, err)
		}
		if next.State == st.State && next.Progress == st.Progress {
			interval = min(interval*3/2, maxInterval)
		}
		st = next
	}
}

// localFile is a file to scan.
type localFile struct {
	path string
	spec sentineldf.FileSpec
}

// ScanFiles scans local files and directories through the API: it walks
// the directories (regular files, in lexical order, named by their
// slash-separated path relative to the directory argument; a file argument
// is named by its base name), computes each file's size and SHA-256,
// creates the scan, uploads every file to its presigned URL, confirms the
// scan and polls its status until it ends. A scan that ends failed or
// canceled is a *ScanError. When a step before the confirmation fails the
// scan is canceled; once confirmed it runs on even if ctx is canceled
// (Wait or ScanStatus pick it up again).
func (c *Client) ScanFiles(ctx context.Context, paths []string, opts ScanOptions) (*ScanResult, error) {
	files, err := collectFiles(ctx, paths, opts.Filter)
	if err != nil {
		return nil, err
	}
	base := opts.IdempotencyKey
	if base == "" {
		base, _ = ctx.Value(idempotencyKeyCtx).(string)
	}
	specs := make([]sentineldf.FileSpec, len(files))
	for i, f := range files {
		specs[i] = f.spec
	}
	created, err := c.ScanAsync(WithIdempotencyKey(ctx, subKey(base, "scan")), sentineldf.AsyncScanRequest{
		Files: specs, Priority: opts.Priority, CallbackURL: opts.CallbackURL,
	})
	if err != nil {
		return nil, fmt.Errorf("create scan: %w", err)
	}
	jobID := created.JobID
	if err := c.uploadAll(ctx, files, created.Uploads, opts); err != nil {
		c.abandon(ctx, jobID)
		return nil, fmt.Errorf("scan %s: %w", jobID, err)
	}
	st, err := c.ConfirmScan(WithIdempotencyKey(ctx, subKey(base, "confirm")), jobID)
	if err != nil {
		c.abandon(ctx, jobID)
		return nil, fmt.Errorf("scan %s: confirm: %w", jobID, err)
	}
	if opts.NoWait {
		if opts.Progress != nil {
			opts.Progress(*st)
		}
		return &ScanResult{Status: *st, Files: specs, c: c}, nil
	}
	return c.waitFrom(ctx, st, opts, specs)
}

// subKey derives the idempotency key of one step from the caller's; "" (a
// fresh random key) when the caller gave none.
func subKey(base, step string) string {
	if base == "" {
		return ""
	}
	return base + "-" + step
}

// abandon cancels a scan that cannot go on, best effort, even when ctx is
// already canceled.
func (c *Client) abandon(ctx context.Context, jobID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, _ = c.CancelScan(WithIdempotencyKey(ctx, ""), jobID)
}

// collectFiles expands paths into the files to scan, hashed.
func collectFiles(ctx context.Context, paths []string, filter func(string) bool) ([]localFile, error) {
	if len(paths) == 0 {
		return nil, sentineldf.Errorf(sentineldf.EINVALID, "no paths to scan")
	}
	var files []localFile
	seen := map[string]string{}
	add := func(path, name string) error {
		if err := sentineldf.ValidateFileName(name); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if prev, ok := seen[name]; ok {
			return sentineldf.Errorf(sentineldf.EINVALID, "%s and %s would both be named %q in the scan; scan them separately", prev, path, name)
		}
		seen[name] = path
		if len(files) == sentineldf.MaxFilesPerScan {
			return sentineldf.Errorf(sentineldf.ETOOLARGE, "more than %d files; split the scan", sentineldf.MaxFilesPerScan)
		}
		files = append(files, localFile{path: path, spec: sentineldf.FileSpec{Name: name}})
		return nil
	}
	for _, arg := range paths {
		st, err := os.Stat(arg)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", arg, err)
		}
		if !st.IsDir() {
			if !st.Mode().IsRegular() {
				return nil, sentineldf.Errorf(sentineldf.EINVALID, "input %s: not a regular file", arg)
			}
			if err := add(arg, uploadName(arg, "")); err != nil {
				return nil, err
			}
			continue
		}
		found, err := walkDir(arg, filter)
		if err != nil {
			return nil, err
		}
		for _, f := range found {
			if err := add(f.path, uploadName(arg, f.spec.Name)); err != nil {
				return nil, err
			}
		}
	}
	if len(files) == 0 {
		return nil, sentineldf.Errorf(sentineldf.EINVALID, "no files to scan in %v", paths)
	}
	for i := range files {
		size, sum, err := hashFile(ctx, files[i].path)
		if err != nil {
			return nil, err
		}
		if size > sentineldf.MaxUploadBytes {
			return nil, sentineldf.Errorf(sentineldf.ETOOLARGE, "%s: %d bytes exceeds the %d-byte upload limit", files[i].path, size, int64(sentineldf.MaxUploadBytes))
		}
		files[i].spec.Size, files[i].spec.SHA256 = size, sum
	}
	return files, nil
}

// uploadName names a file in the scan the way `sentineldf scan` names it in
// its results: the path as given (slash-separated), rel joined to the
// directory argument arg for files found under it. A path that is absolute
// or leaves the working directory keeps only its base name (or its path
// relative to the directory argument), so no local layout leaks into the
// scan and the name stays a clean relative path.
func uploadName(arg, rel string) string {
	prefix := ""
	if filepath.IsLocal(arg) {
		prefix = filepath.ToSlash(filepath.Clean(arg))
	} else if rel == "" {
		prefix = filepath.Base(arg)
	}
	switch {
	case rel == "":
		return prefix
	case prefix == "" || prefix == ".":
		return rel
	}
	return path.Join(prefix, rel)
}

// walkDir lists the regular files under dir (following symbolic links to
// files, not to directories), sorted by name.
func walkDir(dir string, filter func(string) bool) ([]localFile, error) {
	var found []localFile
	root := dir
	if fi, err := os.Lstat(dir); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		root = dir + string(filepath.Separator) // walk the directory the link names
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", p, err)
		}
		if d.IsDir() {
			return nil
		}
		info, err := os.Stat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && d.Type()&fs.ModeSymlink != 0 {
				return nil // a dangling link
			}
			return fmt.Errorf("walk %s: %w", p, err)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return fmt.Errorf("walk %s: %w", p, err)
		}
		rel = filepath.ToSlash(rel)
		if filter != nil && !filter(rel) {
			return nil
		}
		found = append(found, localFile{path: p, spec: sentineldf.FileSpec{Name: rel}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(found, func(a, b localFile) int {
		switch {
		case a.spec.Name < b.spec.Name:
			return -1
		case a.spec.Name > b.spec.Name:
			return 1
		}
		return 0
	})
	return found, nil
}

// hashFile streams a file through SHA-256 and returns its size and hex
// digest.
func hashFile(ctx context.Context, path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, &ctxReader{ctx: ctx, r: f})
	if err != nil {
		return 0, "", fmt.Errorf("hash %s: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// ctxReader stops reading once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, context.Cause(r.ctx)
	}
	return r.r.Read(p)
}

// uploadAll uploads every file to its presigned request, a few at a time.
func (c *Client) uploadAll(ctx context.Context, files []localFile, uploads []sentineldf.Upload, opts ScanOptions) error {
	byName := make(map[string]sentineldf.PresignedRequest, len(uploads))
	for _, u := range uploads {
		byName[u.Name] = u.PresignedRequest
	}
	var total int64
	for _, f := range files {
		if _, ok := byName[f.spec.Name]; !ok {
			return sentineldf.Errorf(sentineldf.EINTERNAL, "the server returned no upload URL for %s", f.spec.Name)
		}
		total += f.spec.Size
	}
	var (
		mu       sync.Mutex
		done     int64
		reported int64
		firstErr error
	)
	progress := func(n int64) {
		mu.Lock()
		defer mu.Unlock()
		done += n
		if opts.UploadProgress != nil && (done-reported >= uploadReportBytes || done == total || n < 0) {
			reported = done
			opts.UploadProgress(done, total)
		}
	}
	if opts.UploadProgress != nil {
		opts.UploadProgress(0, total)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	n := opts.UploadConcurrency
	if n <= 0 {
		n = DefaultUploadConcurrency
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, f := range files {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := c.upload(ctx, byName[f.spec.Name], f.path, f.spec.Size, progress); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("upload %s: %w", f.spec.Name, err)
				}
				mu.Unlock()
				cancel(err)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return context.Cause(ctx)
}

// UploadFile uploads the file at path to a presigned request (from
// ScanAsync or CreateUploads), retrying as API calls are. The request
// carries the presigned headers and never the API key.
func (c *Client) UploadFile(ctx context.Context, req sentineldf.PresignedRequest, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("upload %s: %w", path, err)
	}
	return c.upload(ctx, req, path, st.Size(), nil)
}

// upload uploads size bytes of the file at path, reporting bytes sent (and
// taken back on a retry) to progress.
func (c *Client) upload(ctx context.Context, pr sentineldf.PresignedRequest, path string, size int64, progress func(int64)) error {
	target, err := c.resolve(pr.URL)
	if err != nil {
		return err
	}
	method := pr.Method
	if method == "" {
		method = http.MethodPut
	}
	if progress == nil {
		progress = func(int64) {}
	}
	for attempt := 0; ; attempt++ {
		var sent int64
		err := c.uploadOnce(ctx, method, target, pr.Headers, path, size, func(n int64) { sent += n; progress(n) })
		if err == nil {
			return nil
		}
		if sent > 0 {
			progress(-sent)
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		wait, ok := c.retryWait(ctx, err, attempt, true)
		if !ok {
			return err
		}
		if err := c.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// uploadOnce makes one upload attempt, streaming the file.
func (c *Client) uploadOnce(ctx context.Context, method, target string, headers map[string]string, path string, size int64, progress func(int64)) error {
	f, err := os.Open(path)
	if err != nil {
		return permanent(fmt.Errorf("open %s: %w", path, err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return permanent(fmt.Errorf("stat %s: %w", path, err))
	}
	if st.Size() != size {
		return sentineldf.Errorf(sentineldf.ECONFLICT, "%s changed while it was being scanned (%d bytes, declared %d)", path, st.Size(), size)
	}
	var body io.Reader = http.NoBody
	if size > 0 {
		body = &countingReader{r: &ctxReader{ctx: ctx, r: io.LimitReader(f, size)}, progress: progress}
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return permanent(fmt.Errorf("build upload request: %w", err))
	}
	req.ContentLength = size
	for k, v := range headers {
		switch http.CanonicalHeaderKey(k) {
		case "Host":
			req.Host = v
		case "Content-Length", "Authorization":
			// Set from the file; never the API key.
		default:
			req.Header.Set(k, v)
		}
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		return redactURLError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return responseError(resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBytes))
	return nil
}

// countingReader reports the bytes read through it.
type countingReader struct {
	r        io.Reader
	progress func(int64)
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.progress(int64(n))
	}
	return n, err
}

// Download writes the object at a presigned URL (a ScanStatus result URL)
// to w. The request carries no API key. A failed attempt is retried only
// when nothing was written to w yet.
func (c *Client) Download(ctx context.Context, rawURL string, w io.Writer) error {
	target, err := c.resolve(rawURL)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		written, err := c.downloadOnce(ctx, target, w)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("download %s: %w", redactURL(target), context.Cause(ctx))
		}
		if written > 0 {
			return fmt.Errorf("download %s: %w", redactURL(target), err)
		}
		wait, ok := c.retryWait(ctx, err, attempt, true)
		if !ok {
			return wrapCall("download", redactURL(target), err)
		}
		if err := c.sleep(ctx, wait); err != nil {
			return fmt.Errorf("download %s: %w", redactURL(target), err)
		}
	}
}

// downloadOnce makes one download attempt and returns the bytes written.
func (c *Client) downloadOnce(ctx context.Context, target string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, permanent(fmt.Errorf("build download request: %w", err))
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, redactURLError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, responseError(resp)
	}
	return io.Copy(&errWriter{w: w}, &ctxReader{ctx: ctx, r: resp.Body})
}

// errWriter marks its writer's errors permanent: a destination that
// fails is not fixed by downloading again.
type errWriter struct{ w io.Writer }

func (w *errWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		return n, permanent(fmt.Errorf("write: %w", err))
	}
	return n, nil
}

// DownloadFile writes the object at a presigned URL to the file at path,
// atomically: it is written under a temporary name in the same directory
// and renamed into place once complete.
func (c *Client) DownloadFile(ctx context.Context, rawURL, path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := c.Download(ctx, rawURL, tmp); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	committed = true
	return nil
}
