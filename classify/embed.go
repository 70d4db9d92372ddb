package classify

import (
	_ "embed"
	"fmt"
	"sync"
)

// modelBin is the shipped model, trained by `make train` (see MODEL_CARD.md).
//
//go:embed model.bin
var modelBin []byte

// embedded decodes the shipped model once.
var embedded = sync.OnceValues(func() (*Model, error) {
	m := &Model{}
	if err := m.UnmarshalBinary(modelBin); err != nil {
		return nil, fmt.Errorf("embedded classifier model: %w", err)
	}
	return m, nil
})

// Embedded returns the shipped model. It is shared: do not modify it.
func Embedded() (*Model, error) { return embedded() }

// EmbeddedDigest is "sha256:" and the hex SHA-256 of the shipped model file.
func EmbeddedDigest() string { return digestOf(modelBin) }

// Default returns a Detector backed by the shipped model.
func Default() (*Detector, error) {
	m, err := embedded()
	if err != nil {
		return nil, err
	}
	return &Detector{m: m, digest: EmbeddedDigest()}, nil
}
