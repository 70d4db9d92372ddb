package mbom

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrNotFound is returned by Prove when no result has the requested id.
var ErrNotFound = errors.New("not found")

// resultsReader reads the results JSONL file one leaf at a time. Lines may be
// of any length; blank lines are skipped.
type resultsReader struct {
	br   *bufio.Reader
	line int64 // 1-based number of the last line read
	acc  []byte
}

func newResultsReader(r io.Reader) *resultsReader {
	return &resultsReader{br: bufio.NewReaderSize(r, 1<<16)}
}

// next returns the next leaf; io.EOF at the end. A malformed line gives an
// error wrapping ErrInvalid.
func (r *resultsReader) next() (Leaf, error) {
	for {
		line, err := r.readLine()
		if err != nil {
			return Leaf{}, err
		}
		r.line++
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		l, err := parseResultLine(line)
		if err != nil {
			return Leaf{}, invalidf("results line %d: %v", r.line, err)
		}
		return l, nil
	}
}

// parseResultLine extracts the leaf fields from one result line: a JSON
// object with the members "id" (string), "sha256" (string), "band" (string)
// and "risk" (integer), matched exactly (case-sensitively; the last of
// duplicate members wins); other members are ignored. It validates the whole
// line with json.Valid, then walks only the top level, so the (possibly
// large) findings are never decoded.
func parseResultLine(line []byte) (Leaf, error) {
	if !json.Valid(line) {
		var v any
		if err := json.Unmarshal(line, &v); err != nil {
			return Leaf{}, err
		}
		return Leaf{}, errors.New("invalid JSON")
	}
	i := skipSpace(line, 0)
	if line[i] != '{' {
		return Leaf{}, errors.New("not a JSON object")
	}
	i = skipSpace(line, i+1)
	var (
		l    Leaf
		seen [4]bool
	)
	for line[i] != '}' {
		end := stringEnd(line, i)
		rawKey := line[i+1 : end-1]
		if bytes.IndexByte(rawKey, '\\') >= 0 {
			k, err := decodeString(line[i:end])
			if err != nil {
				return Leaf{}, err
			}
			rawKey = []byte(k)
		}
		field := leafField(rawKey)
		i = skipSpace(line, end)
		i = skipSpace(line, i+1) // the colon
		vend := valueEnd(line, i)
		val := line[i:vend]
		switch field {
		case fieldID, fieldSHA256, fieldBand:
			if val[0] == 'n' { // null, as encoding/json: leave unset
				break
			}
			if val[0] != '"' {
				return Leaf{}, fmt.Errorf("%s is not a string", fieldNames[field])
			}
			var v string
			if field == fieldBand {
				v = internBand(val[1 : len(val)-1])
			}
			if v == "" {
				var err error
				if v, err = decodeString(val); err != nil {
					return Leaf{}, err
				}
			}
			switch field {
			case fieldID:
				l.ID = v
			case fieldSHA256:
				l.SHA256 = v
			case fieldBand:
				l.Band = v
			}
			seen[field] = true
		case fieldRisk:
			if val[0] == 'n' {
				break
			}
			if val[0] != '-' && (val[0] < '0' || val[0] > '9') || bytes.ContainsAny(val, ".eE") {
				return Leaf{}, fmt.Errorf("risk %s is not an integer", val)
			}
			n, err := strconv.Atoi(string(val))
			if err != nil {
				return Leaf{}, fmt.Errorf("risk %s is not an integer", val)
			}
			l.Risk, seen[fieldRisk] = n, true
		}
		i = skipSpace(line, vend)
		if line[i] == ',' {
			i = skipSpace(line, i+1)
		}
	}
	var missing []string
	for k, name := range fieldNames {
		if !seen[k] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return Leaf{}, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	return l, nil
}

// Indexes of the leaf fields in a result line.
const (
	fieldID = iota
	fieldSHA256
	fieldBand
	fieldRisk
	fieldOther
)

var fieldNames = [4]string{"id", "sha256", "band", "risk"}

// leafField maps a member name to its field index, without allocating.
func leafField(name []byte) int {
	switch string(name) {
	case "id":
		return fieldID
	case "sha256":
		return fieldSHA256
	case "band":
		return fieldBand
	case "risk":
		return fieldRisk
	}
	return fieldOther
}

// internBand returns the constant for a known band spelled without escapes,
// and "" otherwise.
func internBand(b []byte) string {
	switch string(b) {
	case BandClean:
		return BandClean
	case BandElevated:
		return BandElevated
	case BandQuarantine:
		return BandQuarantine
	}
	return ""
}

// The helpers below walk JSON already checked by json.Valid.

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string starting at b[i] == '"'.
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// valueEnd returns the index just past the value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = stringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// decodeString decodes a JSON string literal (with quotes), taking the
// allocation-light path when it has no escapes and is valid UTF-8, and
// encoding/json's otherwise (which maps invalid UTF-8 to U+FFFD).
func decodeString(q []byte) (string, error) {
	body := q[1 : len(q)-1]
	if bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
		return string(body), nil
	}
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return "", err
	}
	return s, nil
}

// readLine returns the next line without its newline; the slice is valid
// until the next call. io.EOF only when there is nothing left.
func (r *resultsReader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if err == nil {
		return line[:len(line)-1], nil
	}
	if errors.Is(err, bufio.ErrBufferFull) {
		r.acc = append(r.acc[:0], line...)
		for {
			line, err = r.br.ReadSlice('\n')
			r.acc = append(r.acc, line...)
			if err == nil {
				return r.acc[:len(r.acc)-1], nil
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if errors.Is(err, io.EOF) {
				return r.acc, nil
			}
			return nil, fmt.Errorf("read results: %w", err)
		}
	}
	if errors.Is(err, io.EOF) {
		if len(line) == 0 {
			return nil, io.EOF
		}
		return line, nil
	}
	return nil, fmt.Errorf("read results: %w", err)
}

// ResultsSummary is what one pass over a results file computes.
type ResultsSummary struct {
	// SHA256 is the hex SHA-256 of the file's bytes.
	SHA256 string
	// Root is the hex Merkle root over its leaves.
	Root string
	// Leaves is the number of result lines.
	Leaves int64
	// Counts are the results per band.
	Counts Counts
}

// SummarizeResults reads a results JSONL file (one JSON object per document
// with at least "id" (string), "sha256", "band" and "risk" (integer), in
// input order) in one streaming pass and returns its digest, Merkle root,
// leaf count and band counts. Malformed lines and unknown bands give errors
// wrapping ErrInvalid.
func SummarizeResults(results io.Reader) (*ResultsSummary, error) {
	h := sha256.New()
	rr := newResultsReader(io.TeeReader(results, h))
	var t Tree
	var c Counts
	for {
		l, err := rr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := c.Add(l.Band); err != nil {
			return nil, invalidf("results line %d: %v", rr.line, err)
		}
		t.Add(l)
	}
	return &ResultsSummary{
		SHA256: hex.EncodeToString(h.Sum(nil)),
		Root:   t.RootHex(),
		Leaves: t.Len(),
		Counts: c,
	}, nil
}

// VerifyResults checks, in one streaming pass over results, that it is the
// results file the statement signed: same SHA-256, Merkle root, leaf count
// and band counts. Every mismatch is reported; mismatches wrap ErrInvalid.
func VerifyResults(s *Statement, results io.Reader) error {
	sum, err := SummarizeResults(results)
	if err != nil {
		return err
	}
	p := &s.Predicate
	var probs []string
	if sum.SHA256 != p.Results.SHA256 {
		probs = append(probs, fmt.Sprintf("sha256 is %s, signed %s", sum.SHA256, p.Results.SHA256))
	}
	if sum.Leaves != p.Merkle.Leaves {
		probs = append(probs, fmt.Sprintf("%d results, signed %d", sum.Leaves, p.Merkle.Leaves))
	}
	if sum.Root != p.Merkle.Root {
		probs = append(probs, fmt.Sprintf("merkle root is %s, signed %s", sum.Root, p.Merkle.Root))
	}
	if sum.Counts != p.Counts {
		probs = append(probs, fmt.Sprintf("band counts are %+v, signed %+v", sum.Counts, p.Counts))
	}
	if len(probs) > 0 {
		return invalidf("results %s: %s", p.Results.Name, strings.Join(probs, "; "))
	}
	return nil
}
