package dataset

import (
	"fmt"
	"strconv"
)

// Format is a dataset file format.
type Format string

// The formats.
const (
	FormatJSONL   Format = "jsonl"
	FormatJSON    Format = "json" // a JSON array of records
	FormatCSV     Format = "csv"
	FormatTSV     Format = "tsv"
	FormatParquet Format = "parquet"
	FormatText    Format = "text" // plain text, Markdown, HTML: a file is a document or one per line
)

// Source says where a record came from.
type Source struct {
	Path string `json:"path"`
	// Line is the 1-based line (JSONL, text lines, CSV: the record's first
	// line), or the 1-based element / row index (JSON arrays, Parquet), or 0
	// when the whole file is one record.
	Line int `json:"line,omitempty"`
}

// String returns "path:line", or just the path when Line is 0.
func (s Source) String() string {
	if s.Line == 0 {
		return s.Path
	}
	return s.Path + ":" + strconv.Itoa(s.Line)
}

// Field is one named text of a record, e.g. "text", "instruction",
// "messages[1].content".
type Field struct {
	Name string
	Text string
}

// Record is one document read from a dataset.
type Record struct {
	// ID is the record's id field (or the --id-field), else Source.String().
	ID     string
	Source Source
	// Fields are the texts to scan, in a deterministic order.
	Fields []Field
	// Raw is the record's original bytes (a JSONL line without its line
	// ending, a CSV record, a JSON array element, a text line or file).
	// For Parquet it is nil and the row travels in row.
	Raw []byte
	// Size is the number of input bytes the record took (for progress).
	Size int64
	// Meta holds the Options.KeepFields values found in the record, as
	// strings (numbers as written, objects and arrays as JSON). It is never
	// scanned. Nil when no KeepFields are set.
	Meta map[string]string

	row any    // Parquet: the parquet.Row (with its schema) for Split
	eol string // the line ending that followed Raw in the input ("" if none)
}

// MalformedError reports a record that could not be read. Readers return it
// from Next and continue with the next record on the following call; the
// caller decides whether to skip it (counted and reported) or fail (--strict).
type MalformedError struct {
	Source Source
	Reason string
}

// Error returns "path:line: malformed record: reason".
func (e *MalformedError) Error() string {
	return fmt.Sprintf("%s: malformed record: %s", e.Source, e.Reason)
}

// DefaultMaxRecordBytes is the record size limit when Options.MaxRecordBytes
// is 0.
const DefaultMaxRecordBytes = 64 << 20

// Options control how files are read.
type Options struct {
	// TextFields are dotted paths of the fields to scan (e.g. "meta.body",
	// "messages"), in order; empty means auto-detect. For CSV they name
	// columns.
	TextFields []string
	// IDField names the field holding a record's id; "" means "id".
	IDField string
	// Split is how text files are cut into documents: "file" (default, a
	// file is one document) or "lines" (one document per non-blank line).
	Split string
	// Format forces a format for every file; "" decides by extension.
	Format Format
	// KeepFields are other fields copied as strings into Record.Meta (e.g.
	// "label", "source"); they are never scanned.
	KeepFields []string
	// MaxRecordBytes caps a record's size; 0 means DefaultMaxRecordBytes. A
	// longer record is a MalformedError and reading resumes at the next one.
	MaxRecordBytes int
}

// Text split modes for Options.Split.
const (
	SplitFile  = "file"
	SplitLines = "lines"
)

func (o Options) withDefaults() (Options, error) {
	if o.IDField == "" {
		o.IDField = "id"
	}
	if o.MaxRecordBytes <= 0 {
		o.MaxRecordBytes = DefaultMaxRecordBytes
	}
	switch o.Split {
	case "":
		o.Split = SplitFile
	case SplitFile, SplitLines:
	default:
		return o, fmt.Errorf("unknown text split mode %q (want %q or %q)", o.Split, SplitFile, SplitLines)
	}
	for _, f := range o.TextFields {
		if _, err := parsePath(f); err != nil {
			return o, err
		}
	}
	return o, nil
}

// File is one input file found by Walk.
type File struct {
	// Path is the file's path, as given or as found while walking.
	Path string
	// Name, when set, is the name the file goes by: records' Sources,
	// malformed-record reports and error messages use it instead of Path
	// (e.g. the name a file was uploaded under while it is read from a
	// temporary copy). Walk leaves it empty.
	Name string
	// Rel is the path relative to the directory argument it was found under,
	// with "/" separators (the base name for a file argument).
	Rel string
	// Size is the on-disk (compressed) size in bytes.
	Size int64
	// Format is the format by extension; "" when unknown.
	Format Format
	// Compression is "", "gzip" or "zstd", by extension.
	Compression string
}

// DisplayName returns Name, or Path when Name is empty.
func (f File) DisplayName() string {
	if f.Name != "" {
		return f.Name
	}
	return f.Path
}

// Compressions for File.Compression.
const (
	CompressionGzip = "gzip"
	CompressionZstd = "zstd"
)

// Reader streams the records of one file.
type Reader interface {
	// Next returns the next record; io.EOF at the end; a *MalformedError for
	// a bad record (the caller may call Next again to continue); any other
	// error is fatal.
	Next() (*Record, error)
	// BytesRead is how many bytes of the file (on disk, i.e. compressed)
	// have been consumed so far, for progress and ETA.
	BytesRead() int64
	// SHA256 is the hex SHA-256 of the whole file as stored on disk, valid
	// after Next returned io.EOF.
	SHA256() string
	// Close releases the file.
	Close() error
}
