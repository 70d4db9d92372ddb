package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentineldf/sentineldf"
)

const testKey = "sdf_live_abcdefghijklmnop_abcdefghijklmnopqrstuvwxyz234567"

// recorded is a request the fake server received.
type recorded struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
}

// fake is an httptest server that records requests and answers with h.
type fake struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newFake(t *testing.T, h func(w http.ResponseWriter, r *http.Request, body []byte)) *fake {
	t.Helper()
	f := &fake{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), body})
		f.mu.Unlock()
		w.Header().Set("X-Request-Id", "req_"+strconv.Itoa(len(f.requests())))
		h(w, r, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// count returns how many requests had method and path.
func (f *fake) count(method, path string) int {
	n := 0
	for _, r := range f.requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

// sleeps records the waits a client asked for instead of sleeping.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.d)
}

// testClient returns a client of url whose waits are recorded, not slept.
func testClient(t *testing.T, url string, opts ...Option) (*Client, *sleeps) {
	t.Helper()
	c, err := New(url, testKey, opts...)
	if err != nil {
		t.Fatal(err)
	}
	s := &sleeps{}
	c.sleep = s.sleep
	return c, s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(sentineldf.Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Code: code, Detail: detail})
}

func TestEndpoints(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		call   func(ctx context.Context, c *Client) (any, error)
		method string
		path   string
		query  string
		body   string // the JSON request body, "" for none
		status int
		resp   string
		noAuth bool
		check  func(t *testing.T, got any)
	}{
		{
			name: "CreateOrg",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateOrg(ctx, sentineldf.CreateOrgRequest{Name: "acme", Plan: "pro"})
			},
			method: "POST", path: "/v1/admin/orgs", body: `{"name":"acme","plan":"pro"}`,
			status: 201, resp: `{"org":{"id":"org_1","name":"acme","plan":"pro","created_at":"2026-01-02T03:04:05Z"},"api_key":"sdf_live_new"}`,
			check: func(t *testing.T, got any) {
				r := got.(*sentineldf.CreateOrgResponse)
				if r.Org.ID != "org_1" || r.Org.Plan != "pro" || !r.Org.CreatedAt.Equal(t0) || r.APIKey != "sdf_live_new" {
					t.Errorf("got %+v %+v", r, r.Org)
				}
			},
		},
		{
			name: "CreateKey",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateKey(ctx, sentineldf.CreateKeyRequest{Name: "ci", Scopes: []string{"scan:read"}})
			},
			method: "POST", path: "/v1/auth/keys", body: `{"name":"ci","scopes":["scan:read"]}`,
			status: 201, resp: `{"key":{"id":"k1","name":"ci","scopes":["scan:read"]},"api_key":"sdf_live_k1"}`,
			check: func(t *testing.T, got any) {
				r := got.(*sentineldf.CreateKeyResponse)
				if r.Key.ID != "k1" || !r.Key.HasScope("scan:read") || r.APIKey != "sdf_live_k1" {
					t.Errorf("got %+v", r)
				}
			},
		},
		{
			name:   "ListKeys",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ListKeys(ctx) },
			method: "GET", path: "/v1/auth/keys",
			status: 200, resp: `{"keys":[{"id":"k2"},{"id":"k1"}]}`,
			check: func(t *testing.T, got any) {
				keys := got.([]*sentineldf.APIKey)
				if len(keys) != 2 || keys[0].ID != "k2" || keys[1].ID != "k1" {
					t.Errorf("got %v", keys)
				}
			},
		},
		{
			name:   "RevokeKey escapes the id",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.RevokeKey(ctx, "k/1") },
			method: "DELETE", path: "/v1/auth/keys/k%2F1",
			status: 200, resp: `{"key":{"id":"k/1","revoked_at":"2026-01-02T03:04:05Z"}}`,
			check: func(t *testing.T, got any) {
				if k := got.(*sentineldf.APIKey); k.ID != "k/1" || !k.Revoked() {
					t.Errorf("got %+v", k)
				}
			},
		},
		{
			name:   "WhoAmI",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.WhoAmI(ctx) },
			method: "GET", path: "/v1/auth/whoami",
			status: 200, resp: `{"org":{"id":"org_1"},"key":{"id":"k1","scopes":["admin"]}}`,
			check: func(t *testing.T, got any) {
				r := got.(*sentineldf.WhoAmIResponse)
				if r.Org.ID != "org_1" || !r.Key.HasScope(sentineldf.ScopeMBOMSign) {
					t.Errorf("got %+v", r)
				}
			},
		},
		{
			name: "CreateUploads",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateUploads(ctx, sentineldf.UploadsRequest{Files: []sentineldf.FileSpec{{Name: "a.jsonl", Size: 3}}})
			},
			method: "POST", path: "/v1/uploads", body: `{"files":[{"name":"a.jsonl","size":3}]}`,
			status: 201, resp: `{"job_id":"scan_1","uploads":[{"name":"a.jsonl","url":"http://x/u","method":"PUT","headers":{"X-A":"b"},"expires_at":"2026-01-02T03:04:05Z"}]}`,
			check: func(t *testing.T, got any) {
				r := got.(*sentineldf.UploadsResponse)
				if r.JobID != "scan_1" || len(r.Uploads) != 1 || r.Uploads[0].URL != "http://x/u" || r.Uploads[0].Headers["X-A"] != "b" || !r.Uploads[0].ExpiresAt.Equal(t0) {
					t.Errorf("got %+v", r)
				}
			},
		},
		{
			name: "Scan",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Scan(ctx, sentineldf.SyncScanRequest{Documents: []sentineldf.ScanDocument{{ID: "1", Text: "hi"}}})
			},
			method: "POST", path: "/v1/scan", body: `{"documents":[{"id":"1","text":"hi"}]}`,
			status: 200, resp: `{"results":[{"id":"1","band":"clean"}],"summary":{"documents":1,"counts":{"clean":1,"elevated":0,"quarantine":0},"cache_hits":1,"engine":"0.1.0","ruleset":"r"}}`,
			check: func(t *testing.T, got any) {
				r := got.(*sentineldf.SyncScanResponse)
				if len(r.Results) != 1 || string(r.Results[0]) != `{"id":"1","band":"clean"}` || r.Summary.Counts.Clean != 1 || r.Summary.CacheHits != 1 {
					t.Errorf("got %+v", r)
				}
			},
		},
		{
			name: "ScanAsync",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ScanAsync(ctx, sentineldf.AsyncScanRequest{Files: []sentineldf.FileSpec{{Name: "a", Size: 1, SHA256: "ab"}}, Priority: "high"})
			},
			method: "POST", path: "/v1/scan/async", body: `{"files":[{"name":"a","size":1,"sha256":"ab"}],"priority":"high"}`,
			status: 201, resp: `{"job_id":"scan_1","uploads":[]}`,
			check: func(t *testing.T, got any) {
				if r := got.(*sentineldf.UploadsResponse); r.JobID != "scan_1" {
					t.Errorf("got %+v", r)
				}
			},
		},
		{
			name:   "ConfirmScan",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ConfirmScan(ctx, "scan_1") },
			method: "POST", path: "/v1/scan/async/confirm", query: "job_id=scan_1",
			status: 202, resp: `{"job_id":"scan_1","state":"queued"}`,
			check: func(t *testing.T, got any) {
				if s := got.(*sentineldf.ScanStatus); s.State != sentineldf.StateQueued {
					t.Errorf("got %+v", s)
				}
			},
		},
		{
			name:   "ScanStatus",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ScanStatus(ctx, "scan_1") },
			method: "GET", path: "/v1/scan/status", query: "job_id=scan_1",
			status: 200, resp: `{"job_id":"scan_1","state":"succeeded","progress":{"docs_done":5,"docs_total":5,"bytes_done":10,"bytes_total":10},"counts":{"clean":3,"elevated":1,"quarantine":1},"malformed":2,"cache_hits":4,"results":{"results_url":"http://x/r"},"created_at":"2026-01-02T03:04:05Z","finished_at":"2026-01-02T03:04:05Z"}`,
			check: func(t *testing.T, got any) {
				s := got.(*sentineldf.ScanStatus)
				want := sentineldf.Progress{DocsDone: 5, DocsTotal: 5, BytesDone: 10, BytesTotal: 10}
				if s.Progress != want || s.Counts.Quarantine != 1 || s.Malformed != 2 || s.CacheHits != 4 || s.Results.ResultsURL != "http://x/r" || s.FinishedAt == nil {
					t.Errorf("got %+v", s)
				}
			},
		},
		{
			name:   "ListScans with paging",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ListScans(ctx, 10, "c1") },
			method: "GET", path: "/v1/scans", query: "cursor=c1&limit=10",
			status: 200, resp: `{"scans":[{"job_id":"scan_2"},{"job_id":"scan_1"}],"next_cursor":"c2"}`,
			check: func(t *testing.T, got any) {
				r := got.(*sentineldf.ScansResponse)
				if len(r.Scans) != 2 || r.Scans[0].JobID != "scan_2" || r.NextCursor != "c2" {
					t.Errorf("got %+v", r)
				}
			},
		},
		{
			name:   "ListScans first page",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ListScans(ctx, 0, "") },
			method: "GET", path: "/v1/scans",
			status: 200, resp: `{"scans":[]}`,
			check: func(t *testing.T, got any) {},
		},
		{
			name:   "CancelScan",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.CancelScan(ctx, "scan_1") },
			method: "POST", path: "/v1/scans/scan_1/cancel",
			status: 200, resp: `{"job_id":"scan_1","state":"canceled"}`,
			check: func(t *testing.T, got any) {
				if s := got.(*sentineldf.ScanStatus); s.State != sentineldf.StateCanceled {
					t.Errorf("got %+v", s)
				}
			},
		},
		{
			name:   "Usage",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.Usage(ctx) },
			method: "GET", path: "/v1/usage",
			status: 200, resp: `{"plan":"free","period":"2026-01","documents":7,"bytes":70,"quota":10000,"quota_remaining":9993,"daily":[{"date":"2026-01-02","documents":7,"bytes":70}]}`,
			check: func(t *testing.T, got any) {
				u := got.(*sentineldf.UsageResponse)
				if u.Docs != 7 || u.Quota == nil || *u.Quota != 10000 || *u.Remain != 9993 || len(u.Daily) != 1 || u.Daily[0].Date != "2026-01-02" {
					t.Errorf("got %+v", u)
				}
			},
		},
		{
			name:   "Usage unlimited",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.Usage(ctx) },
			method: "GET", path: "/v1/usage",
			status: 200, resp: `{"plan":"enterprise","quota":null,"quota_remaining":null}`,
			check: func(t *testing.T, got any) {
				if u := got.(*sentineldf.UsageResponse); u.Quota != nil || u.Remain != nil {
					t.Errorf("got %+v", u)
				}
			},
		},
		{
			name: "SignMBOM",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.SignMBOM(ctx, sentineldf.SignMBOMRequest{JobID: "scan_1", ApprovedBy: "me@example.com"})
			},
			method: "POST", path: "/v1/mbom", body: `{"job_id":"scan_1","approved_by":"me@example.com"}`,
			status: 201, resp: `{"mbom":{"id":"mbom_1","scan_id":"scan_1","key_id":"kid"},"envelope":{"payloadType":"x"},"url":"http://x/m"}`,
			check: func(t *testing.T, got any) {
				r := got.(*sentineldf.SignMBOMResponse)
				if r.MBOM.ID != "mbom_1" || string(r.Envelope) != `{"payloadType":"x"}` || r.URL != "http://x/m" {
					t.Errorf("got %+v", r)
				}
			},
		},
		{
			name: "VerifyMBOM",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.VerifyMBOM(ctx, sentineldf.VerifyMBOMRequest{Envelope: json.RawMessage(`{"a":1}`)})
			},
			method: "POST", path: "/v1/mbom/verify", body: `{"envelope":{"a":1}}`,
			status: 200, resp: `{"valid":false,"reason":"bad signature"}`,
			check: func(t *testing.T, got any) {
				if r := got.(*sentineldf.VerifyMBOMResponse); r.Valid || r.Reason != "bad signature" {
					t.Errorf("got %+v", r)
				}
			},
		},
		{
			name:   "MBOMKeys",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.MBOMKeys(ctx) },
			method: "GET", path: "/v1/mbom/keys",
			status: 200, resp: `{"keys":[{"key_id":"kid","public_key":"PEM"}]}`,
			check: func(t *testing.T, got any) {
				if k := got.([]*sentineldf.SigningKey); len(k) != 1 || k[0].KeyID != "kid" || k[0].PublicPEM != "PEM" {
					t.Errorf("got %+v", k)
				}
			},
		},
		{
			name:   "DeadJobs",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.DeadJobs(ctx) },
			method: "GET", path: "/v1/admin/jobs/dead",
			status: 200, resp: `{"jobs":[{"id":42,"kind":"scan_shard","attempts":5,"last_error":"boom"}]}`,
			check: func(t *testing.T, got any) {
				if j := got.([]sentineldf.DeadJob); len(j) != 1 || j[0].ID != 42 || j[0].LastError != "boom" {
					t.Errorf("got %+v", j)
				}
			},
		},
		{
			name:   "RetryJob",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.RetryJob(ctx, 42) },
			method: "POST", path: "/v1/admin/jobs/42/retry",
			status: 200, resp: `{}`,
			check: func(t *testing.T, got any) {},
		},
		{
			name:   "Health",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.Health(ctx) },
			method: "GET", path: "/health", noAuth: true,
			status: 200, resp: `{"status":"ok"}`,
			check: func(t *testing.T, got any) {},
		},
		{
			name:   "Ready",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.Ready(ctx) },
			method: "GET", path: "/health/ready", noAuth: true,
			status: 200, resp: `{"status":"ok"}`,
			check: func(t *testing.T, got any) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.resp)
			})
			c, _ := testClient(t, f.srv.URL, WithUserAgent("test-agent/1"))
			got, err := tt.call(context.Background(), c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			tt.check(t, got)
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tt.method || r.Path != tt.path || r.Query != tt.query {
				t.Errorf("request %s %s?%s, want %s %s?%s", r.Method, r.Path, r.Query, tt.method, tt.path, tt.query)
			}
			if string(r.Body) != tt.body {
				t.Errorf("body %s, want %s", r.Body, tt.body)
			}
			if ct := r.Header.Get("Content-Type"); (tt.body != "") != (ct == "application/json") {
				t.Errorf("Content-Type %q with body %q", ct, tt.body)
			}
			wantAuth := "Bearer " + testKey
			if tt.noAuth {
				wantAuth = ""
			}
			if got := r.Header.Get("Authorization"); got != wantAuth {
				t.Errorf("Authorization %q, want %q", got, wantAuth)
			}
			if got := r.Header.Get("Idempotency-Key"); (tt.method == "POST") != (got != "") {
				t.Errorf("Idempotency-Key %q on %s", got, tt.method)
			}
			if got := r.Header.Get("User-Agent"); got != "test-agent/1" {
				t.Errorf("User-Agent %q", got)
			}
		})
	}
}

func TestBaseURLPrefix(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, body []byte) { writeJSON(w, 200, map[string]any{}) })
	c, _ := testClient(t, f.srv.URL+"/sentineldf/")
	if _, err := c.Usage(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := f.requests()[0].Path; p != "/sentineldf/v1/usage" {
		t.Errorf("path %q", p)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		key     string
		opts    []Option
		wantErr string
	}{
		{name: "https", url: "https://api.example.com", key: testKey},
		{name: "loopback http", url: "http://127.0.0.1:8080/", key: testKey},
		{name: "localhost http", url: "http://localhost:8080", key: testKey},
		{name: "ipv6 loopback http", url: "http://[::1]:8080", key: testKey},
		{name: "remote http without a key", url: "http://api.example.com"},
		{name: "remote http allowed", url: "http://api.example.com", key: testKey, opts: []Option{WithInsecureHTTP()}},
		{name: "remote http", url: "http://api.example.com", key: testKey, wantErr: "clear text"},
		{name: "no scheme", url: "api.example.com", key: testKey, wantErr: "http:// or https://"},
		{name: "ftp", url: "ftp://api.example.com", key: testKey, wantErr: "http:// or https://"},
		{name: "query", url: "https://api.example.com?x=1", key: testKey, wantErr: "query"},
		{name: "user info", url: "https://u:p@api.example.com", key: testKey, wantErr: "user info"},
		{name: "key with a newline", url: "https://api.example.com", key: "sdf_live_x\nX-Evil: 1", wantErr: "printable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.url, tt.key, tt.opts...)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
					if tt.key != "" && strings.Contains(s, tt.key) {
						t.Errorf("%q shows the key", s)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New: %v, want %q", err, tt.wantErr)
			}
			if !IsCode(err, sentineldf.EINVALID) {
				t.Errorf("code of %v is not invalid", err)
			}
			if tt.key != "" && strings.Contains(err.Error(), tt.key) {
				t.Errorf("error shows the key: %v", err)
			}
		})
	}
}

func TestProblemDecoding(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		wantCode    string
		wantMsg     []string
	}{
		{
			name: "problem+json", status: 404, contentType: "application/problem+json",
			body:     `{"type":"about:blank","title":"Not Found","status":404,"code":"not_found","detail":"scan not found","request_id":"req_body"}`,
			wantCode: sentineldf.ENOTFOUND, wantMsg: []string{"not_found: scan not found", "HTTP 404", "request req_1"},
		},
		{
			name: "field error", status: 400, contentType: "application/problem+json",
			body:     `{"title":"Bad Request","status":400,"code":"invalid","field":"files.name","detail":"must be 1 to 255 bytes"}`,
			wantCode: sentineldf.EINVALID, wantMsg: []string{"invalid: files.name: must be 1 to 255 bytes"},
		},
		{
			name: "field already in detail", status: 400, contentType: "application/problem+json",
			body:     `{"status":400,"code":"invalid","field":"name","detail":"name: too long"}`,
			wantCode: sentineldf.EINVALID, wantMsg: []string{"invalid: name: too long ("},
		},
		{
			name: "idempotency", status: 422, contentType: "application/problem+json",
			body:     `{"status":422,"code":"idempotency_reused","detail":"key reused with another body"}`,
			wantCode: sentineldf.EIDEMPOTENCY, wantMsg: []string{"idempotency_reused"},
		},
		{
			name: "html from a proxy", status: 502, contentType: "text/html", body: "<html>bad gateway</html>",
			wantCode: sentineldf.EUNAVAILABLE, wantMsg: []string{"unavailable: Bad Gateway (HTTP 502"},
		},
		{
			name: "json without a code", status: 403, contentType: "application/json", body: `{"error":"nope"}`,
			wantCode: sentineldf.EFORBIDDEN, wantMsg: []string{"forbidden: Forbidden"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			c, _ := testClient(t, f.srv.URL, WithMaxRetries(0))
			_, err := c.ScanStatus(context.Background(), "scan_1")
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if ae.Status != tt.status || ae.Code() != tt.wantCode || !IsCode(err, tt.wantCode) {
				t.Errorf("status %d code %q, want %d %q", ae.Status, ae.Code(), tt.status, tt.wantCode)
			}
			if ae.RequestID != "req_1" {
				t.Errorf("request id %q", ae.RequestID)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q lacks %q", err, m)
				}
			}
			if IsCode(err, sentineldf.ECONFLICT) {
				t.Errorf("IsCode matched the wrong code")
			}
		})
	}
}

func TestRetries(t *testing.T) {
	base := 100 * time.Millisecond
	tests := []struct {
		name string
		// responses are the statuses answered in turn (the last repeats); a
		// status of 0 drops the connection.
		responses  []int
		retryAfter string
		code       string // the problem code of error responses
		post       bool
		ctxTimeout time.Duration
		wantCalls  int
		wantErr    string // the code of the final error, "" for success
		wantSleeps func(t *testing.T, d []time.Duration)
	}{
		{
			name: "429 honours Retry-After", responses: []int{429, 200}, retryAfter: "3", code: sentineldf.ERATELIMITED, post: true,
			wantCalls: 2,
			wantSleeps: func(t *testing.T, d []time.Duration) {
				if !slices.Equal(d, []time.Duration{3 * time.Second}) {
					t.Errorf("slept %v, want [3s]", d)
				}
			},
		},
		{
			name: "503 backs off exponentially with jitter", responses: []int{503, 503, 200}, code: sentineldf.EUNAVAILABLE,
			wantCalls: 3,
			wantSleeps: func(t *testing.T, d []time.Duration) {
				if len(d) != 2 || d[0] < base/2 || d[0] > base || d[1] < base || d[1] > 2*base {
					t.Errorf("slept %v, want [%v..%v] then [%v..%v]", d, base/2, base, base, 2*base)
				}
			},
		},
		{name: "502 and 504 are retried", responses: []int{502, 504, 200}, wantCalls: 3},
		{name: "a dropped connection is retried", responses: []int{0, 200}, post: true, wantCalls: 2},
		{name: "500 is not retried", responses: []int{500, 200}, code: sentineldf.EINTERNAL, wantCalls: 1, wantErr: sentineldf.EINTERNAL},
		{name: "400 is not retried", responses: []int{400, 200}, code: sentineldf.EINVALID, post: true, wantCalls: 1, wantErr: sentineldf.EINVALID},
		{name: "an exhausted quota is not retried", responses: []int{429, 200}, retryAfter: "1", code: sentineldf.EQUOTA, wantCalls: 1, wantErr: sentineldf.EQUOTA},
		{name: "a Retry-After over the limit is not waited", responses: []int{429, 200}, retryAfter: "86400", code: sentineldf.ERATELIMITED, wantCalls: 1, wantErr: sentineldf.ERATELIMITED},
		{name: "a Retry-After past the deadline is not waited", responses: []int{429, 200}, retryAfter: "60", code: sentineldf.ERATELIMITED, ctxTimeout: time.Minute / 2, wantCalls: 1, wantErr: sentineldf.ERATELIMITED},
		{name: "retries run out", responses: []int{503}, code: sentineldf.EUNAVAILABLE, post: true, wantCalls: 4, wantErr: sentineldf.EUNAVAILABLE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			n := 0
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
				mu.Lock()
				status := tt.responses[min(n, len(tt.responses)-1)]
				n++
				mu.Unlock()
				switch {
				case status == 0:
					conn, _, err := w.(http.Hijacker).Hijack()
					if err == nil {
						conn.Close()
					}
				case status == 200:
					writeJSON(w, 200, sentineldf.ScanStatus{JobID: "scan_1", State: "queued"})
				default:
					if tt.retryAfter != "" {
						w.Header().Set("Retry-After", tt.retryAfter)
						w.Header().Set("RateLimit-Limit", "60")
						w.Header().Set("RateLimit-Remaining", "0")
					}
					writeProblem(w, status, tt.code, "try later")
				}
			})
			c, s := testClient(t, f.srv.URL, WithMaxRetries(3), WithRetryBaseDelay(base))
			ctx := context.Background()
			if tt.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTimeout)
				defer cancel()
			}
			var err error
			if tt.post {
				_, err = c.ConfirmScan(ctx, "scan_1")
			} else {
				_, err = c.ScanStatus(ctx, "scan_1")
			}
			reqs := f.requests()
			if len(reqs) != tt.wantCalls {
				t.Errorf("%d requests, want %d", len(reqs), tt.wantCalls)
			}
			if tt.wantErr == "" && err != nil {
				t.Fatalf("error %v", err)
			}
			if tt.wantErr != "" && !IsCode(err, tt.wantErr) {
				t.Fatalf("error %v, want code %s", err, tt.wantErr)
			}
			if tt.wantSleeps != nil {
				tt.wantSleeps(t, s.all())
			}
			if len(s.all()) != len(reqs)-1 {
				t.Errorf("slept %d times for %d requests", len(s.all()), len(reqs))
			}
			if tt.post {
				key := reqs[0].Header.Get("Idempotency-Key")
				for i, r := range reqs {
					if got := r.Header.Get("Idempotency-Key"); got == "" || got != key {
						t.Errorf("attempt %d: Idempotency-Key %q, want %q on every retry", i, got, key)
					}
				}
			}
		})
	}
}

func TestRetryAfterErrorField(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Retry-After", "7")
		writeProblem(w, 429, sentineldf.ERATELIMITED, "slow down")
	})
	c, _ := testClient(t, f.srv.URL, WithMaxRetries(0))
	_, err := c.Usage(context.Background())
	var ae *Error
	if !errors.As(err, &ae) || ae.RetryAfter != 7*time.Second {
		t.Fatalf("error %#v, want RetryAfter 7s", err)
	}
}

func TestIdempotencyKeys(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		writeJSON(w, 200, sentineldf.ScanStatus{})
	})
	c, _ := testClient(t, f.srv.URL)
	ctx := context.Background()
	for range 2 {
		if _, err := c.CancelScan(ctx, "scan_1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CancelScan(WithIdempotencyKey(ctx, "mine-1"), "scan_1"); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	k0, k1, k2 := reqs[0].Header.Get("Idempotency-Key"), reqs[1].Header.Get("Idempotency-Key"), reqs[2].Header.Get("Idempotency-Key")
	if k0 == "" || k0 == k1 || len(k0) < 20 {
		t.Errorf("generated keys %q and %q: want distinct random keys", k0, k1)
	}
	if k2 != "mine-1" {
		t.Errorf("caller's key: sent %q", k2)
	}
	_, err := c.CancelScan(WithIdempotencyKey(ctx, "bad key"), "scan_1")
	if !IsCode(err, sentineldf.EINVALID) || len(f.requests()) != 3 {
		t.Errorf("a key with a space: %v, %d requests", err, len(f.requests()))
	}
}

func TestEmptyIDRejected(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, body []byte) {})
	c, _ := testClient(t, f.srv.URL)
	if _, err := c.ScanStatus(context.Background(), ""); !IsCode(err, sentineldf.EINVALID) {
		t.Errorf("error %v", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests", n)
	}
}

// scanServer fakes the async scan flow: create, presigned upload, confirm,
// status, results download and cancel.
type scanServer struct {
	*fake
	t *testing.T
	// statuses are the states of successive status polls (the last
	// repeats).
	statuses []string
	// failUpload answers the first upload attempts of file 0 with these
	// statuses.
	failUpload []int
	// expireResults answers the first results download with 403.
	expireResults bool

	mu       sync.Mutex
	specs    []sentineldf.FileSpec
	uploaded map[int][]byte
	polls    int
	puts     int
	results  int
}

const resultsBody = `{"id":"a.jsonl:1","band":"clean"}` + "\n"

func newScanServer(t *testing.T, s *scanServer) *scanServer {
	s.t = t
	s.uploaded = map[int][]byte{}
	s.fake = newFake(t, s.handle)
	return s
}

func (s *scanServer) handle(w http.ResponseWriter, r *http.Request, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	base := s.fake.srv.URL
	auth := r.Header.Get("Authorization") == "Bearer "+testKey
	switch {
	case r.Method == "POST" && r.URL.Path == "/v1/scan/async" && auth:
		var req sentineldf.AsyncScanRequest
		if err := json.Unmarshal(body, &req); err != nil {
			writeProblem(w, 400, sentineldf.EINVALID, err.Error())
			return
		}
		s.specs = req.Files
		resp := sentineldf.UploadsResponse{JobID: "scan_1"}
		for i, f := range req.Files {
			resp.Uploads = append(resp.Uploads, sentineldf.Upload{Name: f.Name, PresignedRequest: sentineldf.PresignedRequest{
				URL: base + "/upload/" + strconv.Itoa(i) + "?sig=secret", Method: "PUT",
				Headers: map[string]string{"X-Upload-Token": "tok" + strconv.Itoa(i)},
			}})
		}
		writeJSON(w, 201, resp)
	case r.Method == "PUT" && strings.HasPrefix(r.URL.Path, "/upload/"):
		s.puts++
		i, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/upload/"))
		if i == 0 && len(s.failUpload) > 0 {
			st := s.failUpload[0]
			s.failUpload = s.failUpload[1:]
			writeProblem(w, st, "", "upload refused")
			return
		}
		spec := s.specs[i]
		sum := sha256.Sum256(body)
		switch {
		case r.Header.Get("Authorization") != "":
			writeProblem(w, 400, sentineldf.EINVALID, "API key sent to a presigned URL")
		case r.Header.Get("X-Upload-Token") != "tok"+strconv.Itoa(i) || r.URL.Query().Get("sig") != "secret":
			writeProblem(w, 403, sentineldf.EFORBIDDEN, "bad signature")
		case len(r.TransferEncoding) > 0 || r.ContentLength != spec.Size:
			writeProblem(w, 400, sentineldf.EINVALID, fmt.Sprintf("content length %d %v, want %d", r.ContentLength, r.TransferEncoding, spec.Size))
		case int64(len(body)) != spec.Size || hex.EncodeToString(sum[:]) != spec.SHA256:
			writeProblem(w, 400, sentineldf.EINVALID, "body does not match its declared size and sha256")
		default:
			s.uploaded[i] = body
			w.WriteHeader(200)
		}
	case r.Method == "POST" && r.URL.Path == "/v1/scan/async/confirm" && auth:
		if len(s.uploaded) != len(s.specs) {
			writeProblem(w, 409, sentineldf.ECONFLICT, "files missing")
			return
		}
		writeJSON(w, 202, sentineldf.ScanStatus{JobID: "scan_1", State: sentineldf.StateQueued})
	case r.Method == "GET" && r.URL.Path == "/v1/scan/status" && auth:
		state := s.statuses[min(s.polls, len(s.statuses)-1)]
		s.polls++
		st := sentineldf.ScanStatus{JobID: "scan_1", State: state, Progress: sentineldf.Progress{DocsDone: int64(s.polls), DocsTotal: 10}}
		switch state {
		case sentineldf.StateSucceeded:
			st.Counts = sentineldf.Counts{Clean: 8, Elevated: 1, Quarantine: 1}
			st.Results = &sentineldf.ResultURLs{ResultsURL: base + "/results/" + strconv.Itoa(s.polls) + "?sig=secret"}
		case sentineldf.StateFailed:
			st.Error = "engine exploded"
		}
		writeJSON(w, 200, st)
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/results/"):
		s.results++
		if r.Header.Get("Authorization") != "" {
			writeProblem(w, 400, sentineldf.EINVALID, "API key sent to a presigned URL")
			return
		}
		if s.expireResults && s.results == 1 {
			writeProblem(w, 403, sentineldf.EFORBIDDEN, "expired")
			return
		}
		io.WriteString(w, resultsBody)
	case r.Method == "POST" && r.URL.Path == "/v1/scans/scan_1/cancel" && auth:
		writeJSON(w, 200, sentineldf.ScanStatus{JobID: "scan_1", State: sentineldf.StateCanceled})
	default:
		writeProblem(w, 404, sentineldf.ENOTFOUND, r.Method+" "+r.URL.Path)
	}
}

// dataset writes files under a temp dir and returns it.
func dataset(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestScanFiles(t *testing.T) {
	big := strings.Repeat(`{"text":"hello world"}`+"\n", 200_000) // 4.6 MB: several progress reports
	dir := dataset(t, map[string]string{
		"data/z.jsonl":     `{"text":"z"}` + "\n",
		"data/a.jsonl":     big,
		"data/sub/b.jsonl": `{"text":"b"}` + "\n",
		"data/skip.bin":    "\x00\x01",
		"data/empty.jsonl": "",
		"other/one.txt":    "one\n",
	})
	srv := newScanServer(t, &scanServer{
		statuses:   []string{"queued", "running", "running", "succeeded"},
		failUpload: []int{503},
	})
	c, sl := testClient(t, srv.srv.URL)
	var states []string
	var uploads [][2]int64
	res, err := c.ScanFiles(context.Background(),
		[]string{filepath.Join(dir, "data"), filepath.Join(dir, "other", "one.txt")},
		ScanOptions{
			Filter:            func(name string) bool { return !strings.HasSuffix(name, ".bin") },
			UploadConcurrency: 2,
			PollInterval:      100 * time.Millisecond,
			MaxPollInterval:   120 * time.Millisecond,
			Progress:          func(st sentineldf.ScanStatus) { states = append(states, st.State) },
			UploadProgress:    func(done, total int64) { uploads = append(uploads, [2]int64{done, total}) },
		})
	if err != nil {
		t.Fatalf("ScanFiles: %v", err)
	}
	var names []string
	for _, f := range res.Files {
		names = append(names, f.Name)
	}
	wantNames := []string{"a.jsonl", "empty.jsonl", "sub/b.jsonl", "z.jsonl", "one.txt"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("files %q, want %q", names, wantNames)
	}
	srv.mu.Lock()
	if len(srv.uploaded) != 5 || string(srv.uploaded[0]) != big || srv.puts != 6 {
		t.Errorf("uploaded %d files in %d PUTs, want 5 in 6 (one retried)", len(srv.uploaded), srv.puts)
	}
	srv.mu.Unlock()
	if want := []string{"queued", "queued", "running", "running", "succeeded"}; !slices.Equal(states, want) {
		t.Errorf("progress states %q, want %q", states, want)
	}
	total := int64(len(big) + 13 + 13 + 4)
	if len(uploads) < 3 || uploads[0] != [2]int64{0, total} || uploads[len(uploads)-1] != [2]int64{total, total} {
		t.Errorf("upload progress %v, want from 0 to %d", uploads, total)
	}
	// The poll interval grows while nothing changes, up to its maximum; the
	// upload retry waited too.
	polls := 0
	for _, d := range sl.all() {
		if d >= 100*time.Millisecond && d <= 120*time.Millisecond {
			polls++
		}
	}
	if polls != 4 {
		t.Errorf("waits %v: want 4 poll waits of 100–120ms", sl.all())
	}
	if res.JobID() != "scan_1" || res.Status.Counts.Quarantine != 1 {
		t.Errorf("result %+v", res.Status)
	}
	out := filepath.Join(t.TempDir(), "results.jsonl")
	if err := res.Save(context.Background(), OutputResults, out); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if got, _ := os.ReadFile(out); string(got) != resultsBody {
		t.Errorf("results %q", got)
	}
	if err := res.Save(context.Background(), OutputClean, out+".clean"); !IsCode(err, sentineldf.ENOTFOUND) {
		t.Errorf("missing output: %v", err)
	}
	if _, err := os.Stat(out + ".clean"); !os.IsNotExist(err) {
		t.Errorf("a failed Save left a file: %v", err)
	}
}

func TestScanFilesEnds(t *testing.T) {
	dir := dataset(t, map[string]string{"a.jsonl": `{"text":"a"}` + "\n"})
	tests := []struct {
		name       string
		srv        *scanServer
		opts       ScanOptions
		wantState  string // of a *ScanError, or of the result when no error
		wantErr    string // in the error message
		wantCancel bool
	}{
		{name: "failed", srv: &scanServer{statuses: []string{"running", "failed"}}, wantState: "failed", wantErr: "scan scan_1 failed: engine exploded"},
		{name: "canceled", srv: &scanServer{statuses: []string{"canceled"}}, wantState: "canceled", wantErr: "scan scan_1 canceled"},
		{name: "no wait", srv: &scanServer{statuses: []string{"running"}}, opts: ScanOptions{NoWait: true}, wantState: "queued"},
		{name: "upload refused", srv: &scanServer{statuses: []string{"running"}, failUpload: []int{403}}, wantErr: "scan scan_1: upload a.jsonl: forbidden", wantCancel: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScanServer(t, tt.srv)
			c, _ := testClient(t, srv.srv.URL)
			res, err := c.ScanFiles(context.Background(), []string{dir}, tt.opts)
			if tt.wantErr == "" {
				if err != nil || res.Status.State != tt.wantState {
					t.Fatalf("got %v, %v", res, err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			var se *ScanError
			if tt.wantErr != "" && tt.wantState != "" && (!errors.As(err, &se) || se.Status.State != tt.wantState) {
				t.Errorf("error %v is not a *ScanError in state %s", err, tt.wantState)
			}
			if got := srv.count("POST", "/v1/scans/scan_1/cancel") == 1; got != tt.wantCancel {
				t.Errorf("scan canceled: %v, want %v", got, tt.wantCancel)
			}
			if strings.Contains(fmt.Sprint(err), "secret") {
				t.Errorf("error shows a presigned signature: %v", err)
			}
		})
	}
}

func TestScanFilesCancelStopsPolling(t *testing.T) {
	dir := dataset(t, map[string]string{"a.jsonl": `{"text":"a"}` + "\n"})
	srv := newScanServer(t, &scanServer{statuses: []string{"running"}})
	c, _ := testClient(t, srv.srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	_, err := c.ScanFiles(ctx, []string{dir}, ScanOptions{Progress: func(sentineldf.ScanStatus) {
		calls++
		if calls == 3 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	// Progress saw the confirmation and two polls; nothing was polled after.
	if n := srv.count("GET", "/v1/scan/status"); n != 2 {
		t.Errorf("%d status polls, want 2", n)
	}
	if n := srv.count("POST", "/v1/scans/scan_1/cancel"); n != 0 {
		t.Errorf("a confirmed scan was canceled on the server")
	}
}

func TestResultRefreshesExpiredURL(t *testing.T) {
	srv := newScanServer(t, &scanServer{statuses: []string{"succeeded"}, expireResults: true})
	c, _ := testClient(t, srv.srv.URL)
	res, err := c.Result(context.Background(), "scan_1")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := res.Download(context.Background(), OutputResults, &buf); err != nil {
		t.Fatalf("Download: %v", err)
	}
	if buf.String() != resultsBody || srv.count("GET", "/v1/scan/status") != 2 {
		t.Errorf("got %q after %d status calls", buf.String(), srv.count("GET", "/v1/scan/status"))
	}
}

func TestResultNotReady(t *testing.T) {
	srv := newScanServer(t, &scanServer{statuses: []string{"running"}})
	c, _ := testClient(t, srv.srv.URL)
	if _, err := c.Result(context.Background(), "scan_1"); !IsCode(err, sentineldf.ECONFLICT) {
		t.Errorf("error %v", err)
	}
}

func TestCollectFilesErrors(t *testing.T) {
	many := map[string]string{}
	for i := range sentineldf.MaxFilesPerScan + 1 {
		many[fmt.Sprintf("f%03d.txt", i)] = "x"
	}
	manyDir := dataset(t, many)
	dup := dataset(t, map[string]string{"a/x.jsonl": "1", "b/x.jsonl": "2"})
	empty := t.TempDir()
	tests := []struct {
		name  string
		paths []string
		code  string
		msg   string
	}{
		{name: "no paths", code: sentineldf.EINVALID, msg: "no paths"},
		{name: "missing", paths: []string{filepath.Join(empty, "nope")}, code: sentineldf.EINTERNAL, msg: "no such file"},
		{name: "empty dir", paths: []string{empty}, code: sentineldf.EINVALID, msg: "no files"},
		{name: "too many files", paths: []string{manyDir}, code: sentineldf.ETOOLARGE, msg: "more than 100 files"},
		{name: "duplicate names", paths: []string{filepath.Join(dup, "a"), filepath.Join(dup, "b")}, code: sentineldf.EINVALID, msg: `both be named "x.jsonl"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := collectFiles(context.Background(), tt.paths, nil)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %v, want %q", err, tt.msg)
			}
			if got := sentineldf.ErrorCode(err); got != tt.code {
				t.Errorf("code %q, want %q", got, tt.code)
			}
		})
	}
}

func TestDownload(t *testing.T) {
	tests := []struct {
		name      string
		handler   func(n int, w http.ResponseWriter)
		wantBody  string
		wantCalls int
		wantErr   string
	}{
		{
			name: "retried before the first byte",
			handler: func(n int, w http.ResponseWriter) {
				if n == 0 {
					writeProblem(w, 503, "", "busy")
					return
				}
				io.WriteString(w, "payload")
			},
			wantBody: "payload", wantCalls: 2,
		},
		{
			name: "not retried after a partial write",
			handler: func(n int, w http.ResponseWriter) {
				w.Header().Set("Content-Length", "100")
				io.WriteString(w, "partial")
			},
			wantBody: "partial", wantCalls: 1, wantErr: "unexpected EOF",
		},
		{
			name:      "not found",
			handler:   func(n int, w http.ResponseWriter) { writeProblem(w, 404, sentineldf.ENOTFOUND, "no object") },
			wantCalls: 1, wantErr: "not_found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			n := 0
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
				mu.Lock()
				i := n
				n++
				mu.Unlock()
				tt.handler(i, w)
			})
			c, _ := testClient(t, f.srv.URL)
			var buf bytes.Buffer
			err := c.Download(context.Background(), "/objects/x?sig=secret", &buf)
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error shows the signature: %v", err)
			}
			if buf.String() != tt.wantBody || len(f.requests()) != tt.wantCalls {
				t.Errorf("body %q after %d calls, want %q after %d", buf.String(), len(f.requests()), tt.wantBody, tt.wantCalls)
			}
			for _, r := range f.requests() {
				if r.Header.Get("Authorization") != "" || r.Path != "/objects/x" {
					t.Errorf("request %s with Authorization %q", r.Path, r.Header.Get("Authorization"))
				}
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"0.25", 250 * time.Millisecond},
		{"-1", 0},
		{"soon", 0},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second},
		{now.Add(-10 * time.Second).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestWaitBackoff(t *testing.T) {
	var mu sync.Mutex
	polls := 0
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		mu.Lock()
		polls++
		n := polls
		mu.Unlock()
		st := sentineldf.ScanStatus{JobID: "scan_1", State: sentineldf.StateRunning, Progress: sentineldf.Progress{DocsDone: 1}}
		switch {
		case n == 5:
			st.Progress.DocsDone = 2 // progress: the wait stops growing
		case n == 7:
			st.State = sentineldf.StateSucceeded
		}
		writeJSON(w, 200, st)
	})
	c, s := testClient(t, f.srv.URL)
	res, err := c.Wait(context.Background(), "scan_1", ScanOptions{PollInterval: 100 * time.Millisecond, MaxPollInterval: 300 * time.Millisecond})
	if err != nil || res.Status.State != sentineldf.StateSucceeded {
		t.Fatalf("Wait: %v %v", res, err)
	}
	ms := time.Millisecond
	want := []time.Duration{100 * ms, 150 * ms, 225 * ms, 300 * ms, 300 * ms, 300 * ms}
	if got := s.all(); !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
}

// failingWriter refuses every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestLocalFailuresNotRetried(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, body []byte) { io.WriteString(w, "payload") })
	c, s := testClient(t, f.srv.URL)
	ctx := context.Background()
	if err := c.Download(ctx, "/objects/x", failingWriter{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("download to a failing writer: %v", err)
	}
	err := c.UploadFile(ctx, sentineldf.PresignedRequest{URL: "/upload/0", Method: "PUT"}, filepath.Join(t.TempDir(), "missing"))
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("upload of a missing file: %v", err)
	}
	err = c.upload(ctx, sentineldf.PresignedRequest{URL: "/upload/0", Method: "PUT"}, filepath.Join(t.TempDir(), "gone"), 5, nil)
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("upload of a file removed after hashing: %v", err)
	}
	if n := len(f.requests()); n != 1 || len(s.all()) != 0 {
		t.Errorf("%d requests and %d waits, want 1 and 0", n, len(s.all()))
	}
}
