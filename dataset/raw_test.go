package dataset

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// readRaw reads f with NextRaw and a separate Parser, as a scan's workers do.
func readRaw(t *testing.T, f File, opts Options) result {
	t.Helper()
	r, err := Open(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rr, ok := r.(RawReader)
	if !ok {
		t.Fatalf("%s: %T is not a RawReader", f.Path, r)
	}
	p, err := NewParser(opts)
	if err != nil {
		t.Fatal(err)
	}
	var res result
	dir := filepath.Dir(f.Path) + string(os.PathSeparator)
	for {
		rec, err := rr.NextRaw()
		if err == io.EOF {
			break
		}
		if err == nil {
			err = p.Parse(rec)
		}
		var me *MalformedError
		if errors.As(err, &me) {
			res.malformed = append(res.malformed, strings.TrimPrefix(me.Error(), dir))
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		res.recs = append(res.recs, rec)
	}
	res.sum, res.bytesRead = r.SHA256(), r.BytesRead()
	return res
}

// TestRawReaderMatchesNext checks that reading JSONL with NextRaw and
// parsing the records apart yields exactly what Next does: the same
// records, malformed reports, file hash and byte count.
func TestRawReaderMatchesNext(t *testing.T) {
	var big strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&big, `{"id":%d,"text":"line %d \u00e9\n%s"}`+"\n", i, i, strings.Repeat("x", i%700))
	}
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.Bytes()
	}
	tests := []struct {
		name string
		file string
		data []byte
		opts Options
		want int // well-formed records
	}{
		{"plain", "a.jsonl", []byte("{\"id\":\"a\",\"text\":\"hello\"}\n\n{\"text\":\"no id\"}\r\n"), Options{}, 2},
		{"bom on the first line", "bom.jsonl", []byte("\ufeff{\"text\":\"x\"}\n{\"text\":\"y\"}"), Options{}, 2},
		{"malformed lines", "bad.jsonl", []byte("{\"text\":1}\nnot json\n[1]\n{\"id\":\"ok\",\"text\":\"fine\"}\n{\"text\":\"\xff\"}\n"), Options{}, 1},
		{"too long", "long.jsonl", []byte("{\"text\":\"" + strings.Repeat("a", 100) + "\"}\n{\"text\":\"short\"}\n"), Options{MaxRecordBytes: 50}, 1},
		{"text and keep fields", "keep.jsonl", []byte("{\"id\":7,\"q\":{\"body\":\"b\"},\"label\":\"bad\"}\n{\"id\":8,\"label\":\"x\"}\n"),
			Options{TextFields: []string{"q.body"}, KeepFields: []string{"label"}}, 1},
		{"many buffers", "big.jsonl", []byte(big.String()), Options{}, 3000},
		{"gzip", "big.jsonl.gz", gz(big.String()), Options{}, 3000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFile(t, t.TempDir(), tt.file, tt.data)
			want := readAll(t, f, tt.opts)
			got := readRaw(t, f, tt.opts)
			if len(got.recs) != tt.want {
				t.Errorf("%d records, want %d (malformed: %q)", len(got.recs), tt.want, got.malformed)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("NextRaw+Parse read\n%+v\nNext read\n%+v", got, want)
			}
			disk := sha256.Sum256(tt.data)
			if got.sum != hex.EncodeToString(disk[:]) || got.bytesRead != int64(len(tt.data)) {
				t.Errorf("sha256 %s after %d bytes, want %x after %d", got.sum, got.bytesRead, disk, len(tt.data))
			}
		})
	}
}

// TestCloseBeforeEnd closes readers part-way through big files, which must
// not hang or leak the hashing goroutine (go test's leak-free exit and the
// race detector check the rest).
func TestCloseBeforeEnd(t *testing.T) {
	var big strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&big, `{"text":"document %d %s"}`+"\n", i, strings.Repeat("y", 200))
	}
	f := writeFile(t, t.TempDir(), "big.jsonl", []byte(big.String()))
	for _, n := range []int{0, 1, 5000} {
		r, err := Open(f, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			if _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
}
