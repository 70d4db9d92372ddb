// Package dataset reads and writes the datasets SentinelDF scans: JSONL/NDJSON,
// JSON arrays, CSV/TSV with a header, Parquet, plain text, Markdown and HTML,
// optionally gzip- or zstd-compressed, streamed with bounded memory.
//
// A reader yields Records: the text fields to scan, an identity, where the
// record came from, and the record's original bytes so that a scan can split
// a dataset into clean and quarantined parts byte for byte.
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

	row any
}

// MalformedError reports a record that could not be read. Readers return it
// from Next and continue with the next record on the following call; the
// caller decides whether to skip it (counted and reported) or fail (--strict).
type MalformedError struct {
	Source Source
	Reason string
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("%s: malformed record: %s", e.Source, e.Reason)
}
