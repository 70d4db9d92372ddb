package worker

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/corpus"
	"github.com/sentineldf/sentineldf/dataset"
	"github.com/sentineldf/sentineldf/detect"
	"github.com/sentineldf/sentineldf/scan"
	"github.com/sentineldf/sentineldf/telemetry"
)

const (
	testOrg  = "org_a"
	testScan = "scan_1"
)

var defaultEngine = sync.OnceValues(func() (*detect.Engine, error) { return detect.New(detect.Options{}) })

func testEngine(t testing.TB) *detect.Engine {
	t.Helper()
	e, err := defaultEngine()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// example reads a file of the repository's examples/.
func example(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// input is an uploaded file: its upload name and contents.
type input struct {
	name string
	data []byte
}

type harness struct {
	t       *testing.T
	store   *fakeStore
	blobs   *memBlobs
	w       *Worker
	metrics *telemetry.Metrics
	inputs  []input
	logs    bytes.Buffer
}

// newHarness uploads inputs as the files of a queued scan and builds a
// worker over fakes; mod adjusts the worker's configuration.
func newHarness(t *testing.T, inputs []input, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, store: newFakeStore(), blobs: newMemBlobs(), metrics: telemetry.NewMetrics(prometheus.NewRegistry()), inputs: inputs}
	sc := &sentineldf.Scan{ID: testScan, OrgID: testOrg, State: sentineldf.StateQueued, CreatedAt: time.Unix(1700000000, 0).UTC()}
	for i, in := range inputs {
		sc.Files = append(sc.Files, sentineldf.ScanFile{Index: i, Name: in.name, Size: int64(len(in.data)), Uploaded: true})
		h.blobs.set(sentineldf.InputKey(testOrg, testScan, i, in.name), in.data)
	}
	h.store.add(sc)
	cfg := Config{
		Store: h.store, Blobs: h.blobs, Engine: testEngine(t), Secret: []byte("server secret"),
		Metrics: h.metrics, ScanWorkers: 2, TempDir: t.TempDir(), Version: "test",
		Logger: telemetry.NewLogger(&h.logs, slog.LevelDebug, "worker-test"),
	}
	if mod != nil {
		mod(&cfg)
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.w = w
	return h
}

func job[T river.JobArgs](args T, attempt int) *river.Job[T] {
	return &river.Job[T]{JobRow: &rivertype.JobRow{ID: 1, Attempt: attempt, MaxAttempts: sentineldf.MaxJobAttempts}, Args: args}
}

func (h *harness) plan(ctx context.Context) error {
	return (&planWorker{w: h.w}).Work(ctx, job(sentineldf.PlanJob{OrgID: testOrg, ScanID: testScan}, 1))
}

func (h *harness) shard(ctx context.Context, i, attempt int) error {
	return (&shardWorker{w: h.w}).Work(ctx, job(sentineldf.ShardJob{OrgID: testOrg, ScanID: testScan, Shard: i}, attempt))
}

func (h *harness) finalize(ctx context.Context) error {
	return (&finalizeWorker{w: h.w}).Work(ctx, job(sentineldf.FinalizeJob{OrgID: testOrg, ScanID: testScan}, 1))
}

func (h *harness) callback(ctx context.Context) error {
	return (&callbackWorker{w: h.w}).Work(ctx, job(sentineldf.CallbackJob{OrgID: testOrg, ScanID: testScan}, 1))
}

// run works the enqueued jobs until none is left, stopping before any
// FinalizeJob when stopAtFinalize is set.
func (h *harness) run(stopAtFinalize bool) {
	h.t.Helper()
	ctx := context.Background()
	for {
		jobs := h.store.popJobs()
		if len(jobs) == 0 {
			return
		}
		for _, j := range jobs {
			var err error
			switch j := j.(type) {
			case sentineldf.ShardJob:
				err = h.shard(ctx, j.Shard, 1)
			case sentineldf.FinalizeJob:
				if stopAtFinalize {
					h.store.mu.Lock()
					h.store.jobs = append(h.store.jobs, j)
					h.store.mu.Unlock()
					return
				}
				err = h.finalize(ctx)
			case sentineldf.CallbackJob:
				continue
			}
			if err != nil {
				h.t.Fatalf("%T: %v", j, err)
			}
		}
	}
}

// runAll plans the scan and runs all its jobs.
func (h *harness) runAll() {
	h.t.Helper()
	if err := h.plan(context.Background()); err != nil {
		h.t.Fatalf("plan: %v", err)
	}
	h.run(false)
}

func (h *harness) result(name string) []byte {
	h.t.Helper()
	b, ok := h.blobs.object(sentineldf.ResultKey(testOrg, testScan, name))
	if !ok {
		h.t.Fatalf("no result object %s", name)
	}
	return b
}

// logRecord returns the last log record with message msg.
func (h *harness) logRecord(msg string) map[string]any {
	h.t.Helper()
	var found map[string]any
	for line := range strings.Lines(h.logs.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			h.t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == msg {
			found = m
		}
	}
	if found == nil {
		h.t.Fatalf("no log record %q", msg)
	}
	return found
}

func (h *harness) shards() []sentineldf.Shard {
	h.t.Helper()
	shs, err := h.store.Shards(context.Background(), testOrg, testScan)
	if err != nil {
		h.t.Fatal(err)
	}
	return shs
}

// cli is what `sentineldf scan` with its default configuration writes for
// the inputs laid out under their upload names.
type cli struct {
	results   []byte
	sum       *scan.Summary
	splits    [2]map[string][]byte // clean, quarantine: by upload name
	malformed []byte
}

func cliScan(t *testing.T, inputs []input) cli {
	t.Helper()
	dir, out := t.TempDir(), t.TempDir()
	var names []string
	for _, in := range inputs {
		p := filepath.Join(dir, filepath.FromSlash(in.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, in.data, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, in.name)
	}
	t.Chdir(dir)
	var res, mal bytes.Buffer
	menc := json.NewEncoder(&mal)
	menc.SetEscapeHTML(false)
	cfg := scan.Config{Paths: names, DatasetDetectors: corpus.Default(corpus.Options{})}
	sum, err := scan.RunEngine(context.Background(), testEngine(t), cfg, scan.Output{
		Results: &res, ResultsName: sentineldf.ResultsObject,
		CleanOut: filepath.Join(out, "clean") + "/", QuarantineOut: filepath.Join(out, "quarantine") + "/",
		OnMalformed: func(e *dataset.MalformedError) {
			menc.Encode(scan.Malformed{Source: e.Source.String(), Reason: e.Reason})
		},
	})
	if err != nil {
		t.Fatalf("CLI scan: %v", err)
	}
	c := cli{results: res.Bytes(), sum: sum, malformed: mal.Bytes()}
	for i, side := range []string{"clean", "quarantine"} {
		c.splits[i] = map[string][]byte{}
		for _, in := range inputs {
			// The CLI writes a file argument's split under its base name.
			b, err := os.ReadFile(filepath.Join(out, side, path.Base(in.name)))
			if err == nil {
				c.splits[i][in.name] = b
			}
		}
	}
	return c
}

// untar returns a tar archive's entries by name, in order.
func untar(t *testing.T, b []byte) (map[string][]byte, []string) {
	t.Helper()
	m := map[string][]byte{}
	var order []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return m, order
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		m[hdr.Name] = data
		order = append(order, hdr.Name)
	}
}

// withMalformed is instructions.jsonl with a malformed line, a blank line
// and a CRLF line ending among its records.
func withMalformed(t testing.TB) []byte {
	ls := strings.SplitAfter(string(example(t, "instructions.jsonl")), "\n")
	ls[40] = "{\"text\": \"unterminated\n"
	ls[41] = "\n"
	ls[60] = strings.TrimSuffix(ls[60], "\n") + "\r\n"
	return []byte(strings.Join(ls, ""))
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFinalizeMatchesCLI is the data plane's contract: an async scan's
// objects are byte-identical to a CLI scan of the same files under the
// same names, however the files were sharded.
func TestFinalizeMatchesCLI(t *testing.T) {
	several := []input{
		{"data/train.jsonl", withMalformed(t)},
		{"prompts.jsonl", example(t, "prompts.jsonl")},
		{"docs/documents.csv", example(t, "documents.csv")},
		{"notes.md", example(t, "notes.md")},
		{"more/prompts2.jsonl.gz", gz(t, example(t, "prompts.jsonl"))},
	}
	tests := []struct {
		name       string
		inputs     []input
		shardBytes int64
		minShards  int
	}{
		{"one file", []input{{"data/train.jsonl", example(t, "instructions.jsonl")}}, 0, 1},
		{"one file sharded", []input{{"data/train.jsonl", withMalformed(t)}}, 3000, 20},
		{"one csv", []input{{"documents.csv", example(t, "documents.csv")}}, 100, 1},
		{"several files", several, 0, len(several)},
		{"several files sharded", several, 2048, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := cliScan(t, tt.inputs)
			h := newHarness(t, tt.inputs, func(c *Config) { c.ShardBytes = tt.shardBytes; c.Cache = &memCache{} })
			h.runAll()
			if n := len(h.shards()); n < tt.minShards {
				t.Errorf("%d shards, want at least %d", n, tt.minShards)
			}
			if got := h.result(sentineldf.ResultsObject); !bytes.Equal(got, want.results) {
				t.Errorf("results.jsonl differs from the CLI's (%d bytes vs %d)\n%s", len(got), len(want.results), firstDiff(got, want.results))
			}
			if got := h.result(sentineldf.MalformedObject); !bytes.Equal(got, want.malformed) {
				t.Errorf("malformed.jsonl = %q, want %q", got, want.malformed)
			}
			checkSummary(t, h.result(sentineldf.SummaryObject), want.sum)
			for i, name := range []string{sentineldf.CleanObject, sentineldf.QuarantineObject} {
				got := h.result(name)
				if len(tt.inputs) == 1 {
					if w := want.splits[i][tt.inputs[0].name]; !bytes.Equal(got, w) {
						t.Errorf("%s object differs from the CLI's split (%d bytes vs %d)", name, len(got), len(w))
					}
					continue
				}
				entries, order := untar(t, got)
				if !reflect.DeepEqual(entries, want.splits[i]) {
					t.Errorf("%s archive entries %q differ from the CLI's splits", name, order)
				}
				var wantOrder []string
				for _, in := range tt.inputs {
					if _, ok := want.splits[i][in.name]; ok {
						wantOrder = append(wantOrder, in.name)
					}
				}
				if !reflect.DeepEqual(order, wantOrder) {
					t.Errorf("%s archive order %q, want %q", name, order, wantOrder)
				}
			}
			sc := h.store.get(testOrg, testScan)
			wantCounts := sentineldf.Counts{Clean: want.sum.Bands.Clean, Elevated: want.sum.Bands.Elevated, Quarantine: want.sum.Bands.Quarantine}
			if sc.State != sentineldf.StateSucceeded || sc.Counts != wantCounts {
				t.Errorf("scan %s with %+v, want succeeded with %+v", sc.State, sc.Counts, wantCounts)
			}
			var docs, size, total int64
			for _, u := range h.store.usage {
				docs += u.Docs
				size += u.Bytes
			}
			for _, in := range tt.inputs {
				total += int64(len(in.data))
			}
			if docs != want.sum.Documents || size != total {
				t.Errorf("usage %d documents, %d bytes; want %d, %d", docs, size, want.sum.Documents, total)
			}
			if left := h.blobs.keys(sentineldf.ScanPrefix(testOrg, testScan) + "shards/"); len(left) != 0 {
				t.Errorf("shard results left behind: %q", left)
			}
			if n := testutil.ToFloat64(h.metrics.Jobs.WithLabelValues("scan_finalize", "ok")); n != 1 {
				t.Errorf("finalize jobs ok = %v, want 1", n)
			}
			// Every document's engine result came from its shard.
			fin := h.logRecord("scan finished")
			if fin["prior_results"] != float64(want.sum.Documents) || fin["org_id"] != testOrg || fin["scan_id"] != testScan {
				t.Errorf("finalize log %v: want every one of %d documents from the shards", fin, want.sum.Documents)
			}
			if len(want.malformed) == 0 && tt.inputs[0].name == "data/train.jsonl" && tt.name != "one file" {
				t.Error("no malformed record: the test proves less than it should")
			}
			if want.sum.Bands.Quarantine == 0 {
				t.Error("nothing quarantined: the test proves less than it should")
			}
		})
	}
}

// checkSummary checks that summary.json decodes to a summary whose MBOM
// predicate is the CLI's.
func checkSummary(t *testing.T, b []byte, want *scan.Summary) {
	t.Helper()
	var got scan.Summary
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("summary.json: %v", err)
	}
	gp, wp := got.Predicate("1.0", "a@example.com", "2025-01-01T00:00:00Z"), want.Predicate("1.0", "a@example.com", "2025-01-01T00:00:00Z")
	gj, _ := json.Marshal(gp)
	wj, _ := json.Marshal(wp)
	if !reflect.DeepEqual(gp, wp) || !bytes.Equal(gj, wj) {
		t.Errorf("summary predicate differs from the CLI's:\n got %s\nwant %s", gj, wj)
	}
	if got.Documents != want.Documents || got.Malformed != want.Malformed || !reflect.DeepEqual(got.Categories, want.Categories) ||
		!reflect.DeepEqual(got.TopRules, want.TopRules) || !reflect.DeepEqual(got.MalformedSamples, want.MalformedSamples) {
		t.Errorf("summary counts differ from the CLI's")
	}
}

func firstDiff(a, b []byte) string {
	as, bs := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(as), len(bs)) {
		if as[i] != bs[i] {
			return fmt.Sprintf("line %d:\n got %.300s\nwant %.300s", i+1, as[i], bs[i])
		}
	}
	return fmt.Sprintf("%d lines vs %d", len(as), len(bs))
}

func TestPlanShardsJSONL(t *testing.T) {
	long := `{"text":"` + strings.Repeat("x", 200<<10) + "\"}\n"
	noEOL := strings.TrimSuffix(string(example(t, "prompts.jsonl")), "\n")
	tests := []struct {
		name       string
		data       []byte
		shardBytes int64
		want       int // shards; 0: more than one
	}{
		{"tiny shards", example(t, "instructions.jsonl"), 64, 0},
		{"small shards", example(t, "instructions.jsonl"), 1000, 0},
		{"no final newline", []byte(noEOL), 500, 0},
		{"a line longer than the read ranges", []byte(`{"text":"a"}` + "\n" + long + long + `{"text":"b"}`), 1000, 3},
		{"crlf", []byte(strings.ReplaceAll(string(example(t, "prompts.jsonl")), "\n", "\r\n")), 700, 0},
		{"one shard when small", example(t, "prompts.jsonl"), 1 << 20, 1},
		{"exact multiple", []byte("{}\n{}\n{}\n{}\n"), 3, 4},
		{"empty", nil, 10, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, []input{{"a/b.jsonl", tt.data}, {"c.jsonl", []byte("{}\n")}}, func(c *Config) { c.ShardBytes = tt.shardBytes })
			if err := h.plan(context.Background()); err != nil {
				t.Fatal(err)
			}
			shs := h.shards()
			var cat []byte
			var n int
			for i, sh := range shs {
				if sh.Index != i || sh.OrgID != testOrg || sh.ScanID != testScan {
					t.Fatalf("shard %d: %+v", i, sh)
				}
				if sh.FileIndex != 0 {
					continue
				}
				n++
				if sh.Offset != int64(len(cat)) {
					t.Fatalf("shard %d starts at %d, want %d (gap or overlap)", i, sh.Offset, len(cat))
				}
				if sh.Offset > 0 && tt.data[sh.Offset-1] != '\n' {
					t.Errorf("shard %d starts inside a line (offset %d)", i, sh.Offset)
				}
				if (sh.Offset == 0) != (sh.FirstLine == 1) {
					t.Errorf("shard %d: first line %d at offset %d", i, sh.FirstLine, sh.Offset)
				}
				if sh.Length == 0 && len(tt.data) > 0 {
					t.Errorf("shard %d is empty", i)
				}
				cat = append(cat, tt.data[sh.Offset:sh.Offset+sh.Length]...)
			}
			if !bytes.Equal(cat, tt.data) {
				t.Errorf("the shards concatenated (%d bytes) are not the file (%d bytes)", len(cat), len(tt.data))
			}
			if tt.want == 0 && n < 2 || tt.want > 0 && n != tt.want {
				t.Errorf("%d shards, want %d (0: several)", n, tt.want)
			}
			last := shs[len(shs)-1]
			if last.FileIndex != 1 || last.Offset != 0 || last.Length != 3 {
				t.Errorf("second file's shard %+v", last)
			}
			sc := h.store.get(testOrg, testScan)
			if sc.State != sentineldf.StateRunning || sc.Progress.BytesTotal != int64(len(tt.data)+3) {
				t.Errorf("scan %s, bytes total %d", sc.State, sc.Progress.BytesTotal)
			}
			if jobs := h.store.popJobs(); len(jobs) != len(shs) {
				t.Errorf("%d jobs enqueued for %d shards", len(jobs), len(shs))
			}
		})
	}
}

func TestPlanOneShardFormats(t *testing.T) {
	big := bytes.Repeat(example(t, "prompts.jsonl"), 3)
	for _, in := range []input{
		{"a.csv", example(t, "documents.csv")},
		{"notes.md", example(t, "notes.md")},
		{"gz.jsonl.gz", gz(t, big)},
		{"gzip-named-plain.jsonl", gz(t, big)}, // compressed content under a .jsonl name
		{"arr.json", []byte(`[{"text":"a"},{"text":"b"}]`)},
	} {
		t.Run(in.name, func(t *testing.T) {
			h := newHarness(t, []input{in}, func(c *Config) { c.ShardBytes = 16 })
			if err := h.plan(context.Background()); err != nil {
				t.Fatal(err)
			}
			shs := h.shards()
			if len(shs) != 1 || shs[0].Length != int64(len(in.data)) {
				t.Errorf("shards %+v, want one of the whole file", shs)
			}
		})
	}
}

func TestPlanRetryIsIdempotent(t *testing.T) {
	h := newHarness(t, []input{{"a.jsonl", example(t, "prompts.jsonl")}}, func(c *Config) { c.ShardBytes = 1000 })
	ctx := context.Background()
	if err := h.plan(ctx); err != nil {
		t.Fatal(err)
	}
	first, jobs := h.shards(), h.store.popJobs()
	if err := h.plan(ctx); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h.shards(), first) || len(h.store.popJobs()) != 0 || len(jobs) != len(first) {
		t.Error("a retried plan changed the shards or enqueued again")
	}
}

// TestShardRetry checks that a shard run again (after it failed between
// storing its results and completing, or after it completed) stores the
// same results and is counted once.
func TestShardRetry(t *testing.T) {
	h := newHarness(t, []input{{"data/train.jsonl", withMalformed(t)}}, func(c *Config) { c.ShardBytes = 8000 })
	ctx := context.Background()
	if err := h.plan(ctx); err != nil {
		t.Fatal(err)
	}
	key := sentineldf.ShardResultsKey(testOrg, testScan, 1)
	h.store.completeErr = errors.New("database went away")
	if err := h.shard(ctx, 1, 1); err == nil {
		t.Fatal("shard job succeeded although CompleteShard failed")
	}
	first, ok := h.blobs.object(key)
	if !ok || h.store.recorded != 0 {
		t.Fatalf("after a failed completion: results stored %v, completions %d", ok, h.store.recorded)
	}
	for attempt := 2; attempt <= 3; attempt++ {
		if err := h.shard(ctx, 1, attempt); err != nil {
			t.Fatal(err)
		}
		got, _ := h.blobs.object(key)
		if !bytes.Equal(got, first) {
			t.Errorf("attempt %d stored different results", attempt)
		}
	}
	sh := h.shards()[1]
	if h.store.recorded != 1 || len(h.store.usage) != 1 || !sh.Done {
		t.Errorf("completions %d, usage records %d, done %v; want 1, 1, true", h.store.recorded, len(h.store.usage), sh.Done)
	}
	if n := int64(bytes.Count(first, []byte("\n"))); n != sh.Docs || n == 0 {
		t.Errorf("%d results lines, shard says %d documents", n, sh.Docs)
	}
	sc := h.store.get(testOrg, testScan)
	if sc.Progress.DocsDone != sh.Docs || sc.Progress.BytesDone != sh.Length || sh.Bytes != sh.Length {
		t.Errorf("progress %+v after shard %+v", sc.Progress, sh)
	}
	if strings.Contains(string(first), h.w.cfg.TempDir) || !strings.Contains(string(first), `"source":"data/train.jsonl@`) {
		t.Errorf("shard results do not name the upload: %.200s", first)
	}
}

// TestFinalizePrior checks that finalize takes the shards' results and
// falls back to scanning where they do not fit.
func TestFinalizePrior(t *testing.T) {
	inputs := []input{{"train.jsonl", example(t, "instructions.jsonl")}}
	want := cliScan(t, inputs)
	wantLines := strings.SplitAfter(string(want.results), "\n")

	edit := func(t *testing.T, b []byte, line int, f func(*scan.Line)) []byte {
		ls := bytes.SplitAfter(b, []byte("\n"))
		var l scan.Line
		if err := json.Unmarshal(ls[line], &l); err != nil {
			t.Fatal(err)
		}
		f(&l)
		nb, err := scan.MarshalLine(&l)
		if err != nil {
			t.Fatal(err)
		}
		ls[line] = append(nb, '\n')
		return bytes.Join(ls, nil)
	}
	tests := []struct {
		name    string
		tamper  func(t *testing.T, h *harness)
		changed int // the line that must differ from the CLI's; -1 none
	}{
		{"untouched", func(*testing.T, *harness) {}, -1},
		{"a result for other text is rescanned", func(t *testing.T, h *harness) {
			k := sentineldf.ShardResultsKey(testOrg, testScan, 0)
			b, _ := h.blobs.object(k)
			h.blobs.set(k, edit(t, b, 2, func(l *scan.Line) { l.SHA256 = strings.Repeat("0", 64); l.Risk = 99; l.Band = detect.BandQuarantine }))
		}, -1},
		{"an undecodable line is rescanned", func(t *testing.T, h *harness) {
			k := sentineldf.ShardResultsKey(testOrg, testScan, 0)
			b, _ := h.blobs.object(k)
			ls := bytes.SplitAfter(b, []byte("\n"))
			ls[1] = []byte("garbage\n")
			h.blobs.set(k, bytes.Join(ls, nil))
		}, -1},
		{"missing shard results are rescanned", func(t *testing.T, h *harness) {
			h.blobs.Delete(context.Background(), sentineldf.ShardResultsKey(testOrg, testScan, 1))
		}, -1},
		{"a result for the same text is used", func(t *testing.T, h *harness) {
			k := sentineldf.ShardResultsKey(testOrg, testScan, 0)
			b, _ := h.blobs.object(k)
			h.blobs.set(k, edit(t, b, 3, func(l *scan.Line) {
				l.Risk, l.Score, l.Band, l.Findings = 1, 0.01, detect.BandClean, []detect.Finding{}
			}))
		}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, inputs, func(c *Config) { c.ShardBytes = 20000 })
			if err := h.plan(context.Background()); err != nil {
				t.Fatal(err)
			}
			h.run(true)
			if len(h.shards()) < 2 {
				t.Fatal("want several shards")
			}
			tt.tamper(t, h)
			h.run(false)
			got := strings.SplitAfter(string(h.result(sentineldf.ResultsObject)), "\n")
			if len(got) != len(wantLines) {
				t.Fatalf("%d lines, want %d", len(got), len(wantLines))
			}
			for i := range got {
				if (got[i] != wantLines[i]) != (i == tt.changed) {
					t.Errorf("line %d differs from the CLI's: %v", i, got[i] != wantLines[i])
				}
			}
			if tt.changed >= 0 && !strings.Contains(got[tt.changed], `"risk":1,`) {
				t.Errorf("the prior result was not used: %.200s", got[tt.changed])
			}
		})
	}
}

// blocker is a detector that blocks the scan until released, to stop a job
// while it runs.
type blocker struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blocker) Name() string { return "blocker" }

func (b *blocker) Detect(*detect.Text, func(detect.Finding)) {
	b.once.Do(func() { close(b.entered) })
	<-b.release
}

func TestShardStops(t *testing.T) {
	for _, how := range []string{"scan canceled", "worker shutdown"} {
		t.Run(how, func(t *testing.T) {
			bl := &blocker{entered: make(chan struct{}), release: make(chan struct{})}
			eng, err := detect.New(detect.Options{Extra: []detect.Detector{bl}})
			if err != nil {
				t.Fatal(err)
			}
			stopped := make(chan struct{})
			h := newHarness(t, []input{{"a.jsonl", example(t, "prompts.jsonl")}}, func(c *Config) {
				c.Engine, c.PollInterval = eng, time.Millisecond
			})
			h.w.onScanEnded = func() { close(stopped) }
			if err := h.plan(context.Background()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- h.shard(ctx, 0, 1) }()
			<-bl.entered
			if how == "scan canceled" {
				h.store.setState(testOrg, testScan, sentineldf.StateCanceled)
				<-stopped
			} else {
				cancel()
			}
			close(bl.release)
			err = <-done
			if how == "scan canceled" && err != nil {
				t.Errorf("job of a canceled scan returned %v, want nil", err)
			}
			if how == "worker shutdown" && !errors.Is(err, context.Canceled) {
				t.Errorf("interrupted job returned %v, want context.Canceled", err)
			}
			if _, ok := h.blobs.object(sentineldf.ShardResultsKey(testOrg, testScan, 0)); ok || h.store.recorded != 0 {
				t.Error("a stopped shard stored results or completed")
			}
			if n := testutil.ToFloat64(h.metrics.Jobs.WithLabelValues("scan_shard", "canceled")); n != 1 {
				t.Errorf("canceled shard jobs = %v, want 1", n)
			}
			if testutil.ToFloat64(h.metrics.WorkerActiveTasks) != 0 {
				t.Error("active tasks not back to 0")
			}
		})
	}
}

func TestCanceledScanDoesNothing(t *testing.T) {
	h := newHarness(t, []input{{"a.jsonl", example(t, "prompts.jsonl")}}, nil)
	ctx := context.Background()
	if err := h.plan(ctx); err != nil {
		t.Fatal(err)
	}
	h.store.setState(testOrg, testScan, sentineldf.StateCanceled)
	ranges := h.blobs.ranges
	for name, run := range map[string]func() error{
		"plan":     func() error { return h.plan(ctx) },
		"shard":    func() error { return h.shard(ctx, 0, 1) },
		"finalize": func() error { return h.finalize(ctx) },
	} {
		if err := run(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if h.store.recorded != 0 || h.store.finishes != 0 || h.store.started != 1 || h.blobs.ranges != ranges {
		t.Errorf("jobs of a canceled scan did work: %d completions, %d finishes, %d starts", h.store.recorded, h.store.finishes, h.store.started)
	}
	if keys := h.blobs.keys(sentineldf.ScanPrefix(testOrg, testScan) + "results/"); len(keys) != 0 {
		t.Errorf("result objects written: %q", keys)
	}
}

func TestMissingInputFailsScan(t *testing.T) {
	const name = "data/train.jsonl"
	key := sentineldf.InputKey(testOrg, testScan, 0, name)
	tests := []struct {
		name string
		run  func(h *harness) error
	}{
		{"at plan", func(h *harness) error {
			h.blobs.Delete(context.Background(), key)
			return h.plan(context.Background())
		}},
		{"at shard", func(h *harness) error {
			if err := h.plan(context.Background()); err != nil {
				return err
			}
			h.blobs.Delete(context.Background(), key)
			return h.shard(context.Background(), 0, 1)
		}},
		{"at finalize", func(h *harness) error {
			if err := h.plan(context.Background()); err != nil {
				return err
			}
			h.run(true)
			h.blobs.Delete(context.Background(), key)
			return h.finalize(context.Background())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, []input{{name, example(t, "prompts.jsonl")}}, nil)
			if err := tt.run(h); err != nil {
				t.Fatalf("job returned %v, want nil (the scan fails instead)", err)
			}
			sc := h.store.get(testOrg, testScan)
			if sc.State != sentineldf.StateFailed || sc.Error != `input file "data/train.jsonl" is missing` {
				t.Errorf("scan %s with error %q", sc.State, sc.Error)
			}
		})
	}
}

func TestUnreadableInputFailsScan(t *testing.T) {
	h := newHarness(t, []input{{"up/x.parquet", []byte("this is not parquet at all")}}, nil)
	h.runAll()
	sc := h.store.get(testOrg, testScan)
	if sc.State != sentineldf.StateFailed || !strings.HasPrefix(sc.Error, "up/x.parquet:") || strings.Contains(sc.Error, h.w.cfg.TempDir) {
		t.Errorf("scan %s with error %q, want failed naming up/x.parquet and no temp path", sc.State, sc.Error)
	}
}

func TestTransientErrorRetriesThenFails(t *testing.T) {
	h := newHarness(t, []input{{"a.jsonl", example(t, "prompts.jsonl")}}, nil)
	ctx := context.Background()
	if err := h.plan(ctx); err != nil {
		t.Fatal(err)
	}
	h.blobs.putErr = errors.New("storage unavailable")
	for attempt := 1; attempt <= sentineldf.MaxJobAttempts; attempt++ {
		err := h.shard(ctx, 0, attempt)
		if err == nil {
			t.Fatalf("attempt %d: nil error, want one for River to retry", attempt)
		}
		state := h.store.get(testOrg, testScan).State
		if last := attempt == sentineldf.MaxJobAttempts; (state == sentineldf.StateFailed) != last {
			t.Errorf("attempt %d: scan %s", attempt, state)
		}
	}
	if sc := h.store.get(testOrg, testScan); sc.Error != "internal error" {
		t.Errorf("error %q", sc.Error)
	}
	if n := testutil.ToFloat64(h.metrics.Jobs.WithLabelValues("scan_shard", "error")); n != sentineldf.MaxJobAttempts {
		t.Errorf("error outcomes %v", n)
	}
}

func TestNewChecksConfig(t *testing.T) {
	eng := testEngine(t)
	for _, c := range []Config{
		{Blobs: newMemBlobs(), Engine: eng},
		{Store: newFakeStore(), Engine: eng},
		{Store: newFakeStore(), Blobs: newMemBlobs()},
		{Store: newFakeStore(), Blobs: newMemBlobs(), Engine: eng, ShardBytes: -1},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	w, err := New(Config{Store: newFakeStore(), Blobs: newMemBlobs(), Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	if w.cfg.ShardBytes != DefaultShardBytes || w.cfg.ScanWorkers < 1 || w.cfg.DatasetDetectors == nil {
		t.Errorf("defaults not applied: %+v", w.cfg)
	}
	workers := river.NewWorkers()
	if err := w.Register(workers); err != nil {
		t.Fatal(err)
	}
	if err := w.Register(workers); err == nil {
		t.Error("registering twice succeeded")
	}
}

func TestTimeouts(t *testing.T) {
	h := newHarness(t, []input{{"a.jsonl", bytes.Repeat(example(t, "prompts.jsonl"), 4)}}, func(c *Config) { c.ShardBytes = 10000 })
	if err := h.plan(context.Background()); err != nil {
		t.Fatal(err)
	}
	sw := &shardWorker{w: h.w}
	if got := sw.Timeout(job(sentineldf.ShardJob{OrgID: testOrg, ScanID: testScan, Shard: 0}, 1)); got != minShardTimeout {
		t.Errorf("small shard timeout %v", got)
	}
	if got := sw.Timeout(job(sentineldf.ShardJob{OrgID: "other", ScanID: testScan, Shard: 0}, 1)); got <= minShardTimeout {
		t.Errorf("unknown shard timeout %v, want the largest", got)
	}
	for _, tc := range []struct {
		bytes int64
		want  time.Duration
	}{{0, minShardTimeout}, {32 << 20, minShardTimeout}, {4 << 30, 4096 * time.Second}} {
		if got := jobTimeout(tc.bytes, minShardTimeout); got != tc.want {
			t.Errorf("jobTimeout(%d) = %v, want %v", tc.bytes, got, tc.want)
		}
	}
	if got := (&finalizeWorker{w: h.w}).Timeout(job(sentineldf.FinalizeJob{OrgID: testOrg, ScanID: testScan}, 1)); got != minFinalizeTimeout {
		t.Errorf("finalize timeout %v", got)
	}
}

// TestShardResultsLines checks the shard results format: one results line
// per document, as scan writes them.
func TestShardResultsLines(t *testing.T) {
	h := newHarness(t, []input{{"p.jsonl", example(t, "prompts.jsonl")}}, nil)
	if err := h.plan(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.run(true)
	b, _ := h.blobs.object(sentineldf.ShardResultsKey(testOrg, testScan, 0))
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var l scan.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		n++
		if want := fmt.Sprintf("p.jsonl:%d", n); l.Source != want {
			t.Fatalf("line %d source %q, want %q", n, l.Source, want)
		}
	}
	if n == 0 || int64(n) != h.shards()[0].Docs {
		t.Errorf("%d lines for %d documents", n, h.shards()[0].Docs)
	}
}
