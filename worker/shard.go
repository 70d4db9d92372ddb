package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/dataset"
	"github.com/sentineldf/sentineldf/scan"
)

// shard scans one shard and completes it.
func (w *Worker) shard(ctx context.Context, org, scanID string, index int) error {
	sc, err := w.loadScan(ctx, org, scanID)
	if err != nil {
		return err
	}
	shards, err := w.cfg.Store.Shards(ctx, org, scanID)
	if err != nil {
		return fmt.Errorf("load shards: %w", err)
	}
	w.lengths.put(org, scanID, shards)
	var sh *sentineldf.Shard
	for i := range shards {
		if shards[i].Index == index {
			sh = &shards[i]
		}
	}
	if sh == nil {
		return failf(nil, "internal error: shard %d of the scan does not exist", index)
	}
	if sh.Done {
		return nil // a retried job whose shard completed
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.Int("sentineldf.shard.file_index", sh.FileIndex),
		attribute.Int64("sentineldf.shard.offset", sh.Offset), attribute.Int64("sentineldf.shard.length", sh.Length))
	f, ok := scanFile(sc, sh.FileIndex)
	if !ok {
		return failf(nil, "internal error: shard %d names file %d, which the scan does not have", index, sh.FileIndex)
	}

	tmp, err := w.newTempDir("shard")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	input := filepath.Join(tmp, "in", baseName(f.Name))
	if err := w.download(ctx, sentineldf.InputKey(org, scanID, f.Index, f.Name), f.Name, input, sh.Offset, sh.Length); err != nil {
		return err
	}
	name := f.Name
	if sh.Offset > 0 {
		name += "@" + strconv.FormatInt(sh.Offset, 10)
	}
	format, comp := dataset.DetectFormat(f.Name)
	file := dataset.File{Path: input, Name: name, Rel: baseName(f.Name), Size: sh.Length, Format: format, Compression: comp}

	resultsPath := filepath.Join(tmp, "results.jsonl")
	out, err := os.Create(resultsPath)
	if err != nil {
		return fmt.Errorf("create results: %w", err)
	}
	defer out.Close()
	bw := bufio.NewWriterSize(out, 256<<10)
	cfg := scan.Config{Files: []dataset.File{file}, Workers: w.cfg.ScanWorkers, TempDir: tmp}
	if w.cfg.Cache != nil {
		kv := scan.NewKVResultCache(ctx, w.cfg.Cache, "org:"+org+":result:", resultCacheTTL)
		kv.OnError = func(error) { w.metrics.DependencyErrors.WithLabelValues("cache").Inc() }
		cfg.ResultCache = kv
	}
	wctx, stop := w.watch(ctx, org, scanID)
	sum, err := scan.RunEngine(wctx, w.cfg.Engine, cfg, scan.Output{Results: bw})
	stop()
	if err != nil {
		if cause := stopCause(ctx, wctx); cause != nil {
			return cause
		}
		if isDataError(err) {
			return failf(err, "%s", sanitize(err.Error(), tmp))
		}
		return fmt.Errorf("scan shard %d: %w", index, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := w.putFile(ctx, sentineldf.ShardResultsKey(org, scanID, index), out); err != nil {
		return err
	}

	done := *sh
	done.Done = true
	done.Docs, done.Bytes = sum.Documents, sum.Bytes
	done.Counts = countsOf(sum)
	done.CacheHits, done.Malformed = sum.CacheHits, sum.Malformed
	recorded, last, err := w.cfg.Store.CompleteShard(ctx, done)
	if err != nil {
		return fmt.Errorf("complete shard %d: %w", index, err)
	}
	w.metrics.DocumentsScanned.WithLabelValues("async").Add(float64(sum.Documents))
	w.metrics.BytesScanned.WithLabelValues("async").Add(float64(sum.Bytes))
	if w.cfg.Cache != nil {
		w.metrics.CacheLookup(int(sum.CacheHits), int(sum.Documents-sum.CacheHits))
	}
	w.log.InfoContext(ctx, "shard scanned", "scan_id", scanID, "shard", index, "documents", sum.Documents,
		"bytes", sum.Bytes, "cache_hits", sum.CacheHits, "malformed", sum.Malformed, "recorded", recorded, "last", last)
	return nil
}

// baseName is the last element of an upload name, for a temporary file that
// keeps its extension (so its format is detected as the name's).
func baseName(name string) string {
	b := path.Base(name)
	if b == "." || b == ".." || b == "/" {
		return "input"
	}
	return b
}

// isDataError reports whether a scan error is the input's fault (or the
// configuration's), which no retry can fix.
func isDataError(err error) bool {
	return errors.Is(err, scan.ErrInput) || errors.Is(err, scan.ErrConfig)
}

func scanFile(sc *sentineldf.Scan, index int) (sentineldf.ScanFile, bool) {
	for _, f := range sc.Files {
		if f.Index == index {
			return f, true
		}
	}
	return sentineldf.ScanFile{}, false
}

func countsOf(sum *scan.Summary) sentineldf.Counts {
	return sentineldf.Counts{Clean: sum.Bands.Clean, Elevated: sum.Bands.Elevated, Quarantine: sum.Bands.Quarantine}
}

// download copies length bytes of an object from offset (length < 0: the
// whole object) into a new file at dst. A missing object fails the scan.
func (w *Worker) download(ctx context.Context, key, name, dst string, offset, length int64) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("download %s: %w", name, err)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("download %s: %w", name, err)
	}
	defer f.Close()
	if length == 0 {
		return f.Close()
	}
	var rc io.ReadCloser
	if offset == 0 && length < 0 {
		rc, err = w.cfg.Blobs.Get(ctx, key)
	} else {
		rc, err = w.cfg.Blobs.GetRange(ctx, key, offset, length)
	}
	if sentineldf.ErrorCode(err) == sentineldf.ENOTFOUND {
		return failf(err, "input file %q is missing", name)
	}
	if err != nil {
		return fmt.Errorf("download %s: %w", name, err)
	}
	defer rc.Close()
	n, err := io.Copy(f, rc)
	if err != nil {
		return fmt.Errorf("download %s: %w", name, err)
	}
	if length >= 0 && n != length {
		return fmt.Errorf("download %s: got %d bytes at offset %d, want %d", name, n, offset, length)
	}
	return f.Close()
}

// putFile stores the whole of f under key.
func (w *Worker) putFile(ctx context.Context, key string, f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("put %s: %w", path.Base(key), err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("put %s: %w", path.Base(key), err)
	}
	if err := w.cfg.Blobs.Put(ctx, key, f, st.Size()); err != nil {
		return fmt.Errorf("put %s: %w", path.Base(key), err)
	}
	return nil
}
