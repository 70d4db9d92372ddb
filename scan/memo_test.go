package scan

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sentineldf/sentineldf/dataset"
	"github.com/sentineldf/sentineldf/detect"
)

// countingDup is a dupDetector that counts the documents it observes, which
// tells a replayed memo (none) from a scan.
type countingDup struct {
	*dupDetector
	observed int
	identity string
}

func (d *countingDup) CacheIdentity() string { return d.identity }

func (d *countingDup) Observe(seq int64, prep any) {
	d.observed++
	d.dupDetector.Observe(seq, prep)
}

// scanOutcome is everything a scan produced that a replay must reproduce.
type scanOutcome struct {
	results, clean, quar []byte
	malformed            []string
	sum                  *Summary
	observed             int
	err                  error
}

// scanWith scans path with a cache in cacheDir and a counting dataset
// detector (when dd), writing the splits into out.
func scanWith(t *testing.T, path, cacheDir, out string, dd, strict bool, opts dataset.Options) scanOutcome {
	t.Helper()
	return scanWithIdentity(t, path, cacheDir, out, dd, strict, opts, "v1")
}

func scanWithIdentity(t *testing.T, path, cacheDir, out string, dd, strict bool, opts dataset.Options, identity string) scanOutcome {
	t.Helper()
	cfg := Config{Paths: []string{path}, Workers: 3, CacheDir: cacheDir, Strict: strict, Dataset: opts}
	var cd *countingDup
	if dd {
		cd = &countingDup{dupDetector: newDupDetector(), identity: identity}
		cfg.DatasetDetectors = []detect.DatasetDetector{cd}
	}
	var o scanOutcome
	var res bytes.Buffer
	clean, quar := filepath.Join(out, "clean.jsonl"), filepath.Join(out, "quar.jsonl")
	if testNoSplits {
		clean, quar = "", ""
	}
	o.sum, o.err = Run(context.Background(), cfg, Output{Results: &res, CleanOut: clean, QuarantineOut: quar,
		OnMalformed: func(e *dataset.MalformedError) { o.malformed = append(o.malformed, e.Error()) }})
	o.results = res.Bytes()
	o.clean, _ = os.ReadFile(clean)
	o.quar, _ = os.ReadFile(quar)
	if cd != nil {
		o.observed = cd.observed
	}
	return o
}

func memoFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+memoSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMemoReplay scans a dataset twice with a cache: the second scan must
// replay the first's memo (no document observed, every document a cache hit)
// and produce byte-identical results, splits, malformed reports and summary,
// while any change to the data, the memo or the configuration must make it
// scan again.
// testNoSplits makes scanWith write results only: a replay then encodes
// the memo's head while the inputs are being hashed (replayMemo).
var testNoSplits bool

func TestMemoReplay(t *testing.T) {
	defer func(b int, w time.Duration) { preBudget, testNoSplits, racyWindow = b, false, w }(preBudget, racyWindow)
	for _, mode := range []struct {
		name   string
		splits bool
		budget int
		racy   time.Duration
	}{
		{"splits", true, preBudget, time.Hour},
		{"results only", false, preBudget, time.Hour},
		// A head of a few documents, then the rest of the memo as before.
		{"results only, small budget", false, 2000, time.Hour},
		// Inputs' stat identities trusted at once (the files are new): a
		// changed content must still be caught by its change time.
		{"stat identity", true, preBudget, 0},
		{"stat identity, results only", false, preBudget, 0},
	} {
		testNoSplits, preBudget, racyWindow = !mode.splits, mode.budget, mode.racy
		t.Run(mode.name, testMemoReplay)
	}
}

func testMemoReplay(t *testing.T) {
	tests := []struct {
		name string
		dd   bool
		// change runs between the scans; replay says whether the second
		// scan must replay the memo.
		change func(t *testing.T, path, cacheDir string) dataset.Options
		replay bool
	}{
		{"unchanged", false, nil, true},
		{"unchanged, dataset detectors", true, nil, true},
		{"per-document cache gone", false, func(t *testing.T, path, cacheDir string) dataset.Options {
			segs, _ := filepath.Glob(filepath.Join(cacheDir, "*.seg"))
			if len(segs) == 0 {
				t.Fatal("no cache segment")
			}
			for _, s := range segs {
				os.Remove(s)
			}
			return dataset.Options{}
		}, true},
		{"same size and time, other content", true, func(t *testing.T, path, cacheDir string) dataset.Options {
			fi, _ := os.Stat(path)
			b, _ := os.ReadFile(path)
			i := bytes.Index(b, []byte("general"))
			copy(b[i:], "GENERAL")
			os.WriteFile(path, b, 0o644)
			os.Chtimes(path, fi.ModTime(), fi.ModTime())
			return dataset.Options{}
		}, false},
		{"damaged memo", true, func(t *testing.T, path, cacheDir string) dataset.Options {
			m := memoFiles(t, cacheDir)[0]
			b, _ := os.ReadFile(m)
			b[len(b)/2] ^= 1
			os.WriteFile(m, b, 0o600)
			return dataset.Options{}
		}, false},
		{"truncated memo", true, func(t *testing.T, path, cacheDir string) dataset.Options {
			m := memoFiles(t, cacheDir)[0]
			b, _ := os.ReadFile(m)
			os.WriteFile(m, b[:len(b)-40], 0o600)
			return dataset.Options{}
		}, false},
		{"other dataset options", true, func(t *testing.T, path, cacheDir string) dataset.Options {
			return dataset.Options{IDField: "other"}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var b strings.Builder
			b.WriteString(string(mustRead(t, writeMixed(t, dir, 150))))
			b.WriteString("{\"id\":\"x\",\"text\":\n{\"id\":\"y\",\"text\":\"general kenobi\"}\n")
			path := writeFile(t, dir, "data.jsonl", b.String())
			cacheDir := filepath.Join(dir, "cache")
			out1, out2 := filepath.Join(dir, "1"), filepath.Join(dir, "2")
			os.Mkdir(out1, 0o755)
			os.Mkdir(out2, 0o755)

			first := scanWith(t, path, cacheDir, out1, tt.dd, false, dataset.Options{})
			if first.err != nil {
				t.Fatal(first.err)
			}
			if len(memoFiles(t, cacheDir)) != 1 {
				t.Fatalf("memos after the first scan: %v", memoFiles(t, cacheDir))
			}
			var opts dataset.Options
			if tt.change != nil {
				opts = tt.change(t, path, cacheDir)
			}
			// What a scan of the (possibly changed) data gives without any cache.
			want := scanWith(t, path, "", out2, tt.dd, false, opts)
			got := scanWith(t, path, cacheDir, out2, tt.dd, false, opts)
			if got.err != nil {
				t.Fatal(got.err)
			}
			if replayed := got.observed == 0; tt.dd && replayed != tt.replay {
				t.Errorf("replayed = %v (the dataset detector observed %d documents), want %v", replayed, got.observed, tt.replay)
			}
			// With the per-document cache gone, only a replay hits every time.
			if tt.replay && got.sum.CacheHits != got.sum.Documents {
				t.Errorf("replay: %d cache hits of %d documents", got.sum.CacheHits, got.sum.Documents)
			}
			if !bytes.Equal(got.results, want.results) || !bytes.Equal(got.clean, want.clean) || !bytes.Equal(got.quar, want.quar) {
				t.Error("results or splits differ from an uncached scan")
			}
			if !slices.Equal(got.malformed, want.malformed) || len(got.malformed) != 1 {
				t.Errorf("malformed reported %q, want %q", got.malformed, want.malformed)
			}
			if got.sum.Merkle != want.sum.Merkle || !slices.Equal(got.sum.Inputs, want.sum.Inputs) ||
				got.sum.Documents != want.sum.Documents || got.sum.Bands != want.sum.Bands ||
				!slices.Equal(got.sum.TopRules, want.sum.TopRules) || got.sum.Results.SHA256 != want.sum.Results.SHA256 {
				t.Errorf("summary differs from an uncached scan:\n%+v\n%+v", got.sum, want.sum)
			}
			if tt.replay {
				// A strict rescan fails on the malformed record the memo holds,
				// as a strict scan does.
				strict := scanWith(t, path, cacheDir, out2, tt.dd, true, opts)
				var me *dataset.MalformedError
				if !errors.As(strict.err, &me) || !errors.Is(strict.err, ErrInput) || me.Source.Line != 151 {
					t.Errorf("strict replay: err = %v, want the malformed line 151", strict.err)
				}
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPruneMemos keeps the most recent memos and removes stale temporary
// files.
func TestPruneMemos(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	var names []string
	for i := range maxMemos + 3 {
		name := filepath.Join(dir, strings.Repeat(string(rune('a'+i)), 64)+memoSuffix)
		os.WriteFile(name, nil, 0o600)
		os.Chtimes(name, now, now.Add(time.Duration(i)*time.Second))
		names = append(names, name)
	}
	stale, fresh := filepath.Join(dir, "memo-0001.tmp"), filepath.Join(dir, "memo-0002.tmp")
	for _, p := range []string{stale, fresh} {
		os.WriteFile(p, nil, 0o600)
	}
	os.Chtimes(stale, now, now.Add(-2*staleOpen))
	pruneMemos(dir)
	for i, name := range names {
		_, err := os.Stat(name)
		if keep := i >= 3; keep != (err == nil) {
			t.Errorf("memo %d (of %d, oldest first): kept %v, want %v", i, len(names), err == nil, keep)
		}
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("stale temporary file kept")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("fresh temporary file removed")
	}
}

// TestMemoDetectorIdentity checks that a scan is not replayed when a dataset
// detector's identity changed or when one has none.
func TestMemoDetectorIdentity(t *testing.T) {
	dir := t.TempDir()
	path := writeMixed(t, dir, 60)
	cacheDir := filepath.Join(dir, "cache")
	if o := scanWithIdentity(t, path, cacheDir, dir, true, false, dataset.Options{}, "v1"); o.err != nil || o.observed != 60 {
		t.Fatalf("first scan: %v, %d observed", o.err, o.observed)
	}
	if o := scanWithIdentity(t, path, cacheDir, dir, true, false, dataset.Options{}, "v1"); o.err != nil || o.observed != 0 {
		t.Fatalf("same identity: %v, %d observed, want a replay", o.err, o.observed)
	}
	if o := scanWithIdentity(t, path, cacheDir, dir, true, false, dataset.Options{}, "v2"); o.err != nil || o.observed != 60 {
		t.Fatalf("other identity: %v, %d observed, want a scan", o.err, o.observed)
	}
	// A detector without an identity is never replayed, nor memoised.
	plainDir := filepath.Join(dir, "plain")
	for range 2 {
		dd := newDupDetector()
		cfg := Config{Paths: []string{path}, CacheDir: plainDir, DatasetDetectors: []detect.DatasetDetector{dd}}
		if _, err := Run(context.Background(), cfg, Output{}); err != nil {
			t.Fatal(err)
		}
		if dd.last != 59 {
			t.Fatalf("detector without identity observed up to %d, want 59 (a scan)", dd.last)
		}
	}
	if m := memoFiles(t, plainDir); len(m) != 0 {
		t.Errorf("memos %v for a detector without identity", m)
	}
}

// TestMemoStatIdentity checks when a replay reads its inputs again: not
// when their stat identity is unchanged and old enough, always when it is
// too recent (racyWindow) or changed.
func TestMemoStatIdentity(t *testing.T) {
	defer func(w time.Duration, h func(string) (memoInput, error)) { racyWindow, hashInput = w, h }(racyWindow, hashInput)
	var hashed int
	hashInput = func(p string) (memoInput, error) { hashed++; return hashFile(p) }
	dir := t.TempDir()
	path := writeMixed(t, dir, 40)
	cacheDir := filepath.Join(dir, "cache")
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	first := scanWith(t, path, cacheDir, out, true, false, dataset.Options{})
	if first.err != nil {
		t.Fatal(first.err)
	}
	for _, tt := range []struct {
		name   string
		racy   time.Duration
		touch  bool
		hashes int
	}{
		{"recent file: hashed", time.Hour, false, 1},
		{"unchanged: not read", 0, false, 0},
		{"attributes changed: hashed", 0, true, 1},
	} {
		racyWindow, hashed = tt.racy, 0
		if tt.touch {
			// Same content, mode changed: the change time moves, so the
			// identity no longer matches and the file is hashed (and the
			// memo, whose content it still is, replayed).
			if err := os.Chmod(path, 0o640); err != nil {
				t.Fatal(err)
			}
		}
		got := scanWith(t, path, cacheDir, out, true, false, dataset.Options{})
		if got.err != nil || got.observed != 0 {
			t.Fatalf("%s: err %v, observed %d: not a replay", tt.name, got.err, got.observed)
		}
		if hashed != tt.hashes {
			t.Errorf("%s: hashed the input %d times, want %d", tt.name, hashed, tt.hashes)
		}
		if !bytes.Equal(got.results, first.results) || !slices.Equal(got.sum.Inputs, first.sum.Inputs) {
			t.Errorf("%s: replay differs from the first scan", tt.name)
		}
	}
}
