package dataset

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFileName checks that File.Name replaces Path wherever a file is named:
// records' sources and ids, malformed-record reports, errors, and the
// split's routing of records to outputs.
func TestFileName(t *testing.T) {
	pq := parquetBytes(t, []pqDoc{{1, "alpha", ""}, {2, "beta", ""}})
	tests := []struct {
		file, name string
		data       []byte
		opts       Options
		wantSrc    []string
		wantBad    []string
	}{
		{"a.jsonl", "data/train.jsonl", []byte("{\"text\":\"one\"}\nnot json\n{\"text\":\"two\"}\n"), Options{},
			[]string{"data/train.jsonl:1", "data/train.jsonl:3"}, []string{"data/train.jsonl:2"}},
		{"b.json", "x/y.json", []byte(`[{"text":"one"},{"text":2},{"text":"three"}]`), Options{},
			[]string{"x/y.json:1", "x/y.json:3"}, []string{"x/y.json:2"}},
		{"c.csv", "c/d.csv", []byte("id,text\n1,hello\n2,world,extra\n"), Options{},
			[]string{"c/d.csv:2"}, []string{"c/d.csv:3"}},
		{"d.txt", "notes/readme.txt", []byte("a whole file"), Options{},
			[]string{"notes/readme.txt"}, nil},
		{"e.parquet", "p/rows.parquet", pq, Options{IDField: "nope"},
			[]string{"p/rows.parquet:1", "p/rows.parquet:2"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			dir := t.TempDir()
			f := writeFile(t, dir, tt.file, tt.data)
			f.Name, f.Rel = tt.name, tt.name
			r, err := Open(f, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var srcs, bad []string
			var recs []*Record
			for {
				rec, err := r.Next()
				if err != nil {
					if me, ok := err.(*MalformedError); ok {
						bad = append(bad, me.Source.String())
						continue
					}
					break
				}
				recs = append(recs, rec)
				srcs = append(srcs, rec.Source.String())
				if tt.file != "b.json" && tt.file != "c.csv" && rec.ID != rec.Source.String() {
					t.Errorf("id %q, want the source %q", rec.ID, rec.Source)
				}
			}
			r.Close()
			if strings.Join(srcs, ",") != strings.Join(tt.wantSrc, ",") {
				t.Errorf("sources %q, want %q", srcs, tt.wantSrc)
			}
			if strings.Join(bad, ",") != strings.Join(tt.wantBad, ",") {
				t.Errorf("malformed %q, want %q", bad, tt.wantBad)
			}
			// The split routes records by the display name and writes them
			// under Rel.
			out := filepath.Join(dir, "out") + string(os.PathSeparator)
			sp, err := NewSplit(out, []File{f}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				if err := sp.Write(rec); err != nil {
					t.Fatal(err)
				}
			}
			if err := sp.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(out, filepath.FromSlash(tt.name))); err != nil {
				t.Errorf("split output: %v", err)
			}
		})
	}
}

func TestFileNameInErrors(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "a.jsonl.gz", []byte("not gzip"))
	f.Name = "up/a.jsonl.gz"
	_, err := Open(f, Options{})
	if err == nil || !strings.Contains(err.Error(), "up/a.jsonl.gz") || strings.Contains(err.Error(), dir) {
		t.Errorf("error %v: want it to name up/a.jsonl.gz and not the path", err)
	}
	f = File{Path: filepath.Join(dir, "missing.jsonl"), Name: "up/missing.jsonl", Format: FormatJSONL}
	if _, err := Open(f, Options{}); err == nil || !strings.HasPrefix(err.Error(), "open up/missing.jsonl:") {
		t.Errorf("error %v: want it to start with the display name", err)
	}
	if got := (File{Path: "p"}).DisplayName(); got != "p" {
		t.Errorf("DisplayName without Name = %q", got)
	}
}
