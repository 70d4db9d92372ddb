package onnx

// Session is a model loaded into ONNX Runtime. It is safe for concurrent
// use; Close releases it.
type Session interface {
	Runner
	// InputNames and OutputNames list the model's inputs and outputs in
	// the model's order.
	InputNames() []string
	OutputNames() []string
	// InputInfo returns the element type and shape (-1 for a dynamic axis)
	// of the named input.
	InputInfo(name string) (DataType, []int64, bool)
	Close() error
}

// ORTOptions configure ONNX Runtime.
type ORTOptions struct {
	// Library is the path of the ONNX Runtime shared library
	// (libonnxruntime.so.1, see `make ort-lib`); callers usually take it
	// from the ONNXRUNTIME_LIB environment variable. ONNX Runtime is
	// process-wide: the first session fixes the library for the process.
	Library string
	// Threads is the intra-op thread count per session; 0 means 1, which
	// suits a scanner that already runs one session call per worker.
	Threads int
}
