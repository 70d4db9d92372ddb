package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sentineldf/sentineldf"
)

func TestProblemMapping(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
		detail string
	}{
		{sentineldf.NotFound("scan"), 404, sentineldf.ENOTFOUND, "scan not found"},
		{sentineldf.FieldError("files[2].size", "must be at least 1 byte"), 400, sentineldf.EINVALID, "files[2].size: must be at least 1 byte"},
		{sentineldf.Errorf(sentineldf.EUNAUTHORIZED, "no"), 401, sentineldf.EUNAUTHORIZED, "no"},
		{sentineldf.Errorf(sentineldf.EFORBIDDEN, "no"), 403, sentineldf.EFORBIDDEN, "no"},
		{sentineldf.Errorf(sentineldf.ECONFLICT, "no"), 409, sentineldf.ECONFLICT, "no"},
		{sentineldf.Errorf(sentineldf.ETOOLARGE, "no"), 413, sentineldf.ETOOLARGE, "no"},
		{sentineldf.Errorf(sentineldf.ERATELIMITED, "no"), 429, sentineldf.ERATELIMITED, "no"},
		{sentineldf.Errorf(sentineldf.EQUOTA, "no"), 429, sentineldf.EQUOTA, "no"},
		{sentineldf.Errorf(sentineldf.EIDEMPOTENCY, "no"), 422, sentineldf.EIDEMPOTENCY, "no"},
		{sentineldf.Errorf(sentineldf.EUNAVAILABLE, "later"), 503, sentineldf.EUNAVAILABLE, "later"},
		{sentineldf.Errorf(sentineldf.EINTERNAL, "db password is hunter2"), 500, sentineldf.EINTERNAL, "internal error"},
		{fmt.Errorf("read scan: %w", sentineldf.NotFound("scan")), 404, sentineldf.ENOTFOUND, "scan not found"},
		{errors.New("disk on fire at /var/secret"), 500, sentineldf.EINTERNAL, "internal error"},
		{fmt.Errorf("query: %w", context.DeadlineExceeded), 503, sentineldf.EUNAVAILABLE, "timed out"},
		{&sentineldf.Error{Code: "made_up", Message: "x"}, 500, sentineldf.EINTERNAL, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.code+"/"+tt.err.Error(), func(t *testing.T) {
			p := problemOf(context.Background(), tt.err, "/x")
			if p.Status != tt.status || p.Code != tt.code || p.Type != ProblemTypeBase+tt.code || p.Title == "" {
				t.Errorf("problem = %+v, want status %d code %q", p, tt.status, tt.code)
			}
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail = %q, want %q", p.Detail, tt.detail)
			}
			if tt.status == 500 && (strings.Contains(p.Detail, "hunter2") || strings.Contains(p.Detail, "/var/secret")) {
				t.Errorf("internal detail leaked: %q", p.Detail)
			}
		})
	}
}

func TestInternalErrorIsLoggedNotShown(t *testing.T) {
	e := newEnv(t)
	h := e.srv.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.srv.writeError(w, r, errors.New("connection refused to 10.0.0.7"))
	}))
	e.h = h
	w := e.do(req{method: "GET", path: "/health"})
	p := wantProblem(t, w, 500, sentineldf.EINTERNAL, "", "internal error")
	if strings.Contains(w.Body.String(), "10.0.0.7") {
		t.Errorf("cause leaked to client: %s", w.Body.String())
	}
	if !strings.Contains(e.logs.String(), "10.0.0.7") || !strings.Contains(e.logs.String(), p.RequestID) {
		t.Errorf("cause or request id not logged: %s", e.logs.String())
	}
}

func TestPanicRecovered(t *testing.T) {
	e := newEnv(t)
	e.h = e.srv.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") }))
	w := e.do(req{method: "GET", path: "/health"})
	wantProblem(t, w, 500, sentineldf.EINTERNAL, "", "internal error")
	if !strings.Contains(e.logs.String(), "boom") || !strings.Contains(e.logs.String(), "goroutine") {
		t.Errorf("panic and stack not logged: %s", e.logs.String())
	}
	if got := testutil.ToFloat64(e.metrics.APIRequests.WithLabelValues("GET /health", "500")); got != 1 {
		t.Errorf("requests{GET /health,500} = %v, want 1", got)
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	org, key := e.org("acme", "pro")
	id, _ := sentineldf.ParseAPIKey(key)
	_, unknownKey := sentineldf.NewAPIKey()
	wrongSecret := key[:len(key)-4] + "aaaa"
	if wrongSecret == key {
		wrongSecret = key[:len(key)-4] + "bbbb"
	}

	tests := []struct {
		name   string
		header map[string]string
		status int
	}{
		{"missing", nil, 401},
		{"not bearer", map[string]string{"Authorization": "Basic " + key}, 401},
		{"malformed", map[string]string{"Authorization": "Bearer sdf_live_nope"}, 401},
		{"unknown", map[string]string{"Authorization": "Bearer " + unknownKey}, 401},
		{"wrong secret", map[string]string{"Authorization": "Bearer " + wrongSecret}, 401},
		{"valid bearer", map[string]string{"Authorization": "Bearer " + key}, 200},
		{"wrong secret after caching", map[string]string{"Authorization": "Bearer " + wrongSecret}, 401},
		{"valid X-API-Key", map[string]string{"X-API-Key": key}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(req{method: "GET", path: "/v1/auth/whoami", header: tt.header})
			if tt.status == 401 {
				wantProblem(t, w, 401, sentineldf.EUNAUTHORIZED, "", "")
				if w.Header().Get("WWW-Authenticate") == "" {
					t.Error("no WWW-Authenticate")
				}
				return
			}
			wantStatus(t, w, tt.status)
			who := decode[sentineldf.WhoAmIResponse](t, w)
			if who.Org.ID != org.ID || who.Key.ID != id {
				t.Errorf("whoami = %+v / %+v", who.Org, who.Key)
			}
		})
	}

	// Revocation is immediate although the key is cached.
	_, second := e.org("other", "free") // unrelated org: its key must keep working
	wantStatus(t, e.do(req{method: "GET", path: "/v1/auth/whoami", key: key}), 200)
	wantStatus(t, e.do(req{method: "DELETE", path: "/v1/auth/keys/" + id, key: key}), 200)
	wantProblem(t, e.do(req{method: "GET", path: "/v1/auth/whoami", key: key}), 401, sentineldf.EUNAUTHORIZED, "", "")
	wantStatus(t, e.do(req{method: "GET", path: "/v1/auth/whoami", key: second}), 200)
	// ...and stays revoked once the tombstone is gone (verified against the store).
	e.cache.Delete(context.Background(), keyCacheKey(id))
	wantProblem(t, e.do(req{method: "GET", path: "/v1/auth/whoami", key: key}), 401, sentineldf.EUNAUTHORIZED, "", "")
}

func TestScopes(t *testing.T) {
	e := newEnv(t)
	_, admin := e.org("acme", "pro")
	w := e.do(req{method: "POST", path: "/v1/auth/keys", key: admin, body: sentineldf.CreateKeyRequest{Name: "reader", Scopes: []string{"scan:read", "keys:admin"}}})
	wantStatus(t, w, 201)
	reader := decode[sentineldf.CreateKeyResponse](t, w).APIKey

	tests := []struct {
		name   string
		r      req
		status int
	}{
		{"read allowed", req{method: "GET", path: "/v1/scans", key: reader}, 200},
		{"write forbidden", req{method: "POST", path: "/v1/uploads", key: reader, body: uploadsBody("a.jsonl")}, 403},
		{"usage forbidden", req{method: "GET", path: "/v1/usage", key: reader}, 403},
		{"admin forbidden", req{method: "POST", path: "/v1/admin/orgs", key: admin, body: sentineldf.CreateOrgRequest{Name: "x"}}, 403},
		{"escalation forbidden", req{method: "POST", path: "/v1/auth/keys", key: reader, body: sentineldf.CreateKeyRequest{Name: "w", Scopes: []string{"scan:write"}}}, 403},
		{"admin grant forbidden", req{method: "POST", path: "/v1/auth/keys", key: admin, body: sentineldf.CreateKeyRequest{Name: "a", Scopes: []string{"admin"}}}, 403},
		{"default scopes exceed reader", req{method: "POST", path: "/v1/auth/keys", key: reader, body: sentineldf.CreateKeyRequest{Name: "d"}}, 403},
		{"subset allowed", req{method: "POST", path: "/v1/auth/keys", key: reader, body: sentineldf.CreateKeyRequest{Name: "r2", Scopes: []string{"scan:read"}}}, 201},
		{"unknown scope", req{method: "POST", path: "/v1/auth/keys", key: admin, body: sentineldf.CreateKeyRequest{Name: "u", Scopes: []string{"root"}}}, 400},
	}
	// A scope check never says whether an object exists.
	w = e.do(req{method: "POST", path: "/v1/uploads", key: admin, body: uploadsBody("a.jsonl")})
	wantStatus(t, w, 201)
	existing := decode[sentineldf.UploadsResponse](t, w).JobID
	w = e.do(req{method: "POST", path: "/v1/auth/keys", key: admin, body: sentineldf.CreateKeyRequest{Name: "usage", Scopes: []string{"usage:read"}}})
	wantStatus(t, w, 201)
	usageOnly := decode[sentineldf.CreateKeyResponse](t, w).APIKey
	for _, id := range []string{existing, "scan_doesnotexist"} {
		tests = append(tests, struct {
			name   string
			r      req
			status int
		}{"no scope, scan " + id, req{method: "GET", path: "/v1/scan/status?job_id=" + id, key: usageOnly}, 403})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(tt.r)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d: %s", w.Code, tt.status, w.Body.String())
			}
			if tt.status == 403 {
				wantProblem(t, w, 403, sentineldf.EFORBIDDEN, "", "")
			}
		})
	}
}

func TestKeyCacheAvoidsBcrypt(t *testing.T) {
	e := newEnv(t)
	_, key := e.org("acme", "pro")
	for range 3 {
		wantStatus(t, e.do(req{method: "GET", path: "/v1/scans", key: key}), 200)
	}
	if n := e.store.lookups.Load(); n != 1 {
		t.Errorf("LookupAPIKey called %d times for 3 requests, want 1 (then cached)", n)
	}
	// The cache holds the key's digest, never the key.
	id, _ := sentineldf.ParseAPIKey(key)
	b, ok, _ := e.cache.Get(context.Background(), keyCacheKey(id))
	if !ok || strings.Contains(string(b), key) || strings.Contains(string(b), key[len(key)-32:]) {
		t.Errorf("cache entry %q (present %v) must hold the digest only", b, ok)
	}
}

func TestKeyTouchedOncePerInterval(t *testing.T) {
	e := newEnv(t)
	_, key := e.org("acme", "pro")
	id, _ := sentineldf.ParseAPIKey(key)
	for range 3 {
		wantStatus(t, e.do(req{method: "GET", path: "/v1/scans", key: key}), 200)
	}
	if err := e.srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.store.mu.Lock()
	_, touched := e.store.touched[id]
	e.store.mu.Unlock()
	if !touched {
		t.Error("last-used time not recorded")
	}
	if got := len(e.cache.keysWithPrefix(touchCacheKey(id))); got != 1 {
		t.Errorf("touch markers = %d, want 1", got)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t)
	_, key := e.org("acme", "tiny") // burst 3
	for i := range 3 {
		w := e.do(req{method: "GET", path: "/v1/scans", key: key})
		wantStatus(t, w, 200)
		if got, want := w.Header().Get("RateLimit-Remaining"), fmt.Sprint(2-i); got != want {
			t.Errorf("request %d: RateLimit-Remaining = %q, want %q", i, got, want)
		}
		if w.Header().Get("RateLimit-Limit") != "60" || w.Header().Get("RateLimit-Reset") == "" {
			t.Errorf("headers %v", w.Header())
		}
	}
	w := e.do(req{method: "GET", path: "/v1/scans", key: key})
	wantProblem(t, w, 429, sentineldf.ERATELIMITED, "", "rate limit")
	if got := w.Header().Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2 (1.5 s rounded up)", got)
	}
	if w.Header().Get("RateLimit-Remaining") != "0" {
		t.Errorf("RateLimit-Remaining = %q, want 0", w.Header().Get("RateLimit-Remaining"))
	}
	if got := testutil.ToFloat64(e.metrics.RateLimited.WithLabelValues("key")); got != 1 {
		t.Errorf("rate_limited{key} = %v", got)
	}
	// Health and metrics are never limited.
	calls := e.limiter.calls.Load()
	wantStatus(t, e.do(req{method: "GET", path: "/health"}), 200)
	wantStatus(t, e.do(req{method: "GET", path: "/metrics"}), 200)
	if e.limiter.calls.Load() != calls {
		t.Error("health or metrics consulted the limiter")
	}
}

func TestOrgRateLimitSharedByKeys(t *testing.T) {
	e := newEnv(t)
	_, k1 := e.org("acme", "tiny")
	w := e.do(req{method: "POST", path: "/v1/auth/keys", key: k1, body: sentineldf.CreateKeyRequest{Name: "two"}})
	wantStatus(t, w, 201)
	k2 := decode[sentineldf.CreateKeyResponse](t, w).APIKey
	// k1 used 1 org token creating k2; two more spend the org's burst of 3.
	wantStatus(t, e.do(req{method: "GET", path: "/v1/scans", key: k2}), 200)
	wantStatus(t, e.do(req{method: "GET", path: "/v1/scans", key: k2}), 200)
	w = e.do(req{method: "GET", path: "/v1/scans", key: k2})
	wantProblem(t, w, 429, sentineldf.ERATELIMITED, "", "per-org")
}

func TestLimiterFailure(t *testing.T) {
	for _, open := range []bool{true, false} {
		t.Run(fmt.Sprintf("failOpen=%v", open), func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.RateLimitFailOpen = open })
			_, key := e.org("acme", "pro")
			e.limiter.err = errors.New("redis down")
			for range 2 {
				w := e.do(req{method: "GET", path: "/v1/scans", key: key})
				if open {
					wantStatus(t, w, 200)
				} else {
					wantProblem(t, w, 503, sentineldf.EUNAVAILABLE, "", "rate limiter")
				}
			}
			if got := testutil.ToFloat64(e.metrics.DependencyErrors.WithLabelValues("limiter")); got != 2 {
				t.Errorf("dependency_errors{limiter} = %v, want 2", got)
			}
			if n := strings.Count(e.logs.String(), "rate limiter failed"); n != 1 {
				t.Errorf("limiter failure logged %d times, want once", n)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		in   string
		echo bool
	}{
		{"abc-123_X.y:z", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"bad id", false},
		{"<script>", false},
		{"", false},
	}
	for _, tt := range tests {
		w := e.do(req{method: "GET", path: "/v1/nowhere", header: map[string]string{"X-Request-Id": tt.in}})
		got := w.Header().Get("X-Request-Id")
		if tt.echo && got != tt.in || !tt.echo && (got == tt.in || !strings.HasPrefix(got, "req_")) {
			t.Errorf("in %q: X-Request-Id = %q (echo %v)", tt.in, got, tt.echo)
		}
		p := wantProblem(t, w, 404, sentineldf.ENOTFOUND, "", "no such endpoint")
		if p.RequestID != got {
			t.Errorf("problem request_id %q != header %q", p.RequestID, got)
		}
	}
}

func TestSecurityHeadersAndMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{method: "PUT", path: "/v1/scans"})
	if w.Code != 405 || !strings.Contains(w.Header().Get("Allow"), "GET") {
		t.Errorf("PUT /v1/scans = %d Allow %q, want 405 with GET", w.Code, w.Header().Get("Allow"))
	}
	w = e.do(req{method: "GET", path: "/health"})
	for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Content-Type": "application/json"} {
		if w.Header().Get(k) != v {
			t.Errorf("%s = %q, want %q", k, w.Header().Get(k), v)
		}
	}
}

func TestEnsureOperatorAndAdmin(t *testing.T) {
	e := newEnv(t)
	key, created, err := e.srv.EnsureOperator(context.Background())
	if err != nil || !created || key == "" {
		t.Fatalf("EnsureOperator = %q, %v, %v", key, created, err)
	}
	if k2, created2, err := e.srv.EnsureOperator(context.Background()); err != nil || created2 || k2 != "" {
		t.Fatalf("second EnsureOperator = %q, %v, %v; want nothing created", k2, created2, err)
	}
	w := e.do(req{method: "POST", path: "/v1/admin/orgs", key: key, body: sentineldf.CreateOrgRequest{Name: "customer", Plan: "pro"}})
	wantStatus(t, w, 201)
	resp := decode[sentineldf.CreateOrgResponse](t, w)
	if resp.Org.Plan != "pro" || resp.Org.Operator {
		t.Errorf("org = %+v", resp.Org)
	}
	who := e.do(req{method: "GET", path: "/v1/auth/whoami", key: resp.APIKey})
	wantStatus(t, who, 200)
	if k := decode[sentineldf.WhoAmIResponse](t, who).Key; k.HasScope(sentineldf.ScopeAdmin) {
		t.Errorf("customer key has admin: %v", k.Scopes)
	}
	wantProblem(t, e.do(req{method: "POST", path: "/v1/admin/orgs", key: key, body: sentineldf.CreateOrgRequest{Name: "x", Plan: "gold"}}), 400, sentineldf.EINVALID, "plan", "")
	wantProblem(t, e.do(req{method: "GET", path: "/v1/admin/jobs/dead", key: resp.APIKey}), 403, sentineldf.EFORBIDDEN, "", "")

	e.queue.dead = []sentineldf.DeadJob{{ID: 7, Kind: "scan_shard"}}
	w = e.do(req{method: "GET", path: "/v1/admin/jobs/dead", key: key})
	wantStatus(t, w, 200)
	if jobs := decode[DeadJobsResponse](t, w).Jobs; len(jobs) != 1 || jobs[0].ID != 7 {
		t.Errorf("dead jobs = %+v", jobs)
	}
	wantStatus(t, e.do(req{method: "POST", path: "/v1/admin/jobs/7/retry", key: key}), 200)
	wantProblem(t, e.do(req{method: "POST", path: "/v1/admin/jobs/8/retry", key: key}), 404, sentineldf.ENOTFOUND, "", "")
	wantProblem(t, e.do(req{method: "POST", path: "/v1/admin/jobs/x/retry", key: key}), 400, sentineldf.EINVALID, "id", "")
	acts := e.store.auditActions()
	for _, want := range []string{sentineldf.AuditOrgCreated, sentineldf.AuditJobRetried} {
		if !strings.Contains(strings.Join(acts, ","), want) {
			t.Errorf("audit %v lacks %s", acts, want)
		}
	}
}

func TestCallbackSecret(t *testing.T) {
	e := newEnv(t)
	org, key := e.org("acme", "pro")
	w := e.do(req{method: "GET", path: "/v1/auth/callback-secret", key: key})
	wantStatus(t, w, 200)
	got := decode[CallbackSecretResponse](t, w).Secret
	want := fmt.Sprintf("%x", sentineldf.CallbackSecret([]byte("0123456789abcdef0123456789abcdef"), org.ID))
	if got != want {
		t.Errorf("secret = %s, want %s", got, want)
	}
}

// Concurrent first requests with one key share a single store lookup and
// bcrypt check instead of each paying for it.
func TestConcurrentVerificationRunsOnce(t *testing.T) {
	e := newEnv(t)
	_, key := e.org("acme", "pro")
	id, _ := sentineldf.ParseAPIKey(key)
	e.cache.Delete(context.Background(), keyCacheKey(id))
	before := e.store.lookups.Load()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wantStatus(t, e.do(req{method: "GET", path: "/v1/scans", key: key}), 200)
		}()
	}
	wg.Wait()
	// Requests that arrive after the first verification finished hit the
	// cache; those that arrive during it wait for it. Either way, far fewer
	// lookups than requests (one, unless the scheduler staggers them).
	if n := e.store.lookups.Load() - before; n < 1 || n > 2 {
		t.Errorf("16 concurrent requests made %d store lookups, want 1", n)
	}
}

// A key remembered as bcrypt-verified is still checked against the store
// when its cache entry expires: a revocation that reached the store but not
// the cache takes effect then.
func TestRememberedKeyStillSeesRevocation(t *testing.T) {
	e := newEnv(t)
	org, key := e.org("acme", "pro")
	id, _ := sentineldf.ParseAPIKey(key)
	wantStatus(t, e.do(req{method: "GET", path: "/v1/scans", key: key}), 200)
	ctx := context.Background()
	e.cache.Delete(ctx, keyCacheKey(id)) // the entry expired
	wantStatus(t, e.do(req{method: "GET", path: "/v1/scans", key: key}), 200)
	if _, err := e.store.RevokeAPIKey(ctx, org.ID, id, sentineldf.AuditEvent{OrgID: org.ID, Action: sentineldf.AuditKeyRevoked}); err != nil {
		t.Fatal(err)
	}
	e.cache.Delete(ctx, keyCacheKey(id))
	wantStatus(t, e.do(req{method: "GET", path: "/v1/scans", key: key}), 401)
}
