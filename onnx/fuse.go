package onnx

import (
	"fmt"
	"slices"
)

// bagStep is the fused kernel for the weighted bag of embeddings that
// SentinelDF's classifier starts with:
//
//	ReduceSum(Mul(Gather(E, ids), Unsqueeze(weights, -1)), axes=[1])
//
// Run as written, it materialises an [N, L, D] tensor; fused, it adds
// weights[n,l]·E[ids[n,l]] straight into the [N, D] output and skips rows of
// weight 0 (padding). The summation order is the same as the unfused graph's,
// so the results are identical.
//
// When the table is the dequantised copy of a constant int8 table with one
// scale per tensor or per row and zero point 0, the kernel reads the int8
// rows (a quarter of the memory traffic: hashed features hit rows all over
// the table) and dequantises each element as DequantizeLinear does.
type bagStep struct {
	table    *Tensor // [B, D] float32, a constant; nil when q8 is set
	q8       []int8  // [B, D]
	scales   []float32
	rows     int64
	dim      int
	keepDims bool
}

// quantizedTable returns the int8 table and scales a folded constant was
// dequantised from, when the kernel can use them.
func (m *Model) quantizedTable(slot int) ([]int8, []float32, bool) {
	f, ok := m.folded[slot]
	if !ok || f.node.OpType != "DequantizeLinear" || len(f.in) < 2 {
		return nil, nil, false
	}
	x, scale := f.in[0], f.in[1]
	if x == nil || scale == nil || x.Type != Int8 || len(x.Shape) != 2 || scale.Type != Float {
		return nil, nil, false
	}
	if (&opCtx{node: f.node}).attrInt("block_size", 0) != 0 {
		return nil, nil, false
	}
	if len(f.in) > 2 && f.in[2] != nil {
		if f.in[2].Type != Int8 || slices.ContainsFunc(f.in[2].Int8, func(z int8) bool { return z != 0 }) {
			return nil, nil, false
		}
	}
	switch {
	case len(scale.Float) == 1:
	case len(scale.Shape) == 1 && scale.Shape[0] == x.Shape[0] && x.Shape[0] != 1:
		ax := (&opCtx{node: f.node}).attrInt("axis", 1)
		if ax != 0 && ax != -2 {
			return nil, nil, false
		}
	default:
		return nil, nil, false
	}
	return x.Int8, scale.Float, true
}

// fuse replaces every Gather→Unsqueeze/Mul→ReduceSum chain over a constant
// float table with a bagStep.
func (m *Model) fuse() {
	producer := map[int]int{} // slot -> index of the step producing it
	uses := map[int]int{}     // slot -> number of steps reading it
	for i, st := range m.steps {
		for _, s := range st.out {
			if s >= 0 {
				producer[s] = i
			}
		}
		for _, s := range st.in {
			if s >= 0 {
				uses[s]++
			}
		}
	}
	for _, s := range m.outSlot {
		uses[s] += 2 // graph outputs must stay materialised
	}
	constInts := func(st *step, i int, attr string) ([]int64, bool) {
		if len(st.in) > i && st.in[i] >= 0 {
			c := m.consts[st.in[i]]
			if c == nil {
				return nil, false
			}
			v, err := c.ints()
			return v, err == nil
		}
		c := opCtx{node: st.node}
		if a := c.attr(attr); a != nil {
			return a.Ints, true
		}
		return nil, false
	}
	drop := map[int]bool{}
	for ri := range m.steps {
		rs := &m.steps[ri]
		if rs.node.OpType != "ReduceSum" || len(rs.in) == 0 || rs.in[0] < 0 {
			continue
		}
		axes, ok := constInts(rs, 1, "axes")
		if !ok || len(axes) != 1 || (axes[0] != 1 && axes[0] != -2) {
			continue
		}
		mi, ok := producer[rs.in[0]]
		if !ok || uses[rs.in[0]] != 1 || m.steps[mi].node.OpType != "Mul" || len(m.steps[mi].in) != 2 {
			continue
		}
		mu := &m.steps[mi]
		var gi, ui int = -1, -1
		for _, s := range mu.in {
			p, ok := producer[s]
			if !ok || uses[s] != 1 {
				continue
			}
			switch m.steps[p].node.OpType {
			case "Gather":
				gi = p
			case "Unsqueeze":
				ui = p
			}
		}
		if gi < 0 || ui < 0 {
			continue
		}
		g, us := &m.steps[gi], &m.steps[ui]
		if len(g.in) != 2 || g.in[0] < 0 || g.in[1] < 0 || (&opCtx{node: g.node}).attrInt("axis", 0) != 0 {
			continue
		}
		table := m.consts[g.in[0]]
		if table == nil || table.Type != Float || len(table.Shape) != 2 || m.consts[g.in[1]] != nil {
			continue
		}
		uaxes, ok := constInts(us, 1, "axes")
		if !ok || len(uaxes) != 1 || (uaxes[0] != -1 && uaxes[0] != 2) || len(us.in) == 0 || us.in[0] < 0 {
			continue
		}
		ctx := opCtx{node: rs.node}
		bag := &bagStep{table: table, rows: table.Shape[0], dim: int(table.Shape[1]), keepDims: ctx.attrInt("keepdims", 1) != 0}
		if q, sc, ok := m.quantizedTable(g.in[0]); ok && uses[g.in[0]] == 1 {
			bag.table, bag.q8, bag.scales = nil, q, sc
			m.consts[g.in[0]] = nil // the float copy is no longer needed
		}
		rs.bag = bag
		rs.in = []int{g.in[1], us.in[0]}
		drop[gi], drop[ui], drop[mi] = true, true, true
	}
	if len(drop) == 0 {
		return
	}
	var keep []step
	for i, st := range m.steps {
		if !drop[i] {
			keep = append(keep, st)
		}
	}
	m.steps = keep
}

// run computes the bag for inputs ids [N, L] (int64 or int32) and weights
// [N, L] float32.
func (b *bagStep) run(in []*Tensor) ([]*Tensor, error) {
	if err := need(in, 2); err != nil {
		return nil, err
	}
	ids, err := in[0].ints()
	if err != nil {
		return nil, fmt.Errorf("indices: %w", err)
	}
	w := in[1]
	if err := needFloat(w, "weights"); err != nil {
		return nil, err
	}
	if len(in[0].Shape) != 2 || !slices.Equal(in[0].Shape, w.Shape) {
		return nil, fmt.Errorf("indices %v and weights %v: want the same [N, L] shape", in[0].Shape, w.Shape)
	}
	nb, d := b.rows, b.dim
	n, l := int(w.Shape[0]), int(w.Shape[1])
	out := make([]float32, n*d)
	var tab []float32
	if b.table != nil {
		tab = b.table.Float
	}
	for i := range n {
		o := out[i*d : i*d+d]
		for j := range l {
			id := ids[i*l+j]
			if id < 0 {
				id += nb
			}
			if id < 0 || id >= nb {
				return nil, fmt.Errorf("index %d is out of range [0,%d)", ids[i*l+j], nb)
			}
			wv := w.Float[i*l+j]
			if wv == 0 {
				continue
			}
			if tab != nil {
				row := tab[int(id)*d : int(id)*d+d]
				for k, v := range row {
					o[k] += v * wv
				}
				continue
			}
			s := b.scales[0]
			if len(b.scales) > 1 {
				s = b.scales[id]
			}
			row := b.q8[int(id)*d : int(id)*d+d]
			for k, q := range row {
				o[k] += float32(q) * s * wv
			}
		}
	}
	shape := []int64{int64(n), int64(d)}
	if b.keepDims {
		shape = []int64{int64(n), 1, int64(d)}
	}
	t := FloatTensor(shape, out)
	return one(&t)
}
