package onnx

import (
	"fmt"
)

// ClassifierOpset is the default-domain operator set ExportClassifier
// targets (DequantizeLinear with axis, ReduceSum with axes as an input).
const ClassifierOpset = 13

// classifierIRVersion is the ONNX IR version that goes with opset 13.
const classifierIRVersion = 7

// The names of the exported classifier's inputs and output.
const (
	ClassifierIDs     = "ids"
	ClassifierWeights = "weights"
	ClassifierProb    = "prob"
)

// Classifier holds the weights of SentinelDF's classifier, a weighted bag of
// hashed-feature embeddings followed by a one-hidden-layer MLP:
//
//	x    = Σ_l weights[n,l] · E[ids[n,l]]        [N, D]   (ids 0 = padding, weight 0)
//	h    = relu(x · W1 + B1)                    [N, H]
//	prob = sigmoid(h · W2 + B2)                 [N, 1]
//
// E is stored as int8 with float scales (one per tensor or one per row);
// W1 may be float or int8 (one scale per tensor or per output column).
type Classifier struct {
	// Buckets (B), Dim (D) and Hidden (H) are the layer sizes.
	Buckets, Dim, Hidden int
	// Emb is the quantised embedding table, Buckets×Dim, row-major.
	Emb []int8
	// EmbScale holds 1 scale (per tensor) or Buckets scales (per row).
	EmbScale []float32
	// W1 is the first layer, Dim×Hidden row-major, used when W1Q is nil.
	W1 []float32
	// W1Q is the first layer quantised to int8 (Dim×Hidden), with W1Scale
	// holding 1 scale or Hidden scales (per output column).
	W1Q     []int8
	W1Scale []float32
	// B1 is the hidden bias (Hidden values).
	B1 []float32
	// W2 is the output layer (Hidden values) and B2 its bias.
	W2 []float32
	B2 float32
	// Doc is the model's doc string (a short model card).
	Doc string
	// Metadata is copied to the model's metadata_props.
	Metadata []StringPair
}

func (c *Classifier) validate() error {
	b, d, h := c.Buckets, c.Dim, c.Hidden
	switch {
	case b <= 0 || d <= 0 || h <= 0:
		return fmt.Errorf("sizes B=%d D=%d H=%d must be positive", b, d, h)
	case len(c.Emb) != b*d:
		return fmt.Errorf("Emb has %d values, want B·D = %d", len(c.Emb), b*d)
	case len(c.EmbScale) != 1 && len(c.EmbScale) != b:
		return fmt.Errorf("EmbScale has %d values, want 1 or B = %d", len(c.EmbScale), b)
	case c.W1Q == nil && len(c.W1) != d*h:
		return fmt.Errorf("W1 has %d values, want D·H = %d", len(c.W1), d*h)
	case c.W1Q != nil && len(c.W1Q) != d*h:
		return fmt.Errorf("W1Q has %d values, want D·H = %d", len(c.W1Q), d*h)
	case c.W1Q != nil && len(c.W1Scale) != 1 && len(c.W1Scale) != h:
		return fmt.Errorf("W1Scale has %d values, want 1 or H = %d", len(c.W1Scale), h)
	case len(c.B1) != h:
		return fmt.Errorf("B1 has %d values, want H = %d", len(c.B1), h)
	case len(c.W2) != h:
		return fmt.Errorf("W2 has %d values, want H = %d", len(c.W2), h)
	}
	return nil
}

// quantized returns the initializers of an int8 tensor with its scales and
// zero points (all zero), and the DequantizeLinear node producing out.
func quantized(name string, shape []int64, q []int8, scale []float32, axis int64, out string) ([]*TensorProto, *NodeProto) {
	sshape := []int64{}
	if len(scale) > 1 {
		sshape = []int64{int64(len(scale))}
	}
	zp := make([]int8, len(scale))
	qt, st, zt := Int8Tensor(shape, q), FloatTensor(sshape, scale), Int8Tensor(sshape, zp)
	n := &NodeProto{
		OpType: "DequantizeLinear", Name: "dequantize_" + name,
		Input: []string{name + "_q", name + "_scale", name + "_zero_point"}, Output: []string{out},
	}
	if len(scale) > 1 {
		n.Attribute = []*AttributeProto{{Name: "axis", Type: AttrInt, I: axis}}
	}
	return []*TensorProto{qt.Proto(name + "_q"), st.Proto(name + "_scale"), zt.Proto(name + "_zero_point")}, n
}

// ExportClassifier writes the classifier as an ONNX model (opset 13) with
// inputs "ids" int64 [N, L] and "weights" float32 [N, L] and output "prob"
// float32 [N, 1]. The embedding table (and W1 when quantised) stay int8 in
// the file and are dequantised by DequantizeLinear nodes.
func ExportClassifier(c Classifier) ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("onnx: export classifier: %w", err)
	}
	b, d, h := int64(c.Buckets), int64(c.Dim), int64(c.Hidden)
	g := &GraphProto{Name: "sentineldf_classifier"}
	inits, deq := quantized("emb", []int64{b, d}, c.Emb, c.EmbScale, 0, "emb")
	g.Initializer = append(g.Initializer, inits...)
	g.Node = append(g.Node, deq)
	w1 := "w1"
	if c.W1Q != nil {
		inits, deq := quantized("w1", []int64{d, h}, c.W1Q, c.W1Scale, 1, "w1")
		g.Initializer = append(g.Initializer, inits...)
		g.Node = append(g.Node, deq)
	} else {
		t := FloatTensor([]int64{d, h}, c.W1)
		g.Initializer = append(g.Initializer, t.Proto(w1))
	}
	consts := []struct {
		name string
		t    Tensor
	}{
		{"b1", FloatTensor([]int64{h}, c.B1)},
		{"w2", FloatTensor([]int64{h, 1}, c.W2)},
		{"b2", FloatTensor([]int64{1}, []float32{c.B2})},
		{"unsqueeze_axes", Int64Tensor([]int64{1}, []int64{-1})},
		{"sum_axes", Int64Tensor([]int64{1}, []int64{1})},
	}
	for _, k := range consts {
		g.Initializer = append(g.Initializer, k.t.Proto(k.name))
	}
	node := func(op string, in []string, out string, attrs ...*AttributeProto) {
		g.Node = append(g.Node, &NodeProto{OpType: op, Name: out, Input: in, Output: []string{out}, Attribute: attrs})
	}
	node("Gather", []string{"emb", ClassifierIDs}, "rows")
	node("Unsqueeze", []string{ClassifierWeights, "unsqueeze_axes"}, "weights_3d")
	node("Mul", []string{"rows", "weights_3d"}, "weighted_rows")
	node("ReduceSum", []string{"weighted_rows", "sum_axes"}, "bag", &AttributeProto{Name: "keepdims", Type: AttrInt, I: 0})
	node("MatMul", []string{"bag", w1}, "hidden_mm")
	node("Add", []string{"hidden_mm", "b1"}, "hidden_pre")
	node("Relu", []string{"hidden_pre"}, "hidden")
	node("MatMul", []string{"hidden", "w2"}, "logit_mm")
	node("Add", []string{"logit_mm", "b2"}, "logit")
	node("Sigmoid", []string{"logit"}, ClassifierProb)
	nl := []Dim{{Param: "N"}, {Param: "L"}}
	g.Input = []*ValueInfoProto{
		{Name: ClassifierIDs, ElemType: Int64, Shape: nl},
		{Name: ClassifierWeights, ElemType: Float, Shape: nl},
	}
	g.Output = []*ValueInfoProto{{Name: ClassifierProb, ElemType: Float, Shape: []Dim{{Param: "N"}, {Value: 1}}}}
	m := &ModelProto{
		IRVersion:    classifierIRVersion,
		OpsetImport:  []OperatorSetID{{Version: ClassifierOpset}},
		ProducerName: "sentineldf",
		DocString:    c.Doc,
		Graph:        g,
		MetadataProps: append([]StringPair{
			{Key: "sentineldf.architecture", Value: fmt.Sprintf("bag-of-hashed-features B=%d D=%d H=%d", b, d, h)},
		}, c.Metadata...),
	}
	return m.Marshal(), nil
}
