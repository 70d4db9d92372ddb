//go:build !ort || !cgo

package onnx

// ORTAvailable reports whether this build can run models with ONNX Runtime.
const ORTAvailable = false

// NewORTSession loads an ONNX model into ONNX Runtime. This build has no
// ONNX Runtime: it always fails with ErrNoRuntime.
func NewORTSession(model []byte, o ORTOptions) (Session, error) {
	return nil, ErrNoRuntime
}
