package dataset

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// autoFields are the top-level names whose values are scanned when no
// --text-field is given, in field order.
var autoFields = []string{
	"text", "content",
	"prompt", "system", "response", "completion", "chosen", "rejected",
	"instruction", "input", "output",
	"messages", "conversations",
	"question", "answer", "body", "document",
}

// autoRank maps an auto-detected name to its position in autoFields.
var autoRank = func() map[string]int {
	m := make(map[string]int, len(autoFields))
	for i, f := range autoFields {
		m[f] = i
	}
	return m
}()

// errNoText is the reason for a record without any text field.
const errNoText = "no text field (use --text-field)"

// pathSeg is one step of a dotted field path: a key and optional indexes.
type pathSeg struct {
	key   string
	index []int
}

// parsePath parses "a.b[2].c" into segments.
func parsePath(p string) ([]pathSeg, error) {
	if p == "" {
		return nil, errors.New("empty text field path")
	}
	var segs []pathSeg
	for _, part := range strings.Split(p, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if key == "" {
			return nil, fmt.Errorf("bad field path %q: empty name", p)
		}
		seg := pathSeg{key: key}
		for rest != "" {
			num, after, ok := strings.Cut(rest, "]")
			n, err := strconv.Atoi(num)
			if !ok || err != nil || n < 0 {
				return nil, fmt.Errorf("bad field path %q: bad index", p)
			}
			seg.index = append(seg.index, n)
			if after == "" {
				break
			}
			if after[0] != '[' {
				return nil, fmt.Errorf("bad field path %q: bad index", p)
			}
			rest = after[1:]
		}
		segs = append(segs, seg)
	}
	return segs, nil
}

// extractor turns JSON documents into Records. It is not safe for
// concurrent use; each reader owns one.
type extractor struct {
	opts  Options
	paths [][]pathSeg // parsed opts.TextFields
	id    []pathSeg
	keep  [][]pathSeg
	p     jparser
	ranks []int // per top-level member, its autoRank or -1 (reused)

	// per record
	fields   []Field
	badUTF8  bool
	typeErr  string
	anyFound bool
}

func newExtractor(opts Options) (*extractor, error) {
	x := &extractor{opts: opts}
	for _, f := range opts.TextFields {
		segs, err := parsePath(f)
		if err != nil {
			return nil, err
		}
		x.paths = append(x.paths, segs)
	}
	id, err := parsePath(opts.IDField)
	if err != nil {
		return nil, fmt.Errorf("id field: %w", err)
	}
	x.id = id
	for _, f := range opts.KeepFields {
		segs, err := parsePath(f)
		if err != nil {
			return nil, fmt.Errorf("keep field: %w", err)
		}
		x.keep = append(x.keep, segs)
	}
	return x, nil
}

// extract parses one JSON document into rec (whose Source and Raw are set).
// It returns the reason when the document is malformed, else "".
func (x *extractor) extract(doc []byte, rec *Record) string {
	if err := x.p.parse(doc); err != nil {
		return err.Error()
	}
	if k := x.p.nodes[0].kind; k != jObject {
		return "not a JSON object (got " + k.String() + ")"
	}
	x.fields = x.fields[:0]
	x.badUTF8 = !utf8.Valid(doc)
	x.typeErr = ""
	x.anyFound = false

	if len(x.paths) > 0 {
		for _, segs := range x.paths {
			x.resolve(0, "", segs)
		}
	} else {
		x.auto()
	}
	if x.typeErr != "" {
		return x.typeErr
	}
	if x.badUTF8 {
		return "invalid UTF-8 at byte " + strconv.Itoa(firstInvalidUTF8(doc))
	}
	if !x.anyFound {
		if len(x.paths) > 0 {
			return "missing text field " + strings.Join(x.opts.TextFields, ", ")
		}
		return errNoText
	}
	if len(x.fields) > 0 {
		rec.Fields = append(make([]Field, 0, len(x.fields)), x.fields...)
	}
	rec.ID = x.scalar(x.lookup(x.id), true)
	if rec.ID == "" {
		rec.ID = rec.Source.String()
	}
	if len(x.keep) > 0 {
		rec.Meta = make(map[string]string, len(x.keep))
		for i, segs := range x.keep {
			if n := x.lookup(segs); n >= 0 {
				rec.Meta[x.opts.KeepFields[i]] = x.scalar(n, false)
			}
		}
	}
	return ""
}

// auto selects the auto-detected text fields of the root object.
func (x *extractor) auto() {
	p := &x.p
	x.ranks = x.ranks[:0]
	best := len(autoFields)
	for c := p.nodes[0].first; c >= 0; c = p.nodes[c].next {
		n := &p.nodes[c]
		r, ok := -1, false
		if !n.keyEsc {
			r, ok = autoRank[string(p.data[n.keyStart:n.keyEnd])]
		} else {
			r, ok = autoRank[p.key(n)]
		}
		if !ok {
			r = -1
		} else if r < best {
			best = r
		}
		x.ranks = append(x.ranks, r)
	}
	if best == len(autoFields) {
		return
	}
	x.anyFound = true
	for r := best; r < len(autoFields); r++ {
		i := 0
		for c := p.nodes[0].first; c >= 0; c = p.nodes[c].next {
			if x.ranks[i] == r {
				x.emit(autoFields[r], c, false)
			}
			i++
		}
	}
}

// resolve follows segs from node n (named name) and emits what it reaches.
func (x *extractor) resolve(n int, name string, segs []pathSeg) {
	p := &x.p
	if len(segs) == 0 {
		x.anyFound = true
		x.emit(name, n, true)
		return
	}
	switch p.nodes[n].kind {
	case jArray:
		i := 0
		for c := p.nodes[n].first; c >= 0; c = p.nodes[c].next {
			x.resolve(c, name+"["+strconv.Itoa(i)+"]", segs)
			i++
		}
	case jObject:
		seg := segs[0]
		for c := p.nodes[n].first; c >= 0; c = p.nodes[c].next {
			if !p.keyEq(&p.nodes[c], seg.key) {
				continue
			}
			v, vname := c, joinName(name, seg.key)
			for _, idx := range seg.index {
				v = p.elem(v, idx)
				if v < 0 {
					break
				}
				vname += "[" + strconv.Itoa(idx) + "]"
			}
			if v >= 0 {
				x.resolve(v, vname, segs[1:])
			}
		}
	}
}

// lookup returns the first node at segs from the root (no array fan-out).
func (x *extractor) lookup(segs []pathSeg) int {
	p := &x.p
	n := 0
	for _, seg := range segs {
		if p.nodes[n].kind != jObject {
			return -1
		}
		if n = p.child(n, seg.key); n < 0 {
			return -1
		}
		for _, idx := range seg.index {
			if n = p.elem(n, idx); n < 0 {
				return -1
			}
		}
	}
	return n
}

// elem returns the idx-th element of array node n, or -1.
func (p *jparser) elem(n, idx int) int {
	if p.nodes[n].kind != jArray {
		return -1
	}
	c := p.nodes[n].first
	for ; c >= 0 && idx > 0; idx-- {
		c = p.nodes[c].next
	}
	return c
}

func joinName(name, key string) string {
	if name == "" {
		return key
	}
	return name + "." + key
}

// scalar renders node n as a string: strings decoded, numbers and literals
// as written, objects and arrays as their JSON text (unless idOnly, where
// they render as ""). n < 0 renders as "".
func (x *extractor) scalar(n int, idOnly bool) string {
	if n < 0 {
		return ""
	}
	node := &x.p.nodes[n]
	switch node.kind {
	case jString:
		return x.p.text(node)
	case jNumber:
		return string(x.p.raw(node))
	case jNull:
		return ""
	default:
		if idOnly {
			return ""
		}
		return string(x.p.raw(node))
	}
}

// emit adds the texts of node n, named name. explicit is true when the
// user named the field (objects then yield all their strings).
func (x *extractor) emit(name string, n int, explicit bool) {
	p := &x.p
	node := &p.nodes[n]
	switch node.kind {
	case jString:
		if node.start == node.end {
			return
		}
		if x.badUTF8 && !utf8.Valid(p.raw(node)) {
			if x.typeErr == "" {
				x.typeErr = "invalid UTF-8 in field " + name
			}
			return
		}
		x.fields = append(x.fields, Field{Name: name, Text: p.text(node)})
	case jNull:
	case jArray:
		i := 0
		for c := node.first; c >= 0; c = p.nodes[c].next {
			x.emit(name+"["+strconv.Itoa(i)+"]", c, explicit)
			i++
		}
	case jObject:
		for _, k := range [...]string{"content", "value", "text"} {
			if c := p.child(n, k); c >= 0 {
				for ; c >= 0; c = p.nodes[c].next {
					if p.keyEq(&p.nodes[c], k) {
						x.emit(name+"."+k, c, explicit)
					}
				}
				return
			}
		}
		if explicit {
			x.leaves(name, n)
		}
	default:
		if x.typeErr == "" {
			x.typeErr = "text field " + name + " is a " + node.kind.String() + ", not a string"
		}
	}
}

// leaves emits every string inside node n, in document order.
func (x *extractor) leaves(name string, n int) {
	p := &x.p
	node := &p.nodes[n]
	switch node.kind {
	case jString:
		x.emit(name, n, true)
	case jArray:
		i := 0
		for c := node.first; c >= 0; c = p.nodes[c].next {
			x.leaves(name+"["+strconv.Itoa(i)+"]", c)
			i++
		}
	case jObject:
		for c := node.first; c >= 0; c = p.nodes[c].next {
			x.leaves(joinName(name, p.key(&p.nodes[c])), c)
		}
	}
}

// firstInvalidUTF8 returns the offset of the first invalid UTF-8 sequence.
func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}
