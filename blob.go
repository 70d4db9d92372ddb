package sentineldf

import (
	"context"
	"io"
	"time"
)

// BlobReader reads objects.
type BlobReader interface {
	// Get opens an object; ENOTFOUND when it does not exist.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// GetRange opens length bytes of an object from offset (length < 0:
	// to the end).
	GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Stat returns an object's size; ENOTFOUND when it does not exist.
	Stat(ctx context.Context, key string) (BlobInfo, error)
}

// BlobWriter writes objects.
type BlobWriter interface {
	// Put stores r under key, replacing any object there, atomically: a
	// reader sees the old object or the whole new one. size is the length
	// of r, or -1 when unknown.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Delete removes an object; deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
}

// Presigner issues time-limited URLs that let a client upload or download
// one object without an API key.
type Presigner interface {
	// PresignPut returns a request that uploads one object. When c declares
	// a size or SHA-256, an upload that does not match is rejected.
	PresignPut(ctx context.Context, key string, c PutConstraints, ttl time.Duration) (PresignedRequest, error)
	// PresignGet returns a request that downloads one object.
	PresignGet(ctx context.Context, key string, ttl time.Duration) (PresignedRequest, error)
}

// BlobStore is object storage: the local filesystem (localfs) or
// S3-compatible storage (s3). Keys are slash-separated; every key of an
// org starts with its id (see ScanPrefix).
type BlobStore interface {
	BlobReader
	BlobWriter
	Presigner
	// Ping checks the store is reachable (readiness).
	Ping(ctx context.Context) error
}

// BlobInfo describes a stored object.
type BlobInfo struct {
	Key  string
	Size int64
}

// PutConstraints bind a presigned upload.
type PutConstraints struct {
	// Size is the exact size in bytes the upload must have (required).
	Size int64
	// SHA256 is the hex digest the upload must have; "" for any.
	SHA256 string
}

// PresignedRequest is what a client needs to make a presigned request.
type PresignedRequest struct {
	URL       string            `json:"url"`
	Method    string            `json:"method"`
	Headers   map[string]string `json:"headers,omitempty"`
	ExpiresAt time.Time         `json:"expires_at"`
}

// DefaultPresignTTL is how long presigned URLs stay valid.
const DefaultPresignTTL = 15 * time.Minute
