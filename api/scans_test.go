package api

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sentineldf/sentineldf"
)

func TestMalformedJSON(t *testing.T) {
	e := newEnv(t)
	_, key := e.org("acme", "pro")
	tests := []struct {
		name, body, field, detail string
		header                    map[string]string
	}{
		{"syntax", `{"files": [`, "", "malformed JSON", nil},
		{"bad token", `{"files": [}`, "", "malformed JSON at byte", nil},
		{"wrong type", `{"files": "a.jsonl"}`, "files", "expected", nil},
		{"wrong nested type", `{"files": [{"name": "a", "size": "ten"}]}`, "files.size", "expected int64", nil},
		{"unknown field", `{"files": [], "filez": 1}`, "filez", "unknown field", nil},
		{"trailing data", `{"files": []} {}`, "", "after the JSON object", nil},
		{"empty", ``, "", "empty", nil},
		{"not an object", `[1,2]`, "", "expected", nil},
		{"not UTF-8", "{\"files\": [{\"name\": \"\xff\"}]}", "", "UTF-8", nil},
		{"content type", `{"files": []}`, "", "Content-Type", map[string]string{"Content-Type": "text/plain"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(req{method: "POST", path: "/v1/uploads", key: key, body: tt.body, header: tt.header})
			wantProblem(t, w, 400, sentineldf.EINVALID, tt.field, tt.detail)
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t)
	_, key := e.org("acme", "enterprise")
	big := `{"files": [{"name": "` + strings.Repeat("a", 70<<10) + `", "size": 1}]}`
	wantProblem(t, e.do(req{method: "POST", path: "/v1/uploads", key: key, body: big}), 413, sentineldf.ETOOLARGE, "", "exceeds")
	// POST /v1/scan takes more, but not without bound.
	huge := `{"documents": [{"id": "1", "text": "` + strings.Repeat("a", syncScanBodyLimit) + `"}]}`
	wantProblem(t, e.do(req{method: "POST", path: "/v1/scan", key: key, body: huge}), 413, sentineldf.ETOOLARGE, "", "exceeds")
	// Within the body limit but over MaxSyncBytes of text.
	over := `{"documents": [{"id": "1", "text": "` + strings.Repeat("a", sentineldf.MaxSyncBytes+1) + `"}]}`
	wantProblem(t, e.do(req{method: "POST", path: "/v1/scan", key: key, body: over}), 413, sentineldf.ETOOLARGE, "documents", "at most 1048576")
	// With an Idempotency-Key the body is read by the idempotency layer: same answer.
	w := e.do(req{method: "POST", path: "/v1/uploads", key: key, body: big, header: map[string]string{IdempotencyHeader: "k1"}})
	wantProblem(t, w, 413, sentineldf.ETOOLARGE, "", "exceeds")
}

func TestFileValidation(t *testing.T) {
	e := newEnv(t)
	_, key := e.org("acme", "pro")
	files := func(fs ...sentineldf.FileSpec) sentineldf.UploadsRequest { return sentineldf.UploadsRequest{Files: fs} }
	ok := sentineldf.FileSpec{Name: "a.jsonl", Size: 1}
	many := make([]sentineldf.FileSpec, sentineldf.MaxFilesPerScan+1)
	for i := range many {
		many[i] = sentineldf.FileSpec{Name: fmt.Sprintf("f%d", i), Size: 1}
	}
	tests := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"no files", files(), 400, "files"},
		{"too many files", files(many...), 413, "files"},
		{"zero size", files(ok, ok, sentineldf.FileSpec{Name: "c", Size: 0}), 400, "files[1].name"}, // duplicate comes first
		{"size", files(ok, sentineldf.FileSpec{Name: "b", Size: 1}, sentineldf.FileSpec{Name: "c", Size: 0}), 400, "files[2].size"},
		{"huge", files(sentineldf.FileSpec{Name: "b", Size: sentineldf.MaxUploadBytes + 1}), 413, "files[0].size"},
		{"dotdot", files(sentineldf.FileSpec{Name: "../etc/passwd", Size: 1}), 400, "files[0].name"},
		{"absolute", files(ok, sentineldf.FileSpec{Name: "/abs", Size: 1}), 400, "files[1].name"},
		{"control", files(sentineldf.FileSpec{Name: "a\nb", Size: 1}), 400, "files[0].name"},
		{"sha256", files(sentineldf.FileSpec{Name: "b", Size: 1, SHA256: strings.Repeat("A", 64)}), 400, "files[0].sha256"},
		{"priority", sentineldf.AsyncScanRequest{Files: []sentineldf.FileSpec{ok}, Priority: "urgent"}, 400, "priority"},
		{"callback userinfo", sentineldf.AsyncScanRequest{Files: []sentineldf.FileSpec{ok}, CallbackURL: "https://u:p@example.com/cb"}, 400, "callback_url"},
		{"callback scheme", sentineldf.AsyncScanRequest{Files: []sentineldf.FileSpec{ok}, CallbackURL: "ftp://example.com/cb"}, 400, "callback_url"},
		{"callback relative", sentineldf.AsyncScanRequest{Files: []sentineldf.FileSpec{ok}, CallbackURL: "/cb"}, 400, "callback_url"},
		{"callback long", sentineldf.AsyncScanRequest{Files: []sentineldf.FileSpec{ok}, CallbackURL: "https://example.com/" + strings.Repeat("a", 2048)}, 400, "callback_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/v1/uploads"
			if _, async := tt.body.(sentineldf.AsyncScanRequest); async {
				path = "/v1/scan/async"
			}
			code := sentineldf.EINVALID
			if tt.status == 413 {
				code = sentineldf.ETOOLARGE
			}
			wantProblem(t, e.do(req{method: "POST", path: path, key: key, body: tt.body}), tt.status, code, tt.field, "")
		})
	}
	if n := e.store.createScans.Load(); n != 0 {
		t.Errorf("invalid requests created %d scans", n)
	}
}

func TestPriorityBoundedByPlan(t *testing.T) {
	tests := []struct {
		plan, prio string
		want       int
	}{
		{"enterprise", "high", 1}, {"enterprise", "", 1}, {"enterprise", "low", 2},
		{"free", "high", 3}, {"free", "normal", 3}, {"free", "low", 4},
	}
	e := newEnv(t)
	keys := map[string]string{}
	for _, tt := range tests {
		if keys[tt.plan] == "" {
			_, keys[tt.plan] = e.org(tt.plan, tt.plan)
		}
		w := e.do(req{method: "POST", path: "/v1/scan/async", key: keys[tt.plan], body: sentineldf.AsyncScanRequest{
			Files: []sentineldf.FileSpec{{Name: "a", Size: 1}}, Priority: tt.prio, CallbackURL: "https://example.com/hook",
		}})
		wantStatus(t, w, 201)
		id := decode[sentineldf.UploadsResponse](t, w).JobID
		e.store.mu.Lock()
		sc := e.store.scans[id]
		e.store.mu.Unlock()
		if sc.Priority != tt.want || sc.CallbackURL != "https://example.com/hook" || sc.State != sentineldf.StateAwaitingUpload {
			t.Errorf("%s/%q: scan %+v, want priority %d", tt.plan, tt.prio, sc, tt.want)
		}
	}
}

// newScan creates a scan of files through the API and returns its id.
func (e *env) newScan(key string, files ...string) string {
	e.t.Helper()
	w := e.do(req{method: "POST", path: "/v1/uploads", key: key, body: uploadsBody(files...)})
	wantStatus(e.t, w, 201)
	return decode[sentineldf.UploadsResponse](e.t, w).JobID
}

func TestUploadConfirmStatusFlow(t *testing.T) {
	e := newEnv(t)
	org, key := e.org("acme", "pro")
	w := e.do(req{method: "POST", path: "/v1/uploads", key: key, body: uploadsBody("a.jsonl", "dir/b.jsonl")})
	wantStatus(t, w, 201)
	up := decode[sentineldf.UploadsResponse](t, w)
	if len(up.Uploads) != 2 || up.Uploads[1].Name != "dir/b.jsonl" || up.Uploads[1].Method != "PUT" ||
		!strings.Contains(up.Uploads[1].URL, sentineldf.InputKey(org.ID, up.JobID, 1, "dir/b.jsonl")) {
		t.Fatalf("uploads = %+v", up)
	}
	confirm := req{method: "POST", path: "/v1/scan/async/confirm?job_id=" + up.JobID, key: key}

	wantProblem(t, e.do(confirm), 400, sentineldf.EINVALID, "files[0]", "files[0] (a.jsonl) was not uploaded")
	e.blobs.put(sentineldf.InputKey(org.ID, up.JobID, 0, "a.jsonl"), make([]byte, 10))
	wantProblem(t, e.do(confirm), 400, sentineldf.EINVALID, "files[1]", "files[1] (dir/b.jsonl) was not uploaded")
	e.blobs.put(sentineldf.InputKey(org.ID, up.JobID, 1, "dir/b.jsonl"), make([]byte, 9))
	wantProblem(t, e.do(confirm), 400, sentineldf.EINVALID, "files[1]", "is 9 bytes, not the declared 10")
	e.blobs.put(sentineldf.InputKey(org.ID, up.JobID, 1, "dir/b.jsonl"), make([]byte, 10))
	w = e.do(confirm)
	wantStatus(t, w, 202)
	if st := decode[sentineldf.ScanStatus](t, w); st.State != sentineldf.StateQueued || st.JobID != up.JobID {
		t.Errorf("confirmed = %+v", st)
	}
	wantProblem(t, e.do(confirm), 409, sentineldf.ECONFLICT, "", "queued")

	status := req{method: "GET", path: "/v1/scan/status?job_id=" + up.JobID, key: key}
	w = e.do(status)
	wantStatus(t, w, 200)
	if st := decode[sentineldf.ScanStatus](t, w); st.Results != nil {
		t.Errorf("queued scan has results %+v", st.Results)
	}
	e.store.FinishScan(t.Context(), org.ID, up.JobID, sentineldf.StateSucceeded, sentineldf.Counts{Clean: 3}, "")
	w = e.do(status)
	wantStatus(t, w, 200)
	st := decode[sentineldf.ScanStatus](t, w)
	if st.Results == nil || !strings.Contains(st.Results.ResultsURL, sentineldf.ResultKey(org.ID, up.JobID, sentineldf.ResultsObject)) ||
		st.Results.QuarantineURL == "" || st.Results.CleanURL == "" || st.Results.SummaryURL == "" || st.Results.MalformedURL == "" || st.Results.MBOMURL != "" {
		t.Errorf("results = %+v", st.Results)
	}
	if st.Counts.Clean != 3 {
		t.Errorf("counts = %+v", st.Counts)
	}
	wantProblem(t, e.do(req{method: "GET", path: "/v1/scan/status", key: key}), 400, sentineldf.EINVALID, "job_id", "required")
	wantProblem(t, e.do(req{method: "POST", path: "/v1/scans/" + up.JobID + "/cancel", key: key}), 409, sentineldf.ECONFLICT, "", "")
}

func TestListAndCancel(t *testing.T) {
	e := newEnv(t)
	_, key := e.org("acme", "pro")
	a, b := e.newScan(key, "a"), e.newScan(key, "b")
	w := e.do(req{method: "GET", path: "/v1/scans?limit=1", key: key})
	wantStatus(t, w, 200)
	if got := decode[sentineldf.ScansResponse](t, w).Scans; len(got) != 1 {
		t.Errorf("limit=1 gave %d scans", len(got))
	}
	for _, bad := range []string{"0", "101", "x"} {
		wantProblem(t, e.do(req{method: "GET", path: "/v1/scans?limit=" + bad, key: key}), 400, sentineldf.EINVALID, "limit", "")
	}
	w = e.do(req{method: "POST", path: "/v1/scans/" + a + "/cancel", key: key})
	wantStatus(t, w, 200)
	if st := decode[sentineldf.ScanStatus](t, w); st.State != sentineldf.StateCanceled || st.JobID != a {
		t.Errorf("canceled = %+v", st)
	}
	w = e.do(req{method: "GET", path: "/v1/scans", key: key})
	got := decode[sentineldf.ScansResponse](t, w).Scans
	if len(got) != 2 || (got[0].JobID != a && got[0].JobID != b) {
		t.Errorf("scans = %+v", got)
	}
}

func TestTenantIsolation(t *testing.T) {
	e := newEnv(t)
	orgA, keyA := e.org("a", "pro")
	_, keyB := e.org("b", "pro")
	scanA := e.newScan(keyA, "data.jsonl")
	e.blobs.put(sentineldf.InputKey(orgA.ID, scanA, 0, "data.jsonl"), make([]byte, 10))
	wantStatus(t, e.do(req{method: "POST", path: "/v1/scan/async/confirm?job_id=" + scanA, key: keyA}), 202)
	e.store.FinishScan(t.Context(), orgA.ID, scanA, sentineldf.StateSucceeded, sentineldf.Counts{}, "")
	keyAID, _ := sentineldf.ParseAPIKey(keyA)

	for _, r := range []req{
		{method: "GET", path: "/v1/scan/status?job_id=" + scanA},
		{method: "POST", path: "/v1/scan/async/confirm?job_id=" + scanA},
		{method: "POST", path: "/v1/scans/" + scanA + "/cancel"},
		{method: "POST", path: "/v1/mbom", body: sentineldf.SignMBOMRequest{JobID: scanA, ApprovedBy: "b@example.com"}},
		{method: "DELETE", path: "/v1/auth/keys/" + keyAID},
		// Guessed ids look the same.
		{method: "GET", path: "/v1/scan/status?job_id=scan_aaaaaaaaaaaaaaaaaaaa"},
		{method: "DELETE", path: "/v1/auth/keys/aaaaaaaaaaaaaaaa"},
	} {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			r.key = keyB
			wantProblem(t, e.do(r), 404, sentineldf.ENOTFOUND, "", "not found")
		})
	}
	w := e.do(req{method: "GET", path: "/v1/scans", key: keyB})
	if got := decode[sentineldf.ScansResponse](t, w).Scans; len(got) != 0 {
		t.Errorf("org B lists %d scans of org A", len(got))
	}
	w = e.do(req{method: "GET", path: "/v1/auth/keys", key: keyB})
	for _, k := range decode[sentineldf.KeysResponse](t, w).Keys {
		if k.OrgID != decode[sentineldf.WhoAmIResponse](t, e.do(req{method: "GET", path: "/v1/auth/whoami", key: keyB})).Org.ID {
			t.Errorf("org B lists key %+v", k)
		}
	}
	// Org A's scan is untouched and its key still works.
	w = e.do(req{method: "GET", path: "/v1/scan/status?job_id=" + scanA, key: keyA})
	wantStatus(t, w, 200)
	if st := decode[sentineldf.ScanStatus](t, w); st.State != sentineldf.StateSucceeded {
		t.Errorf("scan A = %+v", st)
	}
}

func TestIdempotency(t *testing.T) {
	e := newEnv(t)
	_, key := e.org("acme", "pro")
	post := func(idem string, body any) *httptest.ResponseRecorder {
		return e.do(req{method: "POST", path: "/v1/uploads", key: key, body: body, header: map[string]string{IdempotencyHeader: idem}})
	}

	first := post("k-1", uploadsBody("a"))
	wantStatus(t, first, 201)
	again := post("k-1", uploadsBody("a"))
	wantStatus(t, again, 201)
	if again.Header().Get(ReplayedHeader) != "true" || first.Header().Get(ReplayedHeader) != "" {
		t.Errorf("Idempotent-Replayed: first %q, again %q", first.Header().Get(ReplayedHeader), again.Header().Get(ReplayedHeader))
	}
	if again.Body.String() != first.Body.String() {
		t.Errorf("replay differs:\n%s\n%s", first.Body.String(), again.Body.String())
	}
	if n := e.store.createScans.Load(); n != 1 {
		t.Errorf("CreateScan ran %d times, want 1", n)
	}
	wantProblem(t, post("k-1", uploadsBody("b")), 422, sentineldf.EIDEMPOTENCY, "", "another request body")
	// Another key runs again; a key is per org and per path.
	wantStatus(t, post("k-2", uploadsBody("a")), 201)
	if n := e.store.createScans.Load(); n != 2 {
		t.Errorf("CreateScan ran %d times, want 2", n)
	}
	wantProblem(t, post(strings.Repeat("k", 256), uploadsBody("a")), 400, sentineldf.EINVALID, IdempotencyHeader, "")

	// A 5xx is not kept: the retry runs.
	e.store.mu.Lock()
	e.store.scanErrs = []error{errors.New("db down")}
	e.store.mu.Unlock()
	wantProblem(t, post("k-3", uploadsBody("c")), 500, sentineldf.EINTERNAL, "", "")
	w := post("k-3", uploadsBody("c"))
	wantStatus(t, w, 201)
	if w.Header().Get(ReplayedHeader) != "" {
		t.Error("retry after a 5xx was replayed")
	}
	// A 4xx is kept and replayed.
	bad := post("k-4", uploadsBody())
	wantProblem(t, bad, 400, sentineldf.EINVALID, "files", "")
	if w := post("k-4", uploadsBody()); w.Header().Get(ReplayedHeader) != "true" || w.Code != 400 {
		t.Errorf("4xx replay: %d %q", w.Code, w.Header().Get(ReplayedHeader))
	}
}

func TestIdempotencyConcurrentDuplicatesRunOnce(t *testing.T) {
	e := newEnv(t)
	_, key := e.org("acme", "enterprise")
	const n = 8
	var wg sync.WaitGroup
	resps := make([]*httptest.ResponseRecorder, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			resps[i] = e.do(req{method: "POST", path: "/v1/uploads", key: key, body: uploadsBody("a"), header: map[string]string{IdempotencyHeader: "same"}})
		})
	}
	close(start)
	wg.Wait()
	if got := e.store.createScans.Load(); got != 1 {
		t.Errorf("handler ran %d times for %d concurrent duplicates, want 1", got, n)
	}
	ids := map[string]bool{}
	replayed := 0
	for _, w := range resps {
		wantStatus(t, w, 201)
		ids[decode[sentineldf.UploadsResponse](t, w).JobID] = true
		if w.Header().Get(ReplayedHeader) == "true" {
			replayed++
		}
	}
	if len(ids) != 1 || replayed != n-1 {
		t.Errorf("job ids %v, replayed %d; want one id and %d replays", ids, replayed, n-1)
	}
}

func TestIdempotencyCacheDown(t *testing.T) {
	e := newEnv(t)
	_, key := e.org("acme", "pro")
	wantStatus(t, e.do(req{method: "GET", path: "/v1/scans", key: key}), 200) // cache the key first
	e.cache.mu.Lock()
	e.cache.err = errors.New("cache down")
	e.cache.mu.Unlock()
	defer func() {
		e.cache.mu.Lock()
		e.cache.err = nil
		e.cache.mu.Unlock()
	}()
	w := e.do(req{method: "POST", path: "/v1/uploads", key: key, body: uploadsBody("a"), header: map[string]string{IdempotencyHeader: "x"}})
	wantProblem(t, w, 503, sentineldf.EUNAVAILABLE, "", "idempotency")
	if w.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}
