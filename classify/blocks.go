package classify

// The fast path of Model.score for overlapping windows.
//
// When the window is a whole number of strides, every window is a run of
// consecutive stride-sized blocks of tokens, and its features are the
// features of those blocks plus the word bigrams that cross the boundaries
// between them (a window's first token has no bigram: appendFeatures starts
// each window afresh). So each block's embedding rows are summed once, not
// once per window that covers it: with the shipped 32/16 windows, half the
// row reads, which are the classifier's main cost (random rows of an 8 MB
// table). The pooled vector is the same as the reference path's up to
// float32 summation order (TestBlocksMatchReference).

// scoreBlocks scores s.wins from block sums. It reports ok = false when a
// window would hold more than MaxFeatures ids (the reference path truncates
// there), so the caller falls back.
func (m *Model) scoreBlocks(norm string, s *scratch) (best float32, span [2]int, ok bool) {
	d, stride := m.Dim, m.WindowStride
	nb := (len(s.toks) + stride - 1) / stride
	s.bsum = grow(s.bsum, nb*d)
	s.bdg = grow(s.bdg, nb*d)
	s.bn = growInt(s.bn, nb)
	s.bdn = growInt(s.bdn, nb)
	for b := 0; b < nb; b++ {
		lo, hi := b*stride, min((b+1)*stride, len(s.toks))
		s.ids = m.h.appendFeatures(s.ids[:0], norm, s.toks[lo:hi], m.MinN, m.MaxN, m.MaxFeatures)
		s.bn[b] = len(s.ids)
		m.sumRows(s.bsum[b*d:b*d+d], s.ids)
		s.bdn[b] = 0
		if lo > 0 && s.toks[lo-1].word && s.toks[lo].word {
			id := m.h.bigram(norm[s.toks[lo-1].start:s.toks[lo-1].end], norm[s.toks[lo].start:s.toks[lo].end])
			s.bdn[b] = 1
			m.sumRow(s.bdg[b*d:b*d+d], id)
		}
	}
	if cap(s.h) < d {
		s.h = make([]float32, d)
	}
	h := s.h[:d]
	best = -1
	for _, w := range s.wins {
		b0, b1 := w.first/stride, (w.last+stride-1)/stride
		n := 0
		for b := b0; b < b1; b++ {
			n += s.bn[b]
			if b > b0 {
				n += s.bdn[b]
			}
		}
		if n > m.MaxFeatures {
			return 0, [2]int{}, false
		}
		clear(h)
		for b := b0; b < b1; b++ {
			add(h, s.bsum[b*d:b*d+d])
			if b > b0 && s.bdn[b] != 0 {
				add(h, s.bdg[b*d:b*d+d])
			}
		}
		if n > 0 {
			inv := 1 / float32(n)
			for k := range h {
				h[k] *= inv
			}
		}
		if p := m.output(h); p > best {
			best, span = p, [2]int{w.start, w.end}
		}
	}
	return best, span, true
}

// sumRows sets dst to Σ EmbScale[id]·Emb[id] over ids.
func (m *Model) sumRows(dst []float32, ids []uint32) {
	clear(dst)
	d := len(dst)
	for _, id := range ids {
		c := m.EmbScale[id]
		if c == 0 {
			continue
		}
		row := m.Emb[int(id)*d : int(id)*d+d]
		dst := dst[:len(row)]
		for k, q := range row {
			dst[k] += c * float32(q)
		}
	}
}

// sumRow sets dst to EmbScale[id]·Emb[id].
func (m *Model) sumRow(dst []float32, id uint32) {
	c := m.EmbScale[id]
	row := m.Emb[int(id)*len(dst) : int(id)*len(dst)+len(dst)]
	dst = dst[:len(row)]
	for k, q := range row {
		dst[k] = c * float32(q)
	}
}

func add(dst, src []float32) {
	src = src[:len(dst)]
	for k := range dst {
		dst[k] += src[k]
	}
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

func growInt(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	return s[:n]
}
