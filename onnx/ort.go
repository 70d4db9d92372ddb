//go:build ort && cgo

package onnx

import (
	"errors"
	"fmt"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ORTAvailable reports whether this build can run models with ONNX Runtime.
const ORTAvailable = true

// ortEnv is ONNX Runtime's process-wide environment: the library can be
// loaded once per process.
var ortEnv struct {
	sync.Mutex
	library string
}

func initORT(lib string) error {
	ortEnv.Lock()
	defer ortEnv.Unlock()
	if ort.IsInitialized() {
		if lib != "" && ortEnv.library != "" && lib != ortEnv.library {
			return fmt.Errorf("onnx: ONNX Runtime is already loaded from %s, not %s", ortEnv.library, lib)
		}
		return nil
	}
	if lib == "" {
		return errors.New("onnx: no ONNX Runtime library given (set ONNXRUNTIME_LIB to libonnxruntime.so.1; `make ort-lib` fetches it)")
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("onnx: load ONNX Runtime from %s: %w", lib, err)
	}
	ortEnv.library = lib
	return nil
}

// ortSession is a Session on ONNX Runtime.
type ortSession struct {
	s       *ort.DynamicAdvancedSession
	inputs  []ort.InputOutputInfo
	outputs []ort.InputOutputInfo
}

// NewORTSession loads an ONNX model into ONNX Runtime.
func NewORTSession(model []byte, o ORTOptions) (Session, error) {
	if err := initORT(o.Library); err != nil {
		return nil, err
	}
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(model)
	if err != nil {
		return nil, fmt.Errorf("onnx: ONNX Runtime cannot read the model: %w", err)
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnx: session options: %w", err)
	}
	defer opts.Destroy()
	threads := max(o.Threads, 1)
	if err := opts.SetIntraOpNumThreads(threads); err != nil {
		return nil, fmt.Errorf("onnx: session options: %w", err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("onnx: session options: %w", err)
	}
	names := func(infos []ort.InputOutputInfo) []string {
		out := make([]string, len(infos))
		for i, in := range infos {
			out[i] = in.Name
		}
		return out
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, names(ins), names(outs), opts)
	if err != nil {
		return nil, fmt.Errorf("onnx: ONNX Runtime session: %w", err)
	}
	return &ortSession{s: s, inputs: ins, outputs: outs}, nil
}

func (s *ortSession) InputNames() []string {
	out := make([]string, len(s.inputs))
	for i, in := range s.inputs {
		out[i] = in.Name
	}
	return out
}

func (s *ortSession) OutputNames() []string {
	out := make([]string, len(s.outputs))
	for i, in := range s.outputs {
		out[i] = in.Name
	}
	return out
}

func (s *ortSession) InputInfo(name string) (DataType, []int64, bool) {
	for _, in := range s.inputs {
		if in.Name == name {
			// ONNX Runtime's element type numbers are ONNX's.
			return DataType(in.DataType), []int64(in.Dimensions.Clone()), true
		}
	}
	return Undefined, nil, false
}

func (s *ortSession) Close() error { return s.s.Destroy() }

// toORT wraps a Tensor's data in an ONNX Runtime value (no copy).
func toORT(t *Tensor) (ort.Value, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if len(t.Shape) == 0 {
		return nil, errors.New("scalar inputs are not supported")
	}
	shape := ort.NewShape(t.Shape...)
	switch t.Type {
	case Float:
		return ort.NewTensor(shape, t.Float)
	case Int64:
		return ort.NewTensor(shape, t.Int64)
	case Int32:
		return ort.NewTensor(shape, t.Int32)
	case Int8:
		return ort.NewTensor(shape, t.Int8)
	case Uint8:
		return ort.NewTensor(shape, t.Uint8)
	}
	return nil, fmt.Errorf("element type %v is not supported", t.Type)
}

// fromORT copies an ONNX Runtime output into a Tensor.
func fromORT(v ort.Value) (Tensor, error) {
	shape := []int64(v.GetShape().Clone())
	switch x := v.(type) {
	case *ort.Tensor[float32]:
		return FloatTensor(shape, append([]float32(nil), x.GetData()...)), nil
	case *ort.Tensor[int64]:
		return Int64Tensor(shape, append([]int64(nil), x.GetData()...)), nil
	case *ort.Tensor[int32]:
		return Tensor{Type: Int32, Shape: shape, Int32: append([]int32(nil), x.GetData()...)}, nil
	case *ort.Tensor[int8]:
		return Int8Tensor(shape, append([]int8(nil), x.GetData()...)), nil
	case *ort.Tensor[uint8]:
		return Tensor{Type: Uint8, Shape: shape, Uint8: append([]uint8(nil), x.GetData()...)}, nil
	}
	return Tensor{}, fmt.Errorf("output of type %T is not supported", v)
}

// Run evaluates the model with ONNX Runtime.
func (s *ortSession) Run(inputs map[string]Tensor) (map[string]Tensor, error) {
	if len(inputs) != len(s.inputs) {
		return nil, fmt.Errorf("onnx: got %d inputs, the model takes %d (%v)", len(inputs), len(s.inputs), s.InputNames())
	}
	in := make([]ort.Value, len(s.inputs))
	defer func() {
		for _, v := range in {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for i, info := range s.inputs {
		t, ok := inputs[info.Name]
		if !ok {
			return nil, fmt.Errorf("onnx: missing input %q", info.Name)
		}
		v, err := toORT(&t)
		if err != nil {
			return nil, fmt.Errorf("onnx: input %q: %w", info.Name, err)
		}
		in[i] = v
	}
	out := make([]ort.Value, len(s.outputs))
	defer func() {
		for _, v := range out {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	if err := s.s.Run(in, out); err != nil {
		return nil, fmt.Errorf("onnx: ONNX Runtime: %w", err)
	}
	res := make(map[string]Tensor, len(out))
	for i, v := range out {
		t, err := fromORT(v)
		if err != nil {
			return nil, fmt.Errorf("onnx: output %q: %w", s.outputs[i].Name, err)
		}
		res[s.outputs[i].Name] = t
	}
	return res, nil
}
