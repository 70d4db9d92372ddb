package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// maxElements bounds the number of elements of any one tensor the package
// builds from a shape, so that a hostile file or input cannot ask for an
// absurd allocation.
const maxElements = 1 << 31

// Tensor is a dense, row-major tensor. Type says which data slice is used;
// the others are nil. Tensors handed to or returned by Run must not be
// modified while a run may read them: the evaluator shares data between
// values (Reshape, Identity, constants) instead of copying.
type Tensor struct {
	Type  DataType
	Shape []int64
	Float []float32
	Int64 []int64
	Int32 []int32
	Int8  []int8
	Uint8 []uint8
}

// FloatTensor returns a float32 tensor of the given shape over data.
func FloatTensor(shape []int64, data []float32) Tensor {
	return Tensor{Type: Float, Shape: shape, Float: data}
}

// Int64Tensor returns an int64 tensor of the given shape over data.
func Int64Tensor(shape []int64, data []int64) Tensor {
	return Tensor{Type: Int64, Shape: shape, Int64: data}
}

// Int8Tensor returns an int8 tensor of the given shape over data.
func Int8Tensor(shape []int64, data []int8) Tensor {
	return Tensor{Type: Int8, Shape: shape, Int8: data}
}

// Len is the number of elements the tensor's data holds.
func (t *Tensor) Len() int {
	switch t.Type {
	case Float:
		return len(t.Float)
	case Int64:
		return len(t.Int64)
	case Int32:
		return len(t.Int32)
	case Int8:
		return len(t.Int8)
	case Uint8:
		return len(t.Uint8)
	}
	return 0
}

// Validate checks that the type is supported, the shape is non-negative and
// the data length matches the shape.
func (t *Tensor) Validate() error {
	switch t.Type {
	case Float, Int64, Int32, Int8, Uint8:
	default:
		return fmt.Errorf("unsupported element type %v", t.Type)
	}
	n, err := numElements(t.Shape)
	if err != nil {
		return err
	}
	if n != t.Len() {
		return fmt.Errorf("shape %v holds %d elements, data has %d", t.Shape, n, t.Len())
	}
	return nil
}

// numElements is the product of shape, checked.
func numElements(shape []int64) (int, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if d != 0 && n > maxElements/d {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
		n *= d
	}
	return int(n), nil
}

// reshaped returns t with a new shape over the same data.
func (t *Tensor) reshaped(shape []int64) *Tensor {
	c := *t
	c.Shape = shape
	return &c
}

// Proto converts the tensor to a TensorProto with little-endian raw data.
func (t *Tensor) Proto(name string) *TensorProto {
	p := &TensorProto{Name: name, DataType: t.Type, Dims: slices.Clone(t.Shape)}
	var raw []byte
	switch t.Type {
	case Float:
		raw = make([]byte, 0, 4*len(t.Float))
		for _, v := range t.Float {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
		}
	case Int64:
		raw = make([]byte, 0, 8*len(t.Int64))
		for _, v := range t.Int64 {
			raw = binary.LittleEndian.AppendUint64(raw, uint64(v))
		}
	case Int32:
		raw = make([]byte, 0, 4*len(t.Int32))
		for _, v := range t.Int32 {
			raw = binary.LittleEndian.AppendUint32(raw, uint32(v))
		}
	case Int8:
		raw = make([]byte, len(t.Int8))
		for i, v := range t.Int8 {
			raw[i] = byte(v)
		}
	case Uint8:
		raw = slices.Clone(t.Uint8)
	}
	if raw == nil {
		raw = []byte{}
	}
	p.RawData = raw
	return p
}

// TensorFromProto decodes a TensorProto's data. Only Float, Int64, Int32,
// Int8 and Uint8 tensors with in-file data are supported.
func TensorFromProto(p *TensorProto) (*Tensor, error) {
	if p.External {
		return nil, fmt.Errorf("tensor %q: external data is not supported", p.Name)
	}
	n, err := numElements(p.Dims)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", p.Name, err)
	}
	t := &Tensor{Type: p.DataType, Shape: slices.Clone(p.Dims)}
	if t.Shape == nil {
		t.Shape = []int64{}
	}
	raw := p.RawData
	size := map[DataType]int{Float: 4, Int64: 8, Int32: 4, Int8: 1, Uint8: 1}[p.DataType]
	if size == 0 {
		return nil, fmt.Errorf("tensor %q: unsupported element type %v", p.Name, p.DataType)
	}
	var have int
	switch {
	case len(raw) > 0:
		have = len(raw) / size
		if len(raw)%size != 0 {
			return nil, fmt.Errorf("tensor %q: raw data of %d bytes is not a whole number of %v elements", p.Name, len(raw), p.DataType)
		}
	case p.DataType == Float:
		have = len(p.FloatData)
	case p.DataType == Int64:
		have = len(p.Int64Data)
	default:
		have = len(p.Int32Data)
	}
	if have != n {
		return nil, fmt.Errorf("tensor %q: shape %v holds %d elements, data has %d", p.Name, p.Dims, n, have)
	}
	switch p.DataType {
	case Float:
		t.Float = make([]float32, n)
		if len(raw) > 0 {
			for i := range t.Float {
				t.Float[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		} else {
			copy(t.Float, p.FloatData)
		}
	case Int64:
		t.Int64 = make([]int64, n)
		if len(raw) > 0 {
			for i := range t.Int64 {
				t.Int64[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
			}
		} else {
			copy(t.Int64, p.Int64Data)
		}
	case Int32:
		t.Int32 = make([]int32, n)
		if len(raw) > 0 {
			for i := range t.Int32 {
				t.Int32[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		} else {
			copy(t.Int32, p.Int32Data)
		}
	case Int8:
		t.Int8 = make([]int8, n)
		for i := range t.Int8 {
			if len(raw) > 0 {
				t.Int8[i] = int8(raw[i])
			} else {
				t.Int8[i] = int8(p.Int32Data[i])
			}
		}
	case Uint8:
		t.Uint8 = make([]uint8, n)
		for i := range t.Uint8 {
			if len(raw) > 0 {
				t.Uint8[i] = raw[i]
			} else {
				t.Uint8[i] = uint8(p.Int32Data[i])
			}
		}
	}
	return t, nil
}

// ints returns the tensor's integer elements as int64s (for axes, shapes
// and indices given as inputs).
func (t *Tensor) ints() ([]int64, error) {
	switch t.Type {
	case Int64:
		return t.Int64, nil
	case Int32:
		out := make([]int64, len(t.Int32))
		for i, v := range t.Int32 {
			out[i] = int64(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want an int64 or int32 tensor, got %v", t.Type)
}

// ErrNoRuntime is returned by the ONNX Runtime entry points in builds
// without the "ort" build tag (or without cgo). Test for it with errors.Is.
var ErrNoRuntime = errors.New("this build has no ONNX Runtime; rebuild with -tags ort")
