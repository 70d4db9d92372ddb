// Package blobtest is the conformance suite of sentineldf.BlobStore: every
// backend (localfs, s3) runs Run against a fresh fixture. The suite uses
// only the interface and plain HTTP against presigned URLs, and it writes
// only under random key prefixes, so it may share a bucket with other runs.
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentineldf/sentineldf"
)

// Fixture is one backend under test.
type Fixture struct {
	// Store is the store under test.
	Store sentineldf.BlobStore
	// HTTP reaches the store's presigned URLs.
	HTTP *http.Client
}

// Run runs the conformance suite. newFixture is called once per subtest;
// it registers its own cleanup with t.
//
// Beyond the interface's doc comments, the suite pins down what clients
// may rely on with every backend:
//   - keys in InvalidKeys are EINVALID for every method;
//   - Put either fails (storing nothing) or stores exactly size bytes;
//   - GetRange cuts a range that runs past the end;
//   - PresignPut with Size <= 0 or a malformed SHA256 is EINVALID, with a
//     Size over the store's limit ETOOLARGE; a ttl <= 0 is EINVALID;
//   - a presigned upload that does not match its size or SHA-256 gets a
//     4xx and stores nothing (an existing object is kept);
//   - a presigned URL with any character of its key or query changed, used
//     with another method, or expired gets a 4xx (expired: 403), never
//     before its ExpiresAt;
//   - a presigned GET serves Range requests with 206 and a missing object
//     with 404.
func Run(t *testing.T, newFixture func(t *testing.T) Fixture) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"RoundTrip", testRoundTrip},
		{"EmptyObject", testEmptyObject},
		{"PutUnknownSize", testPutUnknownSize},
		{"PutSizeMismatch", testPutSizeMismatch},
		{"Overwrite", testOverwrite},
		{"AtomicOverwrite", testAtomicOverwrite},
		{"GetRange", testGetRange},
		{"Missing", testMissing},
		{"InvalidKeys", testInvalidKeys},
		{"KeyNames", testKeyNames},
		{"LargeObject", testLargeObject},
		{"Ping", testPing},
		{"PresignPut", testPresignPut},
		{"PresignPutInvalid", testPresignPutInvalid},
		{"PresignPutWrongSize", testPresignPutWrongSize},
		{"PresignPutWrongSHA256", testPresignPutWrongSHA256},
		{"PresignGet", testPresignGet},
		{"PresignGetRange", testPresignGetRange},
		{"PresignGetMissing", testPresignGetMissing},
		{"PresignTampered", testPresignTampered},
		{"PresignExpired", testPresignExpired},
		{"PresignWrongMethod", testPresignWrongMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if f.Store == nil || f.HTTP == nil {
				t.Fatal("fixture needs a Store and an HTTP client")
			}
			s := &suite{Fixture: f, prefix: "blobtest-" + randomHex(8) + "/"}
			t.Cleanup(s.cleanup)
			tt.fn(t, s)
		})
	}
}

// suite is one subtest's fixture and the keys it wrote.
type suite struct {
	Fixture
	prefix string
	mu     sync.Mutex
	keys   []string
}

// key returns a key under the subtest's prefix, deleted at cleanup.
func (s *suite) key(name string) string {
	k := s.prefix + name
	s.mu.Lock()
	s.keys = append(s.keys, k)
	s.mu.Unlock()
	return k
}

func (s *suite) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, k := range s.keys {
		_ = s.Store.Delete(ctx, k)
	}
}

func (s *suite) put(t *testing.T, key string, data []byte) {
	t.Helper()
	if err := s.Store.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
}

// get reads a whole object.
func (s *suite) get(t *testing.T, key string) []byte {
	t.Helper()
	rc, err := s.Store.Get(t.Context(), key)
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

// wantContent fails unless key holds data.
func (s *suite) wantContent(t *testing.T, key string, data []byte) {
	t.Helper()
	if got := s.get(t, key); !bytes.Equal(got, data) {
		t.Fatalf("Get(%q) = %s, want %s", key, describe(got), describe(data))
	}
	info, err := s.Store.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	if info.Size != int64(len(data)) {
		t.Fatalf("Stat(%q).Size = %d, want %d", key, info.Size, len(data))
	}
}

// wantMissing fails unless key does not exist.
func (s *suite) wantMissing(t *testing.T, key string) {
	t.Helper()
	if _, err := s.Store.Stat(t.Context(), key); sentineldf.ErrorCode(err) != sentineldf.ENOTFOUND {
		t.Fatalf("Stat(%q) error = %v, want code %s", key, err, sentineldf.ENOTFOUND)
	}
}

// do sends one HTTP request and returns its status and body.
func (s *suite) do(t *testing.T, method, rawURL string, headers map[string]string, body []byte) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, rawURL, r)
	if err != nil {
		t.Fatalf("new %s request: %v", method, err)
	}
	for k, v := range headers {
		switch http.CanonicalHeaderKey(k) {
		case "Host":
			req.Host = v
		case "Content-Length": // set from the body
		default:
			req.Header.Set(k, v)
		}
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, redact(rawURL), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, redact(rawURL), err)
	}
	return resp.StatusCode, b
}

// presignPut returns a presigned upload of data, bound to its size and,
// when withSum, its SHA-256.
func (s *suite) presignPut(t *testing.T, key string, data []byte, withSum bool, ttl time.Duration) sentineldf.PresignedRequest {
	t.Helper()
	c := sentineldf.PutConstraints{Size: int64(len(data))}
	if withSum {
		c.SHA256 = sha256Hex(data)
	}
	req, err := s.Store.PresignPut(t.Context(), key, c, ttl)
	if err != nil {
		t.Fatalf("PresignPut(%q, %+v): %v", key, c, err)
	}
	if req.Method != http.MethodPut {
		t.Fatalf("PresignPut method = %q, want PUT", req.Method)
	}
	return req
}

func (s *suite) presignGet(t *testing.T, key string, ttl time.Duration) sentineldf.PresignedRequest {
	t.Helper()
	req, err := s.Store.PresignGet(t.Context(), key, ttl)
	if err != nil {
		t.Fatalf("PresignGet(%q): %v", key, err)
	}
	if req.Method != http.MethodGet {
		t.Fatalf("PresignGet method = %q, want GET", req.Method)
	}
	return req
}

func testRoundTrip(t *testing.T, s *suite) {
	key := s.key("org/scan/input/0/data.jsonl")
	data := []byte("{\"text\":\"hello\"}\n{\"text\":\"world\"}\n")
	s.put(t, key, data)
	s.wantContent(t, key, data)
	info, err := s.Store.Stat(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if info.Key != key {
		t.Errorf("Stat(%q).Key = %q", key, info.Key)
	}
	if err := s.Store.Delete(t.Context(), key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	s.wantMissing(t, key)
	if err := s.Store.Delete(t.Context(), key); err != nil {
		t.Fatalf("Delete of a deleted object: %v, want nil", err)
	}
}

func testEmptyObject(t *testing.T, s *suite) {
	key := s.key("empty")
	s.put(t, key, nil)
	s.wantContent(t, key, nil)
}

func testPutUnknownSize(t *testing.T, s *suite) {
	key := s.key("unknown-size")
	data := pattern(100_000, 1)
	// A plain io.Reader hides the length.
	if err := s.Store.Put(t.Context(), key, struct{ io.Reader }{bytes.NewReader(data)}, -1); err != nil {
		t.Fatalf("Put with size -1: %v", err)
	}
	s.wantContent(t, key, data)
}

func testPutSizeMismatch(t *testing.T, s *suite) {
	data := []byte("0123456789")
	for _, tt := range []struct {
		name string
		size int64
	}{
		{"shorter than declared", int64(len(data)) + 5},
		{"longer than declared", int64(len(data)) - 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := s.key("mismatch-" + randomHex(4))
			err := s.Store.Put(t.Context(), key, bytes.NewReader(data), tt.size)
			if err == nil {
				if got := s.get(t, key); len(got) != int(tt.size) {
					t.Fatalf("Put of %d bytes declared as %d succeeded and stored %d bytes", len(data), tt.size, len(got))
				}
				return // a store may accept a prefix of the declared length
			}
			s.wantMissing(t, key)
		})
	}
}

func testOverwrite(t *testing.T, s *suite) {
	key := s.key("a/b/overwrite.txt")
	s.put(t, key, []byte("the first, longer version"))
	second := []byte("second")
	s.put(t, key, second)
	s.wantContent(t, key, second)
}

// testAtomicOverwrite checks that readers racing with writers see one whole
// version, never a mix or a torn prefix.
func testAtomicOverwrite(t *testing.T, s *suite) {
	key := s.key("atomic")
	const size = 256 << 10
	versions := [][]byte{bytes.Repeat([]byte{'a'}, size), bytes.Repeat([]byte{'b'}, size/2)}
	s.put(t, key, versions[0])
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				rc, err := s.Store.Get(ctx, key)
				if err != nil {
					if ctx.Err() == nil {
						errc <- fmt.Errorf("Get during overwrite: %w", err)
					}
					return
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					if ctx.Err() == nil {
						errc <- fmt.Errorf("read during overwrite: %w", err)
					}
					return
				}
				if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
					errc <- fmt.Errorf("reader saw a torn object: %s", describe(got))
					return
				}
			}
		})
	}
	for i := range 20 {
		v := versions[(i+1)%2]
		if err := s.Store.Put(t.Context(), key, bytes.NewReader(v), int64(len(v))); err != nil {
			t.Fatalf("Put #%d: %v", i, err)
		}
	}
	cancel()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

func testGetRange(t *testing.T, s *suite) {
	key := s.key("range.bin")
	data := pattern(1000, 2)
	s.put(t, key, data)
	for _, tt := range []struct {
		name           string
		offset, length int64
		want           []byte
	}{
		{"middle", 100, 50, data[100:150]},
		{"to end", 900, -1, data[900:]},
		{"from start", 0, 10, data[:10]},
		{"whole", 0, -1, data},
		{"last byte", 999, 1, data[999:]},
		{"past end is cut", 990, 100, data[990:]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := s.Store.GetRange(t.Context(), key, tt.offset, tt.length)
			if err != nil {
				t.Fatalf("GetRange(%d, %d): %v", tt.offset, tt.length, err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatalf("GetRange(%d, %d): read: %v", tt.offset, tt.length, err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("GetRange(%d, %d) = %s, want %s", tt.offset, tt.length, describe(got), describe(tt.want))
			}
		})
	}
}

func testMissing(t *testing.T, s *suite) {
	key := s.key("never/written")
	ctx := t.Context()
	ops := []struct {
		name string
		fn   func() error
	}{
		{"Get", func() error {
			rc, err := s.Store.Get(ctx, key)
			if err == nil {
				rc.Close()
			}
			return err
		}},
		{"GetRange", func() error {
			rc, err := s.Store.GetRange(ctx, key, 0, 1)
			if err == nil {
				rc.Close()
			}
			return err
		}},
		{"Stat", func() error { _, err := s.Store.Stat(ctx, key); return err }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			if err := op.fn(); sentineldf.ErrorCode(err) != sentineldf.ENOTFOUND {
				t.Fatalf("%s of a missing object: error %v, want code %s", op.name, err, sentineldf.ENOTFOUND)
			}
		})
	}
	t.Run("Delete", func(t *testing.T) {
		if err := s.Store.Delete(ctx, key); err != nil {
			t.Fatalf("Delete of a missing object: %v, want nil", err)
		}
	})
}

// InvalidKeys returns keys every store rejects with EINVALID: they could
// escape a directory, or mean different objects on different backends.
func InvalidKeys() []string {
	return []string{
		"",
		"/abs",
		"trailing/",
		"a//b",
		".",
		"..",
		"../x",
		"a/../../b",
		"a/./b",
		`a\b`,
		"a\x00b",
		"a\nb",
		"bad-utf8-\xff",
		strings.Repeat("k", 1025),
	}
}

func testInvalidKeys(t *testing.T, s *suite) {
	ctx := t.Context()
	for _, key := range InvalidKeys() {
		name := fmt.Sprintf("%.20q", key)
		t.Run(name, func(t *testing.T) {
			ops := []struct {
				op string
				fn func() error
			}{
				{"Put", func() error { return s.Store.Put(ctx, key, strings.NewReader("x"), 1) }},
				{"Get", func() error {
					rc, err := s.Store.Get(ctx, key)
					if err == nil {
						rc.Close()
					}
					return err
				}},
				{"Stat", func() error { _, err := s.Store.Stat(ctx, key); return err }},
				{"Delete", func() error { return s.Store.Delete(ctx, key) }},
				{"PresignPut", func() error {
					_, err := s.Store.PresignPut(ctx, key, sentineldf.PutConstraints{Size: 1}, time.Minute)
					return err
				}},
				{"PresignGet", func() error { _, err := s.Store.PresignGet(ctx, key, time.Minute); return err }},
			}
			for _, op := range ops {
				if err := op.fn(); sentineldf.ErrorCode(err) != sentineldf.EINVALID {
					t.Errorf("%s(%q): error %v, want code %s", op.op, key, err, sentineldf.EINVALID)
				}
			}
		})
	}
}

func testKeyNames(t *testing.T, s *suite) {
	for _, tt := range []struct{ name, key string }{
		{"nested", "org_1/scan_1/input/0/part/deep/data.jsonl"},
		{"unicode", "org/scan/input/1/données 日本語 ✓.jsonl"},
		{"URL metacharacters", "org/scan/input/2/a b+c%d#e?f=g&h;i'j.csv"},
		{"dot files", "org/.hidden/..dots/file."},
		{"long", strings.Repeat("seg/", 100) + "leaf"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := s.key(tt.key)
			data := []byte("content of " + tt.key)
			s.put(t, key, data)
			s.wantContent(t, key, data)
			// The key survives URL escaping both ways.
			up := []byte("uploaded to " + tt.key)
			req := s.presignPut(t, key, up, true, time.Minute)
			if status, body := s.do(t, req.Method, req.URL, req.Headers, up); status/100 != 2 {
				t.Fatalf("presigned PUT: status %d: %s", status, body)
			}
			s.wantContent(t, key, up)
			get := s.presignGet(t, key, time.Minute)
			status, body := s.do(t, get.Method, get.URL, get.Headers, nil)
			if status != http.StatusOK || !bytes.Equal(body, up) {
				t.Fatalf("presigned GET: status %d, body %s; want 200, %s", status, describe(body), describe(up))
			}
		})
	}
}

func testLargeObject(t *testing.T, s *suite) {
	key := s.key("large.bin")
	const size = 8 << 20
	want := sha256.New()
	if _, err := io.Copy(want, newPatternReader(size, 3)); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.Put(t.Context(), key, newPatternReader(size, 3), size); err != nil {
		t.Fatalf("Put of %d bytes: %v", size, err)
	}
	rc, err := s.Store.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	got := sha256.New()
	n, err := io.Copy(got, rc)
	if err != nil {
		t.Fatalf("Get: read: %v", err)
	}
	if n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("Get read %d bytes, sha256 %x; want %d bytes, sha256 %x", n, got.Sum(nil), size, want.Sum(nil))
	}
	rr, err := s.Store.GetRange(t.Context(), key, size-100, -1)
	if err != nil {
		t.Fatalf("GetRange of the tail: %v", err)
	}
	defer rr.Close()
	tail, err := io.ReadAll(rr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tail, pattern(size, 3)[size-100:]) {
		t.Fatalf("GetRange of the tail = %s", describe(tail))
	}
}

func testPing(t *testing.T, s *suite) {
	if err := s.Store.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testPresignPut(t *testing.T, s *suite) {
	for _, withSum := range []bool{true, false} {
		t.Run(fmt.Sprintf("sha256=%v", withSum), func(t *testing.T) {
			key := s.key(fmt.Sprintf("org/scan/input/0/upload-%v.jsonl", withSum))
			data := pattern(70_000, 4)
			before := time.Now()
			req := s.presignPut(t, key, data, withSum, 5*time.Minute)
			if req.ExpiresAt.Before(before.Add(5*time.Minute-time.Second)) || req.ExpiresAt.After(before.Add(6*time.Minute)) {
				t.Errorf("ExpiresAt = %v, want about %v", req.ExpiresAt, before.Add(5*time.Minute))
			}
			if status, body := s.do(t, req.Method, req.URL, req.Headers, data); status/100 != 2 {
				t.Fatalf("presigned PUT: status %d: %s", status, body)
			}
			s.wantContent(t, key, data)
		})
	}
}

func testPresignPutInvalid(t *testing.T, s *suite) {
	key := s.key("invalid-constraints")
	for _, tt := range []struct {
		name string
		c    sentineldf.PutConstraints
		ttl  time.Duration
		code string
	}{
		{"zero size", sentineldf.PutConstraints{Size: 0}, time.Minute, sentineldf.EINVALID},
		{"negative size", sentineldf.PutConstraints{Size: -1}, time.Minute, sentineldf.EINVALID},
		{"too large", sentineldf.PutConstraints{Size: math.MaxInt64}, time.Minute, sentineldf.ETOOLARGE},
		{"bad sha256", sentineldf.PutConstraints{Size: 1, SHA256: "xyz"}, time.Minute, sentineldf.EINVALID},
		{"short sha256", sentineldf.PutConstraints{Size: 1, SHA256: "abcd"}, time.Minute, sentineldf.EINVALID},
		{"zero ttl", sentineldf.PutConstraints{Size: 1}, 0, sentineldf.EINVALID},
		{"negative ttl", sentineldf.PutConstraints{Size: 1}, -time.Second, sentineldf.EINVALID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Store.PresignPut(t.Context(), key, tt.c, tt.ttl)
			if sentineldf.ErrorCode(err) != tt.code {
				t.Fatalf("PresignPut(%+v, %v): error %v, want code %s", tt.c, tt.ttl, err, tt.code)
			}
		})
	}
	t.Run("zero ttl GET", func(t *testing.T) {
		if _, err := s.Store.PresignGet(t.Context(), key, 0); sentineldf.ErrorCode(err) != sentineldf.EINVALID {
			t.Fatalf("PresignGet with ttl 0: error %v, want code %s", err, sentineldf.EINVALID)
		}
	})
}

// rejectedUpload fails unless the upload got a 4xx status; it returns the
// body for backend-specific checks.
func rejectedUpload(t *testing.T, status int, body []byte, what string) {
	t.Helper()
	if status/100 != 4 {
		t.Fatalf("%s: status %d (%s), want 4xx", what, status, body)
	}
}

func testPresignPutWrongSize(t *testing.T, s *suite) {
	declared := pattern(1000, 5)
	for _, tt := range []struct {
		name string
		body []byte
	}{
		{"shorter", declared[:999]},
		{"longer", append(append([]byte(nil), declared...), 'x')},
		{"empty", []byte{}},
	} {
		for _, withSum := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/sha256=%v", tt.name, withSum), func(t *testing.T) {
				key := s.key("wrong-size-" + randomHex(4))
				req := s.presignPut(t, key, declared, withSum, time.Minute)
				status, body := s.do(t, req.Method, req.URL, req.Headers, tt.body)
				rejectedUpload(t, status, body, fmt.Sprintf("upload of %d bytes declared as %d", len(tt.body), len(declared)))
				s.wantMissing(t, key)
			})
		}
	}
	t.Run("existing object kept", func(t *testing.T) {
		key := s.key("wrong-size-existing")
		orig := []byte("original")
		s.put(t, key, orig)
		req := s.presignPut(t, key, declared, true, time.Minute)
		status, body := s.do(t, req.Method, req.URL, req.Headers, declared[:10])
		rejectedUpload(t, status, body, "short upload over an existing object")
		s.wantContent(t, key, orig)
	})
}

func testPresignPutWrongSHA256(t *testing.T, s *suite) {
	declared := pattern(1000, 6)
	other := pattern(1000, 7)
	key := s.key("wrong-sha")
	req := s.presignPut(t, key, declared, true, time.Minute)
	status, body := s.do(t, req.Method, req.URL, req.Headers, other)
	rejectedUpload(t, status, body, "upload with another sha256")
	s.wantMissing(t, key)

	orig := []byte("original")
	s.put(t, key, orig)
	status, body = s.do(t, req.Method, req.URL, req.Headers, other)
	rejectedUpload(t, status, body, "upload with another sha256 over an existing object")
	s.wantContent(t, key, orig)

	// The right content still goes through the same URL.
	if status, body := s.do(t, req.Method, req.URL, req.Headers, declared); status/100 != 2 {
		t.Fatalf("upload with the declared sha256: status %d: %s", status, body)
	}
	s.wantContent(t, key, declared)
}

func testPresignGet(t *testing.T, s *suite) {
	key := s.key("org/scan/results/results.jsonl")
	data := pattern(50_000, 8)
	s.put(t, key, data)
	req := s.presignGet(t, key, time.Minute)
	status, body := s.do(t, req.Method, req.URL, req.Headers, nil)
	if status != http.StatusOK {
		t.Fatalf("presigned GET: status %d: %s", status, body)
	}
	if !bytes.Equal(body, data) {
		t.Fatalf("presigned GET body = %s, want %s", describe(body), describe(data))
	}
	// The URL is reusable until it expires.
	if status, _ := s.do(t, req.Method, req.URL, req.Headers, nil); status != http.StatusOK {
		t.Fatalf("second presigned GET: status %d", status)
	}
}

func testPresignGetRange(t *testing.T, s *suite) {
	key := s.key("range-url.bin")
	data := pattern(10_000, 9)
	s.put(t, key, data)
	req := s.presignGet(t, key, time.Minute)
	for _, tt := range []struct {
		rng  string
		want []byte
	}{
		{"bytes=2-5", data[2:6]},
		{"bytes=9990-", data[9990:]},
		{"bytes=-10", data[len(data)-10:]},
	} {
		t.Run(tt.rng, func(t *testing.T) {
			h := map[string]string{"Range": tt.rng}
			for k, v := range req.Headers {
				h[k] = v
			}
			status, body := s.do(t, req.Method, req.URL, h, nil)
			if status != http.StatusPartialContent {
				t.Fatalf("presigned GET with Range %s: status %d, want 206", tt.rng, status)
			}
			if !bytes.Equal(body, tt.want) {
				t.Fatalf("presigned GET with Range %s = %s, want %s", tt.rng, describe(body), describe(tt.want))
			}
		})
	}
}

func testPresignGetMissing(t *testing.T, s *suite) {
	req := s.presignGet(t, s.key("not/there"), time.Minute)
	if status, body := s.do(t, req.Method, req.URL, req.Headers, nil); status != http.StatusNotFound {
		t.Fatalf("presigned GET of a missing object: status %d (%s), want 404", status, body)
	}
}

// tamperings returns variants of a presigned URL that change one character
// of the key or of one query parameter's value, each named.
func tamperings(t *testing.T, raw string) map[string]string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse presigned URL: %v", err)
	}
	out := map[string]string{}
	k := *u
	k.Path = mutate(u.Path)
	k.RawPath = ""
	out["key"] = k.String()
	q := u.Query()
	for name, vals := range q {
		for i := range vals {
			q2 := url.Values{}
			for n, vs := range q {
				q2[n] = append([]string(nil), vs...)
			}
			q2[name][i] = mutate(vals[i])
			v := *u
			v.RawQuery = q2.Encode()
			out["param "+name] = v.String()
		}
	}
	// The last character of the URL as issued (often the signature's).
	out["last character"] = mutate(raw)
	return out
}

// mutate changes the last character of s to another of the same class.
func mutate(s string) string {
	if s == "" {
		return "x"
	}
	b := []byte(s)
	c := &b[len(b)-1]
	switch {
	case *c == '9':
		*c = '8'
	case *c >= '0' && *c < '9':
		*c++
	case *c == 'z' || *c == 'Z':
		*c--
	case (*c >= 'a' && *c < 'z') || (*c >= 'A' && *c < 'Z'):
		*c++
	default:
		*c = 'x'
	}
	return string(b)
}

func testPresignTampered(t *testing.T, s *suite) {
	key := s.key("tamper/victim.bin")
	data := pattern(1000, 10)
	s.put(t, key, data)
	// A sibling whose key differs in the last character, so that a
	// tampered key names an object that exists.
	sibling := s.key(mutate("tamper/victim.bin"))
	s.put(t, sibling, []byte("sibling"))
	t.Run("GET", func(t *testing.T) {
		req := s.presignGet(t, key, time.Minute)
		for name, u := range tamperings(t, req.URL) {
			t.Run(name, func(t *testing.T) {
				status, body := s.do(t, req.Method, u, req.Headers, nil)
				if status/100 != 4 {
					t.Fatalf("tampered GET URL: status %d, want 4xx", status)
				}
				if bytes.Equal(body, data) || bytes.Equal(body, []byte("sibling")) {
					t.Fatal("tampered GET URL returned an object")
				}
			})
		}
	})
	t.Run("PUT", func(t *testing.T) {
		target := s.key("tamper/upload.bin")
		up := pattern(500, 11)
		req := s.presignPut(t, target, up, true, time.Minute)
		for name, u := range tamperings(t, req.URL) {
			t.Run(name, func(t *testing.T) {
				status, body := s.do(t, req.Method, u, req.Headers, up)
				if status/100 != 4 {
					t.Fatalf("tampered PUT URL: status %d (%s), want 4xx", status, body)
				}
				s.wantMissing(t, target)
				s.wantContent(t, sibling, []byte("sibling"))
			})
		}
	})
}

// pollUntilRejected repeats a request until it fails, for at most 10 s.
func (s *suite) pollUntilRejected(t *testing.T, req sentineldf.PresignedRequest, body []byte) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _ := s.do(t, req.Method, req.URL, req.Headers, body)
		if status/100 != 2 {
			return status
		}
		if time.Now().After(deadline) {
			t.Fatalf("presigned %s URL with ExpiresAt %v still accepted after 10 s", req.Method, req.ExpiresAt)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func testPresignExpired(t *testing.T, s *suite) {
	key := s.key("expiring")
	data := []byte("short-lived")
	s.put(t, key, data)
	getReq, err := s.Store.PresignGet(t.Context(), key, time.Second)
	if err != nil {
		t.Fatalf("PresignGet with ttl 1s: %v", err)
	}
	putReq := s.presignPut(t, s.key("expiring-upload"), data, true, time.Second)
	if status := s.pollUntilRejected(t, getReq, nil); status != http.StatusForbidden {
		t.Fatalf("expired GET URL: status %d, want 403", status)
	}
	if status := s.pollUntilRejected(t, putReq, data); status != http.StatusForbidden {
		t.Fatalf("expired PUT URL: status %d, want 403", status)
	}
	// ExpiresAt must not promise more than the store grants.
	if time.Now().Before(getReq.ExpiresAt) {
		t.Errorf("GET URL rejected before its ExpiresAt %v", getReq.ExpiresAt)
	}
}

func testPresignWrongMethod(t *testing.T, s *suite) {
	key := s.key("method")
	orig := []byte("original")
	s.put(t, key, orig)
	t.Run("PUT with a GET URL", func(t *testing.T) {
		req := s.presignGet(t, key, time.Minute)
		status, body := s.do(t, http.MethodPut, req.URL, nil, []byte("overwritten"))
		if status/100 != 4 {
			t.Fatalf("PUT with a GET URL: status %d (%s), want 4xx", status, body)
		}
		s.wantContent(t, key, orig)
	})
	t.Run("GET with a PUT URL", func(t *testing.T) {
		req := s.presignPut(t, key, []byte("new"), false, time.Minute)
		status, body := s.do(t, http.MethodGet, req.URL, nil, nil)
		if status/100 != 4 || bytes.Equal(body, orig) {
			t.Fatalf("GET with a PUT URL: status %d, want 4xx and no content", status)
		}
	})
	t.Run("DELETE with a GET URL", func(t *testing.T) {
		req := s.presignGet(t, key, time.Minute)
		status, _ := s.do(t, http.MethodDelete, req.URL, nil, nil)
		if status/100 != 4 {
			t.Fatalf("DELETE with a GET URL: status %d, want 4xx", status)
		}
		s.wantContent(t, key, orig)
	})
}

// pattern returns n deterministic pseudo-random bytes for seed.
func pattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	_, _ = newPatternReader(int64(n), seed).Read(b) // fills b: n bytes remain
	return b
}

// patternReader yields n bytes of an xorshift sequence, so large objects
// stream without being held in memory.
type patternReader struct {
	left  int64
	state uint64
}

func newPatternReader(n int64, seed uint64) *patternReader {
	return &patternReader{left: n, state: seed*0x9E3779B97F4A7C15 + 1}
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	for i := range p {
		r.state ^= r.state << 13
		r.state ^= r.state >> 7
		r.state ^= r.state << 17
		p[i] = byte(r.state >> 32)
	}
	r.left -= int64(len(p))
	return len(p), nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// describe summarises bytes for failure messages.
func describe(b []byte) string {
	if len(b) <= 64 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%d bytes (sha256 %.12s…, starts %q)", len(b), sha256Hex(b), b[:32])
}

// redact drops a URL's query, which holds its signature.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	u.RawQuery = ""
	return u.String() + "?…"
}
