package dataset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Open opens one file for streaming. Options.Format, when set, overrides
// f.Format; a file of unknown format is an error.
func Open(f File, opts Options) (Reader, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	format := f.Format
	if opts.Format != "" {
		format = opts.Format
	}
	switch format {
	case FormatJSONL, FormatJSON, FormatCSV, FormatTSV, FormatParquet, FormatText:
	case "":
		return nil, fmt.Errorf("%s: unknown file format (use --format)", f.DisplayName())
	default:
		return nil, fmt.Errorf("%s: unknown format %q", f.DisplayName(), format)
	}
	if format == FormatParquet {
		return openParquet(f, opts)
	}
	src, err := openStream(f)
	if err != nil {
		return nil, err
	}
	var r Reader
	switch format {
	case FormatJSONL:
		r, err = newJSONLReader(src, opts)
	case FormatJSON:
		r, err = newJSONArrayReader(src, opts)
	case FormatCSV:
		r, err = newCSVReader(src, opts, ',')
	case FormatTSV:
		r, err = newCSVReader(src, opts, '\t')
	case FormatText:
		r, err = newTextReader(src, opts)
	}
	if err != nil {
		src.Close()
		return nil, err
	}
	return r, nil
}

// hashCounter counts and hashes every byte read from the file on disk. The
// hashing runs on a goroutine of its own, on copies of what was read, so
// that it overlaps with parsing: SHA-256 of the file is a large share of the
// reading cost, and the reading goroutine is the one every other stage of a
// scan waits for. Memory stays bounded by hashBufs buffers of hashBufSize.
type hashCounter struct {
	r io.Reader
	n int64

	h       hash.Hash
	started bool
	work    chan []byte   // filled buffers, in file order
	free    chan []byte   // empty buffers
	done    chan struct{} // closed when the goroutine has hashed all of work
	stopped bool
}

const (
	hashBufSize = 256 << 10
	hashBufs    = 4
)

func newHashCounter(r io.Reader) *hashCounter {
	return &hashCounter{r: r, h: sha256.New()}
}

func (c *hashCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.write(p[:n])
	return n, err
}

// write queues b for hashing (copying it).
func (c *hashCounter) write(b []byte) {
	if len(b) == 0 || c.stopped {
		return
	}
	if !c.started {
		c.started = true
		c.work = make(chan []byte, hashBufs)
		c.free = make(chan []byte, hashBufs)
		c.done = make(chan struct{})
		for range hashBufs {
			c.free <- make([]byte, 0, hashBufSize)
		}
		go func() {
			defer close(c.done)
			for b := range c.work {
				c.h.Write(b)
				c.free <- b[:0]
			}
		}()
	}
	for len(b) > 0 {
		buf := <-c.free
		k := min(len(b), cap(buf))
		buf = append(buf, b[:k]...)
		b = b[k:]
		c.work <- buf
	}
}

// stop ends the hashing goroutine once it has hashed everything queued.
func (c *hashCounter) stop() {
	if c.stopped {
		return
	}
	c.stopped = true
	if c.started {
		close(c.work)
		<-c.done
	}
}

// sum returns the hex SHA-256 of everything read; no Read may follow.
func (c *hashCounter) sum() string {
	c.stop()
	return hex.EncodeToString(c.h.Sum(nil))
}

// stream is an open file: the decompressed contents plus the bookkeeping
// shared by the sequential readers.
type stream struct {
	path   string // the file's display name (File.DisplayName)
	file   *os.File
	raw    *hashCounter
	disk   *bufio.Reader // buffered on-disk bytes (compressed or not)
	zr     *zstd.Decoder
	r      io.Reader // decompressed contents
	sum    string
	closed bool
}

// openStream opens f and sets up decompression, by extension or by magic
// bytes.
func openStream(f File) (*stream, error) {
	name := f.DisplayName()
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	s := &stream{path: name, file: fh, raw: newHashCounter(fh)}
	s.disk = bufio.NewReaderSize(s.raw, 64<<10)
	magic, _ := s.disk.Peek(4)
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		gz, err := gzip.NewReader(s.disk)
		if err != nil {
			s.raw.stop()
			fh.Close()
			return nil, fmt.Errorf("%s: gzip: %w", name, err)
		}
		s.r = gz
	case bytes.HasPrefix(magic, zstdMagic):
		zr, err := zstd.NewReader(s.disk, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			s.raw.stop()
			fh.Close()
			return nil, fmt.Errorf("%s: zstd: %w", name, err)
		}
		s.zr, s.r = zr, zr
	default:
		if f.Compression != "" && len(magic) > 0 {
			s.raw.stop()
			fh.Close()
			return nil, fmt.Errorf("%s: not a %s file (bad magic bytes)", name, f.Compression)
		}
		s.r = s.disk
	}
	return s, nil
}

// Read reads decompressed bytes, naming the file in errors.
func (s *stream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("read %s: %w", s.path, err)
	}
	return n, err
}

// finish consumes whatever is left on disk so that the hash covers the whole
// file, and records the hash.
func (s *stream) finish() error {
	if s.sum != "" {
		return nil
	}
	if _, err := io.Copy(io.Discard, s.disk); err != nil {
		return fmt.Errorf("read %s: %w", s.path, err)
	}
	s.sum = s.raw.sum()
	return nil
}

func (s *stream) BytesRead() int64 { return s.raw.n }

func (s *stream) SHA256() string { return s.sum }

func (s *stream) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.raw.stop()
	if s.zr != nil {
		s.zr.Close()
	}
	return s.file.Close()
}

// lineReader reads lines of any length up to a limit from a stream.
type lineReader struct {
	br   *bufio.Reader
	buf  []byte // accumulates lines longer than br's buffer
	line int    // number of the line last returned
	max  int
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 256<<10), max: max}
}

// errTooLong marks a line over the limit; the line was consumed.
var errTooLong = errors.New("record too long")

// next returns the next line without its ending, the ending ("\n", "\r\n"
// or "" at end of file) and the number of bytes consumed. The returned slice
// is valid until the next call. At the end it returns io.EOF. A line longer
// than max is skipped and reported with errTooLong.
func (l *lineReader) next() (line []byte, eol string, size int, err error) {
	frag, err := l.br.ReadSlice('\n')
	if err == nil || err == io.EOF {
		if err == io.EOF && len(frag) == 0 {
			return nil, "", 0, io.EOF
		}
		l.line++
		line, eol = trimEOL(frag)
		if len(line) > l.max {
			return nil, eol, len(frag), errTooLong
		}
		return line, eol, len(frag), nil
	}
	if err != bufio.ErrBufferFull {
		return nil, "", 0, err
	}
	l.line++
	l.buf = append(l.buf[:0], frag...)
	size = len(frag)
	tooLong := false
	for {
		frag, err = l.br.ReadSlice('\n')
		size += len(frag)
		if !tooLong {
			if len(l.buf)+len(frag) > l.max+2 {
				tooLong = true
				l.buf = l.buf[:0]
			} else {
				l.buf = append(l.buf, frag...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && err != io.EOF {
			return nil, "", size, err
		}
		break
	}
	if tooLong {
		_, eol = trimEOL(frag)
		return nil, eol, size, errTooLong
	}
	line, eol = trimEOL(l.buf)
	if len(line) > l.max {
		return nil, eol, size, errTooLong
	}
	if cap(l.buf) > 4<<20 {
		// Don't pin a huge buffer after one huge line.
		line = bytes.Clone(line)
		l.buf = nil
	}
	return line, eol, size, nil
}

func trimEOL(b []byte) ([]byte, string) {
	n := len(b)
	if n > 0 && b[n-1] == '\n' {
		if n > 1 && b[n-2] == '\r' {
			return b[:n-2], "\r\n"
		}
		return b[:n-1], "\n"
	}
	return b, ""
}

// isBlank reports whether b holds only JSON whitespace.
func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

var utf8BOM = []byte{0xef, 0xbb, 0xbf}
