package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/blobtest"
	"github.com/sentineldf/sentineldf/s3"
	"github.com/sentineldf/sentineldf/s3/s3test"
)

func TestConformance(t *testing.T) {
	cfg := s3test.Start(t)
	blobtest.Run(t, func(t *testing.T) blobtest.Fixture {
		return blobtest.Fixture{Store: newStore(t, cfg, nil), HTTP: &http.Client{}}
	})
}

// TestConformanceSSE runs the suite with SSE-S3 configured, presigned
// uploads included. versitygw accepts the encryption headers and ignores
// them (it does not encrypt at rest), so TestSSEHeaders checks what is
// sent.
func TestConformanceSSE(t *testing.T) {
	cfg := s3test.Start(t)
	cfg.SSE = s3.SSES3
	blobtest.Run(t, func(t *testing.T) blobtest.Fixture {
		return blobtest.Fixture{Store: newStore(t, cfg, nil), HTTP: &http.Client{}}
	})
}

// newStore returns a Store for cfg, as edited by edit.
func newStore(t *testing.T, cfg s3.Config, edit func(*s3.Config)) *s3.Store {
	t.Helper()
	if edit != nil {
		edit(&cfg)
	}
	st, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New(%v): %v", cfg, err)
	}
	return st
}

// recorder is an http.RoundTripper that records the requests it carries.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []*http.Request
}

func newRecorder() *recorder { return &recorder{next: http.DefaultTransport} }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Clone(context.Background()))
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// take returns the requests recorded since the last take.
func (r *recorder) take() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	reqs := r.reqs
	r.reqs = nil
	return reqs
}

// uploads classifies the requests that write objects.
type uploads struct {
	single, create, parts, complete, abort int
	// createHeaders and singleHeaders are the headers of the last
	// CreateMultipartUpload and single PUT.
	createHeaders, singleHeaders http.Header
}

func classify(reqs []*http.Request) uploads {
	var u uploads
	for _, r := range reqs {
		q := r.URL.Query()
		switch {
		case r.Method == http.MethodPost && q.Has("uploads"):
			u.create++
			u.createHeaders = r.Header
		case r.Method == http.MethodPut && q.Has("uploadId"):
			u.parts++
		case r.Method == http.MethodPost && q.Has("uploadId"):
			u.complete++
		case r.Method == http.MethodDelete && q.Has("uploadId"):
			u.abort++
		case r.Method == http.MethodPut:
			u.single++
			u.singleHeaders = r.Header
		}
	}
	return u
}

// prefix returns a random key prefix, so tests may share a bucket.
func prefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "s3test-" + hex.EncodeToString(b) + "/"
}

// patternData returns n deterministic bytes.
func patternData(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// readerOnly hides everything but Read, like a network stream.
type readerOnly struct{ io.Reader }

func readAll(t *testing.T, st *s3.Store, key string) []byte {
	t.Helper()
	rc, err := st.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): read: %v", key, err)
	}
	return b
}

func wantContent(t *testing.T, st *s3.Store, key string, want []byte) {
	t.Helper()
	if got := readAll(t, st, key); !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %d bytes (sha256 %x), want %d bytes (sha256 %x)", key, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
}

func TestMultipart(t *testing.T) {
	cfg := s3test.Start(t)
	rec := newRecorder()
	st := newStore(t, cfg, func(c *s3.Config) {
		c.PartSize = s3.MinPartSize
		c.Transport = rec
	})
	const size = 40 << 20
	data := patternData(size, 1)
	p := prefix()
	for _, tt := range []struct {
		name      string
		r         func() io.Reader
		size      int64
		wantParts int
	}{
		{"known size stream", func() io.Reader { return readerOnly{bytes.NewReader(data)} }, size, 8},
		{"known size seekable", func() io.Reader { return bytes.NewReader(data) }, size, 8},
		{"unknown size", func() io.Reader { return readerOnly{bytes.NewReader(data)} }, -1, 8},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := p + strings.ReplaceAll(tt.name, " ", "-")
			t.Cleanup(func() { _ = st.Delete(context.Background(), key) })
			rec.take()
			if err := st.Put(t.Context(), key, tt.r(), tt.size); err != nil {
				t.Fatalf("Put of %d bytes: %v", size, err)
			}
			u := classify(rec.take())
			if u.create != 1 || u.parts != tt.wantParts || u.complete != 1 || u.single != 0 || u.abort != 0 {
				t.Errorf("Put sent %+v; want 1 create, %d parts, 1 complete, no single PUT or abort", u, tt.wantParts)
			}
			info, err := st.Stat(t.Context(), key)
			if err != nil || info.Size != size {
				t.Fatalf("Stat = %+v, %v; want size %d", info, err, size)
			}
			wantContent(t, st, key, data)
			// A range across the first part boundary.
			rc, err := st.GetRange(t.Context(), key, s3.MinPartSize-10, 20)
			if err != nil {
				t.Fatalf("GetRange: %v", err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, data[s3.MinPartSize-10:s3.MinPartSize+10]) {
				t.Fatalf("GetRange across parts = %x, %v; want %x", got, err, data[s3.MinPartSize-10:s3.MinPartSize+10])
			}
		})
	}
}

func TestPutRequests(t *testing.T) {
	cfg := s3test.Start(t)
	rec := newRecorder()
	st := newStore(t, cfg, func(c *s3.Config) {
		c.PartSize = s3.MinPartSize
		c.Transport = rec
	})
	p := prefix()
	for _, tt := range []struct {
		name         string
		n            int
		size         int64 // -2: len(data)
		single       int
		create       int
		parts        int
		wantComplete int
	}{
		{"small known size", 100_000, -2, 1, 0, 0, 0},
		{"small unknown size", 100_000, -1, 1, 0, 0, 0},
		{"unknown size at the single-PUT threshold", 1 << 20, -1, 1, 0, 0, 0},
		{"unknown size past the single-PUT threshold", 1<<20 + 1, -1, 0, 1, 1, 1},
		{"known size of one part", s3.MinPartSize, -2, 1, 0, 0, 0},
		{"known size of two parts", s3.MinPartSize + 1, -2, 0, 1, 2, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := patternData(tt.n, 2)
			size := tt.size
			if size == -2 {
				size = int64(len(data))
			}
			key := p + strings.ReplaceAll(tt.name, " ", "-")
			t.Cleanup(func() { _ = st.Delete(context.Background(), key) })
			rec.take()
			if err := st.Put(t.Context(), key, readerOnly{bytes.NewReader(data)}, size); err != nil {
				t.Fatalf("Put: %v", err)
			}
			u := classify(rec.take())
			if u.single != tt.single || u.create != tt.create || u.parts != tt.parts || u.complete != tt.wantComplete {
				t.Errorf("Put sent %+v; want %d single, %d create, %d parts, %d complete", u, tt.single, tt.create, tt.parts, tt.wantComplete)
			}
			wantContent(t, st, key, data)
		})
	}
}

// errBoom is a reader's own failure.
var errBoom = errors.New("boom")

// failingReader yields n bytes of data, then fails with err (or calls
// cancel and blocks on ctx when cancel is set).
func failingReader(data []byte, n int, err error) io.Reader {
	return io.MultiReader(bytes.NewReader(data[:n]), &errReader{err})
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

// TestPutFailureStoresNothing checks that a Put whose reader is shorter,
// longer or failing, or over the limit, leaves the existing object as it
// was and no multipart upload behind.
func TestPutFailureStoresNothing(t *testing.T) {
	cfg := s3test.Start(t)
	rec := newRecorder()
	const limit = 12 << 20
	st := newStore(t, cfg, func(c *s3.Config) {
		c.PartSize = s3.MinPartSize
		c.MaxObjectBytes = limit
		c.Transport = rec
	})
	data := patternData(limit+1, 3)
	p := prefix()
	for _, tt := range []struct {
		name string
		r    func(cancel context.CancelFunc) io.Reader
		size int64
		code string
		is   error // the error wraps it
	}{
		{"single PUT shorter", func(context.CancelFunc) io.Reader { return bytes.NewReader(data[:50]) }, 100, sentineldf.EINVALID, nil},
		{"single PUT longer", func(context.CancelFunc) io.Reader { return bytes.NewReader(data[:100]) }, 50, sentineldf.EINVALID, nil},
		{"empty declared, data given", func(context.CancelFunc) io.Reader { return bytes.NewReader(data[:10]) }, 0, sentineldf.EINVALID, nil},
		{"single PUT reader fails", func(context.CancelFunc) io.Reader { return failingReader(data, 10, errBoom) }, 100, sentineldf.EINTERNAL, errBoom},
		{"multipart shorter", func(context.CancelFunc) io.Reader { return bytes.NewReader(data[:11<<20]) }, 11<<20 + 1, sentineldf.EINVALID, nil},
		{"multipart longer", func(context.CancelFunc) io.Reader { return bytes.NewReader(data[:11<<20]) }, 11<<20 - 1, sentineldf.EINVALID, nil},
		{"multipart reader fails", func(context.CancelFunc) io.Reader { return failingReader(data, 7<<20, errBoom) }, 11 << 20, sentineldf.EINTERNAL, errBoom},
		{"unknown size reader fails", func(context.CancelFunc) io.Reader { return failingReader(data, 7<<20, errBoom) }, -1, sentineldf.EINTERNAL, errBoom},
		{"unknown size over the limit", func(context.CancelFunc) io.Reader { return bytes.NewReader(data) }, -1, sentineldf.ETOOLARGE, nil},
		{"known size over the limit", func(context.CancelFunc) io.Reader { return bytes.NewReader(data) }, limit + 1, sentineldf.ETOOLARGE, nil},
		{"canceled", func(cancel context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(data[:7<<20]), readFunc(func([]byte) (int, error) {
				cancel()
				return 0, context.Canceled
			}))
		}, 11 << 20, sentineldf.EINTERNAL, context.Canceled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := p + strings.ReplaceAll(tt.name, " ", "-")
			t.Cleanup(func() { _ = st.Delete(context.Background(), key) })
			orig := []byte("original")
			if err := st.Put(t.Context(), key, bytes.NewReader(orig), int64(len(orig))); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			rec.take()
			err := st.Put(ctx, key, readerOnly{tt.r(cancel)}, tt.size)
			if err == nil {
				t.Fatal("Put succeeded")
			}
			if code := sentineldf.ErrorCode(err); code != tt.code {
				t.Errorf("Put error %v has code %s, want %s", err, code, tt.code)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Put error %v does not wrap %v", err, tt.is)
			}
			if u := classify(rec.take()); u.complete != 0 || u.create != u.abort {
				t.Errorf("Put sent %+v; want no complete and an abort for every multipart upload", u)
			}
			wantContent(t, st, key, orig)
		})
	}
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

// TestSSEHeaders checks that every write carries the configured
// server-side encryption: single PUTs, multipart uploads (on
// CreateMultipartUpload) and presigned uploads (as signed headers the
// client must send). versitygw accepts these headers but does not encrypt
// at rest, so what is sent is what can be checked.
func TestSSEHeaders(t *testing.T) {
	cfg := s3test.Start(t)
	p := prefix()
	for _, tt := range []struct {
		sse, kmsKeyID string
		want          map[string]string
	}{
		{s3.SSENone, "", nil},
		{s3.SSES3, "", map[string]string{"X-Amz-Server-Side-Encryption": "AES256"}},
		{s3.SSEKMS, "", map[string]string{"X-Amz-Server-Side-Encryption": "aws:kms"}},
		{s3.SSEKMS, "alias/sentineldf", map[string]string{
			"X-Amz-Server-Side-Encryption":                "aws:kms",
			"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": "alias/sentineldf",
		}},
	} {
		t.Run(fmt.Sprintf("%q key %q", tt.sse, tt.kmsKeyID), func(t *testing.T) {
			rec := newRecorder()
			st := newStore(t, cfg, func(c *s3.Config) {
				c.SSE, c.KMSKeyID = tt.sse, tt.kmsKeyID
				c.PartSize = s3.MinPartSize
				c.Transport = rec
			})
			checkHeaders := func(what string, h http.Header) {
				t.Helper()
				for k, v := range tt.want {
					if got := h.Get(k); got != v {
						t.Errorf("%s: header %s = %q, want %q", what, k, got, v)
					}
				}
				for k := range h {
					if strings.HasPrefix(strings.ToLower(k), "x-amz-server-side-encryption") && tt.want[http.CanonicalHeaderKey(k)] == "" {
						t.Errorf("%s: unexpected header %s: %q", what, k, h.Get(k))
					}
				}
			}
			key := p + "sse-" + hex.EncodeToString([]byte(tt.sse+tt.kmsKeyID))
			t.Cleanup(func() { _ = st.Delete(context.Background(), key) })

			small := patternData(1000, 4)
			if err := st.Put(t.Context(), key, bytes.NewReader(small), int64(len(small))); err != nil {
				t.Fatalf("Put: %v", err)
			}
			u := classify(rec.take())
			if u.single != 1 {
				t.Fatalf("small Put sent %+v, want one single PUT", u)
			}
			checkHeaders("single PUT", u.singleHeaders)
			wantContent(t, st, key, small)

			large := patternData(s3.MinPartSize+1, 5)
			if err := st.Put(t.Context(), key, bytes.NewReader(large), int64(len(large))); err != nil {
				t.Fatalf("multipart Put: %v", err)
			}
			if u = classify(rec.take()); u.create != 1 {
				t.Fatalf("large Put sent %+v, want one multipart upload", u)
			}
			checkHeaders("CreateMultipartUpload", u.createHeaders)
			wantContent(t, st, key, large)

			up := patternData(2000, 6)
			sum := sha256.Sum256(up)
			rec.take()
			req, err := st.PresignPut(t.Context(), key, sentineldf.PutConstraints{Size: int64(len(up)), SHA256: hex.EncodeToString(sum[:])}, time.Minute)
			if err != nil {
				t.Fatalf("PresignPut: %v", err)
			}
			if n := len(rec.take()); n != 0 {
				t.Errorf("PresignPut made %d requests, want none", n)
			}
			h := http.Header{}
			for k, v := range req.Headers {
				h.Set(k, v)
			}
			checkHeaders("presigned PUT", h)
			signed := strings.Split(mustParse(t, req.URL).Query().Get("X-Amz-SignedHeaders"), ";")
			for k := range tt.want {
				if !contains(signed, strings.ToLower(k)) {
					t.Errorf("X-Amz-SignedHeaders = %q, want it to include %s", signed, strings.ToLower(k))
				}
			}
			if status, body := do(t, req, up); status != http.StatusOK {
				t.Fatalf("presigned PUT: status %d: %s", status, body)
			}
			wantContent(t, st, key, up)
		})
	}
}

// do sends a presigned request with body, the way a client must: with the
// request's headers.
func do(t *testing.T, r sentineldf.PresignedRequest, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), r.Method, r.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.Headers {
		if k != "Content-Length" { // set from the body
			req.Header.Set(k, v)
		}
	}
	if body == nil {
		req.Body, req.ContentLength = nil, 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", r.Method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	return u
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// refusing is a transport that fails every request and counts them.
type refusing struct {
	mu sync.Mutex
	n  int
}

func (r *refusing) RoundTrip(*http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
	return nil, errors.New("no network in this test")
}

// offlineConfig is a valid Config whose requests all fail.
func offlineConfig(tr http.RoundTripper) s3.Config {
	return s3.Config{
		Endpoint:        "127.0.0.1:9",
		Bucket:          "bucket",
		Region:          "eu-west-1",
		AccessKeyID:     "AKIDEXAMPLE",
		SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		Transport:       tr,
	}
}

// TestPresignOffline checks presigning is local and what the URLs carry.
func TestPresignOffline(t *testing.T) {
	tr := &refusing{}
	sum := sha256.Sum256([]byte("content"))
	sumHex := hex.EncodeToString(sum[:])
	for _, tt := range []struct {
		name        string
		sse         string
		method      string
		c           sentineldf.PutConstraints
		ttl         time.Duration
		wantExpires int64
		wantSigned  string
		wantHeaders map[string]string
	}{
		{"GET", "", http.MethodGet, sentineldf.PutConstraints{}, 15 * time.Minute, 900, "host", nil},
		{"GET one second", "", http.MethodGet, sentineldf.PutConstraints{}, time.Second, 1, "host", nil},
		{"GET rounds up", "", http.MethodGet, sentineldf.PutConstraints{}, 1500 * time.Millisecond, 2, "host", nil},
		{"GET under a second", "", http.MethodGet, sentineldf.PutConstraints{}, time.Millisecond, 1, "host", nil},
		{"GET seven days", "", http.MethodGet, sentineldf.PutConstraints{}, s3.MaxPresignTTL, 604800, "host", nil},
		{"PUT size", "", http.MethodPut, sentineldf.PutConstraints{Size: 7}, sentineldf.DefaultPresignTTL, 900,
			"content-length;host", map[string]string{"Content-Length": "7"}},
		{"PUT size and sha256", "", http.MethodPut, sentineldf.PutConstraints{Size: 7, SHA256: sumHex}, time.Minute, 60,
			"content-length;host;x-amz-checksum-sha256",
			map[string]string{"Content-Length": "7", "X-Amz-Checksum-Sha256": base64.StdEncoding.EncodeToString(sum[:])}},
		{"PUT upper-case sha256", "", http.MethodPut, sentineldf.PutConstraints{Size: 7, SHA256: strings.ToUpper(sumHex)}, time.Minute, 60,
			"content-length;host;x-amz-checksum-sha256",
			map[string]string{"Content-Length": "7", "X-Amz-Checksum-Sha256": base64.StdEncoding.EncodeToString(sum[:])}},
		{"PUT with SSE", s3.SSES3, http.MethodPut, sentineldf.PutConstraints{Size: 7}, time.Minute, 60,
			"content-length;host;x-amz-server-side-encryption",
			map[string]string{"Content-Length": "7", "X-Amz-Server-Side-Encryption": "AES256"}},
		{"GET with SSE", s3.SSES3, http.MethodGet, sentineldf.PutConstraints{}, time.Minute, 60, "host", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := offlineConfig(tr)
			cfg.SSE = tt.sse
			st := newStore(t, cfg, nil)
			key := "org_1/scan_1/input/0/a b+c.jsonl"
			before := time.Now()
			var req sentineldf.PresignedRequest
			var err error
			if tt.method == http.MethodGet {
				req, err = st.PresignGet(t.Context(), key, tt.ttl)
			} else {
				req, err = st.PresignPut(t.Context(), key, tt.c, tt.ttl)
			}
			after := time.Now()
			if err != nil {
				t.Fatalf("presign: %v", err)
			}
			if req.Method != tt.method {
				t.Errorf("Method = %q, want %q", req.Method, tt.method)
			}
			u := mustParse(t, req.URL)
			if u.Scheme != "http" || u.Host != cfg.Endpoint || u.Path != "/bucket/"+key {
				t.Errorf("URL %s: want path-style http://%s/bucket/%s", u.Redacted(), cfg.Endpoint, key)
			}
			q := u.Query()
			if got := q.Get("X-Amz-Expires"); got != fmt.Sprint(tt.wantExpires) {
				t.Errorf("X-Amz-Expires = %s, want %d", got, tt.wantExpires)
			}
			if got := q.Get("X-Amz-SignedHeaders"); got != tt.wantSigned {
				t.Errorf("X-Amz-SignedHeaders = %q, want %q", got, tt.wantSigned)
			}
			if got := q.Get("X-Amz-Credential"); !strings.HasSuffix(got, "/eu-west-1/s3/aws4_request") {
				t.Errorf("X-Amz-Credential = %q, want the configured region's scope", got)
			}
			signedAt, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
			if err != nil {
				t.Fatalf("X-Amz-Date: %v", err)
			}
			if want := signedAt.Add(time.Duration(tt.wantExpires) * time.Second); !req.ExpiresAt.Equal(want) {
				t.Errorf("ExpiresAt = %v, want X-Amz-Date + X-Amz-Expires = %v", req.ExpiresAt, want)
			}
			if req.ExpiresAt.Before(before.Truncate(time.Second).Add(time.Duration(tt.wantExpires)*time.Second)) || req.ExpiresAt.After(after.Add(time.Duration(tt.wantExpires)*time.Second)) {
				t.Errorf("ExpiresAt = %v, not within the signing window [%v, %v] + %ds", req.ExpiresAt, before, after, tt.wantExpires)
			}
			if len(req.Headers) != len(tt.wantHeaders) {
				t.Errorf("Headers = %v, want %v", req.Headers, tt.wantHeaders)
			}
			for k, v := range tt.wantHeaders {
				if req.Headers[k] != v {
					t.Errorf("Headers[%s] = %q, want %q", k, req.Headers[k], v)
				}
			}
			if strings.Contains(req.URL, cfg.SecretAccessKey) {
				t.Error("the URL holds the secret key")
			}
		})
	}
	if tr.n != 0 {
		t.Errorf("presigning made %d requests, want none", tr.n)
	}
}

func TestPresignInvalid(t *testing.T) {
	st := newStore(t, offlineConfig(&refusing{}), func(c *s3.Config) { c.MaxObjectBytes = 1000 })
	for _, tt := range []struct {
		name string
		c    sentineldf.PutConstraints
		ttl  time.Duration
		code string
	}{
		{"over the store's limit", sentineldf.PutConstraints{Size: 1001}, time.Minute, sentineldf.ETOOLARGE},
		{"ttl over seven days", sentineldf.PutConstraints{Size: 1}, s3.MaxPresignTTL + time.Second, sentineldf.EINVALID},
		{"sha256 too long", sentineldf.PutConstraints{Size: 1, SHA256: strings.Repeat("a", 66)}, time.Minute, sentineldf.EINVALID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := st.PresignPut(t.Context(), "k", tt.c, tt.ttl); sentineldf.ErrorCode(err) != tt.code {
				t.Fatalf("PresignPut(%+v, %v): error %v, want code %s", tt.c, tt.ttl, err, tt.code)
			}
		})
	}
	// A presigned upload is one PUT: S3's single-PUT limit caps it even
	// when the store allows larger objects.
	big := newStore(t, offlineConfig(&refusing{}), func(c *s3.Config) { c.MaxObjectBytes = 2 * sentineldf.MaxUploadBytes })
	if _, err := big.PresignPut(t.Context(), "k", sentineldf.PutConstraints{Size: sentineldf.MaxUploadBytes + 1}, time.Minute); sentineldf.ErrorCode(err) != sentineldf.ETOOLARGE {
		t.Fatalf("PresignPut over 5 GiB: error %v, want code %s", err, sentineldf.ETOOLARGE)
	}
	if _, err := big.PresignPut(t.Context(), "k", sentineldf.PutConstraints{Size: sentineldf.MaxUploadBytes}, time.Minute); err != nil {
		t.Fatalf("PresignPut of 5 GiB: %v", err)
	}
}

func TestNew(t *testing.T) {
	for _, tt := range []struct {
		name  string
		edit  func(*s3.Config)
		field string // "": valid
		// scheme is the presigned URLs' scheme for a valid config.
		scheme string
	}{
		{"host:port", func(*s3.Config) {}, "", "http"},
		{"host:port with TLS", func(c *s3.Config) { c.UseSSL = true }, "", "https"},
		{"http URL", func(c *s3.Config) { c.Endpoint = "http://127.0.0.1:7070" }, "", "http"},
		{"https URL", func(c *s3.Config) { c.Endpoint = "https://s3.eu-west-1.amazonaws.com" }, "", "https"},
		{"SSE-S3", func(c *s3.Config) { c.SSE = s3.SSES3 }, "", "http"},
		{"SSE-KMS with a key", func(c *s3.Config) { c.SSE, c.KMSKeyID = s3.SSEKMS, "arn:aws:kms:eu-west-1:1:key/x" }, "", "http"},
		{"largest part size", func(c *s3.Config) { c.PartSize = s3.MaxPartSize }, "", "http"},
		{"no endpoint", func(c *s3.Config) { c.Endpoint = "" }, "endpoint", ""},
		{"endpoint with a path", func(c *s3.Config) { c.Endpoint = "http://host/bucket" }, "endpoint", ""},
		{"http URL with TLS", func(c *s3.Config) { c.Endpoint, c.UseSSL = "http://host", true }, "use_ssl", ""},
		{"no bucket", func(c *s3.Config) { c.Bucket = "" }, "bucket", ""},
		{"bad bucket", func(c *s3.Config) { c.Bucket = "Bad_Bucket" }, "bucket", ""},
		{"no region", func(c *s3.Config) { c.Region = "" }, "region", ""},
		{"no access key", func(c *s3.Config) { c.AccessKeyID = "" }, "access_key_id", ""},
		{"no secret", func(c *s3.Config) { c.SecretAccessKey = "" }, "secret_access_key", ""},
		{"unknown SSE", func(c *s3.Config) { c.SSE = "aws:kms:dsse" }, "sse", ""},
		{"KMS key without KMS", func(c *s3.Config) { c.SSE, c.KMSKeyID = s3.SSES3, "k" }, "kms_key_id", ""},
		{"part too small", func(c *s3.Config) { c.PartSize = s3.MinPartSize - 1 }, "part_size", ""},
		{"part too large", func(c *s3.Config) { c.PartSize = s3.MaxPartSize + 1 }, "part_size", ""},
		{"negative limit", func(c *s3.Config) { c.MaxObjectBytes = -1 }, "max_object_bytes", ""},
		{"limit beyond 10,000 parts", func(c *s3.Config) { c.PartSize, c.MaxObjectBytes = s3.MinPartSize, s3.MinPartSize*10000+1 }, "max_object_bytes", ""},
		{"negative retries", func(c *s3.Config) { c.MaxRetries = -1 }, "max_retries", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := offlineConfig(&refusing{})
			tt.edit(&cfg)
			st, err := s3.New(t.Context(), cfg)
			if tt.field != "" {
				var e *sentineldf.Error
				if !errors.As(err, &e) || e.Code != sentineldf.EINVALID || e.Field != tt.field {
					t.Fatalf("New: error %v, want %s on field %s", err, sentineldf.EINVALID, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			req, err := st.PresignGet(t.Context(), "k", time.Minute)
			if err != nil {
				t.Fatalf("PresignGet: %v", err)
			}
			if u := mustParse(t, req.URL); u.Scheme != tt.scheme {
				t.Errorf("presigned URL scheme = %q, want %q", u.Scheme, tt.scheme)
			}
		})
	}
}

func TestConfigHidesSecret(t *testing.T) {
	cfg := offlineConfig(nil)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "s3", cfg)
	for name, out := range map[string]string{
		"%v":   fmt.Sprintf("%v", cfg),
		"%s":   fmt.Sprintf("%s", cfg),
		"%+v":  fmt.Sprintf("%+v", cfg),
		"slog": logged.String(),
	} {
		if strings.Contains(out, cfg.SecretAccessKey) {
			t.Errorf("%s shows the secret: %s", name, out)
		}
		if !strings.Contains(out, cfg.AccessKeyID) {
			t.Errorf("%s hides the access key id, which is not secret: %s", name, out)
		}
	}
}

// TestUnavailable checks that an unreachable server is EUNAVAILABLE.
func TestUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	cfg := offlineConfig(nil)
	cfg.Endpoint, cfg.MaxRetries = addr, 1
	st := newStore(t, cfg, nil)
	ctx := t.Context()
	for _, op := range []struct {
		name string
		fn   func() error
	}{
		{"Ping", func() error { return st.Ping(ctx) }},
		{"Stat", func() error { _, err := st.Stat(ctx, "k"); return err }},
		{"Get", func() error { _, err := st.Get(ctx, "k"); return err }},
		{"GetRange", func() error { _, err := st.GetRange(ctx, "k", 1, 2); return err }},
		{"Put", func() error { return st.Put(ctx, "k", strings.NewReader("x"), 1) }},
		{"Put of unknown size", func() error { return st.Put(ctx, "k", strings.NewReader("x"), -1) }},
		{"Delete", func() error { return st.Delete(ctx, "k") }},
	} {
		t.Run(op.name, func(t *testing.T) {
			if err := op.fn(); sentineldf.ErrorCode(err) != sentineldf.EUNAVAILABLE {
				t.Fatalf("%s: error %v, want code %s", op.name, err, sentineldf.EUNAVAILABLE)
			}
		})
	}
	cfg.CreateBucket = true
	if _, err := s3.New(ctx, cfg); sentineldf.ErrorCode(err) != sentineldf.EUNAVAILABLE {
		t.Fatalf("New with CreateBucket: error %v, want code %s", err, sentineldf.EUNAVAILABLE)
	}
}

func TestPingMissingBucket(t *testing.T) {
	cfg := s3test.Start(t)
	st := newStore(t, cfg, func(c *s3.Config) {
		c.Bucket = "no-such-bucket-" + strings.TrimSuffix(strings.TrimPrefix(prefix(), "s3test-"), "/")
	})
	if err := st.Ping(t.Context()); err == nil {
		t.Fatal("Ping of a missing bucket succeeded")
	}
	if err := newStore(t, cfg, nil).Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestGetRangeEdges(t *testing.T) {
	cfg := s3test.Start(t)
	st := newStore(t, cfg, nil)
	p := prefix()
	data := patternData(100, 7)
	full, empty := p+"full", p+"empty"
	for key, b := range map[string][]byte{full: data, empty: nil} {
		if err := st.Put(t.Context(), key, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Delete(context.Background(), key) })
	}
	for _, tt := range []struct {
		name           string
		key            string
		offset, length int64
		want           []byte
		code           string
	}{
		{"zero length", full, 10, 0, []byte{}, ""},
		{"offset at the end", full, 100, 10, []byte{}, ""},
		{"offset at the end, to the end", full, 100, -1, []byte{}, ""},
		{"offset past the end", full, 101, 1, nil, sentineldf.EINVALID},
		{"offset past the end, to the end", full, 101, -1, nil, sentineldf.EINVALID},
		{"negative offset", full, -1, 1, nil, sentineldf.EINVALID},
		{"huge length", full, 90, 1<<63 - 1, data[90:], ""},
		{"empty object, whole", empty, 0, -1, []byte{}, ""},
		{"empty object, some", empty, 0, 10, []byte{}, ""},
		{"empty object, past the end", empty, 1, 10, nil, sentineldf.EINVALID},
		{"missing object", p + "missing", 5, 1, nil, sentineldf.ENOTFOUND},
		{"missing object, zero length", p + "missing", 0, 0, nil, sentineldf.ENOTFOUND},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := st.GetRange(t.Context(), tt.key, tt.offset, tt.length)
			if tt.code != "" {
				if sentineldf.ErrorCode(err) != tt.code {
					t.Fatalf("GetRange(%d, %d): error %v, want code %s", tt.offset, tt.length, err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetRange(%d, %d): %v", tt.offset, tt.length, err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("GetRange(%d, %d) = %x, %v; want %x", tt.offset, tt.length, got, err, tt.want)
			}
		})
	}
}

// TestTenantPrefixes checks that the key layout isolates tenants: objects
// of two orgs with the same scan and file names are distinct, whatever is
// done to one, and a URL presigned for one org's key does not reach the
// other's.
func TestTenantPrefixes(t *testing.T) {
	cfg := s3test.Start(t)
	st := newStore(t, cfg, nil)
	p := strings.TrimSuffix(prefix(), "/")
	// org_1 is a string prefix of org_10: the trailing slash of ScanPrefix
	// keeps them apart.
	orgA, orgB := p+"-org_1", p+"-org_10"
	keyA := sentineldf.InputKey(orgA, "scan_1", 0, "data.jsonl")
	keyB := sentineldf.InputKey(orgB, "scan_1", 0, "data.jsonl")
	if !strings.HasPrefix(keyA, sentineldf.ScanPrefix(orgA, "scan_1")) || strings.HasPrefix(keyB, sentineldf.ScanPrefix(orgA, "scan_1")) {
		t.Fatalf("keys %q and %q do not follow the tenant layout", keyA, keyB)
	}
	dataA, dataB := []byte("org 1's data"), []byte("org 10's data")
	for key, b := range map[string][]byte{keyA: dataA, keyB: dataB} {
		if err := st.Put(t.Context(), key, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Delete(context.Background(), key) })
	}
	wantContent(t, st, keyA, dataA)
	wantContent(t, st, keyB, dataB)

	// A URL for org A's key, rewritten to org B's key, is refused.
	req, err := st.PresignGet(t.Context(), keyA, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	u := mustParse(t, req.URL)
	u.Path = strings.Replace(u.Path, orgA+"/", orgB+"/", 1)
	u.RawPath = ""
	status, body := do(t, sentineldf.PresignedRequest{Method: http.MethodGet, URL: u.String()}, nil)
	if status != http.StatusForbidden || bytes.Contains(body, dataB) {
		t.Fatalf("org A's URL rewritten to org B's key: status %d, want 403 without B's data", status)
	}

	if err := st.Delete(t.Context(), keyA); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Stat(t.Context(), keyA); sentineldf.ErrorCode(err) != sentineldf.ENOTFOUND {
		t.Fatalf("Stat of deleted key: %v, want %s", err, sentineldf.ENOTFOUND)
	}
	wantContent(t, st, keyB, dataB)
}
