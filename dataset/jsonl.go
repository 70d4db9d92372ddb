package dataset

import (
	"bytes"
	"fmt"
	"io"
)

// jsonlReader reads JSON Lines.
type jsonlReader struct {
	*stream
	lines *lineReader
	x     *extractor
	done  bool
}

func newJSONLReader(s *stream, opts Options) (*jsonlReader, error) {
	x, err := newExtractor(opts)
	if err != nil {
		return nil, err
	}
	return &jsonlReader{stream: s, lines: newLineReader(s, opts.MaxRecordBytes), x: x}, nil
}

func (r *jsonlReader) Next() (*Record, error) {
	if r.done {
		return nil, io.EOF
	}
	for {
		line, eol, size, err := r.lines.next()
		src := Source{Path: r.path, Line: r.lines.line}
		switch {
		case err == io.EOF:
			r.done = true
			if err := r.finish(); err != nil {
				return nil, err
			}
			return nil, io.EOF
		case err == errTooLong:
			return nil, &MalformedError{Source: src, Reason: fmt.Sprintf("record longer than %d bytes", r.lines.max)}
		case err != nil:
			return nil, err
		}
		if isBlank(line) {
			continue
		}
		doc := line
		if r.lines.line == 1 {
			doc = bytes.TrimPrefix(doc, utf8BOM)
		}
		rec := &Record{Source: src, Size: int64(size), eol: eol}
		if reason := r.x.extract(doc, rec); reason != "" {
			return nil, &MalformedError{Source: src, Reason: reason}
		}
		rec.Raw = bytes.Clone(line)
		return rec, nil
	}
}
