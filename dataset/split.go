package dataset

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
)

// Split writes records, in the format they were read in, to one output
// (file mode) or to one output per input file (directory mode). Outputs are
// written to temporary files and renamed into place by Close.
type Split struct {
	dest   string
	dir    bool
	files  []File
	byPath map[string]int // File.DisplayName → index
	stdout io.Writer

	// file mode
	out *sink
	// directory mode: the sink of files[cur], if open; done marks finished files
	cur  int
	sink *sink
	done []bool

	closed bool
}

// NewSplit prepares a split of files' records into dest.
//
// dest is a file path, where all inputs must be of one compatible format
// (JSONL; CSV or TSV with identical headers; JSON arrays; Parquet with the
// same schema; text lines) and a .gz or .zst suffix compresses the output;
// "-", meaning stdout in file mode; or a directory (dest ends with "/" or is
// an existing directory), where each input's records go to dest/<Rel> in
// that input's format. Whole-file text documents can only be split into a
// directory.
func NewSplit(dest string, files []File, stdout io.Writer) (*Split, error) {
	if dest == "" {
		return nil, errors.New("split: empty destination")
	}
	s := &Split{dest: dest, files: files, byPath: make(map[string]int, len(files)), stdout: stdout}
	for i, f := range files {
		if f.Format == "" {
			return nil, fmt.Errorf("split: %s: unknown file format", f.DisplayName())
		}
		if _, dup := s.byPath[f.DisplayName()]; dup {
			return nil, fmt.Errorf("split: %s given twice", f.DisplayName())
		}
		s.byPath[f.DisplayName()] = i
	}
	if dest != "-" {
		if strings.HasSuffix(dest, "/") || strings.HasSuffix(dest, string(os.PathSeparator)) {
			s.dir = true
		} else if st, err := os.Stat(dest); err == nil && st.IsDir() {
			s.dir = true
		}
	}
	if s.dir {
		return s, s.initDir()
	}
	return s, s.initFile()
}

func (s *Split) initDir() error {
	seen := map[string]string{}
	for _, f := range s.files {
		if !filepath.IsLocal(filepath.FromSlash(f.Rel)) {
			return fmt.Errorf("split: %s: relative path %q escapes the destination", f.DisplayName(), f.Rel)
		}
		out := s.outPath(f)
		if prev, ok := seen[out]; ok {
			return fmt.Errorf("split: %s and %s would both be written to %s", prev, f.DisplayName(), out)
		}
		seen[out] = f.DisplayName()
		if err := notAnInput(out, s.files); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(s.dest, 0o755); err != nil {
		return fmt.Errorf("split: %w", err)
	}
	s.done = make([]bool, len(s.files))
	s.cur = -1
	return nil
}

func (s *Split) outPath(f File) string {
	return filepath.Join(s.dest, filepath.FromSlash(f.Rel))
}

// notAnInput refuses to write over one of the inputs.
func notAnInput(out string, files []File) error {
	ost, err := os.Stat(out)
	if err != nil {
		return nil
	}
	for _, f := range files {
		if ist, err := os.Stat(f.Path); err == nil && os.SameFile(ost, ist) {
			return fmt.Errorf("split: output %s is the input %s", out, f.DisplayName())
		}
	}
	return nil
}

func (s *Split) initFile() error {
	var format Format
	var from string
	for _, f := range s.files {
		if format == "" {
			format, from = f.Format, f.DisplayName()
		} else if f.Format != format {
			return fmt.Errorf("split: cannot write %s (%s) and %s (%s) to one file %s; use a directory destination", from, format, f.DisplayName(), f.Format, s.dest)
		}
	}
	destFormat, comp := DetectFormat(s.dest)
	if s.dest == "-" {
		destFormat, comp = "", ""
	}
	if format == "" {
		format = destFormat
	}
	if destFormat != "" && destFormat != format {
		return fmt.Errorf("split: destination %s is %s but the inputs are %s", s.dest, destFormat, format)
	}
	if format == "" {
		return fmt.Errorf("split: no inputs and no format from the name %s", s.dest)
	}
	sk := &sink{format: format, path: s.dest, comp: comp, fileMode: true}
	switch format {
	case FormatCSV, FormatTSV:
		var names []string
		for _, f := range s.files {
			raw, hdr, err := readCSVHeader(f)
			if err != nil {
				return err
			}
			if raw == nil {
				continue // an empty file
			}
			if sk.header == nil {
				sk.header, names, from = raw, hdr, f.DisplayName()
			} else if !slices.Equal(names, hdr) {
				return fmt.Errorf("split: %s and %s have different CSV headers; use a directory destination", from, f.DisplayName())
			}
		}
	case FormatParquet:
		for _, f := range s.files {
			schema, err := readParquetSchema(f)
			if err != nil {
				return err
			}
			if sk.schema == nil {
				sk.schema, from = schema, f.DisplayName()
			} else if !parquet.EqualNodes(sk.schema, schema) {
				return fmt.Errorf("split: %s and %s have different Parquet schemas; use a directory destination", from, f.DisplayName())
			}
		}
	}
	if s.dest != "-" {
		if err := notAnInput(s.dest, s.files); err != nil {
			return err
		}
	}
	if err := sk.open(s.stdout); err != nil {
		return err
	}
	s.out = sk
	return nil
}

// Write writes one record; records must arrive in input order.
func (s *Split) Write(r *Record) error {
	if s.closed {
		return errors.New("split: write after close")
	}
	idx, ok := s.byPath[r.Source.Path]
	if !ok {
		return fmt.Errorf("split: record from %s, which is not one of the inputs", r.Source.Path)
	}
	if !s.dir {
		return s.out.write(r, s.files[idx].Format)
	}
	if idx != s.cur {
		if s.done[idx] {
			return fmt.Errorf("split: record %s arrived after its file was finished (records must come in input order)", r.Source)
		}
		if err := s.finishCurrent(); err != nil {
			return err
		}
		sk, err := s.dirSink(idx)
		if err != nil {
			return err
		}
		s.cur, s.sink = idx, sk
	}
	return s.sink.write(r, s.files[idx].Format)
}

func (s *Split) finishCurrent() error {
	if s.sink == nil {
		return nil
	}
	s.done[s.cur] = true
	sk := s.sink
	s.sink, s.cur = nil, -1
	return sk.close()
}

// dirSink opens the output of files[idx] in directory mode.
func (s *Split) dirSink(idx int) (*sink, error) {
	f := s.files[idx]
	_, comp := DetectFormat(f.Rel)
	sk := &sink{format: f.Format, path: s.outPath(f), comp: comp}
	switch f.Format {
	case FormatCSV, FormatTSV:
		raw, _, err := readCSVHeader(f)
		if err != nil {
			return nil, err
		}
		sk.header = raw
	case FormatParquet:
		schema, err := readParquetSchema(f)
		if err != nil {
			return nil, err
		}
		sk.schema = schema
	}
	if err := os.MkdirAll(filepath.Dir(sk.path), 0o755); err != nil {
		return nil, fmt.Errorf("split: %w", err)
	}
	if err := sk.open(nil); err != nil {
		return nil, err
	}
	return sk, nil
}

// Close flushes and finishes every output. An output that received no
// record is still written as a valid empty file ("[]" for JSON, the header
// for CSV, an empty Parquet file with the schema); in directory mode text
// inputs with no record written get no output.
func (s *Split) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if !s.dir {
		return s.out.close()
	}
	err := s.finishCurrent()
	for i, f := range s.files {
		if s.done[i] || f.Format == FormatText || err != nil {
			continue
		}
		var sk *sink
		if sk, err = s.dirSink(i); err == nil {
			err = sk.close()
		}
	}
	return err
}

// sink is one output being written.
type sink struct {
	format   Format
	path     string // "-" for stdout
	comp     string
	fileMode bool
	header   []byte          // CSV/TSV header bytes
	schema   *parquet.Schema // Parquet

	tmp *os.File
	bw  *bufio.Writer
	zw  io.WriteCloser
	pw  *parquet.Writer
	n   int

	okSchema *parquet.Schema // last record schema found equal to schema
}

func (k *sink) open(stdout io.Writer) error {
	if k.format == FormatParquet && k.comp != "" {
		return fmt.Errorf("split: %s: compressed Parquet output is not supported", k.path)
	}
	var w io.Writer
	if k.path == "-" {
		if stdout == nil {
			return errors.New("split: no stdout to write to")
		}
		w = stdout
	} else {
		dir := filepath.Dir(k.path)
		tmp, err := os.CreateTemp(dir, "."+filepath.Base(k.path)+".tmp*")
		if err != nil {
			return fmt.Errorf("split: create %s: %w", k.path, err)
		}
		k.tmp, w = tmp, tmp
	}
	k.bw = bufio.NewWriterSize(w, 256<<10)
	w = k.bw
	switch k.comp {
	case CompressionGzip:
		k.zw = gzip.NewWriter(w)
		w = k.zw
	case CompressionZstd:
		zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
		if err != nil {
			k.abort()
			return fmt.Errorf("split: %s: %w", k.path, err)
		}
		k.zw, w = zw, zw
	}
	if k.format == FormatParquet {
		if k.schema == nil {
			k.abort()
			return fmt.Errorf("split: %s: no Parquet schema", k.path)
		}
		k.pw = parquet.NewWriter(w, k.schema)
	}
	if k.zw == nil {
		k.zw = nopCloser{w}
	}
	if k.header != nil {
		if _, err := k.zw.Write(k.header); err != nil {
			k.abort()
			return fmt.Errorf("split: write %s: %w", k.path, err)
		}
	}
	return nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func (k *sink) abort() {
	if k.tmp != nil {
		k.tmp.Close()
		os.Remove(k.tmp.Name())
		k.tmp = nil
	}
}

func (k *sink) write(r *Record, format Format) error {
	var err error
	switch k.format {
	case FormatParquet:
		pr, ok := r.row.(*parquetRow)
		if !ok {
			return fmt.Errorf("split: record %s is not a Parquet row", r.Source)
		}
		if pr.schema != k.schema && pr.schema != k.okSchema {
			if !parquet.EqualNodes(pr.schema, k.schema) {
				return fmt.Errorf("split: record %s has a different Parquet schema than %s", r.Source, k.path)
			}
			k.okSchema = pr.schema
		}
		_, err = k.pw.WriteRows([]parquet.Row{pr.row})
	case FormatJSON:
		sep := ",\n"
		if k.n == 0 {
			sep = "[\n"
		}
		if _, err = io.WriteString(k.zw, sep); err == nil {
			_, err = k.zw.Write(r.Raw)
		}
	default:
		if format == FormatText && r.Source.Line == 0 {
			if k.fileMode {
				return fmt.Errorf("split: %s is a whole-file text document; split it into a directory (destination ending in /)", r.Source.Path)
			}
			_, err = k.zw.Write(r.Raw)
			break
		}
		eol := r.eol
		if eol == "" {
			eol = "\n"
		}
		if _, err = k.zw.Write(r.Raw); err == nil {
			_, err = io.WriteString(k.zw, eol)
		}
	}
	if err != nil {
		return fmt.Errorf("split: write %s: %w", k.path, err)
	}
	k.n++
	return nil
}

func (k *sink) close() error {
	err := k.finish()
	if k.tmp != nil {
		if cerr := k.tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chmod(k.tmp.Name(), 0o644)
		}
		if err == nil {
			err = os.Rename(k.tmp.Name(), k.path)
		}
		if err != nil {
			os.Remove(k.tmp.Name())
		}
		k.tmp = nil
	}
	if err != nil {
		return fmt.Errorf("split: finish %s: %w", k.path, err)
	}
	return nil
}

func (k *sink) finish() error {
	switch {
	case k.format == FormatJSON && k.n == 0:
		if _, err := io.WriteString(k.zw, "[]\n"); err != nil {
			return err
		}
	case k.format == FormatJSON:
		if _, err := io.WriteString(k.zw, "\n]\n"); err != nil {
			return err
		}
	case k.pw != nil:
		if err := k.pw.Close(); err != nil {
			return err
		}
	}
	if err := k.zw.Close(); err != nil {
		return err
	}
	return k.bw.Flush()
}

// readCSVHeader returns the raw bytes (line ending included) and the names
// of f's header row; nil for an empty file.
func readCSVHeader(f File) ([]byte, []string, error) {
	st, err := openStream(f)
	if err != nil {
		return nil, nil, fmt.Errorf("split: %w", err)
	}
	defer st.Close()
	rc := &recorder{r: st, max: DefaultMaxRecordBytes}
	cr := csv.NewReader(rc)
	if f.Format == FormatTSV {
		cr.Comma = '\t'
	}
	hdr, err := cr.Read()
	if err == io.EOF {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("split: %s: CSV header: %w", f.DisplayName(), err)
	}
	raw := rc.span(0, cr.InputOffset())
	if len(hdr) > 0 {
		hdr[0] = strings.TrimPrefix(hdr[0], "\ufeff")
	}
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		raw = append(raw, '\n')
	}
	return raw, hdr, nil
}

// readParquetSchema returns f's Parquet schema.
func readParquetSchema(f File) (*parquet.Schema, error) {
	fh, _, pf, _, err := openParquetFile(f.Path, f.DisplayName())
	if err != nil {
		return nil, fmt.Errorf("split: %w", err)
	}
	defer fh.Close()
	return pf.Schema(), nil
}
