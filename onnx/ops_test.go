package onnx

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// runNode builds a one-node model whose inputs are graph inputs (so the
// node runs at Run time, not folded at Load) and returns its output.
func runNode(t *testing.T, opset int64, op string, attrs []*AttributeProto, ins ...Tensor) (Tensor, error) {
	t.Helper()
	g := &GraphProto{}
	n := &NodeProto{OpType: op, Name: "n", Output: []string{"y"}, Attribute: attrs}
	feed := map[string]Tensor{}
	for i, in := range ins {
		name := fmt.Sprintf("x%d", i)
		if in.Type == Undefined {
			n.Input = append(n.Input, "") // omitted optional input
			continue
		}
		n.Input = append(n.Input, name)
		g.Input = append(g.Input, &ValueInfoProto{Name: name, ElemType: in.Type})
		feed[name] = in
	}
	g.Node = []*NodeProto{n}
	g.Output = []*ValueInfoProto{{Name: "y"}}
	m, err := Compile(&ModelProto{OpsetImport: []OperatorSetID{{Version: opset}}, Graph: g}, LoadOptions{})
	if err != nil {
		return Tensor{}, err
	}
	out, err := m.Run(feed)
	if err != nil {
		return Tensor{}, err
	}
	return out["y"], nil
}

func ints(name string, v ...int64) *AttributeProto {
	return &AttributeProto{Name: name, Type: AttrInts, Ints: v}
}

func intAttr(name string, v int64) *AttributeProto {
	return &AttributeProto{Name: name, Type: AttrInt, I: v}
}

func f32(shape []int64, v ...float32) Tensor { return FloatTensor(shape, v) }
func i64(shape []int64, v ...int64) Tensor   { return Int64Tensor(shape, v) }

func TestOps(t *testing.T) {
	ln := func(x float64) float32 { return float32(math.Log(x)) }
	tests := []struct {
		name  string
		opset int64
		op    string
		attrs []*AttributeProto
		in    []Tensor
		want  Tensor
	}{
		{"Add broadcasts a row", 13, "Add", nil,
			[]Tensor{f32([]int64{2, 3}, 1, 2, 3, 4, 5, 6), f32([]int64{3}, 10, 20, 30)},
			f32([]int64{2, 3}, 11, 22, 33, 14, 25, 36)},
		{"Mul outer product", 13, "Mul", nil,
			[]Tensor{f32([]int64{2, 1}, 2, 3), f32([]int64{1, 3}, 1, 10, 100)},
			f32([]int64{2, 3}, 2, 20, 200, 3, 30, 300)},
		{"Sub scalar", 13, "Sub", nil,
			[]Tensor{f32([]int64{2}, 5, 7), f32([]int64{}, 1)}, f32([]int64{2}, 4, 6)},
		{"Div middle axis", 13, "Div", nil,
			[]Tensor{f32([]int64{2, 2, 1}, 2, 4, 6, 8), f32([]int64{2, 1}, 2, 4)},
			f32([]int64{2, 2, 1}, 1, 1, 3, 2)},
		{"Relu", 13, "Relu", nil, []Tensor{f32([]int64{3}, -1, 0, 2)}, f32([]int64{3}, 0, 0, 2)},
		{"Sigmoid", 13, "Sigmoid", nil, []Tensor{f32([]int64{3}, 0, -100, 100)}, f32([]int64{3}, 0.5, 0, 1)},
		{"ReduceSum axis 0 keepdims", 13, "ReduceSum", nil,
			[]Tensor{f32([]int64{2, 3}, 1, 2, 3, 4, 5, 6), i64([]int64{1}, 0)}, f32([]int64{1, 3}, 5, 7, 9)},
		{"ReduceSum all axes", 13, "ReduceSum", []*AttributeProto{intAttr("keepdims", 0)},
			[]Tensor{f32([]int64{2, 3}, 1, 2, 3, 4, 5, 6)}, f32([]int64{}, 21)},
		{"ReduceSum noop with empty axes", 13, "ReduceSum", []*AttributeProto{intAttr("noop_with_empty_axes", 1)},
			[]Tensor{f32([]int64{2}, 1, 2)}, f32([]int64{2}, 1, 2)},
		{"ReduceMean attribute axes (opset 13)", 13, "ReduceMean", []*AttributeProto{ints("axes", -1), intAttr("keepdims", 0)},
			[]Tensor{f32([]int64{2, 3}, 1, 2, 3, 4, 5, 6)}, f32([]int64{2}, 2, 5)},
		{"ReduceMean input axes (opset 18)", 18, "ReduceMean", nil,
			[]Tensor{f32([]int64{2, 2, 2}, 1, 2, 3, 4, 5, 6, 7, 8), i64([]int64{2}, 0, 2)}, f32([]int64{1, 2, 1}, 3.5, 5.5)},
		{"Softmax last axis", 13, "Softmax", nil,
			[]Tensor{f32([]int64{1, 3}, 0, ln(2), ln(3))}, f32([]int64{1, 3}, 1.0/6, 2.0/6, 3.0/6)},
		{"Softmax axis 0", 13, "Softmax", []*AttributeProto{intAttr("axis", 0)},
			[]Tensor{f32([]int64{2, 1}, 0, ln(3))}, f32([]int64{2, 1}, 0.25, 0.75)},
		{"MatMul batched", 13, "MatMul", nil,
			[]Tensor{f32([]int64{2, 1, 2}, 1, 2, 3, 4), f32([]int64{2, 2}, 1, 0, 0, 2)},
			f32([]int64{2, 1, 2}, 1, 4, 3, 8)},
		{"Gemm transB alpha beta", 13, "Gemm",
			[]*AttributeProto{intAttr("transB", 1), {Name: "alpha", Type: AttrFloat, F: 2}, {Name: "beta", Type: AttrFloat, F: 0.5}},
			[]Tensor{f32([]int64{1, 2}, 1, 2), f32([]int64{3, 2}, 1, 0, 0, 1, 1, 1), f32([]int64{3}, 2, 4, 6)},
			f32([]int64{1, 3}, 3, 6, 9)},
		{"Gather axis 1", 13, "Gather", []*AttributeProto{intAttr("axis", 1)},
			[]Tensor{f32([]int64{2, 3}, 1, 2, 3, 4, 5, 6), i64([]int64{2}, 2, -3)},
			f32([]int64{2, 2}, 3, 1, 6, 4)},
		{"Gather int64 rows", 13, "Gather", nil,
			[]Tensor{i64([]int64{3}, 10, 20, 30), i64([]int64{2, 2}, 2, 0, 1, 1)}, i64([]int64{2, 2}, 30, 10, 20, 20)},
		{"DequantizeLinear uint8 per axis with zero point", 13, "DequantizeLinear", []*AttributeProto{intAttr("axis", 0)},
			[]Tensor{{Type: Uint8, Shape: []int64{2, 2}, Uint8: []uint8{10, 20, 130, 0}}, f32([]int64{2}, 0.5, 2),
				{Type: Uint8, Shape: []int64{2}, Uint8: []uint8{10, 128}}},
			f32([]int64{2, 2}, 0, 5, 4, -256)},
		{"DequantizeLinear int8 per tensor, no zero point", 13, "DequantizeLinear", nil,
			[]Tensor{Int8Tensor([]int64{3}, []int8{-128, 0, 127}), f32([]int64{}, 0.5)}, f32([]int64{3}, -64, 0, 63.5)},
		{"Reshape with 0 and -1", 13, "Reshape", nil,
			[]Tensor{f32([]int64{2, 3}, 1, 2, 3, 4, 5, 6), i64([]int64{3}, 0, -1, 1)}, f32([]int64{2, 3, 1}, 1, 2, 3, 4, 5, 6)},
		{"Flatten", 13, "Flatten", []*AttributeProto{intAttr("axis", 2)},
			[]Tensor{f32([]int64{1, 2, 2}, 1, 2, 3, 4)}, f32([]int64{2, 2}, 1, 2, 3, 4)},
		{"Unsqueeze attribute axes (opset 11)", 11, "Unsqueeze", []*AttributeProto{ints("axes", 0, 3)},
			[]Tensor{f32([]int64{2, 1}, 1, 2)}, f32([]int64{1, 2, 1, 1}, 1, 2)},
		{"Squeeze all ones", 13, "Squeeze", nil, []Tensor{f32([]int64{1, 2, 1}, 1, 2)}, f32([]int64{2}, 1, 2)},
		{"Cast int64 to float", 13, "Cast", []*AttributeProto{intAttr("to", int64(Float))},
			[]Tensor{i64([]int64{2}, -3, 4)}, f32([]int64{2}, -3, 4)},
		{"Identity", 13, "Identity", nil, []Tensor{i64([]int64{1}, 9)}, i64([]int64{1}, 9)},
		{"Tanh", 13, "Tanh", nil, []Tensor{f32([]int64{1}, 0)}, f32([]int64{1}, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runNode(t, tt.opset, tt.op, tt.attrs, tt.in...)
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != tt.want.Type || !slices.Equal(got.Shape, tt.want.Shape) || !slices.Equal(got.Int64, tt.want.Int64) {
				t.Fatalf("got %v %v %v, want %v %v %v", got.Type, got.Shape, got.Int64, tt.want.Type, tt.want.Shape, tt.want.Int64)
			}
			for i := range tt.want.Float {
				if math.Abs(float64(got.Float[i]-tt.want.Float[i])) > 1e-6 {
					t.Fatalf("got %v, want %v", got.Float, tt.want.Float)
				}
			}
		})
	}
}

func TestOpErrors(t *testing.T) {
	tests := []struct {
		name  string
		op    string
		attrs []*AttributeProto
		in    []Tensor
		want  string
	}{
		{"unsupported operator", "Conv", nil, []Tensor{f32([]int64{1}, 1)}, "operator Conv is not supported"},
		{"shapes do not broadcast", "Add", nil, []Tensor{f32([]int64{2}, 1, 2), f32([]int64{3}, 1, 2, 3)}, "do not broadcast"},
		{"MatMul inner dimensions", "MatMul", nil, []Tensor{f32([]int64{1, 2}, 1, 2), f32([]int64{3, 1}, 1, 2, 3)}, "inner dimensions"},
		{"Gather out of range", "Gather", nil, []Tensor{f32([]int64{2}, 1, 2), i64([]int64{1}, 2)}, "out of range"},
		{"axis out of range", "Softmax", []*AttributeProto{intAttr("axis", 3)}, []Tensor{f32([]int64{2}, 1, 2)}, "axis 3"},
		{"Reshape size mismatch", "Reshape", nil, []Tensor{f32([]int64{3}, 1, 2, 3), i64([]int64{1}, 2)}, "cannot reshape"},
		{"Relu on int64", "Relu", nil, []Tensor{i64([]int64{1}, 1)}, "want float"},
		{"missing required input", "MatMul", nil, []Tensor{f32([]int64{1, 1}, 1), {}}, "input 1 is required"},
		{"Squeeze a non-1 axis", "Squeeze", []*AttributeProto{ints("axes", 0)}, []Tensor{f32([]int64{2}, 1, 2)}, "cannot squeeze"},
		{"DequantizeLinear scale length", "DequantizeLinear", []*AttributeProto{intAttr("axis", 0)},
			[]Tensor{Int8Tensor([]int64{2, 2}, []int8{1, 2, 3, 4}), f32([]int64{3}, 1, 2, 3)}, "x_scale has 3 elements"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runNode(t, 11, tt.op, tt.attrs, tt.in...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		m    *ModelProto
		want string
	}{
		{"no graph", &ModelProto{OpsetImport: []OperatorSetID{{Version: 13}}}, "no graph"},
		{"no opset", &ModelProto{Graph: &GraphProto{}}, "operator set"},
		{"undefined input", &ModelProto{OpsetImport: []OperatorSetID{{Version: 13}}, Graph: &GraphProto{
			Node: []*NodeProto{{OpType: "Relu", Input: []string{"nowhere"}, Output: []string{"y"}}},
		}}, `input "nowhere" is not defined`},
		{"output never computed", &ModelProto{OpsetImport: []OperatorSetID{{Version: 13}}, Graph: &GraphProto{
			Output: []*ValueInfoProto{{Name: "y"}},
		}}, "never computed"},
		{"custom domain", &ModelProto{OpsetImport: []OperatorSetID{{Version: 13}}, Graph: &GraphProto{
			Node: []*NodeProto{{OpType: "Attention", Domain: "com.microsoft", Output: []string{"y"}}},
		}}, `domain "com.microsoft"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.m, LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
