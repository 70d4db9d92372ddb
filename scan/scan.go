// Package scan is SentinelDF's scan pipeline: it streams datasets through
// the detection engine and writes per-document results, the clean and
// quarantined splits of the input, and a summary from which an MBOM can be
// signed.
//
// The pipeline is a reader goroutine, N workers running detect.Engine.Scan,
// and an ordered writer that emits results in input order. A window bounds
// the documents (and bytes) in flight, so memory stays bounded whatever the
// size of the input. When the scan has dataset-level detectors
// (detect.DatasetDetector), it runs in two phases: the first scans every
// document and prepares its dataset-detector signatures on the workers
// (Prepare), feeds them to the dataset detectors in input order on the
// writer (Observe) and spools the results to a temporary file; the second
// re-reads the spool, fuses the dataset detectors' findings into each result
// (detect.Engine.Refuse) and writes the outputs.
//
// JSONL records are parsed on the workers (dataset.RawReader); malformed
// records travel through the pipeline and are reported by the writer, in
// input order. With Config.CacheDir, results are cached per document, and a
// rescan of unchanged files replays the earlier scan's outcome without
// reading its records (memo.go).
//
// The package is used by the CLI (sentineldf scan) and is meant to be reused
// by workers that scan shards of uploaded datasets.
package scan

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sentineldf/sentineldf/dataset"
	"github.com/sentineldf/sentineldf/detect"
	"github.com/sentineldf/sentineldf/mbom"
)

// Config says what to scan and how. It holds no open files or writers, so a
// worker can build one from a job description.
type Config struct {
	// Paths are the files and directories to scan.
	Paths []string
	// Files, when set, are the files to scan, in order, instead of Paths
	// (and Include and Exclude, which select among Paths). Each needs Path
	// and Size (for progress); Format and Compression, when both are empty,
	// come from the display name (dataset.DetectFormat). A file's Name, when
	// set, is how the results, malformed reports and the summary name it;
	// Rel (default: the display name's base) is where a split into a
	// directory writes its records.
	Files []dataset.File
	// Include and Exclude are glob patterns that select files under
	// directories (see dataset.Walk).
	Include, Exclude []string
	// Dataset configures the readers.
	Dataset dataset.Options
	// Engine configures the detection engine.
	Engine detect.Options
	// DatasetDetectors are detectors that judge documents against the whole
	// dataset. They are stateful: use fresh ones for every Run. Any
	// Engine.Extra detector that implements detect.DatasetDetector is used
	// as one too.
	DatasetDetectors []detect.DatasetDetector
	// Workers is the number of goroutines scanning documents; 0 means
	// runtime.NumCPU().
	Workers int
	// Window bounds the documents in flight between the reader and the
	// ordered writer; 0 means 64 per worker.
	Window int
	// WindowBytes bounds the bytes of the documents in flight (at least one
	// document is always let through); 0 means 64 MiB.
	WindowBytes int64
	// Strict makes the first malformed record fail the scan.
	Strict bool
	// CacheDir, when set, caches results there (see Cache), and the
	// outcome of the whole scan, which a later scan of the same files with
	// the same configuration and executable replays (see CacheIdentifier).
	CacheDir string
	// ResultCache, when set (and CacheDir is not), caches results in it.
	ResultCache ResultCache
	// TempDir is where the two-phase spool goes; "" means os.TempDir().
	TempDir string
	// MalformedSamples is how many malformed records the summary lists;
	// 0 means 20.
	MalformedSamples int
	// TopRules is how many rules the summary lists; 0 means 10.
	TopRules int
	// Prior, when set, supplies results the engine computed earlier for the
	// documents, in input order (see Prior): a document whose prior result
	// is for its exact text takes it instead of being scanned again.
	Prior Prior
}

// Prior supplies engine results computed earlier for a scan's documents, for
// example by workers that scanned the shards of a dataset before the
// dataset-level pass. Next is called once for every record read without
// error, in input order, from one goroutine. A prior result is used only
// when its SHA256 is the SHA-256 of the record's scanned text
// (detect.ScannedText); otherwise the document is scanned and the mismatch
// counted (Summary.PriorMismatches), so results never depend on the prior
// being right. The dataset detectors' Prepare still runs on every document.
type Prior interface {
	// Next returns the prior result of the next record, or ok false when
	// there is none (the document is scanned). An error fails the scan.
	Next() (r *detect.Result, ok bool, err error)
}

// Output says where a scan's results go. Every field is optional.
type Output struct {
	// Results receives one JSON object per document, in input order (see
	// Line).
	Results io.Writer
	// ResultsName names the results in the summary (and the MBOM).
	ResultsName string
	// CleanOut and QuarantineOut receive the original records of the clean
	// (and elevated) and quarantined documents, in the input's format; "-"
	// is Stdout. See dataset.NewSplit.
	CleanOut, QuarantineOut string
	// Stdout is where a split named "-" goes.
	Stdout io.Writer
	// OnMalformed is called, in input order, for every malformed record.
	OnMalformed func(*dataset.MalformedError)
	// OnProgress is called at most every ProgressInterval from its own
	// goroutine while the scan runs, and once at the end.
	OnProgress func(Progress)
	// ProgressInterval defaults to 100ms.
	ProgressInterval time.Duration
	// OnResult, when set, is called for every document in input order once
	// its result is final, with the record's Meta (dataset.Options.KeepFields:
	// labels, groups). An error stops the scan. It lets callers such as
	// `sentineldf eval` pair results with fields that are never scanned
	// without reading the inputs twice.
	OnResult func(line *Line, meta map[string]string) error
}

// Progress is a snapshot of a running scan.
type Progress struct {
	// Documents scanned so far.
	Documents int64
	// BytesRead of the input so far, and TotalBytes, the sum of the input
	// files' sizes (compressed files count their size on disk).
	BytesRead, TotalBytes int64
	// Elapsed since the scan started.
	Elapsed time.Duration
	// Phase is 1 while scanning and 2 while a two-phase scan writes its
	// outputs.
	Phase int
}

// Line is one line of the results file. The field order is the format.
type Line struct {
	ID          string           `json:"id"`
	Source      string           `json:"source"`
	SHA256      string           `json:"sha256"`
	Risk        int              `json:"risk"`
	Score       float64          `json:"score"`
	Band        detect.Band      `json:"band"`
	Quarantined bool             `json:"quarantined"`
	Findings    []detect.Finding `json:"findings"`
}

// job is one record on its way through the pipeline.
type job struct {
	// pos is the record's position among everything the reader sent
	// (malformed records included); the writer restores this order.
	pos int64
	// seq is the document's 0-based position among the well-formed
	// documents, set by the writer just before it emits the job.
	seq int64
	rec *dataset.Record
	// parse says that rec still has to be parsed (on a worker).
	parse bool
	// bad is set when the record is malformed; the writer reports it.
	bad    *dataset.MalformedError
	doc    detect.Document
	res    detect.Result
	cached bool
	// looked says the batch already looked the document up in a
	// BatchResultCache under key (cached says whether it hit); put says
	// that its result is to be stored there after the batch.
	looked, put bool
	key         [32]byte
	weight      int64
	// prior is the result Config.Prior supplied for the document, if any;
	// priorOK caches whether it fits (priorChecked: once computed).
	prior                 *detect.Result
	priorOK, priorChecked bool
	// prep is what each dataset detector's Prepare returned for the
	// document, in the order of scanner.dds.
	prep []any
}

// A batch is a run of jobs with consecutive positions. Jobs travel between
// the pipeline's goroutines in batches, which keeps channel operations and
// goroutine wake-ups a small cost next to the documents' own.
type batch []*job

const (
	// maxBatch and maxBatchBytes bound a batch.
	maxBatch      = 16
	maxBatchBytes = 256 << 10
)

// Run scans the datasets of cfg and writes to out. On cancellation it stops
// promptly and returns ctx.Err(). A malformed record is reported through
// out.OnMalformed and counted, or with cfg.Strict is returned as an error
// wrapping *dataset.MalformedError. Errors opening or reading inputs wrap
// ErrInput.
func Run(ctx context.Context, cfg Config, out Output) (*Summary, error) {
	start := time.Now()
	eng, err := detect.New(cfg.Engine)
	if err != nil {
		return nil, &classified{ErrConfig, fmt.Errorf("engine: %w", err)}
	}
	return runEngine(ctx, start, eng, cfg, out)
}

// RunEngine is Run with an engine the caller built (and may reuse across
// scans, e.g. a worker scanning many shards); cfg.Engine is not used to build
// one, but dataset detectors among cfg.Engine.Extra still are.
func RunEngine(ctx context.Context, eng *detect.Engine, cfg Config, out Output) (*Summary, error) {
	return runEngine(ctx, time.Now(), eng, cfg, out)
}

func runEngine(ctx context.Context, start time.Time, eng *detect.Engine, cfg Config, out Output) (*Summary, error) {
	files, err := inputFiles(cfg)
	if err != nil {
		return nil, inputErr(err)
	}
	if len(files) == 0 {
		return nil, inputErr(errors.New("no input files"))
	}
	if cfg.Dataset.Format != "" {
		for i := range files {
			files[i].Format = cfg.Dataset.Format
		}
	}
	s := &scanner{cfg: cfg, out: out, eng: eng, files: files, start: start}
	s.workers = cmp.Or(cfg.Workers, runtime.NumCPU())
	s.dds = slices.Clone(cfg.DatasetDetectors)
	for _, d := range cfg.Engine.Extra {
		if dd, ok := d.(detect.DatasetDetector); ok {
			s.dds = append(s.dds, dd)
		}
	}
	for _, f := range files {
		s.total += f.Size
	}
	s.sum = newSummary(eng.Info(), files, cfg)
	s.sum.Results.Name = out.ResultsName
	if cfg.CacheDir != "" {
		// The cache itself is opened by run, once it knows that the scan
		// is no replay of a memo (which does not need it).
		if cfg.Prior == nil && out.OnResult == nil {
			s.memoHint, s.memoOK = memoHint(eng, cfg, s.dds, files)
		}
	} else if cfg.ResultCache != nil {
		s.cache = cfg.ResultCache
	}
	err = s.run(ctx)
	if s.dirCache != nil {
		if cerr := s.dirCache.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return nil, err
	}
	s.sum.finish(time.Since(start), s.cacheHits.Load())
	s.sum.PriorResults, s.sum.PriorMismatches = s.priorUsed.Load(), s.priorMismatch.Load()
	return s.sum, nil
}

// inputFiles returns cfg.Files, or walks cfg.Paths when there are none.
func inputFiles(cfg Config) ([]dataset.File, error) {
	if len(cfg.Files) == 0 {
		return dataset.Walk(cfg.Paths, cfg.Include, cfg.Exclude)
	}
	files := slices.Clone(cfg.Files)
	for i, f := range files {
		if f.Path == "" {
			return nil, fmt.Errorf("input %d: no path", i)
		}
		if f.Rel == "" {
			files[i].Rel = filepath.ToSlash(filepath.Base(f.DisplayName()))
		}
		if f.Format == "" && f.Compression == "" {
			files[i].Format, files[i].Compression = dataset.DetectFormat(f.DisplayName())
		}
	}
	return files, nil
}

// Errors that classify a failed Run (test with errors.Is).
var (
	// ErrInput marks errors in the input: missing or unreadable files,
	// unreadable formats, strict-mode malformed records.
	ErrInput = errors.New("input error")
	// ErrConfig marks errors in the configuration (engine options, rules).
	ErrConfig = errors.New("config error")
)

// classified is an error marked as one of ErrInput or ErrConfig without
// changing its message.
type classified struct{ kind, err error }

func (e *classified) Error() string   { return e.err.Error() }
func (e *classified) Unwrap() []error { return []error{e.kind, e.err} }

func inputErr(err error) error { return &classified{ErrInput, err} }

type scanner struct {
	cfg      Config
	out      Output
	eng      *detect.Engine
	files    []dataset.File
	dds      []detect.DatasetDetector
	cache    ResultCache
	dirCache *Cache
	workers  int
	start    time.Time
	total    int64
	sum      *Summary

	docs      atomic.Int64
	bytesRead atomic.Int64
	phase     atomic.Int32
	cacheHits atomic.Int64

	priorUsed, priorMismatch atomic.Int64

	// memoHint names the memo of this scan when it can have one (see
	// memo.go), and memo writes it while the scan runs.
	memoHint [32]byte
	memoOK   bool
	memo     *memoWriter
	memoIDs  []fileID
	memoIDok []bool
}

func (s *scanner) progress() Progress {
	return Progress{
		Documents:  s.docs.Load(),
		BytesRead:  s.bytesRead.Load(),
		TotalBytes: s.total,
		Elapsed:    time.Since(s.start),
		Phase:      int(s.phase.Load()),
	}
}

func (s *scanner) run(ctx context.Context) error {
	s.phase.Store(1)
	if s.out.OnProgress != nil {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			t := time.NewTicker(cmp.Or(s.out.ProgressInterval, 100*time.Millisecond))
			defer t.Stop()
			for {
				select {
				case <-t.C:
					s.out.OnProgress(s.progress())
				case <-stop:
					return
				}
			}
		}()
		defer func() {
			close(stop)
			<-done
			s.out.OnProgress(s.progress())
		}()
	}
	em, err := s.newEmitter()
	if err != nil {
		return err
	}
	defer em.abort()
	em.onResult = s.out.OnResult
	if s.memoOK {
		if done, err := s.replayMemo(ctx, em); done || err != nil {
			if err != nil {
				return err
			}
			return em.close(s.sum)
		}
	}
	if s.cfg.CacheDir != "" {
		if s.dirCache, err = OpenCache(s.cfg.CacheDir); err != nil {
			return err
		}
		s.cache = s.dirCache
	}
	if s.memoOK {
		// A memo that cannot be written only costs the next scan speed.
		if mw, err := newMemoWriter(s.cfg.CacheDir, s.memoHint); err == nil {
			s.memo, em.memo = mw, mw
			defer mw.discard()
			// The inputs' stat identities before they are read; the memo
			// keeps those that are the same after the scan (closeAndMemo).
			s.memoIDs = make([]fileID, len(s.files))
			s.memoIDok = make([]bool, len(s.files))
			for i, f := range s.files {
				s.memoIDs[i], s.memoIDok[i] = statID(f.Path)
			}
		}
	}
	if len(s.dds) == 0 {
		if err := s.pipeline(ctx, em.emitJob); err != nil {
			return err
		}
		return s.closeAndMemo(em)
	}
	sp, err := newSpool(s.cfg.TempDir)
	if err != nil {
		return err
	}
	defer sp.remove()
	err = s.pipeline(ctx, func(j *job) error {
		for k, dd := range s.dds {
			dd.Observe(j.seq, j.prep[k])
		}
		j.prep = nil
		if em.onResult != nil {
			// Meta is small (labels) and only kept when a caller asks.
			em.metas = append(em.metas, j.rec.Meta)
		}
		return sp.write(j.rec.ID, j.rec.Source.String(), &j.res)
	})
	if err != nil {
		return err
	}
	extra := map[int64][]detect.Finding{}
	for _, dd := range s.dds {
		for seq, fs := range dd.Findings() {
			extra[seq] = append(extra[seq], fs...)
		}
	}
	s.phase.Store(2)
	if err := s.replay(ctx, sp, extra, em); err != nil {
		return err
	}
	return s.closeAndMemo(em)
}

// closeAndMemo closes the outputs of a successful scan and commits its memo.
func (s *scanner) closeAndMemo(em *emitter) error {
	if err := em.close(s.sum); err != nil {
		return err
	}
	if s.memo == nil {
		return nil
	}
	inputs := make([]memoInput, len(s.sum.Inputs))
	for i, in := range s.sum.Inputs {
		inputs[i].size = in.Size
		if _, err := hex.Decode(inputs[i].sum[:], []byte(in.SHA256)); err != nil {
			return nil
		}
		if i < len(s.memoIDok) && s.memoIDok[i] {
			if id, ok := statID(s.files[i].Path); ok && id == s.memoIDs[i] && id.size == in.Size {
				inputs[i].id, inputs[i].hasID = id, true
			}
		}
	}
	// Failing to write the memo only costs the next scan speed.
	_ = s.memo.commit(inputs)
	return nil
}

// replayMemo replays the memo of an earlier scan of the same inputs, if
// there is one and every input still has the size and SHA-256 it was made
// from; done is false when there was none to replay (nothing was emitted).
func (s *scanner) replayMemo(ctx context.Context, em *emitter) (done bool, err error) {
	m, ok := openMemo(s.cfg.CacheDir, s.memoHint)
	if !ok {
		return false, nil
	}
	defer m.close()
	if len(m.inputs) != len(s.files) {
		return false, nil
	}
	// Hashing the inputs is most of a replay's time and must finish before
	// anything is emitted. Meanwhile, when only results are written, the
	// first entries of the memo are decoded and encoded ahead, into memory
	// (at most preBudget bytes), and written once the inputs check out.
	hashed := make(chan []memoInput, 1)
	go func() {
		ins := make([]memoInput, len(s.files))
		for i, f := range s.files {
			want := m.inputs[i]
			if id, ok := statID(f.Path); ok && want.hasID && id.trusted(want.id, m.written) {
				ins[i] = want // unchanged since the memo hashed it
				continue
			}
			in, err := hashInput(f.Path)
			if err != nil || in.size != want.size || in.sum != want.sum {
				hashed <- nil
				return
			}
			ins[i] = in
		}
		hashed <- ins
	}()
	var pre *preEncoded
	if em.enc != nil && !em.needRecords() && em.onResult == nil && em.memo == nil {
		pre = preEncode(m, preBudget)
	}
	ins := <-hashed
	if ins == nil {
		s.bytesRead.Store(0)
		return false, nil
	}
	for i, in := range ins {
		s.bytesRead.Add(in.size)
		s.sum.Inputs[i].Size = in.size
		s.sum.Inputs[i].SHA256 = hex.EncodeToString(in.sum[:])
	}
	if pre != nil {
		if pre.err != nil {
			return true, fmt.Errorf("cache: %w", pre.err)
		}
		for k := range pre.items {
			it := &pre.items[k]
			if it.me != nil {
				if err := s.reportMalformed(it.me); err != nil {
					return true, err
				}
				continue
			}
			if err := em.emitEncoded(it.id, &it.res, pre.buf[it.start:it.end]); err != nil {
				return true, err
			}
			s.docs.Add(1)
			s.cacheHits.Add(1)
		}
		if pre.done {
			return true, nil
		}
	}
	var recs *recordIter
	if em.needRecords() {
		recs = &recordIter{files: s.files, opts: s.cfg.Dataset, sum: s.sum}
		defer recs.close()
	}
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return true, err
			}
		}
		id, src, res, me, err := m.next()
		if err == io.EOF {
			if recs != nil {
				if err := recs.finish(); err != nil {
					return true, err
				}
			}
			return true, nil
		}
		if err != nil {
			return true, fmt.Errorf("cache: %w", err)
		}
		if me != nil {
			if err := s.reportMalformed(me); err != nil {
				return true, err
			}
			continue
		}
		var rec *dataset.Record
		if recs != nil {
			if rec, err = recs.next(); err != nil {
				return true, err
			}
			if rec.Source.String() != src || rec.ID != id {
				return true, inputErr(fmt.Errorf("%s changed during the scan", rec.Source.Path))
			}
		}
		if err := em.emit(id, src, &res, rec, nil); err != nil {
			return true, err
		}
		s.docs.Add(1)
		s.cacheHits.Add(1)
	}
}

// reportMalformed counts and reports a malformed record (or fails a strict
// scan); a replayed memo reports its malformed records the same way.
func (s *scanner) reportMalformed(me *dataset.MalformedError) error {
	if s.cfg.Strict {
		return inputErr(me)
	}
	s.sum.addMalformed(me)
	if s.out.OnMalformed != nil {
		s.out.OnMalformed(me)
	}
	return nil
}

// pipeline reads every record, scans it on the workers, and calls emit for
// each document in input order from a single goroutine, which also reports
// the malformed records in their place.
func (s *scanner) pipeline(parent context.Context, emit func(*job) error) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	win := newWindow(cmp.Or(s.cfg.Window, 64*s.workers), cmp.Or(s.cfg.WindowBytes, 64<<20))
	jobs := make(chan batch, s.workers*4)
	results := make(chan batch, s.workers*4)
	var readerN atomic.Int64
	readerN.Store(-1)

	var wg, workers sync.WaitGroup
	wg.Go(func() {
		defer close(jobs)
		n, err := s.read(ctx, win, jobs)
		if err != nil {
			cancel(err)
			return
		}
		readerN.Store(n)
	})
	for range s.workers {
		workers.Go(func() {
			var parser *dataset.Parser
			for {
				var b batch
				var ok bool
				select {
				case b, ok = <-jobs:
				case <-ctx.Done():
					return
				}
				if !ok {
					return
				}
				if parser == nil && slices.ContainsFunc(b, func(j *job) bool { return j.parse }) {
					p, err := dataset.NewParser(s.cfg.Dataset)
					if err != nil {
						cancel(inputErr(err))
						return
					}
					parser = p
				}
				if err := s.workBatch(parser, b); err != nil {
					cancel(err)
					return
				}
				select {
				case results <- b:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	wg.Go(func() {
		workers.Wait()
		close(results)
	})
	var werr error
	wg.Go(func() {
		pending := map[int64]batch{}
		var next, seq int64
		for {
			var b batch
			var ok bool
			select {
			case b, ok = <-results:
			case <-ctx.Done():
				return
			}
			if !ok {
				if n := readerN.Load(); n >= 0 && n != next {
					werr = fmt.Errorf("internal error: %d records read, %d written", n, next)
					cancel(werr)
				}
				return
			}
			pending[b[0].pos] = b
			for {
				b, ok := pending[next]
				if !ok {
					break
				}
				delete(pending, next)
				for _, j := range b {
					if err := s.finishJob(j, &seq, emit); err != nil {
						werr = err
						cancel(err)
						return
					}
					win.release(j.weight)
				}
				next += int64(len(b))
			}
		}
	})
	wg.Wait()
	if err := parent.Err(); err != nil {
		return err
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return werr
}

// work does a worker's part of a job: parsing the record when the reader
// left it unparsed, then scanning it.
func (s *scanner) work(parser *dataset.Parser, j *job) error {
	if err := s.parse(parser, j); err != nil || j.bad != nil {
		return err
	}
	j.doc = toDocument(j.rec)
	return s.scanDoc(j)
}

// parse parses j's record if that is still to do, setting j.bad when it is
// malformed; only an input error is returned.
func (s *scanner) parse(parser *dataset.Parser, j *job) error {
	if j.parse {
		j.parse = false
		if err := parser.Parse(j.rec); err != nil {
			var me *dataset.MalformedError
			if !errors.As(err, &me) {
				return inputErr(err)
			}
			j.bad = me
			return nil
		}
	}
	return nil
}

// workBatch is work for every job of a batch. When the cache takes
// batches, the batch's documents are looked up in one call before any is
// scanned, and the new results stored in one call after.
func (s *scanner) workBatch(parser *dataset.Parser, b batch) error {
	bc, ok := s.cache.(BatchResultCache)
	if !ok || len(b) < 2 {
		for _, j := range b {
			if err := s.work(parser, j); err != nil {
				return err
			}
		}
		return nil
	}
	var keys [][32]byte
	var look []*job
	for _, j := range b {
		if err := s.parse(parser, j); err != nil {
			return err
		}
		if j.bad != nil {
			continue
		}
		j.doc = toDocument(j.rec)
		if j.priorFits() {
			continue // scanDoc takes the prior; no lookup
		}
		j.key, j.looked = s.eng.CacheKey(j.doc), true
		keys = append(keys, j.key)
		look = append(look, j)
	}
	if len(keys) > 0 {
		res, hit := bc.GetMany(keys)
		for i, j := range look {
			if hit[i] {
				j.res, j.cached = res[i], true
			}
		}
	}
	for _, j := range b {
		if j.bad != nil {
			continue
		}
		if err := s.scanDoc(j); err != nil {
			return err
		}
	}
	keys = keys[:0]
	var rs []*detect.Result
	for _, j := range look {
		if j.put {
			keys = append(keys, j.key)
			rs = append(rs, &j.res)
			j.put = false
		}
	}
	if len(keys) > 0 {
		// A cache that cannot be written only costs speed.
		_ = bc.PutMany(keys, rs)
	}
	return nil
}

// finishJob is the writer's part of a job, in input order: a malformed
// record is counted and reported (or fails a strict scan); a document gets
// its seq and is emitted.
func (s *scanner) finishJob(j *job, seq *int64, emit func(*job) error) error {
	if me := j.bad; me != nil {
		if s.memo != nil && !s.cfg.Strict {
			s.memo.malformed(me)
		}
		return s.reportMalformed(me)
	}
	j.seq = *seq
	*seq++
	if err := emit(j); err != nil {
		return err
	}
	s.docs.Add(1)
	return nil
}

// read opens every input in turn and feeds its records to jobs in batches,
// returning how many records (malformed ones included) it sent. JSONL
// records are sent unparsed, for the workers to parse, unless Config.Prior
// needs to know which records are well-formed as they are read.
func (s *scanner) read(ctx context.Context, win *window, jobs chan<- batch) (int64, error) {
	var pos, done int64
	var b batch
	var bBytes int64
	flush := func() error {
		if len(b) == 0 {
			return nil
		}
		select {
		case jobs <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
		b, bBytes = nil, 0
		return nil
	}
	send := func(j *job) error {
		j.pos = pos
		if !win.tryAcquire(j.weight) {
			// Hand over what is batched before waiting for the writer, which
			// may be waiting for it.
			if err := flush(); err != nil {
				return err
			}
			if err := win.acquire(ctx, j.weight); err != nil {
				return err
			}
		}
		b = append(b, j)
		bBytes += j.weight
		pos++
		if len(b) >= maxBatch || bBytes >= maxBatchBytes {
			return flush()
		}
		return nil
	}
	for i, f := range s.files {
		r, err := dataset.Open(f, s.cfg.Dataset)
		if err != nil {
			return pos, inputErr(err)
		}
		rr, _ := r.(dataset.RawReader)
		if s.cfg.Prior != nil {
			rr = nil
		}
		for {
			if err := ctx.Err(); err != nil {
				r.Close()
				return pos, err
			}
			var rec *dataset.Record
			if rr != nil {
				rec, err = rr.NextRaw()
			} else {
				rec, err = r.Next()
			}
			if err == io.EOF {
				break
			}
			var j *job
			var me *dataset.MalformedError
			switch {
			case errors.As(err, &me):
				j = &job{bad: me, weight: 256}
			case err != nil:
				r.Close()
				return pos, inputErr(err)
			case rr != nil:
				// Decoded texts are never longer than the JSON they come from.
				j = &job{rec: rec, parse: true, weight: 2*int64(len(rec.Raw)) + 256}
			default:
				j = &job{rec: rec, weight: recordWeight(rec)}
				if s.cfg.Prior != nil {
					p, ok, err := s.cfg.Prior.Next()
					if err != nil {
						r.Close()
						return pos, fmt.Errorf("prior results: %w", err)
					}
					if ok {
						j.prior = p
					}
				}
			}
			s.bytesRead.Store(done + r.BytesRead())
			if err := send(j); err != nil {
				r.Close()
				return pos, err
			}
		}
		n := r.BytesRead()
		s.sum.Inputs[i].Size = n
		s.sum.Inputs[i].SHA256 = r.SHA256()
		if err := r.Close(); err != nil {
			return pos, inputErr(err)
		}
		done += f.Size
		s.bytesRead.Store(done)
	}
	if err := flush(); err != nil {
		return pos, err
	}
	return pos, nil
}

func recordWeight(r *dataset.Record) int64 {
	n := int64(len(r.Raw)) + 256
	for _, f := range r.Fields {
		n += int64(len(f.Text))
	}
	return n
}

func toDocument(r *dataset.Record) detect.Document {
	fs := make([]detect.Field, len(r.Fields))
	for i, f := range r.Fields {
		fs[i] = detect.Field(f)
	}
	return detect.Document{ID: r.ID, Fields: fs}
}

// scanDoc scans one document, through the cache when there is one, and
// prepares it for the dataset detectors (their per-document work runs here,
// on the workers; only Observe runs on the ordered writer). A detector that
// panics fails the scan with an error naming the document, rather than
// crashing the process or dropping the document.
func (s *scanner) scanDoc(j *job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error scanning %s: %v", j.rec.Source, p)
		}
	}()
	if j.priorFits() {
		j.res = *j.prior
		s.priorUsed.Add(1)
	} else {
		if j.prior != nil {
			s.priorMismatch.Add(1)
		}
		s.engineScan(j)
	}
	j.prior = nil
	if len(s.dds) > 0 {
		j.prep = make([]any, len(s.dds))
		for k, dd := range s.dds {
			j.prep[k] = dd.Prepare(j.doc, &j.res)
		}
	}
	return nil
}

// priorFits reports whether j has a prior result for its document's exact
// scanned text, hashing the text once per job (workBatch asks before
// scanDoc does).
func (j *job) priorFits() bool {
	if j.prior == nil {
		return false
	}
	if !j.priorChecked {
		j.priorOK, j.priorChecked = priorFits(j.prior, j.doc), true
	}
	return j.priorOK
}

// priorFits reports whether r is a result for doc's exact scanned text.
func priorFits(r *detect.Result, doc detect.Document) bool {
	if len(r.SHA256) != sha256.Size*2 {
		return false
	}
	var want [sha256.Size]byte
	if _, err := hex.Decode(want[:], []byte(r.SHA256)); err != nil {
		return false
	}
	return sha256.Sum256([]byte(detect.ScannedText(doc))) == want
}

// engineScan sets j.res, through the cache when there is one.
func (s *scanner) engineScan(j *job) {
	if s.cache == nil {
		j.res = s.eng.Scan(j.doc)
		return
	}
	if j.looked {
		j.looked = false
		if j.cached {
			s.cacheHits.Add(1)
			return
		}
		j.res = s.eng.Scan(j.doc)
		j.put = true
		return
	}
	key := s.eng.CacheKey(j.doc)
	if r, ok := s.cache.Get(key); ok {
		j.res, j.cached = r, true
		s.cacheHits.Add(1)
		return
	}
	j.res = s.eng.Scan(j.doc)
	// A cache that cannot be written only costs speed; the error disables
	// further writes.
	_ = s.cache.Put(key, &j.res)
}

// replay is phase 2 of a two-phase scan: it re-reads the spool, fuses the
// dataset detectors' findings into each result and emits it, re-reading the
// input records when the splits need them.
func (s *scanner) replay(ctx context.Context, sp *spool, extra map[int64][]detect.Finding, em *emitter) error {
	if err := sp.rewind(); err != nil {
		return err
	}
	var recs *recordIter
	if em.needRecords() {
		recs = &recordIter{files: s.files, opts: s.cfg.Dataset, sum: s.sum}
		defer recs.close()
	}
	s.docs.Store(0)
	for seq := int64(0); ; seq++ {
		if seq%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		id, src, res, err := sp.read()
		if err == io.EOF {
			if recs != nil {
				if err := recs.finish(); err != nil {
					return err
				}
			}
			return nil
		}
		if err != nil {
			return err
		}
		if fs := extra[seq]; len(fs) > 0 {
			s.eng.Refuse(&res, fs)
		}
		var rec *dataset.Record
		if recs != nil {
			if rec, err = recs.next(); err != nil {
				return err
			}
			if rec.Source.String() != src || rec.ID != id {
				return inputErr(fmt.Errorf("%s changed during the scan", rec.Source.Path))
			}
		}
		var meta map[string]string
		if em.metas != nil {
			meta = em.metas[seq]
		}
		if err := em.emit(id, src, &res, rec, meta); err != nil {
			return err
		}
		s.docs.Add(1)
	}
}

// recordIter re-reads the inputs record by record, skipping malformed ones,
// and checks that every file still hashes as it did in phase 1.
type recordIter struct {
	files []dataset.File
	opts  dataset.Options
	sum   *Summary
	i     int
	r     dataset.Reader
}

func (it *recordIter) next() (*dataset.Record, error) {
	for {
		if it.r == nil {
			if it.i >= len(it.files) {
				return nil, inputErr(errors.New("inputs changed during the scan (fewer records)"))
			}
			r, err := dataset.Open(it.files[it.i], it.opts)
			if err != nil {
				return nil, inputErr(err)
			}
			it.r = r
		}
		rec, err := it.r.Next()
		var me *dataset.MalformedError
		switch {
		case err == nil:
			return rec, nil
		case errors.As(err, &me):
			continue
		case err == io.EOF:
			if err := it.closeFile(); err != nil {
				return nil, err
			}
		default:
			return nil, inputErr(err)
		}
	}
}

func (it *recordIter) closeFile() error {
	sum := it.r.SHA256()
	err := it.r.Close()
	it.r = nil
	f := it.files[it.i]
	it.i++
	if err != nil {
		return inputErr(err)
	}
	if sum != it.sum.Inputs[it.i-1].SHA256 {
		return inputErr(fmt.Errorf("%s changed during the scan", f.DisplayName()))
	}
	return nil
}

// finish drains what is left of the inputs, which must hold no more records.
func (it *recordIter) finish() error {
	for it.i < len(it.files) {
		if it.r == nil {
			r, err := dataset.Open(it.files[it.i], it.opts)
			if err != nil {
				return inputErr(err)
			}
			it.r = r
		}
		_, err := it.r.Next()
		var me *dataset.MalformedError
		switch {
		case err == nil:
			return inputErr(errors.New("inputs changed during the scan (more records)"))
		case errors.As(err, &me):
		case err == io.EOF:
			if err := it.closeFile(); err != nil {
				return err
			}
		default:
			return inputErr(err)
		}
	}
	return nil
}

func (it *recordIter) close() {
	if it.r != nil {
		it.r.Close()
	}
}

// window bounds the documents and bytes in flight. It has one acquirer (the
// reader) and one releaser (the writer).
type window struct {
	mu             sync.Mutex
	n, bytes       int64
	maxN, maxBytes int64
	wake           chan struct{}
}

func newWindow(n int, bytes int64) *window {
	return &window{maxN: int64(max(n, 1)), maxBytes: max(bytes, 1), wake: make(chan struct{}, 1)}
}

// tryAcquire takes room for weight if there is some, without waiting.
func (w *window) tryAcquire(weight int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == 0 || (w.n < w.maxN && w.bytes+weight <= w.maxBytes) {
		w.n++
		w.bytes += weight
		return true
	}
	return false
}

func (w *window) acquire(ctx context.Context, weight int64) error {
	for {
		w.mu.Lock()
		if w.n == 0 || (w.n < w.maxN && w.bytes+weight <= w.maxBytes) {
			w.n++
			w.bytes += weight
			w.mu.Unlock()
			return nil
		}
		w.mu.Unlock()
		select {
		case <-w.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (w *window) release(weight int64) {
	w.mu.Lock()
	w.n--
	w.bytes -= weight
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// emitter writes the final form of every result: the results line, the
// record to its split, the Merkle leaf and the summary counts.
type emitter struct {
	results *bufio.Writer
	hash    hash.Hash
	enc     *json.Encoder
	clean   *dataset.Split
	quar    *dataset.Split
	tree    mbom.Tree
	sum     *Summary
	line    Line
	buf     []byte // the encoded line
	// onResult is Output.OnResult; metas holds each document's record Meta
	// between the phases of a two-phase scan when onResult is set.
	onResult func(*Line, map[string]string) error
	metas    []map[string]string
	// memo, when set, records every final result (see memo.go).
	memo *memoWriter
}

func (s *scanner) newEmitter() (*emitter, error) {
	em := &emitter{sum: s.sum}
	if s.out.Results != nil {
		em.hash = sha256.New()
		em.results = bufio.NewWriterSize(io.MultiWriter(s.out.Results, em.hash), 256<<10)
		em.enc = json.NewEncoder(em.results)
		em.enc.SetEscapeHTML(false)
	}
	var err error
	if s.out.CleanOut != "" {
		if em.clean, err = dataset.NewSplit(s.out.CleanOut, s.files, s.out.Stdout); err != nil {
			return nil, fmt.Errorf("clean output: %w", err)
		}
	}
	if s.out.QuarantineOut != "" {
		if em.quar, err = dataset.NewSplit(s.out.QuarantineOut, s.files, s.out.Stdout); err != nil {
			em.abort()
			return nil, fmt.Errorf("quarantine output: %w", err)
		}
	}
	return em, nil
}

func (em *emitter) needRecords() bool { return em.clean != nil || em.quar != nil }

func (em *emitter) emitJob(j *job) error {
	return em.emit(j.rec.ID, j.rec.Source.String(), &j.res, j.rec, j.rec.Meta)
}

func (em *emitter) emit(id, src string, r *detect.Result, rec *dataset.Record, meta map[string]string) error {
	if r.Findings == nil {
		r.Findings = []detect.Finding{}
	}
	if em.memo != nil {
		em.memo.doc(id, src, r)
	}
	if em.enc != nil || em.onResult != nil {
		em.line = NewLine(id, src, r)
	}
	if em.enc != nil {
		b, ok := appendLine(em.buf[:0], &em.line)
		em.buf = b
		if !ok {
			// A score JSON cannot hold: encoding/json reports it.
			if err := em.enc.Encode(&em.line); err != nil {
				return fmt.Errorf("write results: %w", err)
			}
		} else if _, err := em.results.Write(b); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	}
	if em.onResult != nil {
		if err := em.onResult(&em.line, meta); err != nil {
			return err
		}
	}
	split := em.clean
	if r.Quarantined() {
		split = em.quar
	}
	if split != nil && rec != nil {
		if err := split.Write(rec); err != nil {
			return fmt.Errorf("write split: %w", err)
		}
	}
	em.account(id, r)
	return nil
}

// account adds a document's verdict to the Merkle tree and the summary.
func (em *emitter) account(id string, r *detect.Result) {
	em.tree.Add(mbom.Leaf{ID: id, SHA256: r.SHA256, Band: string(r.Band), Risk: r.Risk})
	em.sum.add(r)
}

// emitEncoded is emit for a document whose results line is already
// encoded (line, with its newline), when no split, memo or OnResult is set.
func (em *emitter) emitEncoded(id string, r *detect.Result, line []byte) error {
	if em.results != nil {
		if _, err := em.results.Write(line); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	}
	em.account(id, r)
	return nil
}

// preBudget bounds the results a replay encodes ahead while the inputs are
// being hashed.
var preBudget = 64 << 20 // a variable for tests

// preEncoded is the head of a memo, decoded and with its results lines
// encoded, ready to be emitted once the inputs are verified.
type preEncoded struct {
	items []preItem
	buf   []byte
	// done says the whole memo is here; err is a read error.
	done bool
	err  error
}

type preItem struct {
	id         string
	res        detect.Result
	me         *dataset.MalformedError
	start, end int
}

// preEncode reads memo entries and encodes their results lines as emit
// would, until the memo ends or budget bytes are encoded.
func preEncode(m *memoReader, budget int) *preEncoded {
	p := &preEncoded{}
	var b bytes.Buffer
	jsonEnc := json.NewEncoder(&b)
	jsonEnc.SetEscapeHTML(false)
	for b.Len() < budget {
		id, src, res, me, err := m.next()
		if err == io.EOF {
			p.done = true
			break
		}
		if err != nil {
			p.err = err
			break
		}
		it := preItem{id: id, me: me, start: b.Len()}
		if me == nil {
			if res.Findings == nil {
				res.Findings = []detect.Finding{}
			}
			line := NewLine(id, src, &res)
			if enc, ok := appendLine(b.AvailableBuffer(), &line); ok {
				b.Write(enc)
			} else if err := jsonEnc.Encode(&line); err != nil {
				p.err = err
				break
			}
			it.res = res
		}
		it.end = b.Len()
		p.items = append(p.items, it)
	}
	p.buf = b.Bytes()
	return p
}

// close flushes and closes every output and records the results digest and
// Merkle root in sum.
func (em *emitter) close(sum *Summary) error {
	var errs []error
	if em.results != nil {
		if err := em.results.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("write results: %w", err))
		}
		sum.Results.SHA256 = hex.EncodeToString(em.hash.Sum(nil))
		em.results = nil
	}
	for _, sp := range []**dataset.Split{&em.clean, &em.quar} {
		if *sp != nil {
			if err := (*sp).Close(); err != nil {
				errs = append(errs, fmt.Errorf("write split: %w", err))
			}
			*sp = nil
		}
	}
	sum.Merkle = mbom.Merkle{Algorithm: mbom.MerkleAlgorithm, Root: em.tree.RootHex(), Leaves: em.tree.Len()}
	return errors.Join(errs...)
}

// abort discards the splits when the scan failed. dataset.Split has no way
// to discard yet; until it does, closing it is the best that can be done.
func (em *emitter) abort() {
	for _, sp := range []*dataset.Split{em.clean, em.quar} {
		if sp == nil {
			continue
		}
		if a, ok := any(sp).(interface{ Abort() error }); ok {
			a.Abort()
		} else {
			sp.Close()
		}
	}
	em.clean, em.quar = nil, nil
}
