package dataset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"sync"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
)

// parquetRow is what a Parquet Record carries for Split.
type parquetRow struct {
	row    parquet.Row
	schema *parquet.Schema
}

// hashingReaderAt hashes the file as the Parquet reader reads it: every
// read that extends the contiguous hashed prefix feeds the hash, and the
// rest is read once at the end.
type hashingReaderAt struct {
	f      *os.File
	mu     sync.Mutex
	h      hash.Hash
	hashed int64
}

func (r *hashingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.f.ReadAt(p, off)
	r.mu.Lock()
	if off <= r.hashed && off+int64(n) > r.hashed {
		r.h.Write(p[r.hashed-off : n])
		r.hashed = off + int64(n)
	}
	r.mu.Unlock()
	return n, err
}

// sum hashes what was not read yet and returns the hex digest.
func (r *hashingReaderAt) sum(size int64) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hashed < size {
		if _, err := io.Copy(r.h, io.NewSectionReader(r.f, r.hashed, size-r.hashed)); err != nil {
			return "", err
		}
		r.hashed = size
	}
	return hex.EncodeToString(r.h.Sum(nil)), nil
}

// parquetReader streams the rows of a Parquet file a batch at a time.
type parquetReader struct {
	path   string
	f      *os.File
	ra     *hashingReaderAt
	size   int64
	pr     *parquet.Reader
	schema *parquet.Schema
	x      *extractor
	rows   []parquet.Row
	n, i   int   // rows in the batch, next row of the batch
	index  int64 // rows returned
	total  int64
	sum    string
	done   bool
	jbuf   bytes.Buffer
}

// openParquetFile opens path as a Parquet file, naming it name in errors;
// parquet-go panics on some corrupt files, which become errors here.
func openParquetFile(path, name string) (f *os.File, ra *hashingReaderAt, pf *parquet.File, size int64, err error) {
	f, err = os.Open(path)
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("open %s: %w", name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, nil, 0, fmt.Errorf("stat %s: %w", name, err)
	}
	size = st.Size()
	magic := make([]byte, 4)
	if _, err := f.ReadAt(magic, 0); err == nil && (bytes.HasPrefix(magic, gzipMagic) || bytes.Equal(magic, zstdMagic)) {
		f.Close()
		return nil, nil, nil, 0, fmt.Errorf("%s: compressed Parquet files are not supported (Parquet compresses its pages itself)", name)
	}
	ra = &hashingReaderAt{f: f, h: sha256.New()}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: corrupt Parquet file: %v", name, p)
		}
		if err != nil {
			f.Close()
		}
	}()
	pf, err = parquet.OpenFile(ra, size, parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true))
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	return f, ra, pf, size, nil
}

func openParquet(f File, opts Options) (Reader, error) {
	if f.Compression != "" {
		return nil, fmt.Errorf("%s: compressed Parquet files are not supported (Parquet compresses its pages itself)", f.DisplayName())
	}
	x, err := newExtractor(opts)
	if err != nil {
		return nil, err
	}
	fh, ra, pf, size, err := openParquetFile(f.Path, f.DisplayName())
	if err != nil {
		return nil, err
	}
	r := &parquetReader{path: f.DisplayName(), f: fh, ra: ra, size: size, x: x, schema: pf.Schema(), total: pf.NumRows()}
	r.pr = parquet.NewReader(pf)
	r.rows = make([]parquet.Row, 64)
	return r, nil
}

func (r *parquetReader) fill() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: corrupt Parquet file: %v", r.path, p)
		}
	}()
	n, err := r.pr.ReadRows(r.rows)
	r.n, r.i = n, 0
	if err == io.EOF && n > 0 {
		err = nil
	}
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%s: read rows: %w", r.path, err)
	}
	return err
}

func (r *parquetReader) Next() (*Record, error) {
	if r.done {
		return nil, io.EOF
	}
	if r.i >= r.n {
		if err := r.fill(); err != nil {
			r.done = true
			if err != io.EOF {
				return nil, err
			}
			sum, err := r.ra.sum(r.size)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", r.path, err)
			}
			r.sum = sum
			return nil, io.EOF
		}
	}
	row := r.rows[r.i].Clone()
	r.i++
	r.index++
	src := Source{Path: r.path, Line: int(r.index)}
	rec := &Record{Source: src, row: &parquetRow{row: row, schema: r.schema}}
	doc, reason := r.toJSON(row)
	if reason == "" {
		reason = r.x.extract(doc, rec)
	}
	if reason != "" {
		return nil, &MalformedError{Source: src, Reason: reason}
	}
	if r.total > 0 {
		rec.Size = r.size / r.total
	}
	return rec, nil
}

// toJSON renders a row as a JSON object so that text fields are selected
// exactly as for JSON records.
func (r *parquetReader) toJSON(row parquet.Row) (doc []byte, reason string) {
	defer func() {
		if p := recover(); p != nil {
			reason = fmt.Sprintf("cannot decode row: %v", p)
		}
	}()
	m := map[string]any{}
	if err := r.schema.Reconstruct(&m, row); err != nil {
		return nil, "cannot decode row: " + err.Error()
	}
	v, bad := jsonable(m, "")
	if bad != "" {
		return nil, "invalid UTF-8 in field " + bad
	}
	r.jbuf.Reset()
	enc := json.NewEncoder(&r.jbuf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, "cannot decode row: " + err.Error()
	}
	return bytes.TrimSuffix(r.jbuf.Bytes(), []byte("\n")), ""
}

// jsonable turns byte slices into strings (Parquet BYTE_ARRAY columns
// without a string annotation) and reports the first string that is not
// valid UTF-8, which encoding/json would silently replace.
func jsonable(v any, name string) (any, string) {
	switch t := v.(type) {
	case []byte:
		return jsonable(string(t), name)
	case string:
		if !utf8.ValidString(t) {
			return nil, name
		}
		return t, ""
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			nv, bad := jsonable(t[k], joinName(name, k))
			if bad != "" {
				return nil, bad
			}
			t[k] = nv
		}
		return t, ""
	case []any:
		for i := range t {
			nv, bad := jsonable(t[i], fmt.Sprintf("%s[%d]", name, i))
			if bad != "" {
				return nil, bad
			}
			t[i] = nv
		}
		return t, ""
	default:
		return v, ""
	}
}

func (r *parquetReader) BytesRead() int64 {
	if r.done {
		return r.size
	}
	if r.total == 0 {
		return 0
	}
	return r.size * r.index / r.total
}

func (r *parquetReader) SHA256() string { return r.sum }

func (r *parquetReader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.pr.Close()
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	r.f = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", r.path, err)
	}
	return nil
}
