package dataset

import (
	"bytes"
	"fmt"
	"io"
	"unicode/utf8"
)

// textReader reads plain text, Markdown or HTML: a file is one document, or
// one document per non-blank line.
type textReader struct {
	*stream
	lines *lineReader // nil in whole-file mode
	max   int
	done  bool
}

func newTextReader(s *stream, opts Options) (*textReader, error) {
	r := &textReader{stream: s, max: opts.MaxRecordBytes}
	if opts.Split == SplitLines {
		r.lines = newLineReader(s, opts.MaxRecordBytes)
	}
	return r, nil
}

func (r *textReader) Next() (*Record, error) {
	if r.done {
		return nil, io.EOF
	}
	if r.lines == nil {
		return r.whole()
	}
	for {
		line, eol, size, err := r.lines.next()
		src := Source{Path: r.path, Line: r.lines.line}
		switch {
		case err == io.EOF:
			return nil, r.eof()
		case err == errTooLong:
			return nil, &MalformedError{Source: src, Reason: fmt.Sprintf("record longer than %d bytes", r.max)}
		case err != nil:
			return nil, err
		}
		text := line
		if r.lines.line == 1 {
			text = bytes.TrimPrefix(text, utf8BOM)
		}
		if isBlank(text) {
			continue
		}
		if !utf8.Valid(text) {
			return nil, &MalformedError{Source: src, Reason: "invalid UTF-8 in field text"}
		}
		return &Record{
			ID:     src.String(),
			Source: src,
			Fields: []Field{{Name: "text", Text: string(text)}},
			Raw:    bytes.Clone(line),
			Size:   int64(size),
			eol:    eol,
		}, nil
	}
}

func (r *textReader) eof() error {
	r.done = true
	if err := r.finish(); err != nil {
		return err
	}
	return io.EOF
}

// whole reads the whole file as one document.
func (r *textReader) whole() (*Record, error) {
	r.done = true
	data, err := io.ReadAll(io.LimitReader(r.stream, int64(r.max)+1))
	if err != nil {
		return nil, err
	}
	src := Source{Path: r.path}
	size := int64(len(data))
	if len(data) > r.max {
		if _, err := io.Copy(io.Discard, r.stream); err != nil {
			return nil, err
		}
		if err := r.finish(); err != nil {
			return nil, err
		}
		return nil, &MalformedError{Source: src, Reason: fmt.Sprintf("record longer than %d bytes", r.max)}
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	if !utf8.Valid(data) {
		return nil, &MalformedError{Source: src, Reason: "invalid UTF-8 in field text at byte " + fmt.Sprint(firstInvalidUTF8(data))}
	}
	rec := &Record{ID: src.String(), Source: src, Raw: data, Size: size}
	if text := bytes.TrimPrefix(data, utf8BOM); len(text) > 0 {
		rec.Fields = []Field{{Name: "text", Text: string(text)}}
	}
	return rec, nil
}
