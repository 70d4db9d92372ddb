package dataset

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// writeFile writes data to dir/name and returns it as a File.
func writeFile(t testing.TB, dir, name string, data []byte) File {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	format, comp := DetectFormat(name)
	return File{Path: p, Rel: strings.TrimPrefix(filepath.ToSlash(name), "in/"), Size: int64(len(data)), Format: format, Compression: comp}
}

// result is what reading a file produced.
type result struct {
	recs      []*Record
	malformed []string // MalformedError messages, with the directory stripped
	sum       string
	bytesRead int64
}

// readAll reads f to the end; a fatal error fails the test.
func readAll(t testing.TB, f File, opts Options) result {
	t.Helper()
	res, err := tryReadAll(f, opts)
	if err != nil {
		t.Fatalf("read %s: %v", f.Path, err)
	}
	return res
}

func tryReadAll(f File, opts Options) (result, error) {
	var res result
	r, err := Open(f, opts)
	if err != nil {
		return res, err
	}
	defer r.Close()
	dir := filepath.Dir(f.Path) + string(os.PathSeparator)
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		var me *MalformedError
		if errors.As(err, &me) {
			res.malformed = append(res.malformed, strings.TrimPrefix(me.Error(), dir))
			continue
		}
		if err != nil {
			return res, err
		}
		res.recs = append(res.recs, rec)
	}
	res.sum = r.SHA256()
	res.bytesRead = r.BytesRead()
	return res, r.Close()
}

// fieldsOf renders a record's fields as "name=text" strings.
func fieldsOf(r *Record) []string {
	var out []string
	for _, f := range r.Fields {
		out = append(out, f.Name+"="+f.Text)
	}
	return out
}

func TestJSONLAutoDetect(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []string
		id   string
	}{
		{"text", `{"id":"a1","text":"hello","label":"x"}`, []string{"text=hello"}, "a1"},
		{"content", `{"content":"c","source":"web"}`, []string{"content=c"}, "t.jsonl:1"},
		{"prompt response", `{"prompt":"p","response":"r","score":3}`, []string{"prompt=p", "response=r"}, "t.jsonl:1"},
		{"prompt completion", `{"completion":"c","prompt":"p"}`, []string{"prompt=p", "completion=c"}, "t.jsonl:1"},
		{"dpo", `{"prompt":"p","chosen":"good","rejected":"bad"}`, []string{"prompt=p", "chosen=good", "rejected=bad"}, "t.jsonl:1"},
		{"alpaca", `{"instruction":"do","input":"","output":"done"}`, []string{"instruction=do", "output=done"}, "t.jsonl:1"},
		{"chat role content", `{"id":7,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}`,
			[]string{"messages[0].content=hi", "messages[1].content=yo"}, "7"},
		{"sharegpt", `{"conversations":[{"from":"human","value":"q"},{"from":"gpt","value":"a"}]}`,
			[]string{"conversations[0].value=q", "conversations[1].value=a"}, "t.jsonl:1"},
		{"content parts", `{"messages":[{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"http://x"}},{"type":"text","text":"here"}]}]}`,
			[]string{"messages[0].content[0].text=look", "messages[0].content[2].text=here"}, "t.jsonl:1"},
		{"qa", `{"question":"q?","answer":"a!"}`, []string{"question=q?", "answer=a!"}, "t.jsonl:1"},
		{"body", `{"body":"b","url":"http://u"}`, []string{"body=b"}, "t.jsonl:1"},
		{"document", `{"document":"d","timestamp":1}`, []string{"document=d"}, "t.jsonl:1"},
		{"union in order", `{"response":"evil","text":"benign"}`, []string{"text=benign", "response=evil"}, "t.jsonl:1"},
		{"duplicate key", `{"text":"one","text":"two"}`, []string{"text=one", "text=two"}, "t.jsonl:1"},
		{"escaped key and value", `{"te\u0078t":"a\nb \u00e9 \ud83d\ude00"}`, []string{"text=a\nb é 😀"}, "t.jsonl:1"},
		{"empty text skipped", `{"text":"","id":"e"}`, nil, "e"},
		{"numeric id", `{"id":1.50e3,"text":"x"}`, []string{"text=x"}, "1.50e3"},
		{"metadata never scanned", `{"text":"t","metadata":{"content":"m"},"meta":"mm","label":"l","attack":"a"}`, []string{"text=t"}, "t.jsonl:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFile(t, t.TempDir(), "t.jsonl", []byte(tt.line+"\n"))
			res := readAll(t, f, Options{})
			if len(res.malformed) > 0 || len(res.recs) != 1 {
				t.Fatalf("got %d records, malformed %v", len(res.recs), res.malformed)
			}
			r := res.recs[0]
			if got := fieldsOf(r); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("fields = %q, want %q", got, tt.want)
			}
			wantID := tt.id
			if strings.HasPrefix(wantID, "t.jsonl") {
				wantID = filepath.Join(filepath.Dir(f.Path), wantID)
			}
			if r.ID != wantID {
				t.Errorf("ID = %q, want %q", r.ID, wantID)
			}
			if string(r.Raw) != tt.line {
				t.Errorf("Raw = %q", r.Raw)
			}
			if r.Size != int64(len(tt.line)+1) {
				t.Errorf("Size = %d, want %d", r.Size, len(tt.line)+1)
			}
		})
	}
}

func TestJSONLTextFields(t *testing.T) {
	line := `{"meta":{"body":"mb","n":1,"tags":["x","y"]},"messages":[{"role":"user","content":"m0"},{"role":"assistant","content":"m1"}],"text":"t","score":5,"pages":[{"body":"p0"},{"body":"p1"}]}`
	tests := []struct {
		name      string
		fields    []string
		want      []string
		malformed string
	}{
		{"dotted", []string{"meta.body"}, []string{"meta.body=mb"}, ""},
		{"flag order", []string{"meta.body", "text"}, []string{"meta.body=mb", "text=t"}, ""},
		{"array fan-out", []string{"messages"}, []string{"messages[0].content=m0", "messages[1].content=m1"}, ""},
		{"index", []string{"messages[1].content"}, []string{"messages[1].content=m1"}, ""},
		{"key through array", []string{"pages.body"}, []string{"pages[0].body=p0", "pages[1].body=p1"}, ""},
		{"whole object", []string{"meta"}, []string{"meta.body=mb", "meta.tags[0]=x", "meta.tags[1]=y"}, ""},
		{"some missing is fine", []string{"nope", "text"}, []string{"text=t"}, ""},
		{"all missing", []string{"nope", "meta.nope"}, nil, "t.jsonl:1: malformed record: missing text field nope, meta.nope"},
		{"wrong type", []string{"score"}, nil, "t.jsonl:1: malformed record: text field score is a number, not a string"},
		{"index out of range", []string{"messages[5].content"}, nil, "t.jsonl:1: malformed record: missing text field messages[5].content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFile(t, t.TempDir(), "t.jsonl", []byte(line+"\n"))
			res := readAll(t, f, Options{TextFields: tt.fields})
			if tt.malformed != "" {
				if len(res.malformed) != 1 || res.malformed[0] != tt.malformed {
					t.Fatalf("malformed = %q, want %q", res.malformed, tt.malformed)
				}
				return
			}
			if len(res.recs) != 1 {
				t.Fatalf("got %d records, malformed %q", len(res.recs), res.malformed)
			}
			if got := fieldsOf(res.recs[0]); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("fields = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOptionsErrors(t *testing.T) {
	f := writeFile(t, t.TempDir(), "t.jsonl", []byte(`{"text":"x"}`))
	for _, opts := range []Options{
		{Split: "paragraphs"},
		{TextFields: []string{"a..b"}},
		{TextFields: []string{"a[x]"}},
	} {
		if _, err := Open(f, opts); err == nil {
			t.Errorf("Open with %+v: no error", opts)
		}
	}
}

func TestKeepFields(t *testing.T) {
	f := writeFile(t, t.TempDir(), "t.jsonl", []byte(`{"uid":"u9","text":"x","label":1,"source":"web","tags":["a"],"gone":null}`+"\n"))
	res := readAll(t, f, Options{IDField: "uid", KeepFields: []string{"label", "source", "tags", "gone", "absent"}})
	r := res.recs[0]
	want := map[string]string{"label": "1", "source": "web", "tags": `["a"]`, "gone": ""}
	if !reflect.DeepEqual(r.Meta, want) {
		t.Errorf("Meta = %q, want %q", r.Meta, want)
	}
	if r.ID != "u9" {
		t.Errorf("ID = %q", r.ID)
	}
}

func TestJSONLMalformed(t *testing.T) {
	input := strings.Join([]string{
		`{"text":"ok1"}`,
		`{"text":"ok2"`,
		``,
		`[1,2]`,
		`{"text":5}`,
		`{"label":"x"}`,
		"{\"text\":\"bad \xff utf8\"}",
		"{\"label\":\"\xfe\",\"text\":\"fine\"}",
		`{"text":"a"} x`,
		`{"text":"tab	inside"}`,
		`{"text":"\q"}`,
		`   `,
		`{"text":"ok3"}`,
	}, "\n")
	f := writeFile(t, t.TempDir(), "data.jsonl", []byte(input))
	res := readAll(t, f, Options{})
	want := []string{
		"data.jsonl:2: malformed record: invalid JSON: unexpected end of input at byte 13",
		"data.jsonl:4: malformed record: not a JSON object (got array)",
		"data.jsonl:5: malformed record: text field text is a number, not a string",
		"data.jsonl:6: malformed record: no text field (use --text-field)",
		"data.jsonl:7: malformed record: invalid UTF-8 in field text",
		"data.jsonl:8: malformed record: invalid UTF-8 at byte 10",
		"data.jsonl:9: malformed record: invalid JSON: invalid character 'x' after top-level value at byte 13",
		"data.jsonl:10: malformed record: invalid JSON: control character 0x09 in string at byte 12",
		"data.jsonl:11: malformed record: invalid JSON: invalid escape 'q' in string at byte 10",
	}
	if !reflect.DeepEqual(res.malformed, want) {
		t.Errorf("malformed =\n%s\nwant\n%s", strings.Join(res.malformed, "\n"), strings.Join(want, "\n"))
	}
	var lines []int
	for _, r := range res.recs {
		lines = append(lines, r.Source.Line)
	}
	if !reflect.DeepEqual(lines, []int{1, 13}) {
		t.Errorf("record lines = %v, want [1 13]", lines)
	}
}

func TestJSONLCRLFAndBOM(t *testing.T) {
	f := writeFile(t, t.TempDir(), "t.jsonl", []byte("\ufeff{\"text\":\"a\"}\r\n\r\n{\"text\":\"b\"}\r\n{\"text\":\"c\"}"))
	res := readAll(t, f, Options{})
	if len(res.malformed) != 0 || len(res.recs) != 3 {
		t.Fatalf("records %d, malformed %q", len(res.recs), res.malformed)
	}
	want := []struct {
		raw, eol string
		line     int
	}{{"\ufeff{\"text\":\"a\"}", "\r\n", 1}, {`{"text":"b"}`, "\r\n", 3}, {`{"text":"c"}`, "", 4}}
	for i, w := range want {
		r := res.recs[i]
		if string(r.Raw) != w.raw || r.eol != w.eol || r.Source.Line != w.line {
			t.Errorf("record %d: raw %q eol %q line %d, want %+v", i, r.Raw, r.eol, r.Source.Line, w)
		}
	}
}

func TestJSONLHugeLine(t *testing.T) {
	big := strings.Repeat("word ", 600_000) // 3 MB
	input := `{"text":"small"}` + "\n" + `{"text":"` + big + `"}` + "\n" + `{"text":"after"}` + "\n"
	dir := t.TempDir()
	f := writeFile(t, dir, "t.jsonl", []byte(input))

	res := readAll(t, f, Options{})
	if len(res.recs) != 3 || res.recs[1].Fields[0].Text != big || res.recs[2].Fields[0].Text != "after" {
		t.Fatalf("huge line not read: %d records, malformed %q", len(res.recs), res.malformed)
	}

	res = readAll(t, f, Options{MaxRecordBytes: 1 << 20})
	if len(res.recs) != 2 || res.recs[1].Fields[0].Text != "after" || res.recs[1].Source.Line != 3 {
		t.Fatalf("records after huge line: %d", len(res.recs))
	}
	if want := []string{"t.jsonl:2: malformed record: record longer than 1048576 bytes"}; !reflect.DeepEqual(res.malformed, want) {
		t.Errorf("malformed = %q, want %q", res.malformed, want)
	}
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zst(t testing.TB, b []byte) []byte {
	w, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return w.EncodeAll(b, nil)
}

func TestCompressed(t *testing.T) {
	var plain bytes.Buffer
	for i := 0; i < 2000; i++ {
		plain.WriteString(`{"text":"some document text that repeats"}` + "\n")
	}
	multi := append(gz(t, plain.Bytes()[:plain.Len()/2]), gz(t, plain.Bytes()[plain.Len()/2:])...)
	tests := []struct {
		name string
		file string
		data []byte
	}{
		{"plain", "t.jsonl", plain.Bytes()},
		{"gzip", "t.jsonl.gz", gz(t, plain.Bytes())},
		{"gzip multistream", "t.jsonl.GZ", multi},
		{"zstd", "t.ndjson.zst", zst(t, plain.Bytes())},
		{"sniffed gzip", "t.jsonl", gz(t, plain.Bytes())},
		{"sniffed zstd", "t.jsonl", zst(t, plain.Bytes())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFile(t, t.TempDir(), tt.file, tt.data)
			if f.Format != FormatJSONL {
				t.Fatalf("format %q", f.Format)
			}
			res := readAll(t, f, Options{})
			if len(res.recs) != 2000 || len(res.malformed) != 0 {
				t.Fatalf("records %d malformed %d", len(res.recs), len(res.malformed))
			}
			sum := sha256.Sum256(tt.data)
			if res.sum != hex.EncodeToString(sum[:]) {
				t.Errorf("SHA256 = %s, want the on-disk file's", res.sum)
			}
			if res.bytesRead != int64(len(tt.data)) {
				t.Errorf("BytesRead = %d, want %d", res.bytesRead, len(tt.data))
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notGz := writeFile(t, dir, "bad.jsonl.gz", []byte(`{"text":"x"}`))
	corrupt := writeFile(t, dir, "corrupt.jsonl.gz", gz(t, bytes.Repeat([]byte(`{"text":"x"}`+"\n"), 100))[:40])
	unknown := writeFile(t, dir, "data.xyz", []byte(`{"text":"x"}`))
	missing := File{Path: filepath.Join(dir, "missing.jsonl"), Format: FormatJSONL}
	for _, f := range []File{notGz, corrupt, unknown, missing} {
		_, err := tryReadAll(f, Options{})
		if err == nil || !strings.Contains(err.Error(), f.Path) {
			t.Errorf("%s: error %v does not name the file", f.Rel, err)
		}
	}
	res := readAll(t, unknown, Options{Format: FormatJSONL})
	if len(res.recs) != 1 {
		t.Errorf("forced format: %d records", len(res.recs))
	}
}

func TestJSONArray(t *testing.T) {
	tests := []struct {
		name      string
		input     string
		want      []string // Raw of each record
		malformed []string
		fatal     bool
	}{
		{"array", ` [ {"text":"a"} , {"text":"b","x":[1,{"y":"]"}]}]` + "\n", []string{`{"text":"a"}`, `{"text":"b","x":[1,{"y":"]"}]}`}, nil, false},
		{"empty", "[]", nil, nil, false},
		{"empty file", "", nil, nil, false},
		{"single object", `{"text":"solo"}`, []string{`{"text":"solo"}`}, nil, false},
		{"bad elements continue", `[{"text":"a"},5,"s",{"text":tru},{"label":1},{"text":"z"}]`,
			[]string{`{"text":"a"}`, `{"text":"z"}`},
			[]string{
				"t.json:2: malformed record: not a JSON object (got number)",
				"t.json:3: malformed record: not a JSON object (got string)",
				"t.json:4: malformed record: invalid JSON: invalid character '}' at byte 11",
				"t.json:5: malformed record: no text field (use --text-field)",
			}, false},
		{"unterminated", `[{"text":"a"},{"text":"b`, []string{`{"text":"a"}`}, nil, true},
		{"missing comma", `[{"text":"a"} {"text":"b"}]`, []string{`{"text":"a"}`}, nil, true},
		{"trailing garbage", `[{"text":"a"}] x`, []string{`{"text":"a"}`}, nil, true},
		{"not json", `hello`, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFile(t, t.TempDir(), "t.json", []byte(tt.input))
			res, err := tryReadAll(f, Options{})
			if (err != nil) != tt.fatal {
				t.Fatalf("err = %v, want fatal %v", err, tt.fatal)
			}
			var raws []string
			for _, r := range res.recs {
				raws = append(raws, string(r.Raw))
			}
			if !reflect.DeepEqual(raws, tt.want) {
				t.Errorf("records = %q, want %q", raws, tt.want)
			}
			if !reflect.DeepEqual(res.malformed, tt.malformed) {
				t.Errorf("malformed = %q, want %q", res.malformed, tt.malformed)
			}
		})
	}
}

func TestCSV(t *testing.T) {
	input := "id,prompt,response,label\r\n" +
		"1,hello,world,safe\r\n" +
		"2,\"multi\r\nline \"\"quoted\"\"\",ok,bad\r\n" +
		"3,too,few\r\n" +
		"4,\"bare \"quote\",x,y\r\n" +
		"5,,empty prompt,z\r\n" +
		"6,\xff,x,y\r\n"
	f := writeFile(t, t.TempDir(), "t.csv", []byte(input))
	res := readAll(t, f, Options{KeepFields: []string{"label"}})
	type rec struct {
		id     string
		line   int
		fields []string
		raw    string
		label  string
	}
	var got []rec
	for _, r := range res.recs {
		got = append(got, rec{r.ID, r.Source.Line, fieldsOf(r), string(r.Raw) + r.eol, r.Meta["label"]})
	}
	want := []rec{
		{"1", 2, []string{"prompt=hello", "response=world"}, "1,hello,world,safe\r\n", "safe"},
		{"2", 3, []string{"prompt=multi\nline \"quoted\"", "response=ok"}, "2,\"multi\r\nline \"\"quoted\"\"\",ok,bad\r\n", "bad"},
		{"5", 7, []string{"response=empty prompt"}, "5,,empty prompt,z\r\n", "z"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("records =\n%+v\nwant\n%+v", got, want)
	}
	wantBad := []string{
		"t.csv:5: malformed record: row has 3 fields, header has 4",
		`t.csv:6: malformed record: extraneous or missing " in quoted-field`,
		"t.csv:8: malformed record: invalid UTF-8 in field prompt",
	}
	if !reflect.DeepEqual(res.malformed, wantBad) {
		t.Errorf("malformed = %q, want %q", res.malformed, wantBad)
	}
}

func TestCSVSelection(t *testing.T) {
	dir := t.TempDir()
	tsv := writeFile(t, dir, "t.tsv", []byte("Text\tbody\tscore\nA\tB\t1\n"))
	res := readAll(t, tsv, Options{})
	if got := fieldsOf(res.recs[0]); !reflect.DeepEqual(got, []string{"Text=A", "body=B"}) {
		t.Errorf("auto fields = %q", got)
	}
	res = readAll(t, tsv, Options{TextFields: []string{"score"}})
	if got := fieldsOf(res.recs[0]); !reflect.DeepEqual(got, []string{"score=1"}) {
		t.Errorf("explicit fields = %q", got)
	}
	noText := writeFile(t, dir, "n.csv", []byte("a,b\n1,2\n"))
	if _, err := Open(noText, Options{}); err == nil || !strings.Contains(err.Error(), "no text column") {
		t.Errorf("no text column: err = %v", err)
	}
	if _, err := Open(noText, Options{TextFields: []string{"c"}}); err == nil || !strings.Contains(err.Error(), "no column named c") {
		t.Errorf("missing column: err = %v", err)
	}
	empty := writeFile(t, dir, "e.csv", nil)
	if res := readAll(t, empty, Options{}); len(res.recs)+len(res.malformed) != 0 {
		t.Errorf("empty CSV gave records")
	}
}

func TestText(t *testing.T) {
	dir := t.TempDir()
	input := "\ufeffline one\n\n  \r\nline two\r\nbad \xff\nlast"
	f := writeFile(t, dir, "doc.md", []byte(input))

	res := readAll(t, f, Options{Split: SplitLines})
	var got []string
	for _, r := range res.recs {
		got = append(got, r.Source.String()[len(dir)+1:]+" "+fieldsOf(r)[0])
	}
	want := []string{"doc.md:1 text=line one", "doc.md:4 text=line two", "doc.md:6 text=last"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
	if want := []string{"doc.md:5: malformed record: invalid UTF-8 in field text"}; !reflect.DeepEqual(res.malformed, want) {
		t.Errorf("malformed = %q", res.malformed)
	}

	good := writeFile(t, dir, "page.html", []byte("<p>hi</p>\n"))
	res = readAll(t, good, Options{})
	if len(res.recs) != 1 || res.recs[0].Source.Line != 0 || string(res.recs[0].Raw) != "<p>hi</p>\n" || res.recs[0].ID != good.Path {
		t.Fatalf("whole file: %+v", res.recs)
	}
	res = readAll(t, good, Options{MaxRecordBytes: 4})
	if len(res.malformed) != 1 || !strings.Contains(res.malformed[0], "record longer than 4 bytes") || res.sum == "" {
		t.Errorf("over limit: %q (sum %q)", res.malformed, res.sum)
	}
	res = readAll(t, f, Options{})
	if len(res.malformed) != 1 || !strings.Contains(res.malformed[0], "invalid UTF-8") {
		t.Errorf("whole file with bad UTF-8: %q", res.malformed)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
