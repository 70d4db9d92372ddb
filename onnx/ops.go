package onnx

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// opCtx is what an operator sees besides its inputs.
type opCtx struct {
	node  *NodeProto
	opset int64
}

func (c *opCtx) attr(name string) *AttributeProto {
	for _, a := range c.node.Attribute {
		if a.Name == name {
			return a
		}
	}
	return nil
}

func (c *opCtx) attrInt(name string, def int64) int64 {
	if a := c.attr(name); a != nil {
		return a.I
	}
	return def
}

func (c *opCtx) attrFloat(name string, def float32) float32 {
	if a := c.attr(name); a != nil {
		return a.F
	}
	return def
}

// opFunc runs one operator. It must not modify its inputs; it may return
// tensors that share data with them.
type opFunc func(c *opCtx, in []*Tensor) ([]*Tensor, error)

// ops are the operators of the pure-Go evaluator.
var ops map[string]opFunc

func init() {
	ops = map[string]opFunc{
		"Add":              elementwise(func(a, b float32) float32 { return a + b }),
		"Sub":              elementwise(func(a, b float32) float32 { return a - b }),
		"Mul":              elementwise(func(a, b float32) float32 { return a * b }),
		"Div":              elementwise(func(a, b float32) float32 { return a / b }),
		"Relu":             unary(func(x float32) float32 { return max(x, 0) }),
		"Sigmoid":          unary(sigmoid),
		"Tanh":             unary(func(x float32) float32 { return float32(math.Tanh(float64(x))) }),
		"Identity":         opIdentity,
		"Constant":         opConstant,
		"Cast":             opCast,
		"DequantizeLinear": opDequantize,
		"Gather":           opGather,
		"Unsqueeze":        opUnsqueeze,
		"Squeeze":          opSqueeze,
		"Reshape":          opReshape,
		"Flatten":          opFlatten,
		"ReduceSum":        reduce(false),
		"ReduceMean":       reduce(true),
		"MatMul":           opMatMul,
		"Gemm":             opGemm,
		"Softmax":          opSoftmax,
	}
}

func sigmoid(x float32) float32 {
	if x >= 0 {
		return float32(1 / (1 + math.Exp(-float64(x))))
	}
	e := math.Exp(float64(x))
	return float32(e / (1 + e))
}

func need(in []*Tensor, n int) error {
	if len(in) < n {
		return fmt.Errorf("want %d inputs, got %d", n, len(in))
	}
	for i := range n {
		if in[i] == nil {
			return fmt.Errorf("input %d is required", i)
		}
	}
	return nil
}

func needFloat(t *Tensor, what string) error {
	if t.Type != Float {
		return fmt.Errorf("%s: element type %v, want float", what, t.Type)
	}
	return nil
}

func one(t *Tensor) ([]*Tensor, error) { return []*Tensor{t}, nil }

func unary(f func(float32) float32) opFunc {
	return func(c *opCtx, in []*Tensor) ([]*Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		if err := needFloat(in[0], "input"); err != nil {
			return nil, err
		}
		out := make([]float32, len(in[0].Float))
		for i, v := range in[0].Float {
			out[i] = f(v)
		}
		t := FloatTensor(slices.Clone(in[0].Shape), out)
		return one(&t)
	}
}

// broadcastShape is the numpy-style broadcast of a and b.
func broadcastShape(a, b []int64) ([]int64, error) {
	n := max(len(a), len(b))
	out := make([]int64, n)
	for i := range n {
		da, db := int64(1), int64(1)
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

// bstrides returns the strides of shape s broadcast to out: 0 on broadcast
// axes.
func bstrides(s, out []int64) []int {
	st := make([]int, len(out))
	stride := 1
	for i := len(out) - 1; i >= 0; i-- {
		j := len(s) - len(out) + i
		if j < 0 {
			continue
		}
		if s[j] != 1 {
			st[i] = stride
		}
		stride *= int(s[j])
	}
	return st
}

func elementwise(f func(a, b float32) float32) opFunc {
	return func(c *opCtx, in []*Tensor) ([]*Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		a, b := in[0], in[1]
		if err := needFloat(a, "A"); err != nil {
			return nil, err
		}
		if err := needFloat(b, "B"); err != nil {
			return nil, err
		}
		shape, err := broadcastShape(a.Shape, b.Shape)
		if err != nil {
			return nil, err
		}
		n, err := numElements(shape)
		if err != nil {
			return nil, err
		}
		out := make([]float32, n)
		switch {
		case slices.Equal(a.Shape, b.Shape):
			for i := range out {
				out[i] = f(a.Float[i], b.Float[i])
			}
		case len(b.Float) == 1:
			y := b.Float[0]
			for i := range out {
				out[i] = f(a.Float[i], y)
			}
		case len(a.Float) == 1:
			x := a.Float[0]
			for i := range out {
				out[i] = f(x, b.Float[i])
			}
		default:
			broadcastLoop(shape, bstrides(a.Shape, shape), bstrides(b.Shape, shape), func(o, ia, ib, inner, sa, sb int) {
				for k := range inner {
					out[o+k] = f(a.Float[ia+k*sa], b.Float[ib+k*sb])
				}
			})
		}
		t := FloatTensor(shape, out)
		return one(&t)
	}
}

// broadcastLoop walks the output of shape row by row (the last axis is the
// inner loop), calling fn with the row's output offset, the inputs' offsets,
// the row length and the inputs' strides along the last axis.
func broadcastLoop(shape []int64, sa, sb []int, fn func(o, ia, ib, inner, sa, sb int)) {
	r := len(shape)
	if r == 0 {
		fn(0, 0, 0, 1, 0, 0)
		return
	}
	inner := int(shape[r-1])
	if inner == 0 {
		return
	}
	idx := make([]int64, r-1)
	o, ia, ib := 0, 0, 0
	for {
		fn(o, ia, ib, inner, sa[r-1], sb[r-1])
		o += inner
		// advance the odometer over the outer axes
		k := r - 2
		for ; k >= 0; k-- {
			idx[k]++
			ia += sa[k]
			ib += sb[k]
			if idx[k] < shape[k] {
				break
			}
			ia -= sa[k] * int(shape[k])
			ib -= sb[k] * int(shape[k])
			idx[k] = 0
		}
		if k < 0 {
			return
		}
	}
}

func opIdentity(c *opCtx, in []*Tensor) ([]*Tensor, error) {
	if err := need(in, 1); err != nil {
		return nil, err
	}
	return one(in[0])
}

func opConstant(c *opCtx, in []*Tensor) ([]*Tensor, error) {
	for _, a := range c.node.Attribute {
		switch a.Name {
		case "value":
			if a.T == nil {
				return nil, errors.New("value attribute holds no tensor")
			}
			t, err := TensorFromProto(a.T)
			if err != nil {
				return nil, err
			}
			return one(t)
		case "value_float":
			t := FloatTensor([]int64{}, []float32{a.F})
			return one(&t)
		case "value_floats":
			t := FloatTensor([]int64{int64(len(a.Floats))}, slices.Clone(a.Floats))
			return one(&t)
		case "value_int":
			t := Int64Tensor([]int64{}, []int64{a.I})
			return one(&t)
		case "value_ints":
			t := Int64Tensor([]int64{int64(len(a.Ints))}, slices.Clone(a.Ints))
			return one(&t)
		}
	}
	return nil, errors.New("no supported value attribute")
}

func opCast(c *opCtx, in []*Tensor) ([]*Tensor, error) {
	if err := need(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	to := DataType(c.attrInt("to", 0))
	if x.Type == to {
		return one(x)
	}
	n := x.Len()
	get := func(i int) float64 {
		switch x.Type {
		case Float:
			return float64(x.Float[i])
		case Int64:
			return float64(x.Int64[i])
		case Int32:
			return float64(x.Int32[i])
		case Int8:
			return float64(x.Int8[i])
		case Uint8:
			return float64(x.Uint8[i])
		}
		return 0
	}
	t := &Tensor{Type: to, Shape: slices.Clone(x.Shape)}
	switch to {
	case Float:
		t.Float = make([]float32, n)
		for i := range n {
			t.Float[i] = float32(get(i))
		}
	case Int64:
		t.Int64 = make([]int64, n)
		for i := range n {
			t.Int64[i] = int64(get(i))
		}
	case Int32:
		t.Int32 = make([]int32, n)
		for i := range n {
			t.Int32[i] = int32(get(i))
		}
	default:
		return nil, fmt.Errorf("cast to %v is not supported", to)
	}
	return one(t)
}

// axisOf normalises a possibly negative axis for a tensor of rank r.
func axisOf(a int64, r int) (int, error) {
	if a < 0 {
		a += int64(r)
	}
	if a < 0 || a >= int64(r) {
		return 0, fmt.Errorf("axis %d is out of range for rank %d", a, r)
	}
	return int(a), nil
}

func opDequantize(c *opCtx, in []*Tensor) ([]*Tensor, error) {
	if err := need(in, 2); err != nil {
		return nil, err
	}
	x, scale := in[0], in[1]
	if err := needFloat(scale, "x_scale"); err != nil {
		return nil, err
	}
	if c.attrInt("block_size", 0) != 0 {
		return nil, errors.New("blocked quantisation (block_size) is not supported")
	}
	var zp *Tensor
	if len(in) > 2 && in[2] != nil {
		zp = in[2]
		if zp.Type != x.Type {
			return nil, fmt.Errorf("x_zero_point type %v differs from x type %v", zp.Type, x.Type)
		}
	}
	n := x.Len()
	get := func(t *Tensor, i int) float32 {
		switch t.Type {
		case Int8:
			return float32(t.Int8[i])
		case Uint8:
			return float32(t.Uint8[i])
		case Int32:
			return float32(t.Int32[i])
		}
		return 0
	}
	switch x.Type {
	case Int8, Uint8, Int32:
	default:
		return nil, fmt.Errorf("x has type %v, want int8, uint8 or int32", x.Type)
	}
	// inner is the number of elements per step of the quantisation axis;
	// the scale index of element i is (i / inner) % axisLen.
	inner, axisLen := 1, 1
	perAxis := len(scale.Float) != 1
	if perAxis {
		if len(scale.Shape) != 1 {
			return nil, fmt.Errorf("x_scale has shape %v, want a scalar or 1-D", scale.Shape)
		}
		ax, err := axisOf(c.attrInt("axis", 1), len(x.Shape))
		if err != nil {
			return nil, err
		}
		if scale.Shape[0] != x.Shape[ax] {
			return nil, fmt.Errorf("x_scale has %d elements, x has %d along axis %d", scale.Shape[0], x.Shape[ax], ax)
		}
		axisLen = int(x.Shape[ax])
		for _, d := range x.Shape[ax+1:] {
			inner *= int(d)
		}
	}
	if zp != nil && zp.Len() != len(scale.Float) {
		return nil, fmt.Errorf("x_zero_point has %d elements, x_scale %d", zp.Len(), len(scale.Float))
	}
	out := make([]float32, n)
	for i := range out {
		k := 0
		if perAxis {
			k = (i / inner) % axisLen
		}
		z := float32(0)
		if zp != nil {
			z = get(zp, k)
		}
		out[i] = (get(x, i) - z) * scale.Float[k]
	}
	t := FloatTensor(slices.Clone(x.Shape), out)
	return one(&t)
}

func gatherT[T any](data []T, shape []int64, ax int, idx []int64, idxShape []int64) ([]T, []int64, error) {
	outer := 1
	for _, d := range shape[:ax] {
		outer *= int(d)
	}
	inner := 1
	for _, d := range shape[ax+1:] {
		inner *= int(d)
	}
	n := shape[ax]
	outShape := slices.Concat(shape[:ax], idxShape, shape[ax+1:])
	total, err := numElements(outShape)
	if err != nil {
		return nil, nil, err
	}
	out := make([]T, 0, total)
	for o := range outer {
		base := o * int(n) * inner
		for _, j := range idx {
			if j < 0 {
				j += n
			}
			if j < 0 || j >= n {
				return nil, nil, fmt.Errorf("index %d is out of range [0,%d)", j, n)
			}
			s := base + int(j)*inner
			out = append(out, data[s:s+inner]...)
		}
	}
	return out, outShape, nil
}

func opGather(c *opCtx, in []*Tensor) ([]*Tensor, error) {
	if err := need(in, 2); err != nil {
		return nil, err
	}
	data := in[0]
	idx, err := in[1].ints()
	if err != nil {
		return nil, fmt.Errorf("indices: %w", err)
	}
	if len(data.Shape) == 0 {
		return nil, errors.New("data must have rank ≥ 1")
	}
	ax, err := axisOf(c.attrInt("axis", 0), len(data.Shape))
	if err != nil {
		return nil, err
	}
	t := &Tensor{Type: data.Type}
	switch data.Type {
	case Float:
		t.Float, t.Shape, err = gatherT(data.Float, data.Shape, ax, idx, in[1].Shape)
	case Int64:
		t.Int64, t.Shape, err = gatherT(data.Int64, data.Shape, ax, idx, in[1].Shape)
	case Int32:
		t.Int32, t.Shape, err = gatherT(data.Int32, data.Shape, ax, idx, in[1].Shape)
	case Int8:
		t.Int8, t.Shape, err = gatherT(data.Int8, data.Shape, ax, idx, in[1].Shape)
	case Uint8:
		t.Uint8, t.Shape, err = gatherT(data.Uint8, data.Shape, ax, idx, in[1].Shape)
	default:
		return nil, fmt.Errorf("data type %v is not supported", data.Type)
	}
	if err != nil {
		return nil, err
	}
	return one(t)
}

// axesArg returns a node's axes: from input i when the opset passes them as
// an input (and it is given), else from the "axes" attribute.
func axesArg(c *opCtx, in []*Tensor, i int) ([]int64, bool, error) {
	if len(in) > i && in[i] != nil {
		a, err := in[i].ints()
		return a, true, err
	}
	if a := c.attr("axes"); a != nil {
		return a.Ints, true, nil
	}
	return nil, false, nil
}

func opUnsqueeze(c *opCtx, in []*Tensor) ([]*Tensor, error) {
	if err := need(in, 1); err != nil {
		return nil, err
	}
	axes, ok, err := axesArg(c, in, 1)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("axes are required")
	}
	x := in[0]
	r := len(x.Shape) + len(axes)
	ins := make([]bool, r)
	for _, a := range axes {
		ax, err := axisOf(a, r)
		if err != nil {
			return nil, err
		}
		if ins[ax] {
			return nil, fmt.Errorf("axis %d is repeated", a)
		}
		ins[ax] = true
	}
	shape := make([]int64, 0, r)
	j := 0
	for i := range r {
		if ins[i] {
			shape = append(shape, 1)
		} else {
			shape = append(shape, x.Shape[j])
			j++
		}
	}
	return one(x.reshaped(shape))
}

func opSqueeze(c *opCtx, in []*Tensor) ([]*Tensor, error) {
	if err := need(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	axes, ok, err := axesArg(c, in, 1)
	if err != nil {
		return nil, err
	}
	drop := make([]bool, len(x.Shape))
	for i, d := range x.Shape {
		drop[i] = !ok && d == 1
	}
	for _, a := range axes {
		ax, err := axisOf(a, len(x.Shape))
		if err != nil {
			return nil, err
		}
		if x.Shape[ax] != 1 {
			return nil, fmt.Errorf("cannot squeeze axis %d of size %d", ax, x.Shape[ax])
		}
		drop[ax] = true
	}
	shape := []int64{}
	for i, d := range x.Shape {
		if !drop[i] {
			shape = append(shape, d)
		}
	}
	return one(x.reshaped(shape))
}

func opReshape(c *opCtx, in []*Tensor) ([]*Tensor, error) {
	if err := need(in, 2); err != nil {
		return nil, err
	}
	x := in[0]
	want, err := in[1].ints()
	if err != nil {
		return nil, fmt.Errorf("shape: %w", err)
	}
	shape := slices.Clone(want)
	infer := -1
	known := int64(1)
	for i, d := range shape {
		switch {
		case d == 0 && c.attrInt("allowzero", 0) == 0:
			if i >= len(x.Shape) {
				return nil, fmt.Errorf("shape %v copies axis %d of a rank-%d input", want, i, len(x.Shape))
			}
			shape[i] = x.Shape[i]
		case d == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("shape %v has more than one -1", want)
			}
			infer = i
			continue
		case d < 0:
			return nil, fmt.Errorf("shape %v has a negative dimension", want)
		}
		known *= max(shape[i], 1)
	}
	n := int64(x.Len())
	if infer >= 0 {
		if known == 0 || n%known != 0 {
			return nil, fmt.Errorf("cannot reshape %v to %v", x.Shape, want)
		}
		shape[infer] = n / known
	}
	if m, err := numElements(shape); err != nil || int64(m) != n {
		return nil, fmt.Errorf("cannot reshape %v to %v", x.Shape, want)
	}
	return one(x.reshaped(shape))
}

func opFlatten(c *opCtx, in []*Tensor) ([]*Tensor, error) {
	if err := need(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	ax := c.attrInt("axis", 1)
	if ax < 0 {
		ax += int64(len(x.Shape))
	}
	if ax < 0 || ax > int64(len(x.Shape)) {
		return nil, fmt.Errorf("axis %d is out of range", ax)
	}
	a, b := int64(1), int64(1)
	for i, d := range x.Shape {
		if int64(i) < ax {
			a *= d
		} else {
			b *= d
		}
	}
	return one(x.reshaped([]int64{a, b}))
}

func reduce(mean bool) opFunc {
	return func(c *opCtx, in []*Tensor) ([]*Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if err := needFloat(x, "data"); err != nil {
			return nil, err
		}
		axes, _, err := axesArg(c, in, 1)
		if err != nil {
			return nil, err
		}
		keep := c.attrInt("keepdims", 1) != 0
		r := len(x.Shape)
		red := make([]bool, r)
		if len(axes) == 0 {
			if c.attrInt("noop_with_empty_axes", 0) != 0 {
				return one(x)
			}
			for i := range red {
				red[i] = true
			}
		}
		for _, a := range axes {
			ax, err := axisOf(a, r)
			if err != nil {
				return nil, err
			}
			red[ax] = true
		}
		var outShape, full []int64
		count := int64(1)
		for i, d := range x.Shape {
			if red[i] {
				count *= d
				full = append(full, 1)
				if keep {
					outShape = append(outShape, 1)
				}
			} else {
				full = append(full, d)
				outShape = append(outShape, d)
			}
		}
		if outShape == nil {
			outShape = []int64{}
		}
		n, err := numElements(full)
		if err != nil {
			return nil, err
		}
		out := make([]float32, n)
		// Walk the input; the output offset uses stride 0 on reduced axes.
		ostr := bstrides(full, x.Shape)
		xstr := bstrides(x.Shape, x.Shape)
		broadcastLoop(x.Shape, ostr, xstr, func(_, io, ix, inner, so, sx int) {
			if so == 0 {
				var s float32
				for k := range inner {
					s += x.Float[ix+k*sx]
				}
				out[io] += s
				return
			}
			for k := range inner {
				out[io+k*so] += x.Float[ix+k*sx]
			}
		})
		if mean && count > 0 {
			inv := 1 / float32(count)
			for i := range out {
				out[i] *= inv
			}
		}
		t := FloatTensor(outShape, out)
		return one(&t)
	}
}

// matmul computes C[M,N] += A[M,K] · B[K,N] (row-major).
func matmul(c, a, b []float32, m, k, n int) {
	for i := range m {
		ci := c[i*n : i*n+n]
		ai := a[i*k : i*k+k]
		for p, av := range ai {
			if av == 0 {
				continue
			}
			bp := b[p*n : p*n+n]
			for j := range ci {
				ci[j] += av * bp[j]
			}
		}
	}
}

func opMatMul(c *opCtx, in []*Tensor) ([]*Tensor, error) {
	if err := need(in, 2); err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	if err := needFloat(a, "A"); err != nil {
		return nil, err
	}
	if err := needFloat(b, "B"); err != nil {
		return nil, err
	}
	if len(a.Shape) < 2 || len(b.Shape) < 2 {
		return nil, fmt.Errorf("shapes %v · %v: rank < 2 is not supported", a.Shape, b.Shape)
	}
	ra, rb := len(a.Shape), len(b.Shape)
	m, k := int(a.Shape[ra-2]), int(a.Shape[ra-1])
	k2, n := int(b.Shape[rb-2]), int(b.Shape[rb-1])
	if k != k2 {
		return nil, fmt.Errorf("shapes %v · %v: inner dimensions differ", a.Shape, b.Shape)
	}
	batchA := a.Shape[:ra-2]
	var batch []int64
	switch {
	case rb == 2:
		batch = batchA
	case slices.Equal(batchA, b.Shape[:rb-2]):
		batch = batchA
	default:
		return nil, fmt.Errorf("shapes %v · %v: batch broadcasting is not supported", a.Shape, b.Shape)
	}
	nb, err := numElements(batch)
	if err != nil {
		return nil, err
	}
	outShape := slices.Concat(batch, []int64{int64(m), int64(n)})
	total, err := numElements(outShape)
	if err != nil {
		return nil, err
	}
	out := make([]float32, total)
	for i := range nb {
		bo := 0
		if rb > 2 {
			bo = i * k * n
		}
		matmul(out[i*m*n:(i+1)*m*n], a.Float[i*m*k:(i+1)*m*k], b.Float[bo:bo+k*n], m, k, n)
	}
	t := FloatTensor(outShape, out)
	return one(&t)
}

func transpose2(x []float32, r, c int) []float32 {
	out := make([]float32, len(x))
	for i := range r {
		for j := range c {
			out[j*r+i] = x[i*c+j]
		}
	}
	return out
}

func opGemm(c *opCtx, in []*Tensor) ([]*Tensor, error) {
	if err := need(in, 2); err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	if err := needFloat(a, "A"); err != nil {
		return nil, err
	}
	if err := needFloat(b, "B"); err != nil {
		return nil, err
	}
	if len(a.Shape) != 2 || len(b.Shape) != 2 {
		return nil, fmt.Errorf("shapes %v, %v: Gemm wants 2-D inputs", a.Shape, b.Shape)
	}
	af, bf := a.Float, b.Float
	m, k := int(a.Shape[0]), int(a.Shape[1])
	if c.attrInt("transA", 0) != 0 {
		af = transpose2(af, m, k)
		m, k = k, m
	}
	k2, n := int(b.Shape[0]), int(b.Shape[1])
	if c.attrInt("transB", 0) != 0 {
		bf = transpose2(bf, k2, n)
		k2, n = n, k2
	}
	if k != k2 {
		return nil, fmt.Errorf("shapes %v, %v: inner dimensions differ", a.Shape, b.Shape)
	}
	alpha, beta := c.attrFloat("alpha", 1), c.attrFloat("beta", 1)
	out := make([]float32, m*n)
	matmul(out, af, bf, m, k, n)
	if alpha != 1 {
		for i := range out {
			out[i] *= alpha
		}
	}
	shape := []int64{int64(m), int64(n)}
	if len(in) > 2 && in[2] != nil {
		cc := in[2]
		if err := needFloat(cc, "C"); err != nil {
			return nil, err
		}
		bs, err := broadcastShape(shape, cc.Shape)
		if err != nil || !slices.Equal(bs, shape) {
			return nil, fmt.Errorf("C of shape %v does not broadcast to %v", cc.Shape, shape)
		}
		broadcastLoop(shape, bstrides(shape, shape), bstrides(cc.Shape, shape), func(o, _, ic, inner, _, sc int) {
			for j := range inner {
				out[o+j] += beta * cc.Float[ic+j*sc]
			}
		})
	}
	t := FloatTensor(shape, out)
	return one(&t)
}

func opSoftmax(c *opCtx, in []*Tensor) ([]*Tensor, error) {
	if err := need(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if err := needFloat(x, "input"); err != nil {
		return nil, err
	}
	def := int64(-1)
	if c.opset < 13 {
		def = 1
	}
	ax, err := axisOf(c.attrInt("axis", def), len(x.Shape))
	if err != nil {
		return nil, err
	}
	// Before opset 13 the input is coerced to 2-D at axis: the softmax runs
	// over all axes from axis on. From 13 it runs over axis alone.
	inner, n := 1, 1
	if c.opset < 13 {
		for _, d := range x.Shape[ax:] {
			n *= int(d)
		}
	} else {
		n = int(x.Shape[ax])
		for _, d := range x.Shape[ax+1:] {
			inner *= int(d)
		}
	}
	out := make([]float32, len(x.Float))
	if n == 0 {
		t := FloatTensor(slices.Clone(x.Shape), out)
		return one(&t)
	}
	outer := len(x.Float) / (n * inner)
	for o := range outer {
		for i := range inner {
			base := o*n*inner + i
			mx := float32(math.Inf(-1))
			for j := range n {
				mx = max(mx, x.Float[base+j*inner])
			}
			var s float64
			for j := range n {
				e := math.Exp(float64(x.Float[base+j*inner] - mx))
				out[base+j*inner] = float32(e)
				s += e
			}
			for j := range n {
				out[base+j*inner] = float32(float64(out[base+j*inner]) / s)
			}
		}
	}
	t := FloatTensor(slices.Clone(x.Shape), out)
	return one(&t)
}
