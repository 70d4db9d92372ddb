// Package dataset reads and writes the datasets SentinelDF scans: JSONL/NDJSON,
// JSON arrays, CSV/TSV with a header, Parquet, plain text, Markdown and HTML,
// optionally gzip- or zstd-compressed, streamed with bounded memory.
//
// A reader yields Records: the text fields to scan, an identity, where the
// record came from, and the record's original bytes so that a scan can split
// a dataset into clean and quarantined parts byte for byte.
//
// # Finding files
//
// [Walk] expands file and directory arguments into [File]s. Directories are
// walked recursively in lexical order; files whose extension is not a known
// format are skipped there, while a file named explicitly is always kept (its
// Format is "" when the extension is unknown, and [Open] then fails unless
// [Options.Format] forces a format). Include and exclude globs use path.Match
// syntax plus "**" for any number of directories and are matched against
// File.Rel; a glob without a "/" also matches the base name at any depth, so
// "*.jsonl" selects every JSONL file of a tree.
//
// A File read from a temporary copy can carry the name it goes by in
// File.Name: records' sources, malformed-record reports and errors then use
// it instead of the path, and a split routes records by it.
//
// # Formats
//
// The format comes from the extension, case-insensitively, after stripping
// ".gz" or ".zst"; compression is also recognised by the gzip and zstd magic
// bytes whatever the name.
//
//   - .jsonl, .ndjson: one JSON object per line. Blank lines are skipped, CRLF
//     is tolerated, lines may be as long as Options.MaxRecordBytes. Source.Line
//     is the physical line number; Raw the line without its line ending.
//   - .json: a JSON array of objects, streamed element by element (a single
//     top-level object is one record). Source.Line is the 1-based element
//     index; Raw the element's bytes. A syntax error that loses the element
//     boundaries (an unterminated string or bracket) is fatal; any other bad
//     element is a MalformedError and reading continues.
//   - .csv, .tsv: a header row is required. Source.Line is the record's first
//     line; Raw the record's exact bytes (quoted multi-line fields included).
//   - .parquet: rows are streamed a batch at a time. Source.Line is the 1-based
//     row index; Raw is nil and the row itself travels with the Record so that
//     [Split] can write it back with the same schema. Compressed Parquet is not
//     supported. The file's SHA-256 is computed from what the Parquet reader
//     reads plus whatever it skipped, read once more at the end.
//   - .txt, .text, .md, .markdown, .html, .htm: a file is one document (field
//     "text", Source.Line 0), or with Options.Split "lines" one document per
//     non-blank line.
//
// # Text fields
//
// Only text fields are scanned; ids, labels and other metadata never are.
// With Options.TextFields each dotted path ("meta.body", "messages",
// "messages[2].content") selects fields; an array selects every element, an
// object selects its "content", "value" or "text" member (chat messages and
// content parts) or, failing those, every string inside it. A record that has
// none of the selected paths is malformed; one that has some of them is not.
//
// Otherwise the text fields are detected from these top-level names, taken in
// this order and all of them when several are present (a payload cannot hide
// in "response" behind a benign "text"): text, content, prompt, system,
// response, completion, chosen, rejected, instruction, input, output,
// messages, conversations, question, answer, body, document. Chat arrays
// accept {role, content} and {from, value} elements, and content given as an
// array of {type: "text", text: ...} parts; fields are then named like
// "messages[1].content" or "messages[0].content[1].text". A key repeated in
// one object yields every occurrence. Empty strings are skipped. For CSV the
// same names select columns.
//
// # Malformed records
//
// A record that cannot be read — invalid JSON, a value that is not an object,
// invalid UTF-8, a text field of the wrong type, no text field, a CSV row with
// the wrong number of fields, a record longer than Options.MaxRecordBytes — is
// returned by Reader.Next as a *[MalformedError] naming the file, the line and
// the reason, e.g.
//
//	data.jsonl:17: malformed record: invalid JSON: unexpected end of input at byte 42
//
// and the next call to Next continues with the next record. Any other error
// (I/O, corrupt compression) ends the file.
//
// # Writing
//
// [NewSplit] writes records back in the format they were read in, to one file
// (all inputs of one compatible format) or to a directory mirroring the
// inputs' relative paths. Records are written from Raw, so a dataset whose
// records all pass is reproduced byte for byte (line endings are kept; a last
// line without one gets "\n").
package dataset
