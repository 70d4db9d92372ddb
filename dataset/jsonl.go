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
	p     *Parser
	done  bool
}

var _ RawReader = (*jsonlReader)(nil)

func newJSONLReader(s *stream, opts Options) (*jsonlReader, error) {
	p, err := newParser(opts)
	if err != nil {
		return nil, err
	}
	return &jsonlReader{stream: s, lines: newLineReader(s, opts.MaxRecordBytes), p: p}, nil
}

func (r *jsonlReader) Next() (*Record, error) {
	rec, err := r.NextRaw()
	if err != nil {
		return nil, err
	}
	if err := r.p.Parse(rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// NextRaw returns the next non-blank line as an unparsed record.
func (r *jsonlReader) NextRaw() (*Record, error) {
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
		return &Record{Source: src, Size: int64(size), eol: eol, Raw: bytes.Clone(line)}, nil
	}
}

// RawReader is a Reader whose records can be read apart from being parsed,
// so that parsing (the larger part of reading) can run on other goroutines
// than the one reading the file. NextRaw returns the next record with only
// Source, Raw and Size set (and the record's line ending, for Split);
// Parser.Parse then completes it, or reports it malformed, exactly as Next
// would have. Records that cannot even be cut out of the file (a line over
// Options.MaxRecordBytes) are reported by NextRaw. JSONL readers implement
// it.
type RawReader interface {
	Reader
	// NextRaw returns the next record, unparsed; io.EOF at the end; a
	// *MalformedError for a record that could not be read (call NextRaw
	// again to continue); any other error is fatal.
	NextRaw() (*Record, error)
}

// Parser completes the records a RawReader returns. A Parser is not safe
// for concurrent use: give every goroutine its own.
type Parser struct {
	x *extractor
}

// NewParser returns a Parser for the records of RawReaders opened with opts.
func NewParser(opts Options) (*Parser, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return newParser(opts)
}

func newParser(opts Options) (*Parser, error) {
	x, err := newExtractor(opts)
	if err != nil {
		return nil, err
	}
	return &Parser{x: x}, nil
}

// Parse parses rec.Raw and sets rec's ID, Fields and Meta. A record that
// cannot be parsed is reported as a *MalformedError naming rec.Source, and
// rec is left without ID and Fields.
func (p *Parser) Parse(rec *Record) error {
	doc := rec.Raw
	if rec.Source.Line == 1 {
		doc = bytes.TrimPrefix(doc, utf8BOM)
	}
	if reason := p.x.extract(doc, rec); reason != "" {
		rec.ID, rec.Fields, rec.Meta = "", nil, nil
		return &MalformedError{Source: rec.Source, Reason: reason}
	}
	return nil
}
