package dataset

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strconv"
	"testing"
)

// readCounts reads f and counts records and malformed records; it fails the
// test on a fatal error when fatalOK is false.
func readCounts(t *testing.T, f File, opts Options, fatalOK bool) (recs, bad int) {
	t.Helper()
	r, err := Open(f, opts)
	if err != nil {
		if fatalOK {
			return 0, 0
		}
		t.Fatal(err)
	}
	defer r.Close()
	for i := 0; ; i++ {
		if i > 1_000_000 {
			t.Fatal("reader does not terminate")
		}
		rec, err := r.Next()
		var me *MalformedError
		switch {
		case err == io.EOF:
			if r.SHA256() == "" {
				t.Fatal("no SHA256 after EOF")
			}
			return recs, bad
		case errors.As(err, &me):
			bad++
		case err != nil:
			if !fatalOK {
				t.Fatal(err)
			}
			return recs, bad
		default:
			recs++
			if rec.ID == "" {
				t.Fatal("record without ID")
			}
		}
	}
}

func FuzzJSONL(f *testing.F) {
	for _, s := range []string{
		`{"text":"a"}` + "\n" + `{"text":` + "\n\n" + `[]`,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		"\ufeff{\"prompt\":\"p\",\"response\":\"\\ud800\"}\r\n  \r\n",
		`{"text":"\u0000\"","id":-1.5e+3}`,
		"{\"text\":\"\xff\"}\n{\"a\":{\"b\":[[[[]]]]}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file := writeFile(t, t.TempDir(), "f.jsonl", data)
		file.Compression = "" // never sniff: a gzip-looking input is just bad JSON here
		recs, bad := readCounts(t, file, Options{}, bytes.HasPrefix(data, gzipMagic) || bytes.HasPrefix(data, zstdMagic))
		if bytes.HasPrefix(data, gzipMagic) || bytes.HasPrefix(data, zstdMagic) {
			return
		}
		want := 0
		for _, line := range bytes.Split(data, []byte("\n")) {
			if !isBlank(line) {
				want++
			}
		}
		if recs+bad != want {
			t.Fatalf("%d records + %d malformed, want %d non-blank lines", recs, bad, want)
		}
	})
}

// FuzzJSONParse checks the parser against encoding/json: the same documents
// are valid, and strings decode to the same text.
func FuzzJSONParse(f *testing.F) {
	for _, s := range []string{`{"a":"b\n\u00e9\ud83d\ude00"}`, `[1,-0.5e10,true,null,"x"]`, `"\ud800x"`, `{"a":01}`, `1.`, `"\/"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p jparser
		err := p.parse(data)
		if valid := json.Valid(data); valid != (err == nil) {
			t.Fatalf("parse error %v, json.Valid %v", err, valid)
		}
		if err != nil {
			return
		}
		for i := range p.nodes {
			n := &p.nodes[i]
			if n.kind != jString {
				continue
			}
			var want string
			if err := json.Unmarshal(data[n.start-1:n.end+1], &want); err != nil {
				t.Fatal(err)
			}
			if got := p.text(n); got != want && json.Valid([]byte(strconv.Quote(got))) {
				t.Fatalf("text %q, encoding/json %q", got, want)
			}
		}
	})
}

func FuzzJSONArray(f *testing.F) {
	for _, s := range []string{`[{"text":"a"},{"text":"b"}]`, `{"text":"x"}`, `[1,"]",{"a":"\""}]`, `[`, `[{"text":"a"},]`, ` [ ] `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file := writeFile(t, t.TempDir(), "f.json", data)
		recs, bad := readCounts(t, file, Options{}, true)
		if recs+bad > len(data) {
			t.Fatalf("%d records from %d bytes", recs+bad, len(data))
		}
	})
}

func FuzzCSV(f *testing.F) {
	for _, s := range []string{"id,text\n1,a\n2,\"b\nc\"\n", "text\n\"unterminated\n", "text,x\n1\n1,2,3\n", "\ufefftext\r\na\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		file := writeFile(t, dir, "f.csv", data)
		r, err := Open(file, Options{})
		if err != nil {
			return // no header or no text column
		}
		defer r.Close()
		for i := 0; ; i++ {
			if i > len(data)+2 {
				t.Fatal("reader does not terminate")
			}
			rec, err := r.Next()
			var me *MalformedError
			if err == io.EOF || (err != nil && !errors.As(err, &me)) {
				return
			}
			if err == nil && !bytes.Contains(data, rec.Raw) {
				t.Fatalf("Raw %q is not part of the input", rec.Raw)
			}
			if err == nil && filepath.Base(rec.Source.Path) != "f.csv" {
				t.Fatal("bad source")
			}
		}
	})
}

func TestSWARSpecial(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			word := []byte("aaaaaaaa")
			word[pos] = byte(c)
			if got := swarSpecial(binary.LittleEndian.Uint64(word)); got != strSpecial[c] {
				t.Fatalf("byte 0x%02x at %d: swarSpecial %v, want %v", c, pos, got, strSpecial[c])
			}
		}
	}
}
