package dataset

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds a small strict JSON (RFC 8259) parser used on the hot path
// of every JSON-like format. It builds a flat tree of nodes pointing into the
// document, reused from record to record, and decodes only the strings that
// are selected as text fields, which makes it several times faster than
// encoding/json into map[string]any.

// jkind is the type of a JSON value.
type jkind uint8

const (
	jNull jkind = iota
	jFalse
	jTrue
	jNumber
	jString
	jArray
	jObject
)

func (k jkind) String() string {
	switch k {
	case jNull:
		return "null"
	case jFalse, jTrue:
		return "boolean"
	case jNumber:
		return "number"
	case jString:
		return "string"
	case jArray:
		return "array"
	default:
		return "object"
	}
}

// jnode is one value of a parsed document. Strings span their contents
// without the quotes; other values span their whole text.
type jnode struct {
	start, end       int
	keyStart, keyEnd int // the member's key (without quotes) when the parent is an object
	first, next      int // first child and next sibling, -1 when none
	kind             jkind
	esc              bool // the string value contains backslash escapes
	keyEsc           bool // the key contains backslash escapes
}

// maxJSONDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxJSONDepth = 1000

// jsonError is a syntax error at a byte offset of the document.
type jsonError struct {
	msg string
	off int
}

func (e *jsonError) Error() string { return fmt.Sprintf("invalid JSON: %s at byte %d", e.msg, e.off) }

// jparser parses one document at a time; nodes is reused between documents.
type jparser struct {
	data    []byte
	nodes   []jnode
	depth   int
	scratch []byte // for decoding escaped strings
}

// parse parses data as exactly one JSON value surrounded by optional
// whitespace. The root is nodes[0]. data must stay unmodified while the
// nodes are used.
func (p *jparser) parse(data []byte) error {
	p.data = data
	p.nodes = p.nodes[:0]
	p.depth = 0
	i := skipWS(data, 0)
	i, err := p.value(i, -1, -1, false)
	if err != nil {
		return err
	}
	i = skipWS(data, i)
	if i != len(data) {
		return &jsonError{fmt.Sprintf("invalid character %s after top-level value", quoteChar(data[i])), i}
	}
	return nil
}

func skipWS(d []byte, i int) int {
	for i < len(d) {
		switch d[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	if c >= utf8.RuneSelf {
		s = fmt.Sprintf("byte 0x%02x", c)
		return s
	}
	return "'" + s[1:len(s)-1] + "'"
}

func (p *jparser) unexpected(i int) error {
	if i >= len(p.data) {
		return &jsonError{"unexpected end of input", i}
	}
	return &jsonError{"invalid character " + quoteChar(p.data[i]), i}
}

// value parses the value starting at i (whitespace already skipped) and
// appends its node; it returns the offset after the value.
func (p *jparser) value(i, keyStart, keyEnd int, keyEsc bool) (int, error) {
	d := p.data
	if i >= len(d) {
		return i, p.unexpected(i)
	}
	idx := len(p.nodes)
	p.nodes = append(p.nodes, jnode{start: i, keyStart: keyStart, keyEnd: keyEnd, keyEsc: keyEsc, first: -1, next: -1})
	switch c := d[i]; {
	case c == '"':
		end, esc, err := p.str(i + 1)
		if err != nil {
			return end, err
		}
		n := &p.nodes[idx]
		n.kind, n.start, n.end, n.esc = jString, i+1, end, esc
		return end + 1, nil
	case c == '{':
		return p.object(idx, i)
	case c == '[':
		return p.array(idx, i)
	case c == 't':
		return p.literal(idx, i, "true", jTrue)
	case c == 'f':
		return p.literal(idx, i, "false", jFalse)
	case c == 'n':
		return p.literal(idx, i, "null", jNull)
	case c == '-' || (c >= '0' && c <= '9'):
		end, err := p.number(i)
		if err != nil {
			return end, err
		}
		n := &p.nodes[idx]
		n.kind, n.end = jNumber, end
		return end, nil
	default:
		return i, p.unexpected(i)
	}
}

func (p *jparser) literal(idx, i int, lit string, k jkind) (int, error) {
	d := p.data
	for j := 0; j < len(lit); j++ {
		if i+j >= len(d) || d[i+j] != lit[j] {
			return i + j, p.unexpected(i + j)
		}
	}
	n := &p.nodes[idx]
	n.kind, n.end = k, i+len(lit)
	return i + len(lit), nil
}

func (p *jparser) number(i int) (int, error) {
	d := p.data
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return i, p.unexpected(i)
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return i, p.unexpected(i)
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return i, p.unexpected(i)
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	return i, nil
}

// strSpecial marks the bytes that end the fast scan of a string.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'] = true
	t['\\'] = true
	return t
}()

// str scans a string whose contents start at i; it returns the offset of
// the closing quote and whether the string has escapes.
func (p *jparser) str(i int) (int, bool, error) {
	d := p.data
	esc := false
	for {
		// Skip 8 bytes at a time while none is a quote, a backslash or a
		// control character.
		for i+8 <= len(d) && !swarSpecial(binary.LittleEndian.Uint64(d[i:])) {
			i += 8
		}
		for i < len(d) && !strSpecial[d[i]] {
			i++
		}
		if i >= len(d) {
			return i, esc, &jsonError{"unexpected end of input in string", i}
		}
		switch c := d[i]; c {
		case '"':
			return i, esc, nil
		case '\\':
			esc = true
			if i+1 >= len(d) {
				return i + 1, esc, &jsonError{"unexpected end of input in string", i + 1}
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for j := 2; j < 6; j++ {
					if i+j >= len(d) {
						return i + j, esc, &jsonError{"unexpected end of input in string", i + j}
					}
					if !isHex(d[i+j]) {
						return i + j, esc, &jsonError{"invalid character " + quoteChar(d[i+j]) + " in \\u escape", i + j}
					}
				}
				i += 6
			default:
				return i + 1, esc, &jsonError{"invalid escape " + quoteChar(d[i+1]) + " in string", i + 1}
			}
		default:
			return i, esc, &jsonError{fmt.Sprintf("control character 0x%02x in string", c), i}
		}
	}
}

const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// swarSpecial reports whether any byte of x is '"', '\\' or below 0x20
// (it may report false positives, never false negatives).
func swarSpecial(x uint64) bool {
	q := x ^ (swarLo * '"')
	b := x ^ (swarLo * '\\')
	return ((x-swarLo*0x20)&^x|(q-swarLo)&^q|(b-swarLo)&^b)&swarHi != 0
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func (p *jparser) object(idx, i int) (int, error) {
	if p.depth++; p.depth > maxJSONDepth {
		return i, &jsonError{"nesting too deep", i}
	}
	d := p.data
	i = skipWS(d, i+1)
	last := -1
	if i < len(d) && d[i] == '}' {
		p.finish(idx, jObject, i+1)
		return i + 1, nil
	}
	for {
		if i >= len(d) || d[i] != '"' {
			if i < len(d) {
				return i, &jsonError{"invalid character " + quoteChar(d[i]) + " looking for object key", i}
			}
			return i, p.unexpected(i)
		}
		kend, kesc, err := p.str(i + 1)
		if err != nil {
			return kend, err
		}
		ks := i + 1
		i = skipWS(d, kend+1)
		if i >= len(d) || d[i] != ':' {
			if i < len(d) {
				return i, &jsonError{"invalid character " + quoteChar(d[i]) + " after object key", i}
			}
			return i, p.unexpected(i)
		}
		i = skipWS(d, i+1)
		child := len(p.nodes)
		if i, err = p.value(i, ks, kend, kesc); err != nil {
			return i, err
		}
		p.link(idx, last, child)
		last = child
		i = skipWS(d, i)
		if i >= len(d) {
			return i, p.unexpected(i)
		}
		switch d[i] {
		case ',':
			i = skipWS(d, i+1)
		case '}':
			p.finish(idx, jObject, i+1)
			return i + 1, nil
		default:
			return i, &jsonError{"invalid character " + quoteChar(d[i]) + " after object value", i}
		}
	}
}

func (p *jparser) array(idx, i int) (int, error) {
	if p.depth++; p.depth > maxJSONDepth {
		return i, &jsonError{"nesting too deep", i}
	}
	d := p.data
	i = skipWS(d, i+1)
	last := -1
	if i < len(d) && d[i] == ']' {
		p.finish(idx, jArray, i+1)
		return i + 1, nil
	}
	for {
		child := len(p.nodes)
		var err error
		if i, err = p.value(i, -1, -1, false); err != nil {
			return i, err
		}
		p.link(idx, last, child)
		last = child
		i = skipWS(d, i)
		if i >= len(d) {
			return i, p.unexpected(i)
		}
		switch d[i] {
		case ',':
			i = skipWS(d, i+1)
		case ']':
			p.finish(idx, jArray, i+1)
			return i + 1, nil
		default:
			return i, &jsonError{"invalid character " + quoteChar(d[i]) + " after array element", i}
		}
	}
}

func (p *jparser) link(parent, last, child int) {
	if last < 0 {
		p.nodes[parent].first = child
	} else {
		p.nodes[last].next = child
	}
}

func (p *jparser) finish(idx int, k jkind, end int) {
	p.depth--
	n := &p.nodes[idx]
	n.kind, n.end = k, end
}

// keyEq reports whether node n's key equals k.
func (p *jparser) keyEq(n *jnode, k string) bool {
	if n.keyStart < 0 {
		return false
	}
	if !n.keyEsc {
		return string(p.data[n.keyStart:n.keyEnd]) == k
	}
	return string(unescape(nil, p.data[n.keyStart:n.keyEnd])) == k
}

// key returns node n's key, decoded.
func (p *jparser) key(n *jnode) string {
	if !n.keyEsc {
		return string(p.data[n.keyStart:n.keyEnd])
	}
	return string(unescape(nil, p.data[n.keyStart:n.keyEnd]))
}

// text returns the decoded value of string node n.
func (p *jparser) text(n *jnode) string {
	if !n.esc {
		return string(p.data[n.start:n.end])
	}
	p.scratch = unescape(p.scratch[:0], p.data[n.start:n.end])
	s := string(p.scratch)
	if cap(p.scratch) > 1<<20 {
		p.scratch = nil
	}
	return s
}

// raw returns node n's bytes as they appear in the document (strings
// without their quotes).
func (p *jparser) raw(n *jnode) []byte { return p.data[n.start:n.end] }

// child returns the first member of object n whose key is k, or -1.
func (p *jparser) child(n int, k string) int {
	for c := p.nodes[n].first; c >= 0; c = p.nodes[c].next {
		if p.keyEq(&p.nodes[c], k) {
			return c
		}
	}
	return -1
}

// unescape appends the decoded contents of a valid JSON string body to dst.
// Lone surrogates become U+FFFD, as encoding/json does.
func unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := bytes.IndexByte(s[i:], '\\')
			if j < 0 {
				return append(dst, s[i:]...)
			}
			j += i
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := rune(hex4(s[i+2 : i+6]))
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, rune(hex4(s[i+2:i+6]))); dec != utf8.RuneError {
						r2 = dec
						i += 6
					}
				}
				r = r2
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

func hex4(b []byte) int {
	v := 0
	for _, c := range b {
		v <<= 4
		switch {
		case c >= '0' && c <= '9':
			v |= int(c - '0')
		case c >= 'a' && c <= 'f':
			v |= int(c - 'a' + 10)
		default:
			v |= int(c - 'A' + 10)
		}
	}
	return v
}
