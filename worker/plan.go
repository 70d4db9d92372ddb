package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/dataset"
)

// plan splits the scan's files into shards and starts the scan.
func (w *Worker) plan(ctx context.Context, org, scanID string) error {
	sc, err := w.loadScan(ctx, org, scanID)
	if err != nil {
		return err
	}
	if sc.State == sentineldf.StateAwaitingUpload {
		return failf(nil, "the scan was started before its files were uploaded")
	}
	if len(sc.Files) == 0 {
		return failf(nil, "the scan has no files")
	}
	shards, total, err := w.planShards(ctx, sc)
	if err != nil {
		return err
	}
	err = w.cfg.Store.StartScan(ctx, org, scanID, shards, sentineldf.Progress{BytesTotal: total})
	if sentineldf.ErrorCode(err) == sentineldf.ECONFLICT {
		return errScanEnded // canceled or finished meanwhile
	}
	if err != nil {
		return fmt.Errorf("start scan: %w", err)
	}
	w.log.InfoContext(ctx, "scan planned", "scan_id", scanID, "files", len(sc.Files), "shards", len(shards), "bytes", total)
	return nil
}

// planShards returns the scan's shards, indexed by file then offset, and
// the total size of its files.
func (w *Worker) planShards(ctx context.Context, sc *sentineldf.Scan) ([]sentineldf.Shard, int64, error) {
	files := slices.Clone(sc.Files)
	slices.SortFunc(files, func(a, b sentineldf.ScanFile) int { return a.Index - b.Index })
	var shards []sentineldf.Shard
	var total int64
	for _, f := range files {
		key := sentineldf.InputKey(sc.OrgID, sc.ID, f.Index, f.Name)
		info, err := w.cfg.Blobs.Stat(ctx, key)
		if sentineldf.ErrorCode(err) == sentineldf.ENOTFOUND {
			return nil, 0, failf(err, "input file %q is missing", f.Name)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("stat %s: %w", f.Name, err)
		}
		total += info.Size
		offsets := []int64{0}
		split, err := w.splittable(ctx, key, f.Name, info.Size)
		if err != nil {
			return nil, 0, err
		}
		if split {
			if offsets, err = w.boundaries(ctx, key, info.Size); err != nil {
				return nil, 0, fmt.Errorf("plan %s: %w", f.Name, err)
			}
		}
		for i, off := range offsets {
			end := info.Size
			if i+1 < len(offsets) {
				end = offsets[i+1]
			}
			sh := sentineldf.Shard{
				ScanID: sc.ID, OrgID: sc.OrgID, Index: len(shards), FileIndex: f.Index,
				Offset: off, Length: end - off,
			}
			if off == 0 {
				sh.FirstLine = 1
			}
			shards = append(shards, sh)
		}
	}
	return shards, total, nil
}

// splittable reports whether a file is uncompressed JSON Lines larger than
// a shard, judged by its name and its first bytes (a compressed file named
// .jsonl is read decompressed, so it cannot be cut at byte offsets).
func (w *Worker) splittable(ctx context.Context, key, name string, size int64) (bool, error) {
	format, comp := dataset.DetectFormat(name)
	if format != dataset.FormatJSONL || comp != "" || size <= w.cfg.ShardBytes {
		return false, nil
	}
	head, err := w.readRange(ctx, key, 0, 4)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", name, err)
	}
	if bytes.HasPrefix(head, []byte{0x1f, 0x8b}) || bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		return false, nil
	}
	return true, nil
}

// planConcurrency bounds the range reads of one plan in flight.
const planConcurrency = 8

// boundaries returns the start offsets of a JSONL file's shards: 0, then
// for every multiple of ShardBytes the offset just after the first '\n' at
// or after the byte before it, so each shard is about ShardBytes long and
// starts on a line.
func (w *Worker) boundaries(ctx context.Context, key string, size int64) ([]int64, error) {
	n := int((size - 1) / w.cfg.ShardBytes)
	found := make([]int64, n)
	errs := make([]error, n)
	sem := make(chan struct{}, planConcurrency)
	var wg sync.WaitGroup
	for k := range n {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[k] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			found[k], errs[k] = w.lineStart(ctx, key, int64(k+1)*w.cfg.ShardBytes, size)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	offsets := []int64{0}
	for _, off := range found {
		if off < size && off > offsets[len(offsets)-1] {
			offsets = append(offsets, off)
		}
	}
	return offsets, nil
}

// lineStart returns the offset of the first line that starts at or after
// target: just after the first '\n' at or after target-1, or size when
// there is none. It reads small ranges, growing them over long lines.
func (w *Worker) lineStart(ctx context.Context, key string, target, size int64) (int64, error) {
	off, chunk := target-1, int64(64<<10)
	for off < size {
		b, err := w.readRange(ctx, key, off, min(chunk, size-off))
		if err != nil {
			return 0, err
		}
		if len(b) == 0 {
			return 0, fmt.Errorf("read %s at %d: %w", key, off, io.ErrUnexpectedEOF)
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return off + int64(i) + 1, nil
		}
		off += int64(len(b))
		chunk = min(chunk*2, 4<<20)
	}
	return size, nil
}

// readRange reads length bytes of an object from offset.
func (w *Worker) readRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	rc, err := w.cfg.Blobs.GetRange(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, length))
	if err != nil {
		return nil, fmt.Errorf("read range: %w", err)
	}
	return b, nil
}
