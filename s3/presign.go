package s3

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sentineldf/sentineldf"
)

// MaxPresignTTL caps the lifetime of a presigned URL (SigV4's limit).
const MaxPresignTTL = 7 * 24 * time.Hour

// Headers that presigned uploads sign and clients must send as given.
const (
	headerContentLength  = "Content-Length"
	headerChecksumSHA256 = "X-Amz-Checksum-Sha256"
)

// amzDateFormat is the layout of X-Amz-Date.
const amzDateFormat = "20060102T150405Z"

// PresignPut returns a SigV4 presigned PUT of key for ttl (rounded up to a
// second). The request's Headers are signed and the client must send them
// unchanged: Content-Length binds the upload's size, X-Amz-Checksum-Sha256
// (when c.SHA256 is set) its content, which the server verifies before
// storing the object, and the server-side encryption headers, when
// configured, apply the store's encryption. An upload that does not match
// is refused by S3 itself (403 for another length, 400 BadDigest for
// another content) and stores nothing. Presigning makes no network call.
func (s *Store) PresignPut(ctx context.Context, key string, c sentineldf.PutConstraints, ttl time.Duration) (sentineldf.PresignedRequest, error) {
	if err := validateKey(key); err != nil {
		return sentineldf.PresignedRequest{}, err
	}
	limit := min(s.max, sentineldf.MaxUploadBytes) // a presigned upload is one PUT
	switch {
	case c.Size <= 0:
		return sentineldf.PresignedRequest{}, sentineldf.FieldError("size", "must be at least 1 byte")
	case c.Size > limit:
		return sentineldf.PresignedRequest{}, sentineldf.Errorf(sentineldf.ETOOLARGE, "upload of %d bytes exceeds the limit of %d bytes", c.Size, limit)
	}
	h := http.Header{}
	h.Set(headerContentLength, strconv.FormatInt(c.Size, 10))
	if c.SHA256 != "" {
		sum, err := hex.DecodeString(c.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return sentineldf.PresignedRequest{}, sentineldf.FieldError("sha256", "must be 64 hex digits")
		}
		h.Set(headerChecksumSHA256, base64.StdEncoding.EncodeToString(sum))
	}
	if s.sse != nil {
		s.sse.Marshal(h)
	}
	return s.presign(ctx, http.MethodPut, key, h, ttl)
}

// PresignGet returns a SigV4 presigned GET of key for ttl (rounded up to a
// second). It serves Range requests; a missing object is 404. Presigning
// makes no network call, and the object need not exist yet.
func (s *Store) PresignGet(ctx context.Context, key string, ttl time.Duration) (sentineldf.PresignedRequest, error) {
	if err := validateKey(key); err != nil {
		return sentineldf.PresignedRequest{}, err
	}
	return s.presign(ctx, http.MethodGet, key, nil, ttl)
}

// presign signs method on key with the signed headers h.
func (s *Store) presign(ctx context.Context, method, key string, h http.Header, ttl time.Duration) (sentineldf.PresignedRequest, error) {
	if ttl <= 0 || ttl > MaxPresignTTL {
		return sentineldf.PresignedRequest{}, sentineldf.FieldError("ttl", "must be between 1s and %s", MaxPresignTTL)
	}
	if err := ctx.Err(); err != nil {
		return sentineldf.PresignedRequest{}, err
	}
	// SigV4 counts whole seconds: round up, so a URL never lives shorter
	// than asked.
	ttl = (ttl + time.Second - 1).Truncate(time.Second)
	u, err := s.client.PresignHeader(ctx, method, s.bucket, key, ttl, nil, h)
	if err != nil {
		return sentineldf.PresignedRequest{}, mapError(ctx, "s3: presign "+strings.ToLower(method), err)
	}
	exp, err := expiresAt(u)
	if err != nil {
		return sentineldf.PresignedRequest{}, fmt.Errorf("s3: presign %s: %w", strings.ToLower(method), err)
	}
	req := sentineldf.PresignedRequest{URL: u.String(), Method: method, ExpiresAt: exp}
	if len(h) > 0 {
		req.Headers = make(map[string]string, len(h))
		for k := range h {
			req.Headers[k] = h.Get(k)
		}
	}
	return req, nil
}

// expiresAt returns when a SigV4 presigned URL expires: the second it was
// signed in (X-Amz-Date, truncated to the second) plus X-Amz-Expires. The
// server accepts it until then and refuses it afterwards.
func expiresAt(u *url.URL) (time.Time, error) {
	q := u.Query()
	signed, err := time.Parse(amzDateFormat, q.Get("X-Amz-Date"))
	if err != nil {
		return time.Time{}, fmt.Errorf("presigned URL has no valid X-Amz-Date: %w", err)
	}
	secs, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if err != nil || secs <= 0 {
		return time.Time{}, fmt.Errorf("presigned URL has no valid X-Amz-Expires")
	}
	return signed.Add(time.Duration(secs) * time.Second).UTC(), nil
}
