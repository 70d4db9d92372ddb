package worker

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/dataset"
	"github.com/sentineldf/sentineldf/detect"
	"github.com/sentineldf/sentineldf/scan"
)

// finalize runs the dataset-level pass over the whole scan, writes its
// result objects and finishes it.
func (w *Worker) finalize(ctx context.Context, org, scanID string) error {
	sc, err := w.loadScan(ctx, org, scanID)
	if err != nil {
		return err
	}
	shards, err := w.cfg.Store.Shards(ctx, org, scanID)
	if err != nil {
		return fmt.Errorf("load shards: %w", err)
	}
	for _, sh := range shards {
		if !sh.Done {
			return fmt.Errorf("finalize: shard %d is not done", sh.Index)
		}
	}
	tmp, err := w.newTempDir("finalize")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	files := slices.Clone(sc.Files)
	slices.SortFunc(files, func(a, b sentineldf.ScanFile) int { return a.Index - b.Index })
	inputs := make([]dataset.File, len(files))
	for i, f := range files {
		p := filepath.Join(tmp, "in", strconv.Itoa(f.Index), baseName(f.Name))
		if err := w.download(ctx, sentineldf.InputKey(org, scanID, f.Index, f.Name), f.Name, p, 0, -1); err != nil {
			return err
		}
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("download %s: %w", f.Name, err)
		}
		format, comp := dataset.DetectFormat(f.Name)
		inputs[i] = dataset.File{Path: p, Name: f.Name, Rel: f.Name, Size: st.Size(), Format: format, Compression: comp}
	}

	outDir := filepath.Join(tmp, "out")
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return fmt.Errorf("finalize: %w", err)
	}
	results, err := os.Create(filepath.Join(outDir, sentineldf.ResultsObject))
	if err != nil {
		return fmt.Errorf("create results: %w", err)
	}
	defer results.Close()
	malformed, err := os.Create(filepath.Join(outDir, sentineldf.MalformedObject))
	if err != nil {
		return fmt.Errorf("create malformed report: %w", err)
	}
	defer malformed.Close()
	rbuf, mbuf := bufio.NewWriterSize(results, 256<<10), bufio.NewWriter(malformed)
	menc := json.NewEncoder(mbuf)
	menc.SetEscapeHTML(false)
	var merr error
	cleanDir, quarDir := filepath.Join(tmp, "clean")+string(os.PathSeparator), filepath.Join(tmp, "quarantine")+string(os.PathSeparator)

	prior := &shardPrior{ctx: ctx, blobs: w.cfg.Blobs, org: org, scanID: scanID, shards: shards}
	defer prior.close()
	cfg := scan.Config{
		Files:            inputs,
		DatasetDetectors: w.cfg.DatasetDetectors(),
		Workers:          w.cfg.ScanWorkers,
		TempDir:          tmp,
		Prior:            prior,
	}
	if w.cfg.Cache != nil {
		kv := scan.NewKVResultCache(ctx, w.cfg.Cache, "org:"+org+":result:", resultCacheTTL)
		kv.OnError = func(error) { w.metrics.DependencyErrors.WithLabelValues("cache").Inc() }
		cfg.ResultCache = kv
	}
	out := scan.Output{
		Results:       rbuf,
		ResultsName:   sentineldf.ResultsObject,
		CleanOut:      cleanDir,
		QuarantineOut: quarDir,
		OnMalformed: func(e *dataset.MalformedError) {
			if merr == nil {
				merr = menc.Encode(scan.Malformed{Source: e.Source.String(), Reason: e.Reason})
			}
		},
	}
	wctx, stop := w.watch(ctx, org, scanID)
	sum, err := scan.RunEngine(wctx, w.cfg.Engine, cfg, out)
	stop()
	if err != nil {
		if cause := stopCause(ctx, wctx); cause != nil {
			return cause
		}
		if isDataError(err) {
			return failf(err, "%s", sanitize(err.Error(), tmp))
		}
		return fmt.Errorf("finalize: %w", err)
	}
	for _, e := range []error{merr, mbuf.Flush(), rbuf.Flush()} {
		if e != nil {
			return fmt.Errorf("write results: %w", e)
		}
	}
	for _, sh := range shards {
		sum.CacheHits += sh.CacheHits
	}
	if sum.PriorMismatches > 0 || prior.missing > 0 {
		w.log.WarnContext(ctx, "shard results not used", "scan_id", scanID, "mismatched", sum.PriorMismatches,
			"missing_shards", prior.missing, "undecodable", prior.undecodable)
	}

	summary, err := os.Create(filepath.Join(outDir, sentineldf.SummaryObject))
	if err != nil {
		return fmt.Errorf("create summary: %w", err)
	}
	defer summary.Close()
	enc := json.NewEncoder(summary)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(sum); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	clean, err := splitObject(filepath.Join(outDir, sentineldf.CleanObject), cleanDir, inputs)
	if err != nil {
		return err
	}
	defer clean.Close()
	quar, err := splitObject(filepath.Join(outDir, sentineldf.QuarantineObject), quarDir, inputs)
	if err != nil {
		return err
	}
	defer quar.Close()
	for _, o := range []struct {
		name string
		f    *os.File
	}{
		{sentineldf.ResultsObject, results},
		{sentineldf.CleanObject, clean},
		{sentineldf.QuarantineObject, quar},
		{sentineldf.MalformedObject, malformed},
		{sentineldf.SummaryObject, summary},
	} {
		if err := w.putFile(ctx, sentineldf.ResultKey(org, scanID, o.name), o.f); err != nil {
			return err
		}
	}

	finished, err := w.cfg.Store.FinishScan(ctx, org, scanID, sentineldf.StateSucceeded, countsOf(sum), "")
	if err != nil {
		return fmt.Errorf("finish scan: %w", err)
	}
	if !finished {
		return errScanEnded
	}
	for _, sh := range shards {
		if err := w.cfg.Blobs.Delete(ctx, sentineldf.ShardResultsKey(org, scanID, sh.Index)); err != nil {
			w.log.WarnContext(ctx, "delete shard results", "scan_id", scanID, "shard", sh.Index, "err", err)
		}
	}
	w.log.InfoContext(ctx, "scan finished", "scan_id", scanID, "documents", sum.Documents, "malformed", sum.Malformed,
		"quarantine", sum.Bands.Quarantine, "prior_results", sum.PriorResults, "cache_hits", sum.CacheHits)
	return nil
}

// splitObject builds a split's object at dst from the split directory: the
// one input's split itself, or a tar of every input's split named by its
// upload name. An input without a split (a whole-file text document that
// went to the other side) is left out; with one input the object is empty.
func splitObject(dst, dir string, inputs []dataset.File) (*os.File, error) {
	f, err := os.Create(dst)
	if err != nil {
		return nil, fmt.Errorf("create split: %w", err)
	}
	if err := writeSplit(f, dir, inputs); err != nil {
		f.Close()
		return nil, fmt.Errorf("write split: %w", err)
	}
	return f, nil
}

func writeSplit(w io.Writer, dir string, inputs []dataset.File) error {
	if len(inputs) == 1 {
		in, err := os.Open(filepath.Join(dir, filepath.FromSlash(inputs[0].Rel)))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		defer in.Close()
		_, err = io.Copy(w, in)
		return err
	}
	tw := tar.NewWriter(w)
	for _, f := range inputs {
		if err := addTarEntry(tw, filepath.Join(dir, filepath.FromSlash(f.Rel)), f.Rel); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addTarEntry(tw *tar.Writer, file, name string) error {
	in, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: st.Size(), Mode: 0o644, ModTime: st.ModTime().UTC().Truncate(1e9)}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if _, err := io.Copy(tw, in); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// shardPrior feeds the shards' results to the finalize pass as scan.Prior:
// the shards are in input order and each shard's results in its input
// order, so their concatenation lines up with the records the pass reads.
type shardPrior struct {
	ctx    context.Context
	blobs  sentineldf.BlobReader
	org    string
	scanID string
	shards []sentineldf.Shard

	next int           // the shard to open next
	rc   io.ReadCloser // the open shard's results
	br   *bufio.Reader
	skip int64 // documents of a shard whose results are missing
	line scan.Line

	missing, undecodable int
}

// Next implements scan.Prior.
func (p *shardPrior) Next() (*detect.Result, bool, error) {
	for {
		if p.br != nil {
			b, err := p.br.ReadSlice('\n')
			if err == bufio.ErrBufferFull {
				var long []byte
				long, err = p.readLong(b)
				b = long
			}
			if err == io.EOF && len(b) == 0 {
				p.close()
				continue
			}
			if err != nil && err != io.EOF {
				return nil, false, fmt.Errorf("read shard results: %w", err)
			}
			r, ok := p.decode(b)
			if !ok {
				p.undecodable++
			}
			return r, ok, nil
		}
		if p.skip > 0 {
			p.skip--
			return nil, false, nil
		}
		if p.next >= len(p.shards) {
			return nil, false, nil
		}
		sh := p.shards[p.next]
		p.next++
		rc, err := p.blobs.Get(p.ctx, sentineldf.ShardResultsKey(p.org, p.scanID, sh.Index))
		if sentineldf.ErrorCode(err) == sentineldf.ENOTFOUND {
			p.missing++
			p.skip = sh.Docs
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("open shard %d results: %w", sh.Index, err)
		}
		p.rc, p.br = rc, bufio.NewReaderSize(rc, 256<<10)
	}
}

// readLong reads the rest of a line longer than the buffer.
func (p *shardPrior) readLong(first []byte) ([]byte, error) {
	b := slices.Clone(first)
	for {
		frag, err := p.br.ReadSlice('\n')
		b = append(b, frag...)
		if err != bufio.ErrBufferFull {
			return b, err
		}
	}
}

// decode turns a results line back into the engine result it was written
// from. JSON carries every field exactly, except that invalid UTF-8 would
// come back as U+FFFD: a line with U+FFFD anywhere is not trusted.
func (p *shardPrior) decode(b []byte) (*detect.Result, bool) {
	p.line = scan.Line{}
	if err := json.Unmarshal(b, &p.line); err != nil {
		return nil, false
	}
	l := &p.line
	for _, f := range l.Findings {
		for _, s := range []string{f.Detector, f.Rule, string(f.Category), string(f.Severity), f.Message, f.Field, f.Evidence} {
			if strings.ContainsRune(s, utf8.RuneError) {
				return nil, false
			}
		}
	}
	if strings.ContainsRune(string(l.Band), utf8.RuneError) {
		return nil, false
	}
	return &detect.Result{SHA256: l.SHA256, Risk: l.Risk, Score: l.Score, Band: l.Band, Findings: l.Findings}, true
}

func (p *shardPrior) close() {
	if p.rc != nil {
		p.rc.Close()
	}
	p.rc, p.br = nil, nil
}
