package dataset

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// recorder keeps the bytes a csv.Reader has consumed since the start of the
// current record, so that records can be returned byte for byte.
type recorder struct {
	r    io.Reader
	buf  []byte
	base int64 // stream offset of buf[0]
	max  int
}

func (rc *recorder) Read(p []byte) (int, error) {
	if len(rc.buf) > rc.max+(1<<20) {
		return 0, errCSVTooLong
	}
	n, err := rc.r.Read(p)
	rc.buf = append(rc.buf, p[:n]...)
	return n, err
}

// span returns the bytes in [from, to) and forgets those before to.
func (rc *recorder) span(from, to int64) []byte {
	b := bytes.Clone(rc.buf[from-rc.base : to-rc.base])
	rest := rc.buf[to-rc.base:]
	rc.buf = append(rc.buf[:0], rest...)
	rc.base = to
	return b
}

var errCSVTooLong = errors.New("CSV record too long (unterminated quoted field?)")

// csvCol is a selected column.
type csvCol struct {
	index int
	name  string
}

// csvReader reads CSV or TSV with a header row.
type csvReader struct {
	*stream
	rc        *recorder
	cr        *csv.Reader
	header    []string
	headerRaw []byte
	text      []csvCol
	id        int
	keep      []csvCol
	off       int64 // offset of the next record
	max       int
	done      bool
}

func newCSVReader(s *stream, opts Options, comma rune) (*csvReader, error) {
	r := &csvReader{stream: s, rc: &recorder{r: s, max: opts.MaxRecordBytes}, max: opts.MaxRecordBytes, id: -1}
	r.cr = csv.NewReader(r.rc)
	r.cr.Comma = comma
	r.cr.ReuseRecord = true
	header, err := r.cr.Read()
	if err == io.EOF {
		r.done = true
		return r, r.finish()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: CSV header: %w", s.path, err)
	}
	r.header = append([]string(nil), header...)
	if len(r.header) > 0 {
		r.header[0] = strings.TrimPrefix(r.header[0], "\ufeff")
	}
	r.off = r.cr.InputOffset()
	r.headerRaw = r.rc.span(0, r.off)
	col := func(name string) int {
		for i, h := range r.header {
			if h == name {
				return i
			}
		}
		return -1
	}
	if len(opts.TextFields) > 0 {
		for _, f := range opts.TextFields {
			if i := col(f); i >= 0 {
				r.text = append(r.text, csvCol{i, f})
			}
		}
		if len(r.text) == 0 {
			return nil, fmt.Errorf("%s: no column named %s (columns: %s)", s.path, strings.Join(opts.TextFields, ", "), strings.Join(r.header, ", "))
		}
	} else {
		for _, f := range autoFields {
			for i, h := range r.header {
				if strings.EqualFold(strings.TrimSpace(h), f) {
					r.text = append(r.text, csvCol{i, h})
				}
			}
		}
		if len(r.text) == 0 {
			return nil, fmt.Errorf("%s: no text column (use --text-field; columns: %s)", s.path, strings.Join(r.header, ", "))
		}
	}
	r.id = col(opts.IDField)
	for _, f := range opts.KeepFields {
		if i := col(f); i >= 0 {
			r.keep = append(r.keep, csvCol{i, f})
		}
	}
	return r, nil
}

func (r *csvReader) Next() (*Record, error) {
	if r.done {
		return nil, io.EOF
	}
	row, err := r.cr.Read()
	if err == io.EOF {
		r.done = true
		if err := r.finish(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	var pe *csv.ParseError
	if err != nil && !errors.As(err, &pe) {
		r.done = true
		if errors.Is(err, errCSVTooLong) {
			return nil, fmt.Errorf("%s: %w", r.path, err)
		}
		return nil, err
	}
	start, end := r.off, r.cr.InputOffset()
	r.off = end
	raw := r.rc.span(start, end)
	if pe != nil {
		line := pe.StartLine
		if pe.Err == csv.ErrFieldCount {
			return nil, &MalformedError{Source: Source{Path: r.path, Line: line},
				Reason: fmt.Sprintf("row has %d fields, header has %d", len(row), len(r.header))}
		}
		return nil, &MalformedError{Source: Source{Path: r.path, Line: line}, Reason: pe.Err.Error()}
	}
	line, _ := r.cr.FieldPos(0)
	src := Source{Path: r.path, Line: line}
	if len(raw) > r.max {
		return nil, &MalformedError{Source: src, Reason: fmt.Sprintf("record longer than %d bytes", r.max)}
	}
	rec := &Record{Source: src, Size: end - start}
	rec.Raw, rec.eol = trimEOL(raw)
	for _, c := range r.text {
		v := row[c.index]
		if !utf8.ValidString(v) {
			return nil, &MalformedError{Source: src, Reason: "invalid UTF-8 in field " + c.name}
		}
		if v != "" {
			rec.Fields = append(rec.Fields, Field{Name: c.name, Text: v})
		}
	}
	if !utf8.Valid(raw) {
		return nil, &MalformedError{Source: src, Reason: "invalid UTF-8 at byte " + fmt.Sprint(firstInvalidUTF8(raw))}
	}
	if r.id >= 0 && row[r.id] != "" {
		rec.ID = row[r.id]
	} else {
		rec.ID = src.String()
	}
	if len(r.keep) > 0 {
		rec.Meta = make(map[string]string, len(r.keep))
		for _, c := range r.keep {
			rec.Meta[c.name] = row[c.index]
		}
	}
	return rec, nil
}
