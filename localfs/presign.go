package localfs

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/sentineldf/sentineldf"
)

// Presigned URLs look like
//
//	{BaseURL}/blobs/{key}?method=PUT&expires=1700000000&size=42&sha256=…&signature=…
//
// where signature is the hex HMAC-SHA256, keyed by Config.Secret, of
// "sentineldf-blob-v1\n{method}\n{key}\n{expires}\n{size}\n{sha256}" (size and
// sha256 empty where absent). Keys hold no control characters, so the
// newline-separated message is unambiguous.
const (
	// PathPrefix is where Handler must be mounted, without stripping it.
	PathPrefix = "/blobs/"
	// MaxPresignTTL caps the lifetime of a presigned URL (S3's limit).
	MaxPresignTTL = 7 * 24 * time.Hour

	paramMethod    = "method"
	paramExpires   = "expires"
	paramSize      = "size"
	paramSHA256    = "sha256"
	paramSignature = "signature"
	signatureV1    = "sentineldf-blob-v1"
)

func newHasher() hash.Hash { return sha256.New() }

// grant is what a presigned URL permits.
type grant struct {
	method  string // GET or PUT
	key     string
	expires int64 // unix seconds; the URL is valid before this instant
	size    int64 // PUT: the exact body size
	sha256  string
}

// sign returns the hex signature of g.
func (s *Store) sign(g grant) string {
	m := hmac.New(sha256.New, s.secret)
	size := ""
	if g.method == http.MethodPut {
		size = strconv.FormatInt(g.size, 10)
	}
	fmt.Fprintf(m, "%s\n%s\n%s\n%d\n%s\n%s", signatureV1, g.method, g.key, g.expires, size, g.sha256)
	return hex.EncodeToString(m.Sum(nil))
}

// PresignPut returns a PUT request that uploads exactly c.Size bytes (and,
// when c.SHA256 is set, exactly that content) to key within ttl.
func (s *Store) PresignPut(ctx context.Context, key string, c sentineldf.PutConstraints, ttl time.Duration) (sentineldf.PresignedRequest, error) {
	switch {
	case c.Size <= 0:
		return sentineldf.PresignedRequest{}, sentineldf.FieldError("size", "must be at least 1 byte")
	case c.Size > s.max:
		return sentineldf.PresignedRequest{}, sentineldf.Errorf(sentineldf.ETOOLARGE, "upload of %d bytes exceeds the limit of %d bytes", c.Size, s.max)
	}
	sum := strings.ToLower(c.SHA256)
	if sum != "" {
		if b, err := hex.DecodeString(sum); err != nil || len(b) != sha256.Size {
			return sentineldf.PresignedRequest{}, sentineldf.FieldError("sha256", "must be 64 hex digits")
		}
	}
	return s.presign(ctx, grant{method: http.MethodPut, key: key, size: c.Size, sha256: sum}, ttl)
}

// PresignGet returns a GET request that downloads key within ttl; it also
// permits HEAD. The object need not exist yet.
func (s *Store) PresignGet(ctx context.Context, key string, ttl time.Duration) (sentineldf.PresignedRequest, error) {
	return s.presign(ctx, grant{method: http.MethodGet, key: key}, ttl)
}

func (s *Store) presign(ctx context.Context, g grant, ttl time.Duration) (sentineldf.PresignedRequest, error) {
	if err := validateKey(g.key); err != nil {
		return sentineldf.PresignedRequest{}, err
	}
	if ttl <= 0 || ttl > MaxPresignTTL {
		return sentineldf.PresignedRequest{}, sentineldf.FieldError("ttl", "must be between 1s and %s", MaxPresignTTL)
	}
	if err := ctx.Err(); err != nil {
		return sentineldf.PresignedRequest{}, err
	}
	base := strings.TrimRight(s.baseURL(), "/")
	if base == "" {
		return sentineldf.PresignedRequest{}, errors.New("presign: base URL is not known yet")
	}
	// Round up, so a URL never lives shorter than ttl.
	exp := s.now().Add(ttl)
	g.expires = exp.Unix()
	if exp.Nanosecond() > 0 {
		g.expires++
	}

	var u strings.Builder
	u.WriteString(base)
	u.WriteString(PathPrefix)
	u.WriteString(escapeKey(g.key))
	u.WriteString("?" + paramMethod + "=" + g.method)
	u.WriteString("&" + paramExpires + "=" + strconv.FormatInt(g.expires, 10))
	if g.method == http.MethodPut {
		u.WriteString("&" + paramSize + "=" + strconv.FormatInt(g.size, 10))
		if g.sha256 != "" {
			u.WriteString("&" + paramSHA256 + "=" + g.sha256)
		}
	}
	u.WriteString("&" + paramSignature + "=" + s.sign(g))
	req := sentineldf.PresignedRequest{URL: u.String(), Method: g.method, ExpiresAt: time.Unix(g.expires, 0).UTC()}
	if g.method == http.MethodPut {
		req.Headers = map[string]string{"Content-Type": "application/octet-stream"}
	}
	return req, nil
}

// escapeKey path-escapes each segment of key.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// Failures of presigned URLs, as problem details.
const (
	detailBadSignature = "presigned URL signature is invalid"
	detailExpired      = "presigned URL expired"
)

// authorize checks r's presigned URL for key and returns what it grants.
// Every failure is 403 so that a prober learns nothing beyond "no".
func (s *Store) authorize(r *http.Request, key string) (grant, *sentineldf.Error) {
	bad := sentineldf.Errorf(sentineldf.EFORBIDDEN, detailBadSignature)
	q := r.URL.Query()
	for _, p := range []string{paramMethod, paramExpires, paramSize, paramSHA256, paramSignature} {
		if len(q[p]) > 1 {
			return grant{}, bad
		}
	}
	g := grant{method: q.Get(paramMethod), key: key, sha256: q.Get(paramSHA256)}
	var err error
	if g.expires, err = strconv.ParseInt(q.Get(paramExpires), 10, 64); err != nil {
		return grant{}, bad
	}
	switch g.method {
	case http.MethodGet:
		if q.Has(paramSize) || q.Has(paramSHA256) {
			return grant{}, bad
		}
	case http.MethodPut:
		if g.size, err = strconv.ParseInt(q.Get(paramSize), 10, 64); err != nil || g.size <= 0 {
			return grant{}, bad
		}
	default:
		return grant{}, bad
	}
	want, err := hex.DecodeString(s.sign(g))
	if err != nil {
		return grant{}, bad
	}
	got, err := hex.DecodeString(q.Get(paramSignature))
	if err != nil || !hmac.Equal(got, want) {
		return grant{}, bad
	}
	if !s.now().Before(time.Unix(g.expires, 0)) {
		return grant{}, sentineldf.Errorf(sentineldf.EFORBIDDEN, "%s at %s", detailExpired, time.Unix(g.expires, 0).UTC().Format(time.RFC3339))
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	if method != g.method {
		return grant{}, sentineldf.Errorf(sentineldf.EFORBIDDEN, "presigned URL permits %s, not %s", g.method, r.Method)
	}
	return g, nil
}

// Handler serves presigned URLs: GET and HEAD (with Range) and PUT of
// PathPrefix + key. Mount it at PathPrefix without stripping the prefix.
// Failures are problem+json bodies (sentineldf.Problem).
func (s *Store) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Store) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "private, no-store")
	key, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok {
		s.problem(w, r, sentineldf.NotFound("object"))
		return
	}
	if validateKey(key) != nil {
		// No valid URL names an invalid key.
		s.problem(w, r, sentineldf.Errorf(sentineldf.EFORBIDDEN, detailBadSignature))
		return
	}
	g, perr := s.authorize(r, key)
	if perr != nil {
		s.problem(w, r, perr)
		return
	}
	if g.method == http.MethodPut {
		s.servePut(w, r, g)
		return
	}
	s.serveGet(w, r, g)
}

func (s *Store) serveGet(w http.ResponseWriter, r *http.Request, g grant) {
	f, info, err := s.open(r.Context(), g.key)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	disp := mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(g.key)})
	if disp == "" {
		disp = "attachment"
	}
	h.Set("Content-Disposition", disp)
	http.ServeContent(w, r, "", info.ModTime(), f)
}

func (s *Store) servePut(w http.ResponseWriter, r *http.Request, g grant) {
	// Reject a declared mismatch before reading (and before the client
	// sends the body, when it expects 100-continue).
	switch {
	case r.ContentLength > g.size:
		s.problem(w, r, sentineldf.Errorf(sentineldf.ETOOLARGE, "Content-Length is %d bytes; the upload must be exactly the declared %d bytes", r.ContentLength, g.size))
		return
	case r.ContentLength >= 0 && r.ContentLength < g.size:
		s.problem(w, r, sentineldf.Errorf(sentineldf.EINVALID, "Content-Length is %d bytes; the upload must be exactly the declared %d bytes", r.ContentLength, g.size))
		return
	}
	body := &bodyReader{r: r.Body}
	err := s.write(r.Context(), g.key, body, g.size, func(n int64, sum []byte) error {
		if n > g.size {
			return sentineldf.Errorf(sentineldf.EINVALID, "upload is larger than its declared size of %d bytes (read at least %d)", g.size, n)
		}
		if n < g.size {
			return sentineldf.Errorf(sentineldf.EINVALID, "upload is %d bytes; its declared size is %d bytes", n, g.size)
		}
		if got := hex.EncodeToString(sum); g.sha256 != "" && got != g.sha256 {
			return sentineldf.Errorf(sentineldf.EINVALID, "upload's sha256 is %s; the declared sha256 is %s", got, g.sha256)
		}
		return nil
	})
	if err != nil {
		if body.err != nil && sentineldf.ErrorCode(err) == sentineldf.EINTERNAL {
			err = sentineldf.Errorf(sentineldf.EINVALID, "reading the upload failed after %d bytes", body.n)
		}
		s.problem(w, r, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// bodyReader records how much of a request body was read and its error, so
// that a client's failure is told apart from the store's.
type bodyReader struct {
	r   io.Reader
	n   int64
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// problem writes err as a problem+json body; internal errors are logged and
// reported without detail.
func (s *Store) problem(w http.ResponseWriter, r *http.Request, err error) {
	code := sentineldf.ErrorCode(err)
	status := statusOf(code)
	if status == http.StatusInternalServerError {
		s.log.ErrorContext(r.Context(), "blob request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	p := sentineldf.Problem{
		Type:      "about:blank",
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    sentineldf.ErrorMessage(err),
		Code:      code,
		RequestID: w.Header().Get("X-Request-Id"),
	}
	h := w.Header()
	h.Del("Content-Disposition")
	h.Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// statusOf maps the codes Handler produces to HTTP statuses.
func statusOf(code string) int {
	switch code {
	case sentineldf.EINVALID:
		return http.StatusBadRequest
	case sentineldf.EFORBIDDEN:
		return http.StatusForbidden
	case sentineldf.ENOTFOUND:
		return http.StatusNotFound
	case sentineldf.ECONFLICT:
		return http.StatusConflict
	case sentineldf.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	default:
		return http.StatusInternalServerError
	}
}
