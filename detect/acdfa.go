package detect

import "math/bits"

// acDFA is an Aho–Corasick automaton compiled to a dense DFA over byte
// classes, built for the rule anchors. It reports every occurrence of every
// term (overlapping), ordered by end position.
//
// It replaces a general-purpose library for one reason: speed on the hot
// path. Walking a DFA is a chain of dependent loads, one per byte, so a
// single walk is bound by load latency, not bandwidth. findAll therefore
// walks the four quarters of a text at the same time (see walk4), which lets
// the CPU overlap the four chains; its inner loops make no calls, so that
// the states stay in registers; the states that report matches are numbered
// last, so that one comparison per byte finds them; and the table holds
// each next state as the offset of its row, which takes the shift off the
// chain of dependent loads.
type acDFA struct {
	cls   [256]uint8
	shift uint // log2 of the row stride (classes rounded up to a power of 2)
	// trans[state<<shift|class] is the next state, premultiplied: the
	// offset of its row, next<<shift, so that a step is one addition and
	// one load.
	trans  []uint32
	outMin uint32    // the states whose rows start at outMin or later report matches
	out    [][]int32 // by state
	lens   []int32   // term lengths
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
	bt := make([]uint16, len(nodes)*stride) // by state number, during the build
	queue := make([]int32, 0, len(nodes))
	for c := 0; c < ncls; c++ {
		if v := nodes[0].next[c]; v >= 0 {
			nodes[v].fail = 0
			bt[c] = uint16(v)
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
				nodes[v].fail = int32(bt[int(f)<<a.shift|c])
				bt[int(u)<<a.shift|c] = uint16(v)
				queue = append(queue, v)
			} else {
				bt[int(u)<<a.shift|c] = bt[int(f)<<a.shift|c]
			}
		}
	}
	// Number the states that report matches last, so that one comparison
	// tells whether a state reports: the other states keep their breadth-
	// first order, and the root stays 0.
	id := make([]uint16, len(nodes))
	k := 0
	for pass := range 2 {
		for i, n := range nodes {
			if (len(n.out) > 0) == (pass == 1) {
				id[i] = uint16(k)
				k++
			}
		}
		if pass == 0 {
			a.outMin = uint32(k) << a.shift
		}
	}
	trans := make([]uint32, len(bt))
	a.out = make([][]int32, len(nodes))
	for i, n := range nodes {
		row, nrow := i<<a.shift, int(id[i])<<a.shift
		for c := range stride {
			trans[nrow+c] = uint32(id[bt[row+c]]) << a.shift
		}
		if len(n.out) > 0 {
			a.out[id[i]] = n.out
		}
	}
	a.trans = trans
	return a
}

// findAll appends every occurrence of every term in text to dst, ordered by
// end position, then by length, longest first (the automaton's output order).
func (a *acDFA) findAll(text string, dst []acMatch) []acMatch {
	return a.findAllAux(text, dst, nil)
}

// acAux holds findAllAux's buffers for the matches of the second, third
// and fourth quarters of a text.
type acAux [3][]acMatch

// acMinQuarter is the shortest quarter of a text that walk4 walks.
const acMinQuarter = 16

// findAllAux is findAll with scratch buffers (aux may be nil).
//
// Walking a DFA is a chain of dependent loads, one per byte, so a single
// walk is bound by load latency, not bandwidth: texts of four times
// acMinQuarter bytes or more are walked in four quarters at the same time,
// which lets the CPU overlap the four chains.
func (a *acDFA) findAllAux(text string, dst []acMatch, aux *acAux) []acMatch {
	if q := len(text) / 4; q >= acMinQuarter && q > a.maxLen-1 {
		return a.walk4(text, dst, aux)
	}
	return a.walk(text, 0, len(text), 0, dst)
}

// walk4 walks the four quarters of text side by side. Each quarter but the
// first is entered maxLen-1 bytes early, without reporting, so that no match
// across a cut is lost; the later quarters' matches collect in aux's buffers
// and are appended to dst at the end, which keeps them ordered by end.
func (a *acDFA) walk4(text string, dst []acMatch, aux *acAux) []acMatch {
	n := len(text)
	q := n / 4
	warm := a.maxLen - 1
	var m1, m2, m3 []acMatch
	if aux != nil {
		m1, m2, m3 = aux[0][:0], aux[1][:0], aux[2][:0]
	}
	var st [4]uint32
	for k := q - warm; k < q; k++ {
		st = a.step4(st, text, k, q)
	}
	st[0] = 0
	for i := 0; i < q; i++ {
		i, st = a.run4(st, text, i, q)
		if i >= q {
			break
		}
		if st[0] >= a.outMin {
			dst = a.emit(dst, st[0], i+1)
		}
		if st[1] >= a.outMin {
			m1 = a.emit(m1, st[1], q+i+1)
		}
		if st[2] >= a.outMin {
			m2 = a.emit(m2, st[2], 2*q+i+1)
		}
		if st[3] >= a.outMin {
			m3 = a.emit(m3, st[3], 3*q+i+1)
		}
	}
	s3 := st[3]
	for j := 4 * q; j < n; j++ {
		s3 = a.trans[s3+uint32(a.cls[text[j]])]
		if s3 >= a.outMin {
			m3 = a.emit(m3, s3, j+1)
		}
	}
	dst = append(dst, m1...)
	dst = append(dst, m2...)
	dst = append(dst, m3...)
	if aux != nil {
		aux[0], aux[1], aux[2] = m1[:0], m2[:0], m3[:0]
	}
	return dst
}

// step4 moves the four walks by the bytes at k, q+k, 2q+k and 3q+k, without
// looking at their states.
func (a *acDFA) step4(st [4]uint32, text string, k, q int) [4]uint32 {
	trans, cls := a.trans, &a.cls
	st[1] = trans[st[1]+uint32(cls[text[k]])]
	st[2] = trans[st[2]+uint32(cls[text[q+k]])]
	st[3] = trans[st[3]+uint32(cls[text[2*q+k]])]
	return st
}

// run4 moves the four walks from byte i of each quarter (of q bytes) until
// one of them reaches a state that reports, and returns that byte's index
// (q when none does) and the states after it. It makes no calls, so that
// its loop keeps everything in registers.
func (a *acDFA) run4(st [4]uint32, text string, i, q int) (int, [4]uint32) {
	trans, cls, outMin := a.trans, &a.cls, a.outMin
	s0, s1, s2, s3 := st[0], st[1], st[2], st[3]
	t := text[:4*q]
	for ; i < q; i++ {
		s0 = trans[s0+uint32(cls[t[i]])]
		s1 = trans[s1+uint32(cls[t[q+i]])]
		s2 = trans[s2+uint32(cls[t[2*q+i]])]
		s3 = trans[s3+uint32(cls[t[3*q+i]])]
		if max(s0, s1, s2, s3) >= outMin {
			break
		}
	}
	return i, [4]uint32{s0, s1, s2, s3}
}

// walk runs the automaton over text[from:to] from state 0, reporting matches
// that end after skipBefore.
func (a *acDFA) walk(text string, from, to, skipBefore int, dst []acMatch) []acMatch {
	var s uint32
	for i := from; i < to; i++ {
		i, s = a.run1(s, text[:to], i)
		if i >= to {
			break
		}
		if i >= skipBefore {
			dst = a.emit(dst, s, i+1)
		}
	}
	return dst
}

// run1 moves the automaton from state s over text[i:] until it reaches a
// state that reports, and returns the index of the byte that led there
// (len(text) when none does) and the state.
func (a *acDFA) run1(s uint32, text string, i int) (int, uint32) {
	trans, cls, outMin := a.trans, &a.cls, a.outMin
	for ; i < len(text); i++ {
		s = trans[s+uint32(cls[text[i]])]
		if s >= outMin {
			break
		}
	}
	return i, s
}

// emit appends the matches that end at end in the state whose row starts
// at s.
func (a *acDFA) emit(dst []acMatch, s uint32, end int) []acMatch {
	for _, t := range a.out[s>>a.shift] {
		dst = append(dst, acMatch{PatternID: int(t), Start: end - int(a.lens[t]), End: end})
	}
	return dst
}
