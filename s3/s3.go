// Package s3 is a sentineldf.BlobStore on S3-compatible object storage
// (Amazon S3, versitygw, MinIO, …) through minio-go. It uses path-style
// addressing and SigV4; presigned URLs are signed locally, without a
// network call, because the region is configured.
//
// Objects are stored under their keys as they are; tenant isolation is the
// key layout (sentineldf.ScanPrefix: "{org_id}/{scan_id}/…"), which the
// callers build and which no listing ever crosses.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/sentineldf/sentineldf"
)

// Server-side encryption modes (Config.SSE).
const (
	// SSENone stores objects as the bucket's default encryption says.
	SSENone = ""
	// SSES3 asks for SSE-S3: keys managed by the storage service.
	SSES3 = "AES256"
	// SSEKMS asks for SSE-KMS with Config.KMSKeyID (empty: the account's
	// default key for S3).
	SSEKMS = "aws:kms"
)

// Part sizes of multipart uploads (Config.PartSize).
const (
	// DefaultPartSize is the part size when Config.PartSize is 0.
	DefaultPartSize = 16 << 20
	// MinPartSize is S3's smallest part (but the last).
	MinPartSize = 5 << 20
	// MaxPartSize is S3's largest part.
	MaxPartSize = 5 << 30
	// maxParts is S3's most parts in one upload.
	maxParts = 10000
)

// singlePutBytes is how much of an object of unknown size Put buffers to
// find out whether one PUT carries it; larger objects go up in parts.
const singlePutBytes = 1 << 20

// Config configures a Store.
type Config struct {
	// Endpoint is the server: "host:port", or a URL "http://host:port" or
	// "https://host" whose scheme then decides UseSSL. Amazon S3 is
	// "s3.amazonaws.com" (or a regional endpoint) with UseSSL.
	Endpoint string
	// Bucket holds every object.
	Bucket string
	// Region is the bucket's region (required: with it, presigning is
	// local and makes no network call).
	Region string
	// AccessKeyID and SecretAccessKey are the static credentials that sign
	// every request and presigned URL. The secret is never logged.
	AccessKeyID     string
	SecretAccessKey string
	// UseSSL selects HTTPS for a host:port Endpoint.
	UseSSL bool
	// SSE is the server-side encryption of every object written through
	// the Store, presigned uploads included: SSENone, SSES3 or SSEKMS.
	SSE string
	// KMSKeyID is the KMS key of SSEKMS (empty: the default key); it must
	// be empty with other modes.
	KMSKeyID string
	// PartSize is the part size of multipart uploads, between MinPartSize
	// and MaxPartSize (0: DefaultPartSize). Put holds up to one part in
	// memory per upload of an object larger than a part or of unknown size.
	PartSize uint64
	// MaxObjectBytes caps one object (0: sentineldf.MaxUploadBytes).
	// Presigned uploads, which are single PUTs, are also capped at S3's
	// single-PUT limit of sentineldf.MaxUploadBytes.
	MaxObjectBytes int64
	// MaxRetries is how many times minio-go tries a failed request
	// (0: its default of 10; 1: no retry).
	MaxRetries int
	// CreateBucket makes New create the bucket when it is missing (tests
	// and development; production buckets are provisioned).
	CreateBucket bool
	// Transport carries the requests (nil: minio-go's default transport).
	Transport http.RoundTripper
}

// String describes the configuration without the secret.
func (c Config) String() string {
	return fmt.Sprintf("s3.Config{Endpoint: %q, Bucket: %q, Region: %q, AccessKeyID: %q, SecretAccessKey: %s, UseSSL: %v, SSE: %q, PartSize: %d}",
		c.Endpoint, c.Bucket, c.Region, c.AccessKeyID, redacted(c.SecretAccessKey), c.UseSSL, c.SSE, c.PartSize)
}

// LogValue logs the configuration without the secret.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", c.Endpoint),
		slog.String("bucket", c.Bucket),
		slog.String("region", c.Region),
		slog.String("access_key_id", c.AccessKeyID),
		slog.String("secret_access_key", redacted(c.SecretAccessKey)),
		slog.Bool("use_ssl", c.UseSSL),
		slog.String("sse", c.SSE),
	)
}

func redacted(secret string) string {
	if secret == "" {
		return `""`
	}
	return "[REDACTED]"
}

// Store is a sentineldf.BlobStore on one S3 bucket. It is safe for
// concurrent use.
type Store struct {
	client   *minio.Client
	bucket   string
	sse      encrypt.ServerSide // nil: none
	partSize uint64
	max      int64
}

var _ sentineldf.BlobStore = (*Store)(nil)

// New returns a Store for cfg. It makes no network call unless
// cfg.CreateBucket is set; Ping checks the bucket is reachable.
func New(ctx context.Context, cfg Config) (*Store, error) {
	host, secure, err := parseEndpoint(cfg.Endpoint, cfg.UseSSL)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.Bucket == "":
		return nil, sentineldf.FieldError("bucket", "is required")
	case s3utils.CheckValidBucketNameStrict(cfg.Bucket) != nil:
		return nil, sentineldf.FieldError("bucket", "%q is not a valid bucket name", cfg.Bucket)
	case cfg.Region == "":
		return nil, sentineldf.FieldError("region", "is required (without it, presigning makes a network call)")
	case cfg.AccessKeyID == "":
		return nil, sentineldf.FieldError("access_key_id", "is required")
	case cfg.SecretAccessKey == "":
		return nil, sentineldf.FieldError("secret_access_key", "is required")
	case cfg.PartSize != 0 && (cfg.PartSize < MinPartSize || cfg.PartSize > MaxPartSize):
		return nil, sentineldf.FieldError("part_size", "must be between %d and %d bytes", MinPartSize, uint64(MaxPartSize))
	case cfg.MaxObjectBytes < 0:
		return nil, sentineldf.FieldError("max_object_bytes", "must not be negative")
	case cfg.MaxRetries < 0:
		return nil, sentineldf.FieldError("max_retries", "must not be negative")
	}
	s := &Store{bucket: cfg.Bucket, partSize: cfg.PartSize, max: cfg.MaxObjectBytes}
	if s.partSize == 0 {
		s.partSize = DefaultPartSize
	}
	if s.max == 0 {
		s.max = sentineldf.MaxUploadBytes
	}
	if uint64(s.max) > s.partSize*maxParts {
		// An upload of unknown size has at most maxParts parts of
		// partSize: a larger one would be cut short.
		return nil, sentineldf.FieldError("max_object_bytes", "must be at most part_size × %d = %d bytes", maxParts, s.partSize*maxParts)
	}
	if s.sse, err = serverSide(cfg.SSE, cfg.KMSKeyID); err != nil {
		return nil, err
	}
	tr := cfg.Transport
	if tr == nil {
		if tr, err = minio.DefaultTransport(secure); err != nil {
			return nil, fmt.Errorf("s3: transport: %w", err)
		}
	}
	s.client, err = minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		Secure:       secure,
		Region:       cfg.Region,
		BucketLookup: minio.BucketLookupPath,
		Transport:    tr,
		MaxRetries:   cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: new client: %w", err)
	}
	if cfg.CreateBucket {
		if err := s.createBucket(ctx, cfg.Region); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// parseEndpoint returns the host:port of endpoint and whether to use TLS.
func parseEndpoint(endpoint string, useSSL bool) (string, bool, error) {
	if endpoint == "" {
		return "", false, sentineldf.FieldError("endpoint", "is required")
	}
	if !strings.Contains(endpoint, "://") {
		if strings.ContainsAny(endpoint, "/?#@") {
			return "", false, sentineldf.FieldError("endpoint", "must be host:port or a URL with no path")
		}
		return endpoint, useSSL, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", false, sentineldf.FieldError("endpoint", "is not a valid URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", false, sentineldf.FieldError("endpoint", "scheme must be http or https")
	case u.Host == "":
		return "", false, sentineldf.FieldError("endpoint", "has no host")
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return "", false, sentineldf.FieldError("endpoint", "must be a URL with only a scheme, host and port")
	case u.Scheme == "http" && useSSL:
		return "", false, sentineldf.FieldError("use_ssl", "contradicts the endpoint's http scheme")
	}
	return u.Host, u.Scheme == "https", nil
}

// serverSide returns the encryption of mode, nil for none.
func serverSide(mode, kmsKeyID string) (encrypt.ServerSide, error) {
	if kmsKeyID != "" && mode != SSEKMS {
		return nil, sentineldf.FieldError("kms_key_id", "is only valid with SSE %q", SSEKMS)
	}
	switch mode {
	case SSENone:
		return nil, nil
	case SSES3:
		return encrypt.NewSSE(), nil
	case SSEKMS:
		sse, err := encrypt.NewSSEKMS(kmsKeyID, nil)
		if err != nil {
			return nil, sentineldf.FieldError("kms_key_id", "is invalid: %v", err)
		}
		return sse, nil
	default:
		return nil, sentineldf.FieldError("sse", "must be %q, %q or empty", SSES3, SSEKMS)
	}
}

// createBucket creates the bucket unless it exists.
func (s *Store) createBucket(ctx context.Context, region string) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return mapError(ctx, "s3: check bucket", err)
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	if err != nil && s3Code(err) != "BucketAlreadyOwnedByYou" {
		return mapError(ctx, "s3: create bucket", err)
	}
	return nil
}

// Ping checks the bucket exists and the credentials may reach it.
func (s *Store) Ping(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return mapError(ctx, "s3: ping", err)
	}
	if !ok {
		return fmt.Errorf("s3: ping: bucket %q does not exist", s.bucket)
	}
	return nil
}

// Get opens an object. The object is read in one GET request, so the
// reader sees one whole version even while it is being replaced.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	return s.get(ctx, key, minio.GetObjectOptions{})
}

// GetRange opens length bytes of an object from offset (length < 0: to
// the end). A range past the end is cut at the end; an offset past the
// end is EINVALID.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, sentineldf.FieldError("offset", "must not be negative")
	}
	var opts minio.GetObjectOptions
	switch {
	case offset == 0 && length < 0:
		return s.get(ctx, key, opts) // the whole object, empty ones included
	case length == 0:
		return s.emptyRange(ctx, key, offset)
	case length < 0:
		err := opts.SetRange(offset, 0)
		if err != nil {
			return nil, fmt.Errorf("s3: get range: %w", err)
		}
	default:
		end := offset + length - 1
		if end < offset { // overflow: to the end
			end = 1<<63 - 1
		}
		if err := opts.SetRange(offset, end); err != nil {
			return nil, fmt.Errorf("s3: get range: %w", err)
		}
	}
	rc, err := s.get(ctx, key, opts)
	if err != nil && s3Code(err) == "InvalidRange" {
		// S3 refuses a range that starts at or past the end.
		return s.emptyRange(ctx, key, offset)
	}
	return rc, err
}

// emptyRange returns an empty reader when offset is at most the object's
// size, and EINVALID when it is past its end.
func (s *Store) emptyRange(ctx context.Context, key string, offset int64) (io.ReadCloser, error) {
	info, err := s.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	if offset > info.Size {
		return nil, sentineldf.FieldError("offset", "%d is past the end of the object (%d bytes)", offset, info.Size)
	}
	return io.NopCloser(bytes.NewReader(nil)), nil
}

func (s *Store) get(ctx context.Context, key string, opts minio.GetObjectOptions) (io.ReadCloser, error) {
	rc, _, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, key, opts)
	if err != nil {
		return nil, mapError(ctx, "s3: get object", err)
	}
	return rc, nil
}

// Stat returns an object's size.
func (s *Store) Stat(ctx context.Context, key string) (sentineldf.BlobInfo, error) {
	if err := validateKey(key); err != nil {
		return sentineldf.BlobInfo{}, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return sentineldf.BlobInfo{}, mapError(ctx, "s3: stat object", err)
	}
	return sentineldf.BlobInfo{Key: key, Size: info.Size}, nil
}

// Delete removes an object; deleting a missing object is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := validateKey(key); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
	if err != nil {
		err = mapError(ctx, "s3: delete object", err)
		if sentineldf.ErrorCode(err) == sentineldf.ENOTFOUND {
			return nil
		}
		return err
	}
	return nil
}

// Put stores r under key, replacing any object there; S3 makes the
// replacement atomic. When size is not -1, r must yield exactly size
// bytes: a reader that is shorter or longer fails the upload before the
// server completes it, so nothing is stored. Objects larger than the part
// size, or of unknown size larger than 1 MiB, are uploaded in parts,
// which are discarded when the upload fails. An object over the store's
// limit is ETOOLARGE.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := validateKey(key); err != nil {
		return err
	}
	switch {
	case size < -1:
		return sentineldf.FieldError("size", "must be -1 (unknown) or at least 0")
	case size > s.max:
		return sentineldf.Errorf(sentineldf.ETOOLARGE, "object of %d bytes exceeds the limit of %d bytes", size, s.max)
	}
	if size < 0 {
		// Small objects of unknown size go up in one PUT rather than a
		// multipart upload of three requests.
		buf := make([]byte, singlePutBytes+1)
		n, err := io.ReadFull(ctxReader{ctx, r}, buf)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			size = int64(n)
			r = bytes.NewReader(buf[:n])
		case err != nil:
			return fmt.Errorf("s3: put object: read: %w", err)
		default:
			r = io.MultiReader(bytes.NewReader(buf), r)
		}
	}
	body := &checkedReader{ctx: ctx, r: r, left: size, max: s.max}
	if size == 0 {
		// minio-go does not read the body of an empty object.
		if err := body.end(); err != io.EOF {
			return err
		}
	}
	opts := minio.PutObjectOptions{
		ContentType:          "application/octet-stream",
		PartSize:             s.partSize,
		ServerSideEncryption: s.sse,
	}
	// The wrapper hides io.ReaderAt and io.Seeker, so minio-go streams
	// sequentially and never reads past what the wrapper has checked.
	_, err := s.client.PutObject(ctx, s.bucket, key, body, size, opts)
	if body.err != nil {
		return body.err
	}
	if err != nil {
		return mapError(ctx, "s3: put object", err)
	}
	return nil
}

// checkedReader passes through a reader that must yield exactly left bytes
// (left < 0: unknown, at most max). When the reader breaks the promise,
// Read fails without returning the bytes that would complete the request,
// so the server never sees a whole body; err records why.
type checkedReader struct {
	ctx  context.Context
	r    io.Reader
	left int64 // bytes still due; < 0: unknown size
	max  int64 // unknown size: the most bytes allowed
	read int64
	done bool // all left bytes were delivered and the reader ended
	err  error
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return 0, err
	}
	if c.done {
		return 0, io.EOF
	}
	if c.left == 0 { // an empty object
		return 0, c.end()
	}
	if c.left > 0 && int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.read += int64(n)
	if c.left < 0 {
		if c.read > c.max {
			return 0, c.fail(sentineldf.Errorf(sentineldf.ETOOLARGE, "object exceeds the limit of %d bytes", c.max))
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, c.fail(fmt.Errorf("s3: put object: read: %w", err))
		}
		return n, err
	}
	c.left -= int64(n)
	switch {
	case err != nil && !errors.Is(err, io.EOF):
		return 0, c.fail(fmt.Errorf("s3: put object: read: %w", err))
	case c.left > 0 && err != nil: // io.EOF
		return 0, c.fail(sentineldf.FieldError("size", "declared %d bytes, but the reader has %d", c.read+c.left, c.read))
	case c.left == 0:
		// Hold the last bytes back until the reader is known to end.
		if err := c.end(); err != io.EOF {
			return 0, err
		}
		return n, io.EOF
	}
	return n, nil
}

// end checks that the reader has no byte beyond the declared size: it
// returns io.EOF when so, and records and returns the failure otherwise.
func (c *checkedReader) end() error {
	more, err := c.peek()
	switch {
	case err != nil:
		return c.fail(fmt.Errorf("s3: put object: read: %w", err))
	case more:
		return c.fail(sentineldf.FieldError("size", "declared %d bytes, but the reader has more", c.read))
	}
	c.done = true
	return io.EOF
}

// peek reports whether the underlying reader has another byte.
func (c *checkedReader) peek() (bool, error) {
	var one [1]byte
	for range 100 {
		n, err := c.r.Read(one[:])
		if n > 0 {
			return true, nil
		}
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	return false, io.ErrNoProgress
}

func (c *checkedReader) fail(err error) error {
	c.err = err
	return err
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// s3Code returns the S3 error code in err's chain, "" when there is none.
func s3Code(err error) string {
	var e minio.ErrorResponse
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// mapError turns a minio-go error of operation op into a domain error:
// a missing object is ENOTFOUND, an unreachable or overloaded server
// EUNAVAILABLE; anything else is wrapped (EINTERNAL).
func mapError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
	var e minio.ErrorResponse
	if errors.As(err, &e) {
		switch {
		case e.Code == "NoSuchKey":
			return sentineldf.NotFound("object")
		case e.Code == "SlowDown" || e.Code == "ServiceUnavailable" || e.StatusCode == http.StatusServiceUnavailable:
			return &sentineldf.Error{Code: sentineldf.EUNAVAILABLE, Message: "object storage is unavailable", Err: fmt.Errorf("%s: %w", op, err)}
		}
		return fmt.Errorf("%s: %s: %w", op, e.Code, err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return &sentineldf.Error{Code: sentineldf.EUNAVAILABLE, Message: "object storage is unreachable", Err: fmt.Errorf("%s: %w", op, err)}
	}
	return fmt.Errorf("%s: %w", op, err)
}
