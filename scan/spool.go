package scan

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sentineldf/sentineldf/detect"
)

// spool is the temporary file of a two-phase scan: every document's id,
// source and phase-1 result, in input order. Records are
//
//	uvarint len(id) id  uvarint len(source) source  uvarint len(result) result
//
// with the result in the binary encoding of codec.go.
type spool struct {
	f   *os.File
	bw  *bufio.Writer
	br  *bufio.Reader
	buf []byte
	res []byte
}

func newSpool(dir string) (*spool, error) {
	f, err := os.CreateTemp(dir, "sentineldf-spool-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return &spool{f: f, bw: bufio.NewWriterSize(f, 256<<10)}, nil
}

func (s *spool) write(id, src string, r *detect.Result) error {
	s.res = appendResult(s.res[:0], r)
	b := appendString(s.buf[:0], id)
	b = appendString(b, src)
	b = binary.AppendUvarint(b, uint64(len(s.res)))
	b = append(b, s.res...)
	s.buf = b
	if _, err := s.bw.Write(b); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

func (s *spool) rewind() error {
	if err := s.bw.Flush(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.br = bufio.NewReaderSize(s.f, 256<<10)
	return nil
}

func (s *spool) readBytes() ([]byte, error) {
	n, err := binary.ReadUvarint(s.br)
	if err != nil {
		return nil, err
	}
	if n > 1<<31 {
		return nil, errCodec
	}
	if cap(s.buf) < int(n) {
		s.buf = make([]byte, n)
	}
	b := s.buf[:n]
	if _, err := io.ReadFull(s.br, b); err != nil {
		return nil, err
	}
	return b, nil
}

// read returns the next record, or io.EOF after the last.
func (s *spool) read() (id, src string, r detect.Result, err error) {
	b, err := s.readBytes()
	if err == io.EOF {
		return "", "", r, io.EOF
	}
	if err == nil {
		id = string(b)
		if b, err = s.readBytes(); err == nil {
			src = string(b)
			if b, err = s.readBytes(); err == nil {
				r, err = decodeResult(b)
			}
		}
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return "", "", r, fmt.Errorf("spool: %w", err)
	}
	return id, src, r, nil
}

func (s *spool) remove() {
	s.f.Close()
	os.Remove(s.f.Name())
}
