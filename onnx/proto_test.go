package onnx

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func fullModel() *ModelProto {
	ft := FloatTensor([]int64{2, 2}, []float32{1, -2, 3.5, 0})
	it := Int64Tensor([]int64{3}, []int64{-1, 0, 1 << 40})
	return &ModelProto{
		IRVersion:       8,
		OpsetImport:     []OperatorSetID{{Version: 17}, {Domain: "com.example", Version: 1}},
		ProducerName:    "p",
		ProducerVersion: "1.2",
		Domain:          "d",
		ModelVersion:    3,
		DocString:       "doc",
		MetadataProps:   []StringPair{{"k", "v"}, {"k2", ""}},
		Graph: &GraphProto{
			Name:        "g",
			DocString:   "gdoc",
			Initializer: []*TensorProto{ft.Proto("f"), it.Proto("i")},
			Node: []*NodeProto{{
				Name: "n", OpType: "Op", Domain: "com.example", DocString: "ndoc",
				Input: []string{"f", "", "i"}, Output: []string{"o"},
				Attribute: []*AttributeProto{
					{Name: "af", Type: AttrFloat, F: 0.5},
					{Name: "ai", Type: AttrInt, I: -7},
					{Name: "as", Type: AttrString, S: []byte("str")},
					{Name: "at", Type: AttrTensor, T: it.Proto("t")},
					{Name: "ag", Type: AttrGraph, G: &GraphProto{Name: "sub"}},
					{Name: "afs", Type: AttrFloats, Floats: []float32{1, 2}},
					{Name: "ais", Type: AttrInts, Ints: []int64{-1, 2}},
					{Name: "ass", Type: AttrStrings, Strings: [][]byte{[]byte("a"), []byte("b")}},
				},
			}},
			Input:     []*ValueInfoProto{{Name: "x", ElemType: Float, Shape: []Dim{{Param: "N"}, {Value: 4}, {}}}},
			Output:    []*ValueInfoProto{{Name: "o", ElemType: Int64, Shape: []Dim{}}},
			ValueInfo: []*ValueInfoProto{{Name: "untyped"}},
		},
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	m := fullModel()
	data := m.Marshal()
	got, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if again := got.Marshal(); !bytes.Equal(again, data) {
		t.Fatalf("re-encoding differs: %d bytes vs %d", len(again), len(data))
	}
	g := got.Graph
	checks := []struct {
		name string
		ok   bool
	}{
		{"ir_version", got.IRVersion == 8},
		{"opsets", slices.Equal(got.OpsetImport, m.OpsetImport)},
		{"metadata", slices.Equal(got.MetadataProps, m.MetadataProps)},
		{"strings", got.ProducerName == "p" && got.ProducerVersion == "1.2" && got.Domain == "d" && got.DocString == "doc" && got.ModelVersion == 3},
		{"node inputs keep the empty optional", slices.Equal(g.Node[0].Input, []string{"f", "", "i"})},
		{"float attribute", g.Node[0].Attribute[0].F == 0.5},
		{"negative int attribute", g.Node[0].Attribute[1].I == -7},
		{"ints attribute", slices.Equal(g.Node[0].Attribute[6].Ints, []int64{-1, 2})},
		{"floats attribute", slices.Equal(g.Node[0].Attribute[5].Floats, []float32{1, 2})},
		{"subgraph", g.Node[0].Attribute[4].G != nil && g.Node[0].Attribute[4].G.Name == "sub"},
		{"input shape", slices.Equal(g.Input[0].Shape, []Dim{{Param: "N"}, {Value: 4}, {}})},
		{"scalar output shape", g.Output[0].Shape != nil && len(g.Output[0].Shape) == 0},
		{"untyped value", g.ValueInfo[0].ElemType == Undefined && g.ValueInfo[0].Shape == nil},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s did not survive the round trip", c.name)
		}
	}
	for i, want := range []Tensor{FloatTensor([]int64{2, 2}, []float32{1, -2, 3.5, 0}), Int64Tensor([]int64{3}, []int64{-1, 0, 1 << 40})} {
		tt, err := TensorFromProto(g.Initializer[i])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(tt.Shape, want.Shape) || !slices.Equal(tt.Float, want.Float) || !slices.Equal(tt.Int64, want.Int64) {
			t.Errorf("initializer %d = %+v, want %+v", i, tt, want)
		}
	}
}

// TestUnmarshalWireForms decodes the forms other writers use: unpacked
// repeated scalars, typed data fields instead of raw_data, and unknown
// fields.
func TestUnmarshalWireForms(t *testing.T) {
	var tensor []byte
	for _, d := range []uint64{2, 3} { // dims unpacked
		tensor = protowire.AppendTag(tensor, fTensorDims, protowire.VarintType)
		tensor = protowire.AppendVarint(tensor, d)
	}
	tensor = protowire.AppendTag(tensor, fTensorDataType, protowire.VarintType)
	tensor = protowire.AppendVarint(tensor, uint64(Int8))
	for _, v := range []int32{-1, 2, -3, 4, -5, 127} { // int8 in int32_data, unpacked
		tensor = protowire.AppendTag(tensor, fTensorInt32Data, protowire.VarintType)
		tensor = protowire.AppendVarint(tensor, uint64(int64(v)))
	}
	tensor = protowire.AppendTag(tensor, 999, protowire.BytesType) // unknown
	tensor = protowire.AppendBytes(tensor, []byte("ignored"))
	tensor = appendString(tensor, fTensorName, "w")
	var graph []byte
	graph = appendMessage(graph, fGraphInitializer, tensor)
	graph = protowire.AppendTag(graph, 77, protowire.Fixed64Type) // unknown
	graph = protowire.AppendFixed64(graph, 1)
	var model []byte
	model = appendMessage(model, fModelGraph, graph)
	m, err := Unmarshal(model)
	if err != nil {
		t.Fatal(err)
	}
	tt, err := TensorFromProto(m.Graph.Initializer[0])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tt.Shape, []int64{2, 3}) || !slices.Equal(tt.Int8, []int8{-1, 2, -3, 4, -5, 127}) {
		t.Errorf("tensor = %+v", tt)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	good := fullModel().Marshal()
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", good[:len(good)-3], "truncated"},
		{"wrong wire type", protowire.AppendVarint(protowire.AppendTag(nil, fModelGraph, protowire.VarintType), 1), "wire type"},
		{"garbage", []byte{0xff, 0xff, 0xff}, "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Unmarshal(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestTensorFromProtoErrors(t *testing.T) {
	tests := []struct {
		name string
		p    *TensorProto
		want string
	}{
		{"too few elements", &TensorProto{Dims: []int64{3}, DataType: Float, FloatData: []float32{1}}, "holds 3 elements, data has 1"},
		{"ragged raw data", &TensorProto{Dims: []int64{1}, DataType: Float, RawData: []byte{1, 2, 3}}, "whole number"},
		{"negative dim", &TensorProto{Dims: []int64{-1}, DataType: Float}, "negative"},
		{"huge", &TensorProto{Dims: []int64{1 << 30, 1 << 30}, DataType: Float}, "too large"},
		{"string", &TensorProto{Dims: []int64{1}, DataType: String}, "unsupported element type string"},
		{"external", &TensorProto{Dims: []int64{1}, DataType: Float, External: true}, "external data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := TensorFromProto(tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestExportGolden pins the bytes ExportClassifier writes for fixed
// weights: the file format is part of the product (go test -update to
// rewrite after an intended change).
func TestExportGolden(t *testing.T) {
	c := Classifier{
		Buckets: 4, Dim: 2, Hidden: 2,
		Emb: []int8{0, 0, 1, -1, 127, -127, 5, 6}, EmbScale: []float32{0.5, 0.25, 0.125, 1},
		W1Q: []int8{1, 2, 3, 4}, W1Scale: []float32{0.5, 0.25},
		B1: []float32{0.1, -0.1}, W2: []float32{1, -1}, B2: 0.5,
		Doc: "golden", Metadata: []StringPair{{Key: "sentineldf.features", Value: "test"}},
	}
	data, err := ExportClassifier(c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "classifier.golden.onnx")
	if *update {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(data, want) {
		t.Errorf("ExportClassifier wrote %d bytes that differ from %s (%d bytes); go test -update if intended", len(data), path, len(want))
	}
	m, err := Load(want)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Run(map[string]Tensor{
		ClassifierIDs:     Int64Tensor([]int64{1, 2}, []int64{2, 3}),
		ClassifierWeights: FloatTensor([]int64{1, 2}, []float32{1, 0.5}),
	})
	if err != nil {
		t.Fatal(err)
	}
	// x = 1·E[2] + 0.5·E[3] = (15.875, −15.875) + (2.5, 3) = (18.375, −12.875)
	// W1 = [[0.5, 0.5], [1.5, 1]]; h = relu(x·W1 + B1) = relu(−10.025, −3.7875) = 0
	// prob = sigmoid(0.5)
	if got := out[ClassifierProb].Float[0]; got < 0.62245 || got > 0.62247 {
		t.Errorf("prob = %v, want sigmoid(0.5) = 0.622459", got)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(fullModel().Marshal())
	f.Add(mustExportF(f))
	f.Add(testSequenceClassifier(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Load(data)
		if err != nil {
			return
		}
		// A model that loads must run or fail cleanly on a small input.
		in := map[string]Tensor{}
		for _, vi := range m.Inputs() {
			switch vi.ElemType {
			case Int64:
				in[vi.Name] = Int64Tensor([]int64{1, 2}, []int64{0, 1})
			default:
				in[vi.Name] = FloatTensor([]int64{1, 2}, []float32{0.5, 1})
			}
		}
		_, _ = m.Run(in)
	})
}

func mustExportF(f *testing.F) []byte {
	data, err := ExportClassifier(randomClassifier(1, 10, 4, 3, true, true))
	if err != nil {
		f.Fatal(err)
	}
	return data
}
