package dataset

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		comp   string
	}{
		{"a.jsonl", FormatJSONL, ""},
		{"A.NDJSON.GZ", FormatJSONL, CompressionGzip},
		{"x/b.json.zst", FormatJSON, CompressionZstd},
		{"c.CSV", FormatCSV, ""},
		{"c.tsv.gz", FormatTSV, CompressionGzip},
		{"d.parquet", FormatParquet, ""},
		{"e.md", FormatText, ""},
		{"e.htm", FormatText, ""},
		{"f.gz", "", CompressionGzip},
		{"g.exe", "", ""},
		{"noext", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := DetectFormat(tt.name)
			if f != tt.format || c != tt.comp {
				t.Errorf("DetectFormat(%q) = %q, %q; want %q, %q", tt.name, f, c, tt.format, tt.comp)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		glob, rel string
		want      bool
	}{
		{"*.jsonl", "a.jsonl", true},
		{"*.jsonl", "deep/dir/a.jsonl", true}, // no "/": base name at any depth
		{"*.jsonl", "a.csv", false},
		{"train/*.jsonl", "train/a.jsonl", true},
		{"train/*.jsonl", "train/x/a.jsonl", false},
		{"train/**/*.jsonl", "train/a.jsonl", true},
		{"train/**/*.jsonl", "train/x/y/a.jsonl", true},
		{"train/**", "train/x/y/a.jsonl", true},
		{"**/test/*", "a/b/test/c.csv", true},
		{"**/test/*", "test/c.csv", true},
		{"**/test/*", "a/test/b/c.csv", false},
		{"?.csv", "ab.csv", false},
	}
	for _, tt := range tests {
		if got := Match(tt.glob, tt.rel); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.glob, tt.rel, got, tt.want)
		}
	}
}

func TestWalk(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{
		"data/b.jsonl", "data/a.csv", "data/sub/c.json.gz", "data/sub/deep/d.parquet",
		"data/notes.xyz", "data/test/e.jsonl", "data/a.jsonl", "loose.bin",
	} {
		writeFile(t, dir, name, []byte("x"))
	}
	if err := os.Symlink(filepath.Join(dir, "data", "b.jsonl"), filepath.Join(dir, "data", "link.jsonl")); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	loose := filepath.Join(dir, "loose.bin")
	rels := func(files []File) []string {
		var out []string
		for _, f := range files {
			out = append(out, f.Rel+":"+string(f.Format)+":"+f.Compression)
		}
		return out
	}
	tests := []struct {
		name             string
		paths            []string
		include, exclude []string
		want             []string
	}{
		{"all", []string{data, loose}, nil, nil, []string{
			"a.csv:csv:", "a.jsonl:jsonl:", "b.jsonl:jsonl:", "link.jsonl:jsonl:", "sub/c.json.gz:json:gzip",
			"sub/deep/d.parquet:parquet:", "test/e.jsonl:jsonl:", "loose.bin::",
		}},
		{"include", []string{data}, []string{"*.jsonl"}, nil, []string{"a.jsonl:jsonl:", "b.jsonl:jsonl:", "link.jsonl:jsonl:", "test/e.jsonl:jsonl:"}},
		{"include doublestar", []string{data}, []string{"sub/**"}, nil, []string{"sub/c.json.gz:json:gzip", "sub/deep/d.parquet:parquet:"}},
		{"exclude", []string{data}, nil, []string{"test/**", "sub/**/*.parquet", "link.*"}, []string{"a.csv:csv:", "a.jsonl:jsonl:", "b.jsonl:jsonl:", "sub/c.json.gz:json:gzip"}},
		{"argument order kept", []string{filepath.Join(data, "b.jsonl"), filepath.Join(data, "a.csv")}, nil, nil, []string{"b.jsonl:jsonl:", "a.csv:csv:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := Walk(tt.paths, tt.include, tt.exclude)
			if err != nil {
				t.Fatal(err)
			}
			if got := rels(files); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Walk = %q\nwant %q", got, tt.want)
			}
		})
	}
	if _, err := Walk([]string{filepath.Join(dir, "missing")}, nil, nil); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing input: %v", err)
	}
	if _, err := Walk([]string{data}, []string{"[bad"}, nil); err == nil {
		t.Errorf("bad glob accepted")
	}
}
