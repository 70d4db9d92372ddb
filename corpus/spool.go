package corpus

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// rowTokens is one row's prompt-side words as trigger mining keeps them.
type rowTokens struct {
	seq  int64
	toks []spooled
}

// spooled is one word: its hash, the interned name of its field and its
// byte range in that field.
type spooled struct {
	h          uint64
	field      uint32
	start, end uint32
}

// tokenSpool keeps rows of words in memory up to a budget and spills the
// rest to a temporary file, so that trigger mining can read every row again
// in Findings with bounded memory.
type tokenSpool struct {
	dir    string
	budget int
	mem    []byte
	file   *os.File
	w      *bufio.Writer
	err    error
	rows   int64
}

func (s *tokenSpool) add(seq int64, toks []spooled) {
	if s.err != nil {
		return
	}
	s.mem = binary.AppendUvarint(s.mem, uint64(seq))
	s.mem = binary.AppendUvarint(s.mem, uint64(len(toks)))
	for _, t := range toks {
		s.mem = binary.LittleEndian.AppendUint64(s.mem, t.h)
		s.mem = binary.AppendUvarint(s.mem, uint64(t.field))
		s.mem = binary.AppendUvarint(s.mem, uint64(t.start))
		s.mem = binary.AppendUvarint(s.mem, uint64(t.end-t.start))
	}
	s.rows++
	if len(s.mem) >= s.budget {
		s.spill()
	}
}

func (s *tokenSpool) spill() {
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, "sentineldf-corpus-*.spool")
		if err != nil {
			s.err = fmt.Errorf("trigger mining spool: %w", err)
			return
		}
		s.file = f
		s.w = bufio.NewWriterSize(f, 1<<20)
	}
	if _, err := s.w.Write(s.mem); err != nil {
		s.err = fmt.Errorf("trigger mining spool: %w", err)
	}
	s.mem = s.mem[:0]
}

// each calls fn for every row in order. The slice passed to fn is reused.
func (s *tokenSpool) each(fn func(rowTokens)) error {
	if s.err != nil {
		return s.err
	}
	var buf []spooled
	read := func(r io.ByteReader, full io.Reader) error {
		for {
			seq, err := binary.ReadUvarint(r)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			n, err := binary.ReadUvarint(r)
			if err != nil {
				return err
			}
			buf = buf[:0]
			var h [8]byte
			for range n {
				if _, err := io.ReadFull(full, h[:]); err != nil {
					return err
				}
				f, err1 := binary.ReadUvarint(r)
				st, err2 := binary.ReadUvarint(r)
				ln, err3 := binary.ReadUvarint(r)
				if err := errors.Join(err1, err2, err3); err != nil {
					return err
				}
				buf = append(buf, spooled{h: binary.LittleEndian.Uint64(h[:]), field: uint32(f), start: uint32(st), end: uint32(st + ln)})
			}
			fn(rowTokens{seq: int64(seq), toks: buf})
		}
	}
	if s.file != nil {
		if err := s.w.Flush(); err != nil {
			return fmt.Errorf("trigger mining spool: %w", err)
		}
		if _, err := s.file.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("trigger mining spool: %w", err)
		}
		br := bufio.NewReaderSize(s.file, 1<<20)
		if err := read(br, br); err != nil {
			return fmt.Errorf("trigger mining spool: %w", err)
		}
		if _, err := s.file.Seek(0, io.SeekEnd); err != nil {
			return fmt.Errorf("trigger mining spool: %w", err)
		}
	}
	r := &byteReader{b: s.mem}
	if err := read(r, r); err != nil {
		return fmt.Errorf("trigger mining spool: %w", err)
	}
	return nil
}

// close removes the spill file.
func (s *tokenSpool) close() {
	if s.file != nil {
		s.file.Close()
		os.Remove(s.file.Name())
		s.file = nil
	}
	s.mem = nil
}

// byteReader reads a byte slice without copying it.
type byteReader struct {
	b []byte
	i int
}

func (r *byteReader) ReadByte() (byte, error) {
	if r.i >= len(r.b) {
		return 0, io.EOF
	}
	c := r.b[r.i]
	r.i++
	return c, nil
}

func (r *byteReader) Read(p []byte) (int, error) {
	if r.i >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.i:])
	r.i += n
	return n, nil
}
