package corpus

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
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
// in Findings with bounded memory. In memory the rows are kept in chunks
// (a row never straddles two), so that the spool grows without copying.
type tokenSpool struct {
	dir    string
	budget int
	mem    [][]byte // the rows in memory
	memLen int      // bytes in mem
	free   [][]byte // spilled chunks, for reuse
	file   *os.File
	w      *bufio.Writer
	err    error
	rows   int64
}

// spoolChunk is the size of a chunk of the spool's memory.
const spoolChunk = 256 << 10

func (s *tokenSpool) add(seq int64, toks []spooled) {
	if s.err != nil {
		return
	}
	// At most 10 bytes a varint; a row that does not fit the last chunk
	// starts a new one.
	need := 2*binary.MaxVarintLen64 + len(toks)*(8+3*binary.MaxVarintLen32)
	if n := len(s.mem); n == 0 || cap(s.mem[n-1])-len(s.mem[n-1]) < need {
		var c []byte
		if f := len(s.free); f > 0 && cap(s.free[f-1]) >= need {
			c, s.free = s.free[f-1][:0], s.free[:f-1]
		} else {
			c = make([]byte, 0, max(need, spoolChunk))
		}
		s.mem = append(s.mem, c)
	}
	b := s.mem[len(s.mem)-1]
	n0 := len(b)
	b = appendUvarint(b, uint64(seq))
	b = appendUvarint(b, uint64(len(toks)))
	for _, t := range toks {
		b = binary.LittleEndian.AppendUint64(b, t.h)
		b = appendUvarint(b, uint64(t.field))
		b = appendUvarint(b, uint64(t.start))
		b = appendUvarint(b, uint64(t.end-t.start))
	}
	s.mem[len(s.mem)-1] = b
	s.memLen += len(b) - n0
	s.rows++
	if s.memLen >= s.budget {
		s.spill()
	}
}

// memBytes is the memory the spool holds.
func (s *tokenSpool) memBytes() int {
	n := 0
	for _, c := range s.mem {
		n += cap(c)
	}
	for _, c := range s.free {
		n += cap(c)
	}
	return n
}

// appendUvarint is binary.AppendUvarint with the one-byte case inlined.
func appendUvarint(b []byte, x uint64) []byte {
	if x < 0x80 {
		return append(b, byte(x))
	}
	return binary.AppendUvarint(b, x)
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
	for _, c := range s.mem {
		if _, err := s.w.Write(c); err != nil {
			s.err = fmt.Errorf("trigger mining spool: %w", err)
			break
		}
	}
	for _, c := range s.mem {
		s.free = append(s.free, c[:0])
	}
	s.mem, s.memLen = s.mem[:0], 0
}

// each calls fn for every row in order. The slice passed to fn is reused.
func (s *tokenSpool) each(fn func(rowTokens)) error {
	return s.eachWhile(func(r rowTokens) bool { fn(r); return true })
}

// eachWhile calls fn for the rows in order until it returns false. The
// slice passed to fn is reused.
func (s *tokenSpool) eachWhile(fn func(rowTokens) bool) error {
	if s.err != nil {
		return s.err
	}
	var buf []spooled
	stopped := false
	if s.file != nil {
		if err := s.w.Flush(); err != nil {
			return fmt.Errorf("trigger mining spool: %w", err)
		}
		if _, err := s.file.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("trigger mining spool: %w", err)
		}
		var err error
		if buf, stopped, err = s.eachFile(buf, fn); err != nil {
			return fmt.Errorf("trigger mining spool: %w", err)
		}
		if _, err := s.file.Seek(0, io.SeekEnd); err != nil {
			return fmt.Errorf("trigger mining spool: %w", err)
		}
	}
	for _, b := range s.mem {
		for len(b) > 0 && !stopped {
			seq, toks, n := decodeRow(b, buf)
			if n <= 0 {
				return fmt.Errorf("trigger mining spool: %w", decodeErr(n))
			}
			buf = toks
			stopped = !fn(rowTokens{seq: seq, toks: toks})
			b = b[n:]
		}
	}
	return nil
}

// eachFile calls fn for the rows of the spill file, read from its current
// offset in chunks of at least 1 MiB (a chunk grows to hold a longer row),
// until fn returns false (stopped) or the file ends.
func (s *tokenSpool) eachFile(buf []spooled, fn func(rowTokens) bool) (_ []spooled, stopped bool, _ error) {
	data := make([]byte, 0, 1<<20)
	off, eof := 0, false
	for {
		for off < len(data) {
			seq, toks, n := decodeRow(data[off:], buf)
			if n < 0 {
				return buf, false, decodeErr(n)
			}
			if n == 0 {
				break // the rest of the row is in the next chunk
			}
			buf = toks
			if !fn(rowTokens{seq: seq, toks: toks}) {
				return buf, true, nil
			}
			off += n
		}
		if eof {
			if off < len(data) {
				return buf, false, io.ErrUnexpectedEOF
			}
			return buf, false, nil
		}
		data = data[:copy(data[:cap(data)], data[off:])]
		off = 0
		if len(data) == cap(data) {
			data = slices.Grow(data, cap(data))
		}
		n, err := s.file.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			eof = true
		} else if err != nil {
			return buf, false, err
		}
	}
}

// decodeRow decodes the row at the start of b into buf[:0]: its seq, its
// words and its length in bytes n; n is 0 when b ends inside the row and
// negative when b is not a row.
func decodeRow(b []byte, buf []spooled) (seq int64, toks []spooled, n int) {
	v, i := uvarint(b, 0)
	cnt, i := uvarint(b, i)
	toks = buf[:0]
	for k := uint64(0); k < cnt && i >= 0; k++ {
		if len(b)-i < 8 {
			i = varintShort
			break
		}
		h := binary.LittleEndian.Uint64(b[i:])
		f, j := uvarint(b, i+8)
		st, j := uvarint(b, j)
		ln, j := uvarint(b, j)
		if i = j; i >= 0 {
			toks = append(toks, spooled{h: h, field: uint32(f), start: uint32(st), end: uint32(st + ln)})
		}
	}
	switch {
	case i == varintShort:
		return 0, toks, 0
	case i < 0:
		return 0, toks, -1
	}
	return int64(v), toks, i
}

// Offsets uvarint returns instead of one past the varint.
const (
	varintShort    = -1 // the bytes end inside the varint
	varintOverflow = -2 // it does not fit 64 bits
)

// uvarint decodes the varint at b[i:] and returns it with the offset after
// it, or with varintShort or varintOverflow. A negative i is returned as
// it is, so that calls chain.
func uvarint(b []byte, i int) (uint64, int) {
	switch {
	case i < 0:
		return 0, i
	case i >= len(b):
		return 0, varintShort
	case b[i] < 0x80:
		return uint64(b[i]), i + 1
	}
	v, n := binary.Uvarint(b[i:])
	switch {
	case n == 0:
		return 0, varintShort
	case n < 0:
		return 0, varintOverflow
	}
	return v, i + n
}

// decodeErr is the error of a failed decodeRow.
func decodeErr(n int) error {
	if n == 0 {
		return io.ErrUnexpectedEOF
	}
	return errors.New("corrupt row")
}

// close removes the spill file.
func (s *tokenSpool) close() {
	if s.file != nil {
		s.file.Close()
		os.Remove(s.file.Name())
		s.file = nil
	}
	s.mem, s.free, s.memLen = nil, nil, 0
}
