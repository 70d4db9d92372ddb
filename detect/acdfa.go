package detect

import "math/bits"

// acDFA is an Aho–Corasick automaton compiled to a dense DFA over byte
// classes, built for the rule anchors. It reports every occurrence of every
// term (overlapping), ordered by end position.
//
// It replaces a general-purpose library for one reason: speed on the hot
// path. Walking a DFA is a chain of dependent loads, one per byte, so a
// single walk is bound by load latency, not bandwidth. findAll therefore
// walks the two halves of a text at the same time (the second half starts
// maxLen-1 bytes early so that no match across the cut is lost), which lets
// the CPU overlap the two chains; and the table holds uint16 state numbers,
// half the cache footprint of 32-bit ones.
type acDFA struct {
	cls    [256]uint8
	shift  uint     // log2 of the row stride (classes rounded up to a power of 2)
	trans  []uint16 // trans[state<<shift|class] is the next state
	isOut  []bool   // isOut[state]: some term ends here
	out    [][]int32
	lens   []int32 // term lengths
	maxLen int
}

// acMatch is one occurrence of term PatternID at [Start, End).
type acMatch struct {
	PatternID int
	Start     int
	End       int
}

// newACDFA builds the automaton for terms (non-empty strings). It returns
// nil when the automaton would exceed uint16 states.
func newACDFA(terms []string) *acDFA {
	a := &acDFA{}
	// Byte classes: every byte that occurs in a term gets its own class;
	// all others share class 0, which only ever leads back towards the root.
	var used [256]bool
	for _, t := range terms {
		for i := 0; i < len(t); i++ {
			used[t[i]] = true
		}
		a.lens = append(a.lens, int32(len(t)))
		a.maxLen = max(a.maxLen, len(t))
	}
	ncls := 1
	for b := range 256 {
		if used[b] {
			a.cls[b] = uint8(ncls)
			ncls++
		}
	}
	if ncls > 256 {
		return nil
	}
	a.shift = uint(bits.Len(uint(ncls - 1)))
	stride := 1 << a.shift

	// Trie.
	type node struct {
		next [256]int32 // by class; -1 none
		fail int32
		out  []int32
	}
	newNode := func() *node {
		n := &node{}
		for i := range n.next {
			n.next[i] = -1
		}
		return n
	}
	nodes := []*node{newNode()}
	for ti, t := range terms {
		s := int32(0)
		for i := 0; i < len(t); i++ {
			c := a.cls[t[i]]
			if nodes[s].next[c] < 0 {
				nodes[s].next[c] = int32(len(nodes))
				nodes = append(nodes, newNode())
			}
			s = nodes[s].next[c]
		}
		nodes[s].out = append(nodes[s].out, int32(ti))
	}
	if len(nodes) > 1<<16 {
		return nil
	}
	// Failure links and the full transition function, breadth first.
	a.trans = make([]uint16, len(nodes)*stride)
	queue := make([]int32, 0, len(nodes))
	for c := 0; c < ncls; c++ {
		if v := nodes[0].next[c]; v >= 0 {
			nodes[v].fail = 0
			a.trans[c] = uint16(v)
			queue = append(queue, v)
		}
	}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		f := nodes[u].fail
		nodes[u].out = append(nodes[u].out, nodes[f].out...)
		for c := 0; c < ncls; c++ {
			if v := nodes[u].next[c]; v >= 0 {
				nodes[v].fail = int32(a.trans[int(f)<<a.shift|c])
				a.trans[int(u)<<a.shift|c] = uint16(v)
				queue = append(queue, v)
			} else {
				a.trans[int(u)<<a.shift|c] = a.trans[int(f)<<a.shift|c]
			}
		}
	}
	a.isOut = make([]bool, len(nodes))
	a.out = make([][]int32, len(nodes))
	for i, n := range nodes {
		if len(n.out) > 0 {
			a.isOut[i] = true
			a.out[i] = n.out
		}
	}
	return a
}

// findAll appends every occurrence of every term in text to dst, ordered by
// end position (ties in automaton output order).
func (a *acDFA) findAll(text string, dst []acMatch) []acMatch {
	n := len(text)
	if n < 256 {
		return a.walk(text, 0, n, 0, dst)
	}
	mid := n / 2
	startB := mid - (a.maxLen - 1)
	var second []acMatch
	trans, cls, isOut, shift := a.trans, &a.cls, a.isOut, a.shift
	sa, sb := uint16(0), uint16(0)
	i, j := 0, startB
	for i < mid && j < n {
		sa = trans[int(sa)<<shift|int(cls[text[i]])]
		sb = trans[int(sb)<<shift|int(cls[text[j]])]
		if isOut[sa] {
			dst = a.emit(dst, sa, i+1)
		}
		if isOut[sb] && j >= mid {
			second = a.emit(second, sb, j+1)
		}
		i++
		j++
	}
	for ; i < mid; i++ {
		sa = trans[int(sa)<<shift|int(cls[text[i]])]
		if isOut[sa] {
			dst = a.emit(dst, sa, i+1)
		}
	}
	for ; j < n; j++ {
		sb = trans[int(sb)<<shift|int(cls[text[j]])]
		if isOut[sb] && j >= mid {
			second = a.emit(second, sb, j+1)
		}
	}
	return append(dst, second...)
}

// walk runs the automaton over text[from:to] from state 0, reporting matches
// that end after skipBefore.
func (a *acDFA) walk(text string, from, to, skipBefore int, dst []acMatch) []acMatch {
	s := uint16(0)
	for i := from; i < to; i++ {
		s = a.trans[int(s)<<a.shift|int(a.cls[text[i]])]
		if a.isOut[s] && i >= skipBefore {
			dst = a.emit(dst, s, i+1)
		}
	}
	return dst
}

func (a *acDFA) emit(dst []acMatch, s uint16, end int) []acMatch {
	for _, t := range a.out[s] {
		dst = append(dst, acMatch{PatternID: int(t), Start: end - int(a.lens[t]), End: end})
	}
	return dst
}
