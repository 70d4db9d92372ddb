package dataset

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// jsonArrayReader streams the elements of a top-level JSON array (or reads
// a single top-level object as one record). It finds element boundaries with
// a small scanner, so a bad element that is still balanced is reported as
// malformed and reading goes on.
type jsonArrayReader struct {
	*stream
	br      *bufio.Reader
	x       *extractor
	max     int
	buf     []byte
	off     int64 // decompressed bytes consumed, for error messages
	index   int   // elements read
	started bool
	single  bool // the document is one object, not an array
	done    bool
}

func newJSONArrayReader(s *stream, opts Options) (*jsonArrayReader, error) {
	x, err := newExtractor(opts)
	if err != nil {
		return nil, err
	}
	return &jsonArrayReader{stream: s, br: bufio.NewReaderSize(s, 256<<10), x: x, max: opts.MaxRecordBytes}, nil
}

func (r *jsonArrayReader) fatal(format string, args ...any) error {
	r.done = true
	return fmt.Errorf("%s: invalid JSON array: %s at byte %d", r.path, fmt.Sprintf(format, args...), r.off)
}

func (r *jsonArrayReader) readByte() (byte, error) {
	c, err := r.br.ReadByte()
	if err == nil {
		r.off++
	}
	return c, err
}

func (r *jsonArrayReader) unreadByte() {
	r.br.UnreadByte()
	r.off--
}

// skipWS skips whitespace and returns the next byte, or io.EOF.
func (r *jsonArrayReader) skipWS() (byte, error) {
	for {
		c, err := r.readByte()
		if err != nil {
			return 0, err
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c, nil
		}
	}
}

func (r *jsonArrayReader) eof() (*Record, error) {
	r.done = true
	if err := r.finish(); err != nil {
		return nil, err
	}
	return nil, io.EOF
}

func (r *jsonArrayReader) Next() (*Record, error) {
	if r.done {
		return nil, io.EOF
	}
	start := r.off
	if !r.started {
		r.started = true
		if b, _ := r.br.Peek(3); bytes.Equal(b, utf8BOM) {
			r.br.Discard(3)
			r.off += 3
		}
		c, err := r.skipWS()
		switch {
		case err == io.EOF:
			return r.eof() // an empty file holds no records
		case err != nil:
			return nil, err
		case c == '{':
			r.single = true
			r.unreadByte()
		case c != '[':
			return nil, r.fatal("want '[' or '{', got %s", quoteChar(c))
		}
	}
	c, err := r.skipWS()
	if err == io.EOF {
		if r.single && r.index > 0 {
			return r.eof()
		}
		return nil, r.fatal("unexpected end of input")
	}
	if err != nil {
		return nil, err
	}
	if r.single {
		if r.index > 0 {
			return nil, r.fatal("invalid character %s after top-level value", quoteChar(c))
		}
	} else {
		if c == ']' {
			if c, err := r.skipWS(); err != io.EOF {
				if err != nil {
					return nil, err
				}
				return nil, r.fatal("invalid character %s after top-level value", quoteChar(c))
			}
			return r.eof()
		}
		if r.index > 0 {
			if c != ',' {
				return nil, r.fatal("invalid character %s after array element", quoteChar(c))
			}
			if c, err = r.skipWS(); err != nil {
				if err == io.EOF {
					return nil, r.fatal("unexpected end of input")
				}
				return nil, err
			}
		}
		if c == ',' || c == ']' {
			return nil, r.fatal("invalid character %s looking for array element", quoteChar(c))
		}
	}
	r.unreadByte()
	tooLong, err := r.element()
	if err != nil {
		return nil, err
	}
	r.index++
	src := Source{Path: r.path, Line: r.index}
	if tooLong {
		return nil, &MalformedError{Source: src, Reason: fmt.Sprintf("record longer than %d bytes", r.max)}
	}
	rec := &Record{Source: src, Size: r.off - start}
	if reason := r.x.extract(r.buf, rec); reason != "" {
		return nil, &MalformedError{Source: src, Reason: reason}
	}
	rec.Raw = bytes.Clone(r.buf)
	return rec, nil
}

// element reads one element's bytes into r.buf: a balanced object or array,
// a string, or a bare scalar up to the next delimiter. It scans the reader's
// buffer in place rather than byte by byte.
func (r *jsonArrayReader) element() (tooLong bool, err error) {
	r.buf = r.buf[:0]
	depth := 0
	inStr, esc := false, false
	for {
		if r.br.Buffered() == 0 {
			if _, err := r.br.Peek(1); err != nil {
				if err == io.EOF {
					if r.single && depth == 0 && !inStr {
						return tooLong, nil
					}
					return tooLong, r.fatal("unexpected end of input")
				}
				return tooLong, err
			}
		}
		chunk, _ := r.br.Peek(r.br.Buffered())
		i, end := 0, false
	scan:
		for i < len(chunk) {
			c := chunk[i]
			if inStr {
				switch {
				case esc:
					esc = false
				case c == '\\':
					esc = true
				case c == '"':
					inStr = false
					if depth == 0 {
						i++
						end = true
						break scan
					}
				default:
					for i+9 <= len(chunk) && !swarSpecial(binary.LittleEndian.Uint64(chunk[i+1:])) {
						i += 8
					}
				}
				i++
				continue
			}
			switch c {
			case '"':
				inStr = true
			case '{', '[':
				depth++
			case '}', ']':
				if depth == 0 {
					end = true
					break scan
				}
				depth--
				if depth == 0 {
					i++
					end = true
					break scan
				}
			case ',', ' ', '\t', '\n', '\r':
				if depth == 0 {
					end = true
					break scan
				}
			}
			i++
		}
		if !tooLong {
			if len(r.buf)+i > r.max {
				tooLong = true
				r.buf = r.buf[:0]
			} else {
				r.buf = append(r.buf, chunk[:i]...)
			}
		}
		r.br.Discard(i)
		r.off += int64(i)
		if end {
			return tooLong, nil
		}
	}
}
