// Package onnx reads, writes and runs ONNX models.
//
// It has three parts:
//
//   - a protobuf codec for the subset of onnx.proto that inference graphs use
//     (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
//     ValueInfoProto/TypeProto, OperatorSetIdProto), hand-written on
//     google.golang.org/protobuf/encoding/protowire, so no generated code;
//   - a pure-Go evaluator (Load, Model.Run) for the operators SentinelDF's
//     own classifier uses and a few common neighbours, which needs no cgo;
//   - a runner on ONNX Runtime (NewORTSession), compiled only with the build
//     tag "ort" (and cgo), for arbitrary user models; and a HuggingFace
//     tokenizer.json reader and a windowed, batched detect.Detector for
//     user sequence-classification models.
//
// See docs/onnx.md.
package onnx

import (
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// DataType is an ONNX tensor element type (TensorProto.DataType).
type DataType int32

// The element types the package knows by name. Only Float, Int8, Uint8,
// Int32 and Int64 can be held in a Tensor.
const (
	Undefined DataType = 0
	Float     DataType = 1
	Uint8     DataType = 2
	Int8      DataType = 3
	Uint16    DataType = 4
	Int16     DataType = 5
	Int32     DataType = 6
	Int64     DataType = 7
	String    DataType = 8
	Bool      DataType = 9
	Float16   DataType = 10
	Double    DataType = 11
)

// String returns the ONNX name of the type.
func (d DataType) String() string {
	names := map[DataType]string{
		Undefined: "undefined", Float: "float", Uint8: "uint8", Int8: "int8", Uint16: "uint16",
		Int16: "int16", Int32: "int32", Int64: "int64", String: "string", Bool: "bool",
		Float16: "float16", Double: "double",
	}
	if s, ok := names[d]; ok {
		return s
	}
	return fmt.Sprintf("type(%d)", int32(d))
}

// AttributeType is the type of an attribute (AttributeProto.AttributeType).
type AttributeType int32

// The attribute types.
const (
	AttrUndefined AttributeType = 0
	AttrFloat     AttributeType = 1
	AttrInt       AttributeType = 2
	AttrString    AttributeType = 3
	AttrTensor    AttributeType = 4
	AttrGraph     AttributeType = 5
	AttrFloats    AttributeType = 6
	AttrInts      AttributeType = 7
	AttrStrings   AttributeType = 8
)

// ModelProto is an ONNX model file.
type ModelProto struct {
	IRVersion       int64
	OpsetImport     []OperatorSetID
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	DocString       string
	Graph           *GraphProto
	// MetadataProps are the model's free-form key/value pairs, in file order.
	MetadataProps []StringPair
}

// StringPair is a StringStringEntryProto.
type StringPair struct {
	Key, Value string
}

// OperatorSetID names an operator set and its version.
type OperatorSetID struct {
	// Domain is "" (or "ai.onnx") for the default operator set.
	Domain  string
	Version int64
}

// GraphProto is a computation graph: nodes in topological order, constant
// tensors (initializers) and the graph's inputs and outputs.
type GraphProto struct {
	Node        []*NodeProto
	Name        string
	Initializer []*TensorProto
	DocString   string
	Input       []*ValueInfoProto
	Output      []*ValueInfoProto
	ValueInfo   []*ValueInfoProto
}

// NodeProto is one operator application.
type NodeProto struct {
	Input     []string
	Output    []string
	Name      string
	OpType    string
	Domain    string
	Attribute []*AttributeProto
	DocString string
}

// AttributeProto is a named operator attribute. Type says which of the
// value fields is set.
type AttributeProto struct {
	Name    string
	Type    AttributeType
	F       float32
	I       int64
	S       []byte
	T       *TensorProto
	G       *GraphProto
	Floats  []float32
	Ints    []int64
	Strings [][]byte
}

// TensorProto is a serialised tensor. The package writes element data to
// RawData (little-endian) and reads RawData or the typed fields.
type TensorProto struct {
	Dims      []int64
	DataType  DataType
	FloatData []float32
	// Int32Data also holds int8, uint8, int16, uint16 and bool elements.
	Int32Data  []int32
	StringData [][]byte
	Int64Data  []int64
	Name       string
	DocString  string
	RawData    []byte
	DoubleData []float64
	Uint64Data []uint64
	// External is true when the tensor's data lives in an external file,
	// which this package does not read.
	External bool
}

// ValueInfoProto names a value and, for tensors, its element type and shape.
type ValueInfoProto struct {
	Name      string
	DocString string
	// ElemType and Shape describe a tensor type; ElemType is Undefined when
	// the value is not a tensor or its type is not given.
	ElemType DataType
	// Shape holds one Dim per axis; nil means the rank is unknown.
	Shape []Dim
}

// Dim is one axis of a tensor shape: a fixed size, a symbolic name, or
// neither (unknown).
type Dim struct {
	Value int64
	Param string
}

// Field numbers of onnx.proto.
const (
	fModelIRVersion       = 1
	fModelProducerName    = 2
	fModelProducerVersion = 3
	fModelDomain          = 4
	fModelModelVersion    = 5
	fModelDocString       = 6
	fModelGraph           = 7
	fModelOpsetImport     = 8
	fModelMetadataProps   = 14

	fOpsetDomain  = 1
	fOpsetVersion = 2

	fGraphNode        = 1
	fGraphName        = 2
	fGraphInitializer = 5
	fGraphDocString   = 10
	fGraphInput       = 11
	fGraphOutput      = 12
	fGraphValueInfo   = 13

	fNodeInput     = 1
	fNodeOutput    = 2
	fNodeName      = 3
	fNodeOpType    = 4
	fNodeAttribute = 5
	fNodeDocString = 6
	fNodeDomain    = 7

	fAttrName    = 1
	fAttrF       = 2
	fAttrI       = 3
	fAttrS       = 4
	fAttrT       = 5
	fAttrG       = 6
	fAttrFloats  = 7
	fAttrInts    = 8
	fAttrStrings = 9
	fAttrType    = 20

	fTensorDims         = 1
	fTensorDataType     = 2
	fTensorFloatData    = 4
	fTensorInt32Data    = 5
	fTensorStringData   = 6
	fTensorInt64Data    = 7
	fTensorName         = 8
	fTensorRawData      = 9
	fTensorDoubleData   = 10
	fTensorUint64Data   = 11
	fTensorDocString    = 12
	fTensorExternalData = 13
	fTensorDataLocation = 14

	fValueInfoName      = 1
	fValueInfoType      = 2
	fValueInfoDocString = 3

	fTypeTensor         = 1
	fTypeTensorElemType = 1
	fTypeTensorShape    = 2
	fShapeDim           = 1
	fDimValue           = 1
	fDimParam           = 2

	fEntryKey   = 1
	fEntryValue = 2
)

// maxNesting bounds the depth of nested graphs (attributes holding graphs),
// so that a hostile file cannot exhaust the stack.
const maxNesting = 32

// Marshal encodes the model in the protobuf wire format of onnx.proto.
func (m *ModelProto) Marshal() []byte {
	var b []byte
	b = appendInt(b, fModelIRVersion, m.IRVersion)
	b = appendString(b, fModelProducerName, m.ProducerName)
	b = appendString(b, fModelProducerVersion, m.ProducerVersion)
	b = appendString(b, fModelDomain, m.Domain)
	b = appendInt(b, fModelModelVersion, m.ModelVersion)
	b = appendString(b, fModelDocString, m.DocString)
	if m.Graph != nil {
		b = appendMessage(b, fModelGraph, m.Graph.marshal(nil))
	}
	for _, o := range m.OpsetImport {
		var ob []byte
		ob = appendString(ob, fOpsetDomain, o.Domain)
		ob = protowire.AppendTag(ob, fOpsetVersion, protowire.VarintType)
		ob = protowire.AppendVarint(ob, uint64(o.Version))
		b = appendMessage(b, fModelOpsetImport, ob)
	}
	for _, p := range m.MetadataProps {
		var pb []byte
		pb = appendString(pb, fEntryKey, p.Key)
		pb = appendString(pb, fEntryValue, p.Value)
		b = appendMessage(b, fModelMetadataProps, pb)
	}
	return b
}

func (g *GraphProto) marshal(b []byte) []byte {
	for _, n := range g.Node {
		b = appendMessage(b, fGraphNode, n.marshal(nil))
	}
	b = appendString(b, fGraphName, g.Name)
	for _, t := range g.Initializer {
		b = appendMessage(b, fGraphInitializer, t.marshal(nil))
	}
	b = appendString(b, fGraphDocString, g.DocString)
	for _, v := range g.Input {
		b = appendMessage(b, fGraphInput, v.marshal(nil))
	}
	for _, v := range g.Output {
		b = appendMessage(b, fGraphOutput, v.marshal(nil))
	}
	for _, v := range g.ValueInfo {
		b = appendMessage(b, fGraphValueInfo, v.marshal(nil))
	}
	return b
}

func (n *NodeProto) marshal(b []byte) []byte {
	for _, s := range n.Input {
		b = protowire.AppendTag(b, fNodeInput, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	for _, s := range n.Output {
		b = protowire.AppendTag(b, fNodeOutput, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	b = appendString(b, fNodeName, n.Name)
	b = appendString(b, fNodeOpType, n.OpType)
	for _, a := range n.Attribute {
		b = appendMessage(b, fNodeAttribute, a.marshal(nil))
	}
	b = appendString(b, fNodeDocString, n.DocString)
	b = appendString(b, fNodeDomain, n.Domain)
	return b
}

func (a *AttributeProto) marshal(b []byte) []byte {
	b = appendString(b, fAttrName, a.Name)
	switch a.Type {
	case AttrFloat:
		b = protowire.AppendTag(b, fAttrF, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.F))
	case AttrInt:
		b = protowire.AppendTag(b, fAttrI, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.I))
	case AttrString:
		b = protowire.AppendTag(b, fAttrS, protowire.BytesType)
		b = protowire.AppendBytes(b, a.S)
	case AttrTensor:
		if a.T != nil {
			b = appendMessage(b, fAttrT, a.T.marshal(nil))
		}
	case AttrGraph:
		if a.G != nil {
			b = appendMessage(b, fAttrG, a.G.marshal(nil))
		}
	case AttrFloats:
		for _, f := range a.Floats {
			b = protowire.AppendTag(b, fAttrFloats, protowire.Fixed32Type)
			b = protowire.AppendFixed32(b, math.Float32bits(f))
		}
	case AttrInts:
		for _, i := range a.Ints {
			b = protowire.AppendTag(b, fAttrInts, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(i))
		}
	case AttrStrings:
		for _, s := range a.Strings {
			b = protowire.AppendTag(b, fAttrStrings, protowire.BytesType)
			b = protowire.AppendBytes(b, s)
		}
	}
	b = protowire.AppendTag(b, fAttrType, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(a.Type))
	return b
}

func (t *TensorProto) marshal(b []byte) []byte {
	if len(t.Dims) > 0 {
		var p []byte
		for _, d := range t.Dims {
			p = protowire.AppendVarint(p, uint64(d))
		}
		b = appendMessage(b, fTensorDims, p)
	}
	b = protowire.AppendTag(b, fTensorDataType, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(t.DataType))
	if len(t.FloatData) > 0 {
		var p []byte
		for _, f := range t.FloatData {
			p = protowire.AppendFixed32(p, math.Float32bits(f))
		}
		b = appendMessage(b, fTensorFloatData, p)
	}
	if len(t.Int32Data) > 0 {
		var p []byte
		for _, v := range t.Int32Data {
			p = protowire.AppendVarint(p, uint64(int64(v)))
		}
		b = appendMessage(b, fTensorInt32Data, p)
	}
	for _, s := range t.StringData {
		b = protowire.AppendTag(b, fTensorStringData, protowire.BytesType)
		b = protowire.AppendBytes(b, s)
	}
	if len(t.Int64Data) > 0 {
		var p []byte
		for _, v := range t.Int64Data {
			p = protowire.AppendVarint(p, uint64(v))
		}
		b = appendMessage(b, fTensorInt64Data, p)
	}
	b = appendString(b, fTensorName, t.Name)
	if t.RawData != nil {
		b = protowire.AppendTag(b, fTensorRawData, protowire.BytesType)
		b = protowire.AppendBytes(b, t.RawData)
	}
	if len(t.DoubleData) > 0 {
		var p []byte
		for _, f := range t.DoubleData {
			p = protowire.AppendFixed64(p, math.Float64bits(f))
		}
		b = appendMessage(b, fTensorDoubleData, p)
	}
	if len(t.Uint64Data) > 0 {
		var p []byte
		for _, v := range t.Uint64Data {
			p = protowire.AppendVarint(p, v)
		}
		b = appendMessage(b, fTensorUint64Data, p)
	}
	b = appendString(b, fTensorDocString, t.DocString)
	return b
}

func (v *ValueInfoProto) marshal(b []byte) []byte {
	b = appendString(b, fValueInfoName, v.Name)
	if v.ElemType != Undefined || v.Shape != nil {
		var tt []byte
		tt = protowire.AppendTag(tt, fTypeTensorElemType, protowire.VarintType)
		tt = protowire.AppendVarint(tt, uint64(v.ElemType))
		if v.Shape != nil {
			var sh []byte
			for _, d := range v.Shape {
				var db []byte
				if d.Param != "" {
					db = appendString(db, fDimParam, d.Param)
				} else if d.Value > 0 {
					db = protowire.AppendTag(db, fDimValue, protowire.VarintType)
					db = protowire.AppendVarint(db, uint64(d.Value))
				}
				sh = appendMessage(sh, fShapeDim, db)
			}
			tt = appendMessage(tt, fTypeTensorShape, sh)
		}
		b = appendMessage(b, fValueInfoType, appendMessage(nil, fTypeTensor, tt))
	}
	b = appendString(b, fValueInfoDocString, v.DocString)
	return b
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendInt(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func appendMessage(b []byte, num protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

// errTruncated is returned for input that ends inside a field.
var errTruncated = errors.New("truncated or malformed protobuf")

// field is one decoded field: its number and type and, depending on the
// type, its varint/fixed value or its bytes.
type field struct {
	num protowire.Number
	typ protowire.Type
	u   uint64
	b   []byte
}

// fields calls fn for every field of the message in b.
func fields(b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errTruncated
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.u, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.u = uint64(v)
		case protowire.Fixed64Type:
			f.u, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errTruncated
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// wantType checks a field's wire type.
func (f field) want(t protowire.Type, what string) error {
	if f.typ != t {
		return fmt.Errorf("%s: wire type %d, want %d", what, f.typ, t)
	}
	return nil
}

// varints decodes a repeated varint field, packed or not.
func (f field) varints(dst []uint64, what string) ([]uint64, error) {
	switch f.typ {
	case protowire.VarintType:
		return append(dst, f.u), nil
	case protowire.BytesType:
		b := f.b
		for len(b) > 0 {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, fmt.Errorf("%s: %w", what, errTruncated)
			}
			dst = append(dst, v)
			b = b[n:]
		}
		return dst, nil
	}
	return nil, fmt.Errorf("%s: wire type %d is not varint", what, f.typ)
}

// fixed32s decodes a repeated fixed32 field, packed or not.
func (f field) fixed32s(dst []float32, what string) ([]float32, error) {
	switch f.typ {
	case protowire.Fixed32Type:
		return append(dst, math.Float32frombits(uint32(f.u))), nil
	case protowire.BytesType:
		if len(f.b)%4 != 0 {
			return nil, fmt.Errorf("%s: packed length %d is not a multiple of 4", what, len(f.b))
		}
		for b := f.b; len(b) > 0; b = b[4:] {
			v, _ := protowire.ConsumeFixed32(b)
			dst = append(dst, math.Float32frombits(v))
		}
		return dst, nil
	}
	return nil, fmt.Errorf("%s: wire type %d is not fixed32", what, f.typ)
}

// fixed64s decodes a repeated fixed64 field, packed or not.
func (f field) fixed64s(dst []float64, what string) ([]float64, error) {
	switch f.typ {
	case protowire.Fixed64Type:
		return append(dst, math.Float64frombits(f.u)), nil
	case protowire.BytesType:
		if len(f.b)%8 != 0 {
			return nil, fmt.Errorf("%s: packed length %d is not a multiple of 8", what, len(f.b))
		}
		for b := f.b; len(b) > 0; b = b[8:] {
			v, _ := protowire.ConsumeFixed64(b)
			dst = append(dst, math.Float64frombits(v))
		}
		return dst, nil
	}
	return nil, fmt.Errorf("%s: wire type %d is not fixed64", what, f.typ)
}

func (f field) str(what string) (string, error) {
	if err := f.want(protowire.BytesType, what); err != nil {
		return "", err
	}
	return string(f.b), nil
}

func (f field) int(what string) (int64, error) {
	if err := f.want(protowire.VarintType, what); err != nil {
		return 0, err
	}
	return int64(f.u), nil
}

// Unmarshal decodes an ONNX model. Unknown fields are skipped. Byte fields
// (raw tensor data) are copied, so data may be reused afterwards.
func Unmarshal(data []byte) (*ModelProto, error) {
	m := &ModelProto{}
	err := fields(data, func(f field) error {
		var err error
		switch f.num {
		case fModelIRVersion:
			m.IRVersion, err = f.int("ir_version")
		case fModelProducerName:
			m.ProducerName, err = f.str("producer_name")
		case fModelProducerVersion:
			m.ProducerVersion, err = f.str("producer_version")
		case fModelDomain:
			m.Domain, err = f.str("domain")
		case fModelModelVersion:
			m.ModelVersion, err = f.int("model_version")
		case fModelDocString:
			m.DocString, err = f.str("doc_string")
		case fModelGraph:
			if err = f.want(protowire.BytesType, "graph"); err == nil {
				m.Graph, err = unmarshalGraph(f.b, 0)
			}
		case fModelOpsetImport:
			if err = f.want(protowire.BytesType, "opset_import"); err != nil {
				return err
			}
			var o OperatorSetID
			err = fields(f.b, func(f field) error {
				var err error
				switch f.num {
				case fOpsetDomain:
					o.Domain, err = f.str("opset_import.domain")
				case fOpsetVersion:
					o.Version, err = f.int("opset_import.version")
				}
				return err
			})
			m.OpsetImport = append(m.OpsetImport, o)
		case fModelMetadataProps:
			if err = f.want(protowire.BytesType, "metadata_props"); err != nil {
				return err
			}
			var p StringPair
			err = fields(f.b, func(f field) error {
				var err error
				switch f.num {
				case fEntryKey:
					p.Key, err = f.str("metadata_props.key")
				case fEntryValue:
					p.Value, err = f.str("metadata_props.value")
				}
				return err
			})
			m.MetadataProps = append(m.MetadataProps, p)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("onnx: decode model: %w", err)
	}
	return m, nil
}

func unmarshalGraph(b []byte, depth int) (*GraphProto, error) {
	if depth > maxNesting {
		return nil, errors.New("graphs nested too deeply")
	}
	g := &GraphProto{}
	err := fields(b, func(f field) error {
		var err error
		switch f.num {
		case fGraphNode:
			if err = f.want(protowire.BytesType, "node"); err == nil {
				var n *NodeProto
				if n, err = unmarshalNode(f.b, depth); err == nil {
					g.Node = append(g.Node, n)
				}
			}
		case fGraphName:
			g.Name, err = f.str("graph.name")
		case fGraphInitializer:
			if err = f.want(protowire.BytesType, "initializer"); err == nil {
				var t *TensorProto
				if t, err = unmarshalTensor(f.b); err == nil {
					g.Initializer = append(g.Initializer, t)
				}
			}
		case fGraphDocString:
			g.DocString, err = f.str("graph.doc_string")
		case fGraphInput, fGraphOutput, fGraphValueInfo:
			if err = f.want(protowire.BytesType, "value_info"); err != nil {
				return err
			}
			var v *ValueInfoProto
			if v, err = unmarshalValueInfo(f.b); err != nil {
				return err
			}
			switch f.num {
			case fGraphInput:
				g.Input = append(g.Input, v)
			case fGraphOutput:
				g.Output = append(g.Output, v)
			default:
				g.ValueInfo = append(g.ValueInfo, v)
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	return g, nil
}

func unmarshalNode(b []byte, depth int) (*NodeProto, error) {
	n := &NodeProto{}
	err := fields(b, func(f field) error {
		var err error
		var s string
		switch f.num {
		case fNodeInput:
			if s, err = f.str("node.input"); err == nil {
				n.Input = append(n.Input, s)
			}
		case fNodeOutput:
			if s, err = f.str("node.output"); err == nil {
				n.Output = append(n.Output, s)
			}
		case fNodeName:
			n.Name, err = f.str("node.name")
		case fNodeOpType:
			n.OpType, err = f.str("node.op_type")
		case fNodeDomain:
			n.Domain, err = f.str("node.domain")
		case fNodeDocString:
			n.DocString, err = f.str("node.doc_string")
		case fNodeAttribute:
			if err = f.want(protowire.BytesType, "node.attribute"); err == nil {
				var a *AttributeProto
				if a, err = unmarshalAttribute(f.b, depth); err == nil {
					n.Attribute = append(n.Attribute, a)
				}
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("node %q: %w", n.Name, err)
	}
	return n, nil
}

func unmarshalAttribute(b []byte, depth int) (*AttributeProto, error) {
	a := &AttributeProto{}
	err := fields(b, func(f field) error {
		var err error
		switch f.num {
		case fAttrName:
			a.Name, err = f.str("attribute.name")
		case fAttrType:
			var v int64
			v, err = f.int("attribute.type")
			a.Type = AttributeType(v)
		case fAttrF:
			if err = f.want(protowire.Fixed32Type, "attribute.f"); err == nil {
				a.F = math.Float32frombits(uint32(f.u))
			}
		case fAttrI:
			a.I, err = f.int("attribute.i")
		case fAttrS:
			if err = f.want(protowire.BytesType, "attribute.s"); err == nil {
				a.S = append([]byte{}, f.b...)
			}
		case fAttrT:
			if err = f.want(protowire.BytesType, "attribute.t"); err == nil {
				a.T, err = unmarshalTensor(f.b)
			}
		case fAttrG:
			if err = f.want(protowire.BytesType, "attribute.g"); err == nil {
				a.G, err = unmarshalGraph(f.b, depth+1)
			}
		case fAttrFloats:
			a.Floats, err = f.fixed32s(a.Floats, "attribute.floats")
		case fAttrInts:
			var u []uint64
			if u, err = f.varints(nil, "attribute.ints"); err == nil {
				for _, v := range u {
					a.Ints = append(a.Ints, int64(v))
				}
			}
		case fAttrStrings:
			if err = f.want(protowire.BytesType, "attribute.strings"); err == nil {
				a.Strings = append(a.Strings, append([]byte{}, f.b...))
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("attribute %q: %w", a.Name, err)
	}
	return a, nil
}

func unmarshalTensor(b []byte) (*TensorProto, error) {
	t := &TensorProto{}
	err := fields(b, func(f field) error {
		var err error
		var u []uint64
		switch f.num {
		case fTensorDims:
			if u, err = f.varints(nil, "tensor.dims"); err == nil {
				for _, v := range u {
					t.Dims = append(t.Dims, int64(v))
				}
			}
		case fTensorDataType:
			var v int64
			v, err = f.int("tensor.data_type")
			t.DataType = DataType(v)
		case fTensorFloatData:
			t.FloatData, err = f.fixed32s(t.FloatData, "tensor.float_data")
		case fTensorInt32Data:
			if u, err = f.varints(nil, "tensor.int32_data"); err == nil {
				for _, v := range u {
					t.Int32Data = append(t.Int32Data, int32(v))
				}
			}
		case fTensorStringData:
			if err = f.want(protowire.BytesType, "tensor.string_data"); err == nil {
				t.StringData = append(t.StringData, append([]byte{}, f.b...))
			}
		case fTensorInt64Data:
			if u, err = f.varints(nil, "tensor.int64_data"); err == nil {
				for _, v := range u {
					t.Int64Data = append(t.Int64Data, int64(v))
				}
			}
		case fTensorName:
			t.Name, err = f.str("tensor.name")
		case fTensorDocString:
			t.DocString, err = f.str("tensor.doc_string")
		case fTensorRawData:
			if err = f.want(protowire.BytesType, "tensor.raw_data"); err == nil {
				t.RawData = append([]byte{}, f.b...)
			}
		case fTensorDoubleData:
			t.DoubleData, err = f.fixed64s(t.DoubleData, "tensor.double_data")
		case fTensorUint64Data:
			t.Uint64Data, err = f.varints(t.Uint64Data, "tensor.uint64_data")
		case fTensorExternalData:
			t.External = true
		case fTensorDataLocation:
			var v int64
			v, err = f.int("tensor.data_location")
			if v == 1 {
				t.External = true
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return t, nil
}

func unmarshalValueInfo(b []byte) (*ValueInfoProto, error) {
	v := &ValueInfoProto{}
	err := fields(b, func(f field) error {
		var err error
		switch f.num {
		case fValueInfoName:
			v.Name, err = f.str("value_info.name")
		case fValueInfoDocString:
			v.DocString, err = f.str("value_info.doc_string")
		case fValueInfoType:
			if err = f.want(protowire.BytesType, "value_info.type"); err != nil {
				return err
			}
			err = fields(f.b, func(f field) error {
				if f.num != fTypeTensor {
					return nil // sequence, map, optional...: not a tensor
				}
				if err := f.want(protowire.BytesType, "type.tensor_type"); err != nil {
					return err
				}
				return fields(f.b, func(f field) error {
					switch f.num {
					case fTypeTensorElemType:
						e, err := f.int("tensor_type.elem_type")
						v.ElemType = DataType(e)
						return err
					case fTypeTensorShape:
						if err := f.want(protowire.BytesType, "tensor_type.shape"); err != nil {
							return err
						}
						v.Shape = []Dim{}
						return fields(f.b, func(f field) error {
							if f.num != fShapeDim {
								return nil
							}
							if err := f.want(protowire.BytesType, "shape.dim"); err != nil {
								return err
							}
							var d Dim
							err := fields(f.b, func(f field) error {
								var err error
								switch f.num {
								case fDimValue:
									d.Value, err = f.int("dim.dim_value")
								case fDimParam:
									d.Param, err = f.str("dim.dim_param")
								}
								return err
							})
							v.Shape = append(v.Shape, d)
							return err
						})
					}
					return nil
				})
			})
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("value_info %q: %w", v.Name, err)
	}
	return v, nil
}
