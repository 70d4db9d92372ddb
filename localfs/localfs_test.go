package localfs_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/blobtest"
	"github.com/sentineldf/sentineldf/localfs"
)

var testSecret = bytes.Repeat([]byte("k"), localfs.MinSecretBytes)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is a store served by an httptest server, mounted on a ServeMux the way
// the API mounts it.
type env struct {
	store *localfs.Store
	srv   *httptest.Server
	dir   string
}

func newEnv(t *testing.T, edit func(*localfs.Config)) *env {
	t.Helper()
	e := &env{dir: filepath.Join(t.TempDir(), "blobs")}
	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	cfg := localfs.Config{Dir: e.dir, Secret: testSecret, BaseURL: func() string { return e.srv.URL }}
	if edit != nil {
		edit(&cfg)
	}
	s, err := localfs.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	e.store = s
	mux.Handle(localfs.PathPrefix, s.Handler())
	return e
}

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blobtest.Fixture {
		e := newEnv(t, nil)
		return blobtest.Fixture{Store: e.store, HTTP: e.srv.Client()}
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	base := func() string { return "http://127.0.0.1" }
	for _, tt := range []struct {
		name string
		cfg  localfs.Config
	}{
		{"no dir", localfs.Config{Secret: testSecret, BaseURL: base}},
		{"short secret", localfs.Config{Dir: t.TempDir(), Secret: testSecret[:31], BaseURL: base}},
		{"no base URL", localfs.Config{Dir: t.TempDir(), Secret: testSecret}},
		{"negative limit", localfs.Config{Dir: t.TempDir(), Secret: testSecret, BaseURL: base, MaxObjectBytes: -1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := localfs.New(tt.cfg)
			if sentineldf.ErrorCode(err) != sentineldf.EINVALID {
				if s != nil {
					s.Close()
				}
				t.Fatalf("New: error %v, want code %s", err, sentineldf.EINVALID)
			}
		})
	}
}

// entries lists a directory's names.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestTraversalKeysRejected(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	parent := filepath.Dir(e.dir)
	for _, key := range []string{"../x", "a/../../b", "/abs", `a\b`, "..", "a/..", "../../etc/passwd", "a/./../b"} {
		t.Run(key, func(t *testing.T) {
			if err := e.store.Put(ctx, key, strings.NewReader("x"), 1); sentineldf.ErrorCode(err) != sentineldf.EINVALID {
				t.Errorf("Put(%q): %v, want code %s", key, err, sentineldf.EINVALID)
			}
			if _, err := e.store.Get(ctx, key); sentineldf.ErrorCode(err) != sentineldf.EINVALID {
				t.Errorf("Get(%q): %v, want code %s", key, err, sentineldf.EINVALID)
			}
			if _, err := e.store.GetRange(ctx, key, 0, 1); sentineldf.ErrorCode(err) != sentineldf.EINVALID {
				t.Errorf("GetRange(%q): %v, want code %s", key, err, sentineldf.EINVALID)
			}
			if _, err := e.store.PresignPut(ctx, key, sentineldf.PutConstraints{Size: 1}, time.Minute); sentineldf.ErrorCode(err) != sentineldf.EINVALID {
				t.Errorf("PresignPut(%q): %v, want code %s", key, err, sentineldf.EINVALID)
			}
		})
	}
	if got := entries(t, parent); len(got) != 1 || got[0] != "blobs" {
		t.Fatalf("files appeared beside the store: %v", got)
	}
	if got := entries(t, filepath.Join(e.dir, "objects")); len(got) != 0 {
		t.Fatalf("objects written: %v", got)
	}
}

// A traversal sent straight to the handler (a crafted URL, bypassing
// ServeMux's path cleaning) is refused.
func TestHandlerTraversalPath(t *testing.T) {
	e := newEnv(t, nil)
	for _, p := range []string{"/blobs/../x", "/blobs/a/../../x", "/blobs//abs", `/blobs/a\b`} {
		req := httptest.NewRequest(http.MethodGet, "/blobs/x", nil)
		req.URL.Path = p
		rec := httptest.NewRecorder()
		e.store.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Errorf("GET %s: status %d, want 403", p, rec.Code)
		}
	}
}

func TestSymlinkEscapeRefused(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("outside"), 0o600); err != nil {
		t.Fatal(err)
	}
	objects := filepath.Join(e.dir, "objects")
	if err := os.Symlink(secret, filepath.Join(objects, "file-link")); err != nil {
		t.Skipf("symlinks unavailable: %v", err)
	}
	if err := os.Symlink(outside, filepath.Join(objects, "dir-link")); err != nil {
		t.Fatal(err)
	}
	if rc, err := e.store.Get(ctx, "file-link"); err == nil {
		b, _ := io.ReadAll(rc)
		rc.Close()
		t.Fatalf("Get through a symlink out of the store read %q", b)
	}
	if err := e.store.Put(ctx, "dir-link/planted", strings.NewReader("x"), 1); err == nil {
		t.Fatal("Put through a symlinked directory out of the store succeeded")
	}
	if got := entries(t, outside); len(got) != 1 {
		t.Fatalf("files appeared outside the store: %v", got)
	}
}

// failingReader yields n bytes and then an error.
type failingReader struct{ n int }

var errReader = errors.New("reader broke")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errReader
	}
	k := min(len(p), r.n)
	for i := range k {
		p[i] = 'z'
	}
	r.n -= k
	return k, nil
}

func TestPutFailureKeepsOldObject(t *testing.T) {
	e := newEnv(t, func(c *localfs.Config) { c.MaxObjectBytes = 1000 })
	ctx := t.Context()
	const key = "org/scan/obj"
	orig := []byte("original")
	if err := e.store.Put(ctx, key, bytes.NewReader(orig), int64(len(orig))); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		r    io.Reader
		size int64
		code string
		is   error
	}{
		{"reader error", &failingReader{n: 500}, 800, sentineldf.EINTERNAL, errReader},
		{"reader error, unknown size", &failingReader{n: 500}, -1, sentineldf.EINTERNAL, errReader},
		{"short reader", strings.NewReader("abc"), 5, sentineldf.EINVALID, nil},
		{"long reader", strings.NewReader("abcdefg"), 5, sentineldf.EINVALID, nil},
		{"declared too large", strings.NewReader("abc"), 1001, sentineldf.ETOOLARGE, nil},
		{"unknown size too large", bytes.NewReader(make([]byte, 1001)), -1, sentineldf.ETOOLARGE, nil},
		{"bad size", strings.NewReader("abc"), -2, sentineldf.EINVALID, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := e.store.Put(ctx, key, tt.r, tt.size)
			if sentineldf.ErrorCode(err) != tt.code {
				t.Fatalf("Put: error %v, want code %s", err, tt.code)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("Put: error %v does not wrap %v", err, tt.is)
			}
			rc, err := e.store.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(got, orig) {
				t.Fatalf("after a failed Put the object is %q, want %q", got, orig)
			}
			if tmp := entries(t, filepath.Join(e.dir, "tmp")); len(tmp) != 0 {
				t.Fatalf("temporary files left: %v", tmp)
			}
		})
	}
	t.Run("exactly the limit", func(t *testing.T) {
		if err := e.store.Put(ctx, key, bytes.NewReader(make([]byte, 1000)), -1); err != nil {
			t.Fatalf("Put of MaxObjectBytes bytes: %v", err)
		}
	})
}

func TestPrefixConflicts(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	put := func(key string) error { return e.store.Put(ctx, key, strings.NewReader("x"), 1) }
	if err := put("a/b"); err != nil {
		t.Fatal(err)
	}
	if err := put("a/b/c"); sentineldf.ErrorCode(err) != sentineldf.ECONFLICT {
		t.Errorf("Put under an object: %v, want code %s", err, sentineldf.ECONFLICT)
	}
	if err := put("x/y/z"); err != nil {
		t.Fatal(err)
	}
	if err := put("x/y"); sentineldf.ErrorCode(err) != sentineldf.ECONFLICT {
		t.Errorf("Put over a prefix: %v, want code %s", err, sentineldf.ECONFLICT)
	}
	if _, err := e.store.Get(ctx, "x/y"); sentineldf.ErrorCode(err) != sentineldf.ENOTFOUND {
		t.Errorf("Get of a prefix: %v, want code %s", err, sentineldf.ENOTFOUND)
	}
	if _, err := e.store.Stat(ctx, "x/y"); sentineldf.ErrorCode(err) != sentineldf.ENOTFOUND {
		t.Errorf("Stat of a prefix: %v, want code %s", err, sentineldf.ENOTFOUND)
	}
	if _, err := e.store.Stat(ctx, "a/b/c"); sentineldf.ErrorCode(err) != sentineldf.ENOTFOUND {
		t.Errorf("Stat below an object: %v, want code %s", err, sentineldf.ENOTFOUND)
	}
	if err := e.store.Delete(ctx, "x/y"); err != nil {
		t.Errorf("Delete of a prefix: %v", err)
	}
	if _, err := e.store.Stat(ctx, "x/y/z"); err != nil {
		t.Errorf("Delete of a prefix removed an object under it: %v", err)
	}
}

func TestDeleteRemovesEmptyDirectories(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	for _, k := range []string{"o/s/input/0/f", "o/t/g"} {
		if err := e.store.Put(ctx, k, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.Delete(ctx, "o/s/input/0/f"); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, filepath.Join(e.dir, "objects", "o")); len(got) != 1 || got[0] != "t" {
		t.Fatalf("objects/o holds %v, want [t]", got)
	}
	if err := e.store.Delete(ctx, "o/t/g"); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, filepath.Join(e.dir, "objects")); len(got) != 0 {
		t.Fatalf("objects holds %v, want nothing", got)
	}
}

func TestGetRangeBounds(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	if err := e.store.Put(ctx, "r", strings.NewReader("0123456789"), 10); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name           string
		offset, length int64
		want           string
		code           string
	}{
		{"negative offset", -1, 1, "", sentineldf.EINVALID},
		{"offset past end", 11, 1, "", sentineldf.EINVALID},
		{"offset at end", 10, -1, "", ""},
		{"zero length", 3, 0, "", ""},
		{"middle", 3, 4, "3456", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := e.store.GetRange(ctx, "r", tt.offset, tt.length)
			if sentineldf.ErrorCode(err) != tt.code {
				t.Fatalf("GetRange(%d, %d): error %v, want code %q", tt.offset, tt.length, err, tt.code)
			}
			if err != nil {
				return
			}
			defer rc.Close()
			got, _ := io.ReadAll(rc)
			if string(got) != tt.want {
				t.Fatalf("GetRange(%d, %d) = %q, want %q", tt.offset, tt.length, got, tt.want)
			}
		})
	}
}

func TestPing(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.store.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := os.RemoveAll(filepath.Join(e.dir, "tmp")); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Ping(t.Context()); err == nil {
		t.Fatal("Ping succeeded without a writable temporary directory")
	}
}

func TestNewRemovesStaleTemporaryFiles(t *testing.T) {
	e := newEnv(t, nil)
	tmp := filepath.Join(e.dir, "tmp")
	for _, name := range []string{"old.part", "young.part", "old.other"} {
		if err := os.WriteFile(filepath.Join(tmp, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour)
	for _, name := range []string{"old.part", "old.other"} {
		if err := os.Chtimes(filepath.Join(tmp, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	s, err := localfs.New(localfs.Config{Dir: e.dir, Secret: testSecret, BaseURL: func() string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if got := strings.Join(entries(t, tmp), ","); got != "old.other,young.part" {
		t.Fatalf("tmp holds %s, want old.other,young.part", got)
	}
}

func TestPresignedURLShape(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 500_000_000)}
	base := "https://blobs.example/"
	s, err := localfs.New(localfs.Config{Dir: t.TempDir(), Secret: testSecret, Now: clock.Now, BaseURL: func() string { return base }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req, err := s.PresignGet(t.Context(), "org/scan/a b#?.jsonl", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := "https://blobs.example/blobs/org/scan/a%20b%23%3F.jsonl?method=GET&expires=1000002&signature="
	if !strings.HasPrefix(req.URL, want) {
		t.Errorf("URL = %s, want prefix %s", req.URL, want)
	}
	// Rounded up: the URL lives at least its ttl.
	if !req.ExpiresAt.Equal(time.Unix(1_000_002, 0)) {
		t.Errorf("ExpiresAt = %v, want %v", req.ExpiresAt, time.Unix(1_000_002, 0))
	}
	put, err := s.PresignPut(t.Context(), "k", sentineldf.PutConstraints{Size: 5, SHA256: strings.Repeat("AB", 32)}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(put.URL, "&size=5&sha256="+strings.Repeat("ab", 32)+"&") {
		t.Errorf("PUT URL %s does not bind size and the lower-cased sha256", put.URL)
	}
	if _, err := s.PresignGet(t.Context(), "k", localfs.MaxPresignTTL+time.Second); sentineldf.ErrorCode(err) != sentineldf.EINVALID {
		t.Errorf("PresignGet with a ttl over the maximum: %v, want code %s", err, sentineldf.EINVALID)
	}
	base = ""
	if _, err := s.PresignGet(t.Context(), "k", time.Minute); err == nil {
		t.Error("PresignGet without a base URL succeeded")
	}
}

func TestPresignPutLimit(t *testing.T) {
	e := newEnv(t, func(c *localfs.Config) { c.MaxObjectBytes = 100 })
	for _, tt := range []struct {
		size int64
		code string
	}{{100, ""}, {101, sentineldf.ETOOLARGE}, {0, sentineldf.EINVALID}} {
		_, err := e.store.PresignPut(t.Context(), "k", sentineldf.PutConstraints{Size: tt.size}, time.Minute)
		if sentineldf.ErrorCode(err) != tt.code {
			t.Errorf("PresignPut of %d bytes with a limit of 100: %v, want code %q", tt.size, err, tt.code)
		}
	}
}

// problemOf decodes a problem+json response.
func problemOf(t *testing.T, h http.Header, body []byte) sentineldf.Problem {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json (body %s)", ct, body)
	}
	var p sentineldf.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("decode problem %s: %v", body, err)
	}
	return p
}

// unreadBody fails the test when read: the handler must reject first.
type unreadBody struct{ t *testing.T }

func (b unreadBody) Read([]byte) (int, error) {
	b.t.Error("handler read a body it should have rejected from Content-Length")
	return 0, io.EOF
}

// flipLast changes the last character of a URL (a signature's hex digit).
func flipLast(u string) string {
	if strings.HasSuffix(u, "0") {
		return u[:len(u)-1] + "1"
	}
	return u[:len(u)-1] + "0"
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestHandler(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	e := newEnv(t, func(c *localfs.Config) { c.Now = clock.Now })
	ctx := t.Context()
	data := []byte("0123456789abcdef")
	if err := e.store.Put(ctx, "org/scan/results/résumé.jsonl", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	get, err := e.store.PresignGet(ctx, "org/scan/results/résumé.jsonl", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	missing, err := e.store.PresignGet(ctx, "org/scan/results/none", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	upData := []byte("uploaded!")
	put, err := e.store.PresignPut(ctx, "org/scan/input/0/up.bin", sentineldf.PutConstraints{Size: int64(len(upData)), SHA256: sum(upData)}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	type request struct {
		method, url string
		body        io.Reader
		length      int64 // Content-Length; -1 unknown
		header      map[string]string
	}
	tests := []struct {
		name       string
		req        request
		status     int
		code       string
		detail     []string // substrings of the problem's detail
		wantBody   string
		wantHeader map[string]string
	}{
		{
			name:     "GET",
			req:      request{method: "GET", url: get.URL},
			status:   200,
			wantBody: string(data),
			wantHeader: map[string]string{
				"Content-Type":           "application/octet-stream",
				"Content-Disposition":    "attachment; filename*=utf-8''r%C3%A9sum%C3%A9.jsonl",
				"X-Content-Type-Options": "nosniff",
				"Content-Length":         "16",
				"Accept-Ranges":          "bytes",
			},
		},
		{name: "HEAD", req: request{method: "HEAD", url: get.URL}, status: 200, wantHeader: map[string]string{"Content-Length": "16"}},
		{name: "Range", req: request{method: "GET", url: get.URL, header: map[string]string{"Range": "bytes=10-"}}, status: 206, wantBody: "abcdef"},
		{name: "missing object", req: request{method: "GET", url: missing.URL}, status: 404, code: sentineldf.ENOTFOUND},
		{name: "bad signature", req: request{method: "GET", url: flipLast(get.URL)}, status: 403, code: sentineldf.EFORBIDDEN, detail: []string{"signature is invalid"}},
		{name: "no signature", req: request{method: "GET", url: get.URL[:strings.Index(get.URL, "&signature=")]}, status: 403, code: sentineldf.EFORBIDDEN, detail: []string{"signature"}},
		{name: "duplicate parameter", req: request{method: "GET", url: get.URL + "&method=GET"}, status: 403, code: sentineldf.EFORBIDDEN, detail: []string{"signature"}},
		{name: "other key", req: request{method: "GET", url: strings.Replace(get.URL, "results/", "input/", 1)}, status: 403, code: sentineldf.EFORBIDDEN, detail: []string{"signature"}},
		{name: "extended expiry", req: request{method: "GET", url: strings.Replace(get.URL, "expires=", "expires=9", 1)}, status: 403, code: sentineldf.EFORBIDDEN, detail: []string{"signature"}},
		{name: "PUT with a GET URL", req: request{method: "PUT", url: get.URL, body: strings.NewReader("x"), length: 1}, status: 403, code: sentineldf.EFORBIDDEN, detail: []string{"permits GET, not PUT"}},
		{name: "GET with a PUT URL", req: request{method: "GET", url: put.URL}, status: 403, code: sentineldf.EFORBIDDEN, detail: []string{"permits PUT, not GET"}},
		{name: "outside the prefix", req: request{method: "GET", url: e.srv.URL + "/elsewhere/x"}, status: 404, code: sentineldf.ENOTFOUND},
		{
			name:   "Content-Length over the declared size",
			req:    request{method: "PUT", url: put.URL, body: unreadBody{t}, length: 10},
			status: 413, code: sentineldf.ETOOLARGE, detail: []string{"Content-Length is 10", "declared 9"},
		},
		{
			name:   "Content-Length under the declared size",
			req:    request{method: "PUT", url: put.URL, body: unreadBody{t}, length: 8},
			status: 400, code: sentineldf.EINVALID, detail: []string{"Content-Length is 8", "declared 9"},
		},
		{
			name:   "streamed body longer",
			req:    request{method: "PUT", url: put.URL, body: strings.NewReader("uploaded!!"), length: -1},
			status: 400, code: sentineldf.EINVALID, detail: []string{"larger than its declared size of 9"},
		},
		{
			name:   "streamed body shorter",
			req:    request{method: "PUT", url: put.URL, body: strings.NewReader("upload"), length: -1},
			status: 400, code: sentineldf.EINVALID, detail: []string{"is 6 bytes", "declared size is 9"},
		},
		{
			name:   "sha256 mismatch",
			req:    request{method: "PUT", url: put.URL, body: strings.NewReader("UPLOADED!"), length: 9},
			status: 400, code: sentineldf.EINVALID, detail: []string{sum([]byte("UPLOADED!")), sum(upData)},
		},
		{
			name:   "broken body",
			req:    request{method: "PUT", url: put.URL, body: &failingReader{n: 3}, length: -1},
			status: 400, code: sentineldf.EINVALID, detail: []string{"reading the upload failed after 3 bytes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.req.method, tt.req.url, tt.req.body)
			req.ContentLength = tt.req.length
			for k, v := range tt.req.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			e.store.Handler().ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, tt.status)
			}
			if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
			}
			for k, v := range tt.wantHeader {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tt.code == "" {
				if tt.req.method != "HEAD" && rec.Body.String() != tt.wantBody {
					t.Errorf("body %q, want %q", rec.Body, tt.wantBody)
				}
				return
			}
			p := problemOf(t, rec.Header(), rec.Body.Bytes())
			if p.Code != tt.code || p.Status != tt.status {
				t.Errorf("problem code %q status %d, want %q %d", p.Code, p.Status, tt.code, tt.status)
			}
			for _, d := range tt.detail {
				if !strings.Contains(p.Detail, d) {
					t.Errorf("problem detail %q does not contain %q", p.Detail, d)
				}
			}
			if _, err := e.store.Stat(ctx, "org/scan/input/0/up.bin"); sentineldf.ErrorCode(err) != sentineldf.ENOTFOUND {
				t.Errorf("a failed request stored the upload: Stat error %v", err)
			}
			if tmp := entries(t, filepath.Join(e.dir, "tmp")); len(tmp) != 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
		})
	}

	t.Run("PUT succeeds", func(t *testing.T) {
		req := httptest.NewRequest("PUT", put.URL, bytes.NewReader(upData))
		rec := httptest.NewRecorder()
		e.store.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			t.Fatalf("status %d (%s), want 201", rec.Code, rec.Body)
		}
		info, err := e.store.Stat(ctx, "org/scan/input/0/up.bin")
		if err != nil || info.Size != int64(len(upData)) {
			t.Fatalf("Stat after upload: %+v, %v", info, err)
		}
	})

	t.Run("request id", func(t *testing.T) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Request-Id", "req-123")
			e.store.Handler().ServeHTTP(w, r)
		})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", missing.URL, nil))
		if p := problemOf(t, rec.Header(), rec.Body.Bytes()); p.RequestID != "req-123" {
			t.Fatalf("problem request_id %q, want req-123", p.RequestID)
		}
	})

	t.Run("expired", func(t *testing.T) {
		rec := httptest.NewRecorder()
		e.store.Handler().ServeHTTP(rec, httptest.NewRequest("GET", get.URL, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("status before expiry %d, want 200", rec.Code)
		}
		clock.Advance(time.Until(get.ExpiresAt) + time.Minute)
		rec = httptest.NewRecorder()
		e.store.Handler().ServeHTTP(rec, httptest.NewRequest("GET", get.URL, nil))
		if rec.Code != http.StatusForbidden {
			t.Fatalf("status after expiry %d, want 403", rec.Code)
		}
		p := problemOf(t, rec.Header(), rec.Body.Bytes())
		if p.Code != sentineldf.EFORBIDDEN || !strings.Contains(p.Detail, "expired") {
			t.Fatalf("problem %+v, want code forbidden and an expiry detail", p)
		}
	})
}

// A URL signed with one secret is refused by a store with another.
func TestSecretBindsURLs(t *testing.T) {
	a := newEnv(t, nil)
	other := bytes.Repeat([]byte("o"), localfs.MinSecretBytes)
	b, err := localfs.New(localfs.Config{Dir: a.dir, Secret: other, BaseURL: func() string { return a.srv.URL }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.store.Put(t.Context(), "k", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	req, err := b.PresignGet(t.Context(), "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	a.store.Handler().ServeHTTP(rec, httptest.NewRequest("GET", req.URL, nil))
	if rec.Code != http.StatusForbidden {
		t.Fatalf("status %d, want 403", rec.Code)
	}
}
