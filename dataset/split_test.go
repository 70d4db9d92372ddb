package dataset

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

type pqDoc struct {
	ID    int64  `parquet:"id"`
	Text  string `parquet:"text"`
	Label string `parquet:"label,optional"`
}

func parquetBytes(t testing.TB, docs []pqDoc) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[pqDoc](&buf)
	if _, err := w.Write(docs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readParquetDocs(t testing.TB, path string) []pqDoc {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := parquet.NewGenericReader[pqDoc](f)
	docs := make([]pqDoc, r.NumRows())
	if n, err := r.Read(docs); n != len(docs) || (err != nil && err != io.EOF) {
		t.Fatalf("read %d of %d: %v", n, len(docs), err)
	}
	return docs
}

func TestParquet(t *testing.T) {
	docs := []pqDoc{{1, "alpha", "safe"}, {2, "", "x"}, {3, "gamma", ""}}
	for i := 0; i < 200; i++ {
		docs = append(docs, pqDoc{int64(10 + i), strings.Repeat("w", i), "l"})
	}
	data := parquetBytes(t, docs)
	f := writeFile(t, t.TempDir(), "t.parquet", data)
	res := readAll(t, f, Options{KeepFields: []string{"label"}})
	if len(res.recs) != len(docs) || len(res.malformed) != 0 {
		t.Fatalf("records %d malformed %q", len(res.recs), res.malformed)
	}
	r0, r1 := res.recs[0], res.recs[1]
	if r0.ID != "1" || r0.Source.Line != 1 || !reflect.DeepEqual(fieldsOf(r0), []string{"text=alpha"}) || r0.Meta["label"] != "safe" || r0.Raw != nil {
		t.Errorf("row 1 = %+v", r0)
	}
	if len(r1.Fields) != 0 || r1.Source.Line != 2 {
		t.Errorf("row 2 = %+v", r1)
	}
	if res.bytesRead != int64(len(data)) || res.sum != sha(data) {
		t.Errorf("BytesRead %d SHA256 %s", res.bytesRead, res.sum)
	}
	if res := readAll(t, f, Options{TextFields: []string{"label"}}); len(res.recs) != len(docs) || res.recs[0].Fields[0].Text != "safe" {
		t.Errorf("--text-field label on Parquet failed")
	}

	gzf := writeFile(t, t.TempDir(), "t.parquet.gz", gz(t, data))
	if _, err := Open(gzf, Options{}); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("compressed parquet: %v", err)
	}
	bad := writeFile(t, t.TempDir(), "bad.parquet", []byte("PAR1 not really parquet PAR1"))
	if _, err := tryReadAll(bad, Options{}); err == nil || !strings.Contains(err.Error(), bad.Path) {
		t.Errorf("corrupt parquet: %v", err)
	}
}

// splitAll reads every file and writes every record to dest.
func splitAll(t *testing.T, dest string, files []File, opts Options, keep func(*Record) bool) {
	t.Helper()
	s, err := NewSplit(dest, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		for _, r := range readAll(t, f, opts).recs {
			if keep == nil || keep(r) {
				if err := s.Write(r); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSplitRoundTrip(t *testing.T) {
	tests := []struct {
		name, file, input string
		opts              Options
	}{
		{"jsonl", "a.jsonl", "{\"text\":\"a\"}\n{\"text\":\"b\", \"x\": 1}\r\n{\"text\":\"c\"}\n", Options{}},
		{"csv multi-line", "a.csv", "id,text\n1,\"two\nlines\"\n2,\"with \"\"quotes\"\", commas\"\n", Options{}},
		{"tsv", "a.tsv", "id\ttext\n1\tone\n2\ttwo\n", Options{}},
		{"json array", "a.json", "[\n{\"text\":\"a\"},\n{\"text\": \"b\", \"n\": [1, 2]}\n]\n", Options{}},
		{"text lines", "a.txt", "first line\nsecond line\n", Options{Split: SplitLines}},
		{"jsonl gz", "a.jsonl.gz", "{\"text\":\"a\"}\n", Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			data := []byte(tt.input)
			if strings.HasSuffix(tt.file, ".gz") {
				data = gz(t, data)
			}
			f := writeFile(t, dir, "in/"+tt.file, data)
			out := filepath.Join(dir, "out-"+tt.file)
			splitAll(t, out, []File{f}, tt.opts, nil)
			got := readAll(t, File{Path: out, Format: f.Format, Compression: f.Compression}, tt.opts)
			want := readAll(t, f, tt.opts)
			if len(got.recs) != len(want.recs) {
				t.Fatalf("%d records after split, want %d", len(got.recs), len(want.recs))
			}
			if f.Compression == "" {
				if s := mustRead(t, out); s != tt.input {
					t.Errorf("output = %q, want %q", s, tt.input)
				}
			}
			// Directory mode gives the same bytes.
			splitAll(t, filepath.Join(dir, "outdir")+"/", []File{f}, tt.opts, nil)
			if f.Compression == "" {
				if s := mustRead(t, filepath.Join(dir, "outdir", tt.file)); s != tt.input {
					t.Errorf("directory output = %q, want %q", s, tt.input)
				}
			}
		})
	}
}

func TestSplitEmptyOutputs(t *testing.T) {
	dir := t.TempDir()
	files := []File{
		writeFile(t, dir, "in/a.jsonl", []byte("{\"text\":\"a\"}\n")),
		writeFile(t, dir, "in/b.csv", []byte("id,text\n1,x\n")),
		writeFile(t, dir, "in/c.json", []byte(`[{"text":"c"}]`)),
		writeFile(t, dir, "in/d.txt", []byte("doc")),
	}
	none := func(*Record) bool { return false }
	out := filepath.Join(dir, "out") + "/"
	splitAll(t, out, files, Options{}, none)
	for name, want := range map[string]string{"a.jsonl": "", "b.csv": "id,text\n", "c.json": "[]\n"} {
		if got := mustRead(t, filepath.Join(out, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "d.txt")); !os.IsNotExist(err) {
		t.Errorf("a quarantined whole-file text document got an output: %v", err)
	}
	splitAll(t, filepath.Join(dir, "x.json"), files[2:3], Options{}, none)
	if got := mustRead(t, filepath.Join(dir, "x.json")); got != "[]\n" {
		t.Errorf("empty JSON file = %q", got)
	}
}

func TestSplitWholeFileText(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "in/sub/a.md", []byte("# Title\n\nbody \r\n"))
	b := writeFile(t, dir, "in/b.html", []byte("<p>x</p>"))
	out := filepath.Join(dir, "out") + "/"
	splitAll(t, out, []File{a, b}, Options{}, func(r *Record) bool { return r.Source.Path == a.Path })
	if got := mustRead(t, filepath.Join(out, "sub", "a.md")); got != "# Title\n\nbody \r\n" {
		t.Errorf("copied document = %q", got)
	}
	if _, err := os.Stat(filepath.Join(out, "b.html")); !os.IsNotExist(err) {
		t.Errorf("filtered document was written")
	}
	s, err := NewSplit(filepath.Join(dir, "one.txt"), []File{a}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := readAll(t, a, Options{}).recs[0]
	if err := s.Write(r); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("whole-file text into a file: %v", err)
	}
	s.Close()
}

func TestSplitParquet(t *testing.T) {
	dir := t.TempDir()
	docs := []pqDoc{{1, "a", "x"}, {2, "b", ""}, {3, "c", "z"}}
	f1 := writeFile(t, dir, "in/p1.parquet", parquetBytes(t, docs))
	f2 := writeFile(t, dir, "in/p2.parquet", parquetBytes(t, docs[:1]))
	out := filepath.Join(dir, "out.parquet")
	splitAll(t, out, []File{f1, f2}, Options{}, func(r *Record) bool { return r.ID != "2" })
	got := readParquetDocs(t, out)
	want := []pqDoc{docs[0], docs[2], docs[0]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parquet split = %+v, want %+v", got, want)
	}
	splitAll(t, filepath.Join(dir, "empty.parquet"), []File{f1}, Options{}, func(*Record) bool { return false })
	if got := readParquetDocs(t, filepath.Join(dir, "empty.parquet")); len(got) != 0 {
		t.Errorf("empty parquet has %d rows", len(got))
	}
}

func TestSplitErrors(t *testing.T) {
	dir := t.TempDir()
	jl := writeFile(t, dir, "in/a.jsonl", []byte(`{"text":"a"}`))
	cs := writeFile(t, dir, "in/b.csv", []byte("text\nx\n"))
	cs2 := writeFile(t, dir, "in/c.csv", []byte("text,id\nx,1\n"))
	ts := writeFile(t, dir, "in/d.tsv", []byte("text\nx\n"))
	p1 := writeFile(t, dir, "in/p.parquet", parquetBytes(t, []pqDoc{{1, "a", ""}}))
	type other struct {
		Text string `parquet:"text"`
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[other](&buf)
	w.Write([]other{{"x"}})
	w.Close()
	p2 := writeFile(t, dir, "in/q.parquet", buf.Bytes())
	other2 := cs
	other2.Rel = "sub/b.csv"
	tests := []struct {
		name  string
		dest  string
		files []File
		want  string
	}{
		{"mixed formats", filepath.Join(dir, "out.jsonl"), []File{jl, cs}, "cannot write"},
		{"csv and tsv", filepath.Join(dir, "out.csv"), []File{cs, ts}, "cannot write"},
		{"different headers", filepath.Join(dir, "out.csv"), []File{cs, cs2}, "different CSV headers"},
		{"different schemas", filepath.Join(dir, "out.parquet"), []File{p1, p2}, "different Parquet schemas"},
		{"dest format", filepath.Join(dir, "out.csv"), []File{jl}, "destination"},
		{"overwrite input", jl.Path, []File{jl}, "is the input"},
		{"overwrite input dir", filepath.Join(dir, "in") + "/", []File{jl}, "is the input"},
		{"same rel twice", filepath.Join(dir, "o2") + "/", []File{cs, {Path: filepath.Join(dir, "x", "b.csv"), Rel: "b.csv", Format: FormatCSV}}, "both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSplit(tt.dest, tt.files, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	// File mode to stdout.
	var stdout bytes.Buffer
	s, err := NewSplit("-", []File{jl}, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range readAll(t, jl, Options{}).recs {
		s.Write(r)
	}
	if err := s.Close(); err != nil || stdout.String() != "{\"text\":\"a\"}\n" {
		t.Errorf("stdout = %q, err %v", stdout.String(), err)
	}
}

func TestSplitCompressedDest(t *testing.T) {
	dir := t.TempDir()
	jl := writeFile(t, dir, "in/a.jsonl", []byte("{\"text\":\"a\"}\n{\"text\":\"b\"}\n"))
	for _, name := range []string{"o.jsonl.gz", "o.jsonl.zst"} {
		out := filepath.Join(dir, name)
		splitAll(t, out, []File{jl}, Options{}, nil)
		format, comp := DetectFormat(name)
		res := readAll(t, File{Path: out, Format: format, Compression: comp}, Options{})
		if len(res.recs) != 2 {
			t.Errorf("%s: %d records", name, len(res.recs))
		}
		if raw := mustRead(t, out); !strings.HasPrefix(raw, string(gzipMagic)) && !strings.HasPrefix(raw, string(zstdMagic)) {
			t.Errorf("%s is not compressed", name)
		}
	}
}
