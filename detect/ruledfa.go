package detect

import (
	"regexp/syntax"
	"slices"
	"sync"
)

// A ruleDFA tells, for almost every anchor, that a rule's pattern cannot
// match there, at a few nanoseconds per byte, before Go's regexp is run
// (which costs from a few hundred nanoseconds to a microsecond per
// attempt). It is a DFA over ASCII for the pattern with its empty-width
// assertions (\b, ^, $) taken as always true, so it accepts every text the
// pattern matches and some it does not: when it finds that no match can
// start at a position the pattern has none there, and when one may (or it
// meets a byte ≥ 0x80, or goes deeper than it was built) the regexp
// decides. Only the states within dfaDepth bytes of the start are built:
// most anchors fail within a few bytes.
type ruleDFA struct {
	cls    [128]uint8 // byte classes
	ncls   int
	trans  []uint16 // trans[state*ncls+class]: the next state, dfaDead or dfaUnknown
	accept []bool   // some match ends in the state
	start  uint16
}

// dfaDead is the state from which no match is possible; dfaUnknown stands
// for the states more than dfaDepth bytes from the start, which are not
// built.
const (
	dfaDead    = 0
	dfaUnknown = 0xffff
	dfaDepth   = 12
	// maxDFAStates bounds a rule's DFA; a pattern that needs more gets none.
	maxDFAStates = 4096
)

// lazyDFA builds a rule's DFA the first time it is needed, so that engines
// pay only for the rules their texts reach.
type lazyDFA struct {
	once    sync.Once
	pattern string
	d       *ruleDFA
}

func (l *lazyDFA) get() *ruleDFA {
	if l == nil {
		return nil
	}
	l.once.Do(func() { l.d = newRuleDFA(l.pattern) })
	return l.d
}

// newRuleDFA builds the DFA of a pattern (Go syntax, as regexp.Compile
// parses it), or returns nil when it would be too large or the pattern does
// not compile.
func newRuleDFA(pattern string) *ruleDFA {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil
	}
	d := &ruleDFA{}
	// The ASCII bytes each rune instruction matches, and byte classes:
	// bytes that every instruction treats alike.
	matches := make([][2]uint64, len(prog.Inst))
	var runeInsts []int
	for pc := range prog.Inst {
		in := &prog.Inst[pc]
		switch in.Op {
		case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
			runeInsts = append(runeInsts, pc)
			for b := range 128 {
				if in.MatchRune(rune(b)) {
					matches[pc][b>>6] |= 1 << (b & 63)
				}
			}
		}
	}
	sigs := map[string]uint8{}
	sig := make([]byte, len(runeInsts))
	for b := range 128 {
		for k, pc := range runeInsts {
			sig[k] = byte(matches[pc][b>>6] >> (b & 63) & 1)
		}
		c, ok := sigs[string(sig)]
		if !ok {
			if len(sigs) > 127 {
				return nil
			}
			c = uint8(len(sigs))
			sigs[string(sig)] = c
		}
		d.cls[b] = c
	}
	d.ncls = len(sigs)
	rep := make([]int, d.ncls) // a byte of each class
	for b := 127; b >= 0; b-- {
		rep[d.cls[b]] = b
	}

	// closure adds pc, and what it reaches without reading a rune, to set;
	// seen[pc] == gen marks the instructions already added.
	seen := make([]uint32, len(prog.Inst))
	gen := uint32(0)
	var stack []uint32
	closure := func(set []uint32, pc uint32) []uint32 {
		stack = append(stack[:0], pc)
		for len(stack) > 0 {
			pc := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[pc] == gen {
				continue
			}
			seen[pc] = gen
			in := &prog.Inst[pc]
			switch in.Op {
			case syntax.InstAlt, syntax.InstAltMatch:
				stack = append(stack, in.Arg, in.Out)
			case syntax.InstCapture, syntax.InstEmptyWidth, syntax.InstNop:
				// An empty-width assertion is taken as true.
				stack = append(stack, in.Out)
			case syntax.InstFail:
			default: // runes and Match
				set = append(set, pc)
			}
		}
		return set
	}
	var sets [][]uint32
	var depth []int
	index := map[string]uint16{}
	var key []byte
	// add returns the state of an instruction set, adding it, dep bytes from
	// the start, when it is new; ok is false when there are too many.
	add := func(set []uint32, dep int) (uint16, bool) {
		slices.Sort(set)
		key = key[:0]
		for _, pc := range set {
			key = append(key, byte(pc), byte(pc>>8), byte(pc>>16))
		}
		if i, ok := index[string(key)]; ok {
			return i, true
		}
		if len(sets) >= maxDFAStates {
			return 0, false
		}
		i := uint16(len(sets))
		index[string(key)] = i
		sets = append(sets, slices.Clone(set))
		depth = append(depth, dep)
		acc := false
		for _, pc := range set {
			acc = acc || prog.Inst[pc].Op == syntax.InstMatch
		}
		d.accept = append(d.accept, acc)
		return i, true
	}
	add(nil, 0) // dfaDead
	gen++
	d.start, _ = add(closure(nil, uint32(prog.Start)), 0)
	var next []uint32
	for i := 0; i < len(sets); i++ {
		if depth[i] >= dfaDepth {
			for range d.ncls {
				d.trans = append(d.trans, dfaUnknown)
			}
			continue
		}
		for c := range d.ncls {
			gen++
			next = next[:0]
			b := rep[c]
			for _, pc := range sets[i] {
				if matches[pc][b>>6]>>(b&63)&1 != 0 {
					next = closure(next, prog.Inst[pc].Out)
				}
			}
			j, ok := add(next, depth[i]+1)
			if !ok {
				return nil
			}
			d.trans = append(d.trans, j)
		}
	}
	return d
}

// mayMatch reports whether the pattern may match at the start of text: it
// is false only when no match can start there.
func (d *ruleDFA) mayMatch(text string) bool {
	s := d.start
	if d.accept[s] {
		return true
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c >= 0x80 {
			return true
		}
		s = d.trans[int(s)*d.ncls+int(d.cls[c])]
		switch {
		case s == dfaDead:
			return false
		case s == dfaUnknown || d.accept[s]:
			return true
		}
	}
	return false
}
