// Package storetest is the conformance suite of sentineldf.Store and
// sentineldf.JobQueue: every backend (sqlite, postgres) runs Run from its
// own tests, so they share one pinned behaviour. The suite only uses the
// interfaces, plus a Jobs function through which a backend shows which jobs
// its state changes enqueued, so it can check that each change enqueued its
// job exactly once without knowing River.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sentineldf/sentineldf"
)

// Backend is a fresh, empty store under test.
type Backend struct {
	Store sentineldf.Store
	Queue sentineldf.JobQueue
	// Jobs returns the encoded args of every job of kind enqueued so far, in
	// insertion order, whatever their state.
	Jobs func(ctx context.Context, kind string) ([]json.RawMessage, error)
}

// Run runs the suite. newBackend returns an empty backend for one subtest
// and registers its cleanup with t.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b Backend)
	}{
		{"CreateOrg", testCreateOrg},
		{"OperatorUnique", testOperatorUnique},
		{"APIKeys", testAPIKeys},
		{"CreateScan", testCreateScan},
		{"ScansPagination", testScansPagination},
		{"ConfirmScan", testConfirmScan},
		{"StartScan", testStartScan},
		{"StartScanWithoutShards", testStartScanWithoutShards},
		{"CompleteShard", testCompleteShard},
		{"CompleteShardConcurrentSameShard", testCompleteShardConcurrentSame},
		{"CompleteShardsConcurrentFinalizeOnce", testFinalizeOnce},
		{"FinishScan", testFinishScan},
		{"CancelScan", testCancelScan},
		{"Usage", testUsage},
		{"SigningKey", testSigningKey},
		{"MBOM", testMBOM},
		{"AuditLog", testAuditLog},
		{"TenantIsolation", testTenantIsolation},
		{"Queue", testQueue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newBackend(t))
		})
	}
}

// Fixtures.

// base is a fixed instant, at the stored precision, from which fixtures
// take their times.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

type orgFixture struct {
	org *sentineldf.Org
	key *sentineldf.APIKey
}

func newOrg(t *testing.T, b Backend, name string) orgFixture {
	t.Helper()
	org := &sentineldf.Org{ID: sentineldf.NewID("org"), Name: name, Plan: "pro", CreatedAt: base}
	key := newKey(org.ID, "first")
	ev := sentineldf.AuditEvent{OrgID: org.ID, Action: sentineldf.AuditOrgCreated, Actor: "system", Target: org.ID, At: base}
	if err := b.Store.CreateOrg(context.Background(), org, key, ev); err != nil {
		t.Fatalf("CreateOrg(%s): %v", name, err)
	}
	return orgFixture{org: org, key: key}
}

func newKey(orgID, name string) *sentineldf.APIKey {
	id, _ := sentineldf.NewAPIKey()
	// A hash with every byte value: the store must keep it byte for byte.
	hash := make([]byte, 256)
	for i := range hash {
		hash[i] = byte(i)
	}
	return &sentineldf.APIKey{
		ID: id, OrgID: orgID, Name: name, Scopes: sentineldf.DefaultScopes,
		Hash: append([]byte("$2a$12$"), hash...), CreatedAt: base,
	}
}

func newScan(orgID string, created time.Time, callback string) *sentineldf.Scan {
	return &sentineldf.Scan{
		ID: sentineldf.NewID("scan"), OrgID: orgID, Priority: 2, CallbackURL: callback,
		Files: []sentineldf.ScanFile{
			{Name: "data/train.jsonl", Size: 1000, SHA256: "ab12"},
			{Name: "data/test.jsonl", Size: 500},
		},
		CreatedBy: "key1",
		Trace:     map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		CreatedAt: created,
	}
}

func mustCreateScan(t *testing.T, b Backend, s *sentineldf.Scan) *sentineldf.Scan {
	t.Helper()
	if err := b.Store.CreateScan(context.Background(), s); err != nil {
		t.Fatalf("CreateScan: %v", err)
	}
	return s
}

// runningScan creates, confirms and starts a scan with n shards.
func runningScan(t *testing.T, b Backend, orgID string, n int, callback string) (*sentineldf.Scan, []sentineldf.Shard) {
	t.Helper()
	ctx := context.Background()
	s := mustCreateScan(t, b, newScan(orgID, base, callback))
	if _, err := b.Store.ConfirmScan(ctx, orgID, s.ID, 2); err != nil {
		t.Fatalf("ConfirmScan: %v", err)
	}
	shards := makeShards(s, n)
	if err := b.Store.StartScan(ctx, orgID, s.ID, shards, sentineldf.Progress{DocsTotal: int64(10 * n), BytesTotal: int64(100 * n)}); err != nil {
		t.Fatalf("StartScan: %v", err)
	}
	return s, shards
}

func makeShards(s *sentineldf.Scan, n int) []sentineldf.Shard {
	shards := make([]sentineldf.Shard, n)
	for i := range shards {
		shards[i] = sentineldf.Shard{
			ScanID: s.ID, OrgID: s.OrgID, Index: i, FileIndex: i % 2,
			Offset: int64(i/2) * 100, Length: 100, FirstLine: int64(i/2)*10 + 1,
		}
	}
	return shards
}

// doneShard is shard i completed with 10 documents and 100 bytes.
func doneShard(sh sentineldf.Shard) sentineldf.Shard {
	sh.Docs, sh.Bytes = 10, 100
	sh.Counts = sentineldf.Counts{Clean: 7, Elevated: 2, Quarantine: 1}
	sh.CacheHits, sh.Malformed = 3, 1
	return sh
}

// jobRef is the part of every job's args the suite checks.
type jobRef struct {
	OrgID  string            `json:"org_id"`
	ScanID string            `json:"scan_id"`
	Shard  int               `json:"shard"`
	Trace  map[string]string `json:"trace"`
}

// jobsFor decodes the jobs of kind that belong to scanID.
func jobsFor(t *testing.T, b Backend, kind, scanID string) []jobRef {
	t.Helper()
	raw, err := b.Jobs(context.Background(), kind)
	if err != nil {
		t.Fatalf("Jobs(%s): %v", kind, err)
	}
	var out []jobRef
	for _, r := range raw {
		var j jobRef
		if err := json.Unmarshal(r, &j); err != nil {
			t.Fatalf("decode %s job %s: %v", kind, r, err)
		}
		if j.ScanID == scanID {
			out = append(out, j)
		}
	}
	return out
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := sentineldf.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func mustScan(t *testing.T, b Backend, orgID, scanID string) *sentineldf.Scan {
	t.Helper()
	s, err := b.Store.Scan(context.Background(), orgID, scanID)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return s
}

func auditActions(t *testing.T, b Backend, orgID string) []string {
	t.Helper()
	evs, err := b.Store.AuditLog(context.Background(), orgID, 1000)
	if err != nil {
		t.Fatalf("AuditLog: %v", err)
	}
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Action
	}
	return out
}

// parallel runs fn(i) for i in [0, n) at once and returns their errors.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// Tests.

func testCreateOrg(t *testing.T, b Backend) {
	ctx := context.Background()
	f := newOrg(t, b, "Acme")

	got, err := b.Store.Org(ctx, f.org.ID)
	if err != nil {
		t.Fatalf("Org: %v", err)
	}
	if *got != *f.org {
		t.Errorf("Org = %+v, want %+v", got, f.org)
	}
	k, err := b.Store.LookupAPIKey(ctx, f.key.ID)
	if err != nil {
		t.Fatalf("LookupAPIKey: %v", err)
	}
	if k.OrgID != f.org.ID || k.Name != "first" || !slices.Equal(k.Scopes, sentineldf.DefaultScopes) ||
		string(k.Hash) != string(f.key.Hash) || !k.CreatedAt.Equal(base) || k.LastUsedAt != nil || k.RevokedAt != nil {
		t.Errorf("first key = %+v, want %+v", k, f.key)
	}
	if got := auditActions(t, b, f.org.ID); !slices.Equal(got, []string{sentineldf.AuditOrgCreated}) {
		t.Errorf("audit = %v, want [org.created]", got)
	}

	tests := []struct {
		name string
		org  *sentineldf.Org
		key  *sentineldf.APIKey
		code string
	}{
		{"duplicate org id", &sentineldf.Org{ID: f.org.ID, Name: "again", Plan: "free"}, newKey(f.org.ID, "k"), sentineldf.ECONFLICT},
		{"duplicate key id", &sentineldf.Org{ID: "org_other", Name: "other", Plan: "free"}, &sentineldf.APIKey{ID: f.key.ID, Name: "k", Hash: []byte("h")}, sentineldf.ECONFLICT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := b.Store.CreateOrg(ctx, tc.org, tc.key, sentineldf.AuditEvent{Action: sentineldf.AuditOrgCreated, Actor: "system"})
			wantCode(t, "CreateOrg", err, tc.code)
		})
	}
	// The failed creation left nothing behind.
	_, err = b.Store.Org(ctx, "org_other")
	wantCode(t, "Org(org_other) after failed CreateOrg", err, sentineldf.ENOTFOUND)
	_, err = b.Store.Org(ctx, "org_missing")
	wantCode(t, "Org(missing)", err, sentineldf.ENOTFOUND)
}

func testOperatorUnique(t *testing.T, b Backend) {
	ctx := context.Background()
	_, err := b.Store.OperatorOrg(ctx)
	wantCode(t, "OperatorOrg before any", err, sentineldf.ENOTFOUND)

	newOrg(t, b, "tenant") // not the operator
	_, err = b.Store.OperatorOrg(ctx)
	wantCode(t, "OperatorOrg with tenants only", err, sentineldf.ENOTFOUND)

	// Concurrent first starts: exactly one becomes the operator.
	var (
		mu     sync.Mutex
		winner string
	)
	errs := parallel(4, func(int) error {
		o := &sentineldf.Org{ID: sentineldf.NewID("org"), Name: "operator", Plan: "enterprise", Operator: true, CreatedAt: base}
		err := b.Store.CreateOrg(ctx, o, newKey(o.ID, "admin"), sentineldf.AuditEvent{Action: sentineldf.AuditOrgCreated, Actor: "system"})
		if err == nil {
			mu.Lock()
			winner = o.ID
			mu.Unlock()
		}
		return err
	})
	failed := 0
	for _, err := range errs {
		if err != nil {
			wantCode(t, "racing operator", err, sentineldf.ECONFLICT)
			failed++
		}
	}
	if failed != 3 {
		t.Fatalf("%d of 4 racing operator creations failed, want 3", failed)
	}
	got, err := b.Store.OperatorOrg(ctx)
	if err != nil || got.ID != winner || !got.Operator {
		t.Fatalf("OperatorOrg = %+v, %v; want %s", got, err, winner)
	}

	second := &sentineldf.Org{ID: sentineldf.NewID("org"), Name: "operator2", Plan: "enterprise", Operator: true}
	key := newKey(second.ID, "admin")
	err = b.Store.CreateOrg(ctx, second, key, sentineldf.AuditEvent{Action: sentineldf.AuditOrgCreated, Actor: "system"})
	wantCode(t, "second operator", err, sentineldf.ECONFLICT)
	_, err = b.Store.Org(ctx, second.ID)
	wantCode(t, "Org(second operator)", err, sentineldf.ENOTFOUND)
	_, err = b.Store.LookupAPIKey(ctx, key.ID)
	wantCode(t, "LookupAPIKey(second operator's key)", err, sentineldf.ENOTFOUND)
}

func testAPIKeys(t *testing.T, b Backend) {
	ctx := context.Background()
	f := newOrg(t, b, "Acme")

	second := newKey(f.org.ID, "ci")
	second.Scopes = []string{sentineldf.ScopeScanRead}
	second.CreatedAt = base.Add(time.Minute)
	if err := b.Store.CreateAPIKey(ctx, second, sentineldf.AuditEvent{Action: sentineldf.AuditKeyCreated, Actor: f.key.ID, Target: second.ID}); err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	err := b.Store.CreateAPIKey(ctx, second, sentineldf.AuditEvent{Action: sentineldf.AuditKeyCreated, Actor: f.key.ID})
	wantCode(t, "CreateAPIKey duplicate", err, sentineldf.ECONFLICT)
	orphan := newKey("org_missing", "x")
	err = b.Store.CreateAPIKey(ctx, orphan, sentineldf.AuditEvent{Action: sentineldf.AuditKeyCreated, Actor: "x"})
	wantCode(t, "CreateAPIKey unknown org", err, sentineldf.ENOTFOUND)
	_, err = b.Store.LookupAPIKey(ctx, orphan.ID)
	wantCode(t, "LookupAPIKey(orphan)", err, sentineldf.ENOTFOUND)

	keys, err := b.Store.APIKeys(ctx, f.org.ID)
	if err != nil {
		t.Fatalf("APIKeys: %v", err)
	}
	if len(keys) != 2 || keys[0].ID != second.ID || keys[1].ID != f.key.ID {
		t.Fatalf("APIKeys = %v, want [%s %s] (newest first)", keyIDs(keys), second.ID, f.key.ID)
	}
	if !slices.Equal(keys[0].Scopes, []string{sentineldf.ScopeScanRead}) {
		t.Errorf("scopes = %v", keys[0].Scopes)
	}

	used := base.Add(time.Hour)
	if err := b.Store.TouchAPIKey(ctx, f.org.ID, f.key.ID, used); err != nil {
		t.Fatalf("TouchAPIKey: %v", err)
	}
	// An older touch (a slow request) does not move it back.
	if err := b.Store.TouchAPIKey(ctx, f.org.ID, f.key.ID, base); err != nil {
		t.Fatalf("TouchAPIKey: %v", err)
	}
	k, err := b.Store.LookupAPIKey(ctx, f.key.ID)
	if err != nil || k.LastUsedAt == nil || !k.LastUsedAt.Equal(used) {
		t.Fatalf("LastUsedAt = %v, %v; want %v", k.LastUsedAt, err, used)
	}
	wantCode(t, "TouchAPIKey unknown", b.Store.TouchAPIKey(ctx, f.org.ID, "nope", used), sentineldf.ENOTFOUND)

	revokedAt := base.Add(2 * time.Hour)
	ev := sentineldf.AuditEvent{Action: sentineldf.AuditKeyRevoked, Actor: f.key.ID, Target: second.ID, At: revokedAt}
	r, err := b.Store.RevokeAPIKey(ctx, f.org.ID, second.ID, ev)
	if err != nil || r.RevokedAt == nil || !r.RevokedAt.Equal(revokedAt) || r.ID != second.ID {
		t.Fatalf("RevokeAPIKey = %+v, %v", r, err)
	}
	// Again: a no-op returning the key as it was, no second audit event.
	ev.At = revokedAt.Add(time.Hour)
	r, err = b.Store.RevokeAPIKey(ctx, f.org.ID, second.ID, ev)
	if err != nil || r.RevokedAt == nil || !r.RevokedAt.Equal(revokedAt) {
		t.Fatalf("second RevokeAPIKey = %+v, %v; want revoked at %v", r, err, revokedAt)
	}
	k, err = b.Store.LookupAPIKey(ctx, second.ID)
	if err != nil || !k.Revoked() || !k.RevokedAt.Equal(revokedAt) {
		t.Fatalf("revoked key = %+v, %v", k, err)
	}
	_, err = b.Store.RevokeAPIKey(ctx, f.org.ID, "nope", ev)
	wantCode(t, "RevokeAPIKey unknown", err, sentineldf.ENOTFOUND)

	want := []string{sentineldf.AuditKeyRevoked, sentineldf.AuditKeyCreated, sentineldf.AuditOrgCreated}
	if got := auditActions(t, b, f.org.ID); !slices.Equal(got, want) {
		t.Errorf("audit = %v, want %v", got, want)
	}
}

func keyIDs(keys []*sentineldf.APIKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}

func testCreateScan(t *testing.T, b Backend) {
	ctx := context.Background()
	f := newOrg(t, b, "Acme")
	s := newScan(f.org.ID, base, "https://example.com/hook")
	s.State = sentineldf.StateSucceeded // ignored: a new scan awaits its upload
	mustCreateScan(t, b, s)
	if s.State != sentineldf.StateAwaitingUpload {
		t.Errorf("CreateScan left State %q", s.State)
	}

	got := mustScan(t, b, f.org.ID, s.ID)
	if got.ID != s.ID || got.OrgID != f.org.ID || got.State != sentineldf.StateAwaitingUpload ||
		got.CallbackURL != s.CallbackURL || got.CreatedBy != "key1" || got.Priority != 2 ||
		!got.CreatedAt.Equal(base) || got.StartedAt != nil || got.FinishedAt != nil {
		t.Errorf("Scan = %+v", got)
	}
	wantFiles := []sentineldf.ScanFile{
		{Index: 0, Name: "data/train.jsonl", Size: 1000, SHA256: "ab12"},
		{Index: 1, Name: "data/test.jsonl", Size: 500},
	}
	if !slices.Equal(got.Files, wantFiles) {
		t.Errorf("Files = %+v, want %+v", got.Files, wantFiles)
	}

	dup := newScan(f.org.ID, base, "")
	dup.ID = s.ID
	wantCode(t, "CreateScan duplicate", b.Store.CreateScan(ctx, dup), sentineldf.ECONFLICT)
	wantCode(t, "CreateScan unknown org", b.Store.CreateScan(ctx, newScan("org_missing", base, "")), sentineldf.ENOTFOUND)
	bad := newScan(f.org.ID, base, "")
	bad.Files[0].Name = "../etc/passwd"
	wantCode(t, "CreateScan bad file name", b.Store.CreateScan(ctx, bad), sentineldf.EINVALID)
	_, err := b.Store.Scan(ctx, f.org.ID, bad.ID)
	wantCode(t, "Scan(rejected)", err, sentineldf.ENOTFOUND)
}

func testScansPagination(t *testing.T, b Backend) {
	ctx := context.Background()
	f := newOrg(t, b, "Acme")
	other := newOrg(t, b, "Other")
	mustCreateScan(t, b, newScan(other.org.ID, base, "")) // never listed for Acme

	// 25 scans; groups of five share a creation time, so the order's tie
	// break (id) is exercised across page boundaries.
	var want []*sentineldf.Scan
	for i := range 25 {
		want = append(want, mustCreateScan(t, b, newScan(f.org.ID, base.Add(time.Duration(i/5)*time.Second), "")))
	}
	slices.SortFunc(want, func(a, c *sentineldf.Scan) int {
		if d := c.CreatedAt.Compare(a.CreatedAt); d != 0 {
			return d
		}
		switch {
		case a.ID > c.ID:
			return -1
		case a.ID < c.ID:
			return 1
		}
		return 0
	})

	var (
		got    []string
		cursor string
		pages  []int
	)
	for range 10 {
		page, next, err := b.Store.Scans(ctx, f.org.ID, cursor, 10)
		if err != nil {
			t.Fatalf("Scans(cursor %q): %v", cursor, err)
		}
		pages = append(pages, len(page))
		for _, s := range page {
			if s.OrgID != f.org.ID || len(s.Files) != 2 {
				t.Fatalf("listed scan %+v", s)
			}
			got = append(got, s.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(pages, []int{10, 10, 5}) {
		t.Errorf("page sizes = %v, want [10 10 5]", pages)
	}
	wantIDs := make([]string, len(want))
	for i, s := range want {
		wantIDs[i] = s.ID
	}
	if !slices.Equal(got, wantIDs) {
		t.Errorf("listed\n%v\nwant (newest first)\n%v", got, wantIDs)
	}

	// A page that ends exactly at the last scan has no next cursor.
	page, next, err := b.Store.Scans(ctx, f.org.ID, "", 25)
	if err != nil || len(page) != 25 || next != "" {
		t.Errorf("Scans(limit 25) = %d scans, next %q, %v; want 25, \"\"", len(page), next, err)
	}
	page, next, err = b.Store.Scans(ctx, "org_missing", "", 10)
	if err != nil || len(page) != 0 || next != "" {
		t.Errorf("Scans(unknown org) = %d, %q, %v", len(page), next, err)
	}
	for _, c := range []string{"!!!", "bm90LWEtY3Vyc29y"} {
		_, _, err = b.Store.Scans(ctx, f.org.ID, c, 10)
		wantCode(t, "Scans(bad cursor "+c+")", err, sentineldf.EINVALID)
	}
}

func testConfirmScan(t *testing.T, b Backend) {
	ctx := context.Background()
	f := newOrg(t, b, "Acme")
	s := mustCreateScan(t, b, newScan(f.org.ID, base, ""))

	got, err := b.Store.ConfirmScan(ctx, f.org.ID, s.ID, 1)
	if err != nil {
		t.Fatalf("ConfirmScan: %v", err)
	}
	if got.State != sentineldf.StateQueued || got.Priority != 1 {
		t.Errorf("confirmed scan state %q priority %d, want queued 1", got.State, got.Priority)
	}
	for _, file := range got.Files {
		if !file.Uploaded {
			t.Errorf("file %s not marked uploaded", file.Name)
		}
	}
	if got := mustScan(t, b, f.org.ID, s.ID); got.State != sentineldf.StateQueued {
		t.Errorf("stored state %q", got.State)
	}
	jobs := jobsFor(t, b, sentineldf.PlanJob{}.Kind(), s.ID)
	if len(jobs) != 1 || jobs[0].OrgID != f.org.ID || jobs[0].Trace["traceparent"] != s.Trace["traceparent"] {
		t.Fatalf("plan jobs = %+v, want one with org and trace", jobs)
	}

	_, err = b.Store.ConfirmScan(ctx, f.org.ID, s.ID, 1)
	wantCode(t, "ConfirmScan again", err, sentineldf.ECONFLICT)
	if n := len(jobsFor(t, b, sentineldf.PlanJob{}.Kind(), s.ID)); n != 1 {
		t.Errorf("plan jobs after second confirm = %d, want 1", n)
	}
	_, err = b.Store.ConfirmScan(ctx, f.org.ID, "scan_missing", 1)
	wantCode(t, "ConfirmScan unknown", err, sentineldf.ENOTFOUND)
	s2 := mustCreateScan(t, b, newScan(f.org.ID, base, ""))
	_, err = b.Store.ConfirmScan(ctx, f.org.ID, s2.ID, 9)
	wantCode(t, "ConfirmScan priority 9", err, sentineldf.EINVALID)
}

func testStartScan(t *testing.T, b Backend) {
	ctx := context.Background()
	f := newOrg(t, b, "Acme")
	s := mustCreateScan(t, b, newScan(f.org.ID, base, ""))
	shards := makeShards(s, 3)
	total := sentineldf.Progress{DocsTotal: 30, BytesTotal: 300}

	wantCode(t, "StartScan before confirm", b.Store.StartScan(ctx, f.org.ID, s.ID, shards, total), sentineldf.ECONFLICT)
	if _, err := b.Store.ConfirmScan(ctx, f.org.ID, s.ID, 2); err != nil {
		t.Fatalf("ConfirmScan: %v", err)
	}
	bad := slices.Clone(shards)
	bad[1].Index = 5
	wantCode(t, "StartScan bad indexes", b.Store.StartScan(ctx, f.org.ID, s.ID, bad, total), sentineldf.EINVALID)

	for i := range 2 { // the second call is a retried PlanJob
		if err := b.Store.StartScan(ctx, f.org.ID, s.ID, shards, total); err != nil {
			t.Fatalf("StartScan #%d: %v", i+1, err)
		}
	}
	// A retry that planned differently changes nothing either.
	if err := b.Store.StartScan(ctx, f.org.ID, s.ID, makeShards(s, 7), total); err != nil {
		t.Fatalf("StartScan (replanned): %v", err)
	}

	got := mustScan(t, b, f.org.ID, s.ID)
	if got.State != sentineldf.StateRunning || got.StartedAt == nil || got.Progress != total {
		t.Errorf("started scan: state %q started %v progress %+v", got.State, got.StartedAt, got.Progress)
	}
	stored, err := b.Store.Shards(ctx, f.org.ID, s.ID)
	if err != nil {
		t.Fatalf("Shards: %v", err)
	}
	if !slices.Equal(stored, shards) {
		t.Errorf("Shards = %+v\nwant %+v", stored, shards)
	}
	jobs := jobsFor(t, b, sentineldf.ShardJob{}.Kind(), s.ID)
	if len(jobs) != 3 {
		t.Fatalf("shard jobs = %d, want 3", len(jobs))
	}
	for i, j := range jobs {
		if j.Shard != i || j.OrgID != f.org.ID || j.Trace["traceparent"] == "" {
			t.Errorf("shard job %d = %+v", i, j)
		}
	}
	if n := len(jobsFor(t, b, sentineldf.FinalizeJob{}.Kind(), s.ID)); n != 0 {
		t.Errorf("finalize jobs = %d, want 0", n)
	}
	_, err = b.Store.Shards(ctx, f.org.ID, "scan_missing")
	wantCode(t, "Shards unknown scan", err, sentineldf.ENOTFOUND)
	wantCode(t, "StartScan unknown scan", b.Store.StartScan(ctx, f.org.ID, "scan_missing", shards, total), sentineldf.ENOTFOUND)

	// Finished and canceled scans cannot start.
	if _, err := b.Store.FinishScan(ctx, f.org.ID, s.ID, sentineldf.StateSucceeded, sentineldf.Counts{}, ""); err != nil {
		t.Fatalf("FinishScan: %v", err)
	}
	wantCode(t, "StartScan finished", b.Store.StartScan(ctx, f.org.ID, s.ID, shards, total), sentineldf.ECONFLICT)
	c := mustCreateScan(t, b, newScan(f.org.ID, base, ""))
	if _, err := b.Store.ConfirmScan(ctx, f.org.ID, c.ID, 2); err != nil {
		t.Fatalf("ConfirmScan: %v", err)
	}
	if _, err := b.Store.CancelScan(ctx, f.org.ID, c.ID, sentineldf.AuditEvent{Action: sentineldf.AuditScanCanceled, Actor: "k"}); err != nil {
		t.Fatalf("CancelScan: %v", err)
	}
	wantCode(t, "StartScan canceled", b.Store.StartScan(ctx, f.org.ID, c.ID, makeShards(c, 2), total), sentineldf.ECONFLICT)
	if sh, err := b.Store.Shards(ctx, f.org.ID, c.ID); err != nil || len(sh) != 0 {
		t.Errorf("canceled scan's shards = %v, %v; want none", sh, err)
	}
}

func testStartScanWithoutShards(t *testing.T, b Backend) {
	ctx := context.Background()
	f := newOrg(t, b, "Acme")
	s := mustCreateScan(t, b, newScan(f.org.ID, base, ""))
	if _, err := b.Store.ConfirmScan(ctx, f.org.ID, s.ID, 3); err != nil {
		t.Fatalf("ConfirmScan: %v", err)
	}
	for range 2 {
		if err := b.Store.StartScan(ctx, f.org.ID, s.ID, nil, sentineldf.Progress{}); err != nil {
			t.Fatalf("StartScan: %v", err)
		}
	}
	if got := mustScan(t, b, f.org.ID, s.ID); got.State != sentineldf.StateRunning {
		t.Errorf("state %q, want running", got.State)
	}
	if n := len(jobsFor(t, b, sentineldf.FinalizeJob{}.Kind(), s.ID)); n != 1 {
		t.Errorf("finalize jobs = %d, want 1 (no shard will enqueue it)", n)
	}
}

func testCompleteShard(t *testing.T, b Backend) {
	ctx := context.Background()
	f := newOrg(t, b, "Acme")
	s, shards := runningScan(t, b, f.org.ID, 3, "")

	for i, sh := range shards {
		recorded, last, err := b.Store.CompleteShard(ctx, doneShard(sh))
		if err != nil {
			t.Fatalf("CompleteShard(%d): %v", i, err)
		}
		if !recorded || last != (i == len(shards)-1) {
			t.Errorf("CompleteShard(%d) = recorded %v last %v", i, recorded, last)
		}
		got := mustScan(t, b, f.org.ID, s.ID)
		n := int64(i + 1)
		wantProgress := sentineldf.Progress{DocsDone: 10 * n, DocsTotal: 30, BytesDone: 100 * n, BytesTotal: 300}
		if got.Progress != wantProgress {
			t.Errorf("after shard %d progress %+v, want %+v", i, got.Progress, wantProgress)
		}
		if want := (sentineldf.Counts{Clean: 7 * n, Elevated: 2 * n, Quarantine: n}); got.Counts != want || got.CacheHits != 3*n || got.Malformed != n {
			t.Errorf("after shard %d counts %+v hits %d malformed %d", i, got.Counts, got.CacheHits, got.Malformed)
		}
		wantFinal := 0
		if last {
			wantFinal = 1
		}
		if n := len(jobsFor(t, b, sentineldf.FinalizeJob{}.Kind(), s.ID)); n != wantFinal {
			t.Errorf("after shard %d finalize jobs = %d, want %d", i, n, wantFinal)
		}
	}

	// Completing a done shard again (a retried ShardJob) changes nothing.
	again := doneShard(shards[0])
	again.Docs = 999
	recorded, last, err := b.Store.CompleteShard(ctx, again)
	if err != nil || recorded || last {
		t.Errorf("CompleteShard(done) = %v, %v, %v; want false, false, nil", recorded, last, err)
	}
	stored, err := b.Store.Shards(ctx, f.org.ID, s.ID)
	if err != nil {
		t.Fatalf("Shards: %v", err)
	}
	for _, sh := range stored {
		if !sh.Done || sh.Docs != 10 || sh.Bytes != 100 || sh.Counts.Clean != 7 || sh.CacheHits != 3 {
			t.Errorf("stored shard %+v", sh)
		}
	}
	docs, bytes, _, err := b.Store.Usage(ctx, f.org.ID, base.AddDate(-1, 0, 0), time.Now().AddDate(1, 0, 0))
	if err != nil || docs != 30 || bytes != 300 {
		t.Errorf("Usage = %d docs %d bytes %v; want 30, 300", docs, bytes, err)
	}
	if n := len(jobsFor(t, b, sentineldf.FinalizeJob{}.Kind(), s.ID)); n != 1 {
		t.Errorf("finalize jobs = %d, want 1", n)
	}
	missing := doneShard(shards[0])
	missing.Index = 99
	_, _, err = b.Store.CompleteShard(ctx, missing)
	wantCode(t, "CompleteShard unknown shard", err, sentineldf.ENOTFOUND)
}

func testCompleteShardConcurrentSame(t *testing.T, b Backend) {
	ctx := context.Background()
	f := newOrg(t, b, "Acme")
	s, shards := runningScan(t, b, f.org.ID, 2, "")

	var (
		mu       sync.Mutex
		recorded int
	)
	errs := parallel(8, func(int) error {
		r, last, err := b.Store.CompleteShard(ctx, doneShard(shards[0]))
		if err != nil {
			return err
		}
		if last {
			return errors.New("last = true with a shard still open")
		}
		if r {
			mu.Lock()
			recorded++
			mu.Unlock()
		}
		return nil
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent CompleteShard: %v", err)
	}
	if recorded != 1 {
		t.Errorf("recorded %d times, want exactly 1", recorded)
	}
	got := mustScan(t, b, f.org.ID, s.ID)
	if got.Progress.DocsDone != 10 || got.Counts.Clean != 7 {
		t.Errorf("progress %+v counts %+v, want one shard's", got.Progress, got.Counts)
	}
	docs, _, _, err := b.Store.Usage(ctx, f.org.ID, base.AddDate(-1, 0, 0), time.Now().AddDate(1, 0, 0))
	if err != nil || docs != 10 {
		t.Errorf("usage docs = %d, %v; want 10", docs, err)
	}
}

func testFinalizeOnce(t *testing.T, b Backend) {
	ctx := context.Background()
	f := newOrg(t, b, "Acme")
	const n = 8
	s, shards := runningScan(t, b, f.org.ID, n, "")

	var (
		mu             sync.Mutex
		recorded, last int
	)
	// Every shard completed twice, all at once.
	errs := parallel(2*n, func(i int) error {
		r, l, err := b.Store.CompleteShard(ctx, doneShard(shards[i%n]))
		mu.Lock()
		defer mu.Unlock()
		if r {
			recorded++
		}
		if l {
			last++
		}
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent CompleteShard: %v", err)
	}
	if recorded != n || last != 1 {
		t.Errorf("recorded %d (want %d), last %d (want 1)", recorded, n, last)
	}
	if got := len(jobsFor(t, b, sentineldf.FinalizeJob{}.Kind(), s.ID)); got != 1 {
		t.Errorf("finalize jobs = %d, want 1", got)
	}
	got := mustScan(t, b, f.org.ID, s.ID)
	if got.Progress.DocsDone != 10*n || got.Progress.BytesDone != 100*n {
		t.Errorf("progress %+v", got.Progress)
	}
}

func testFinishScan(t *testing.T, b Backend) {
	ctx := context.Background()
	f := newOrg(t, b, "Acme")
	withHook, _ := runningScan(t, b, f.org.ID, 1, "https://example.com/hook")
	without, _ := runningScan(t, b, f.org.ID, 1, "")

	_, err := b.Store.FinishScan(ctx, f.org.ID, withHook.ID, sentineldf.StateRunning, sentineldf.Counts{}, "")
	wantCode(t, "FinishScan non-terminal state", err, sentineldf.EINVALID)

	final := sentineldf.Counts{Clean: 5, Elevated: 3, Quarantine: 2}
	changed, err := b.Store.FinishScan(ctx, f.org.ID, withHook.ID, sentineldf.StateSucceeded, final, "ignored")
	if err != nil || !changed {
		t.Fatalf("FinishScan = %v, %v; want true", changed, err)
	}
	got := mustScan(t, b, f.org.ID, withHook.ID)
	if got.State != sentineldf.StateSucceeded || got.Counts != final || got.FinishedAt == nil || got.Error != "" {
		t.Errorf("finished scan: %+v", got)
	}
	// Terminal stays terminal.
	changed, err = b.Store.FinishScan(ctx, f.org.ID, withHook.ID, sentineldf.StateFailed, sentineldf.Counts{}, "late failure")
	if err != nil || changed {
		t.Errorf("FinishScan(terminal) = %v, %v; want false", changed, err)
	}
	if again := mustScan(t, b, f.org.ID, withHook.ID); again.State != sentineldf.StateSucceeded || again.Counts != final {
		t.Errorf("terminal scan changed: %+v", again)
	}

	changed, err = b.Store.FinishScan(ctx, f.org.ID, without.ID, sentineldf.StateFailed, sentineldf.Counts{}, "input unreadable")
	if err != nil || !changed {
		t.Fatalf("FinishScan(failed) = %v, %v", changed, err)
	}
	if got := mustScan(t, b, f.org.ID, without.ID); got.State != sentineldf.StateFailed || got.Error != "input unreadable" {
		t.Errorf("failed scan: state %q error %q", got.State, got.Error)
	}

	if jobs := jobsFor(t, b, sentineldf.CallbackJob{}.Kind(), withHook.ID); len(jobs) != 1 || jobs[0].Trace["traceparent"] == "" {
		t.Errorf("callback jobs with URL = %+v, want one with trace", jobs)
	}
	if n := len(jobsFor(t, b, sentineldf.CallbackJob{}.Kind(), without.ID)); n != 0 {
		t.Errorf("callback jobs without URL = %d, want 0", n)
	}
	_, err = b.Store.FinishScan(ctx, f.org.ID, "scan_missing", sentineldf.StateSucceeded, final, "")
	wantCode(t, "FinishScan unknown", err, sentineldf.ENOTFOUND)
}

func testCancelScan(t *testing.T, b Backend) {
	ctx := context.Background()
	f := newOrg(t, b, "Acme")
	ev := sentineldf.AuditEvent{Action: sentineldf.AuditScanCanceled, Actor: f.key.ID}

	awaiting := mustCreateScan(t, b, newScan(f.org.ID, base, ""))
	queued := mustCreateScan(t, b, newScan(f.org.ID, base, "https://example.com/hook"))
	if _, err := b.Store.ConfirmScan(ctx, f.org.ID, queued.ID, 2); err != nil {
		t.Fatalf("ConfirmScan: %v", err)
	}
	running, shards := runningScan(t, b, f.org.ID, 2, "")
	for _, s := range []*sentineldf.Scan{awaiting, queued, running} {
		got, err := b.Store.CancelScan(ctx, f.org.ID, s.ID, ev)
		if err != nil || got.State != sentineldf.StateCanceled || got.FinishedAt == nil || len(got.Files) != 2 {
			t.Fatalf("CancelScan = %+v, %v", got, err)
		}
		_, err = b.Store.CancelScan(ctx, f.org.ID, s.ID, ev)
		wantCode(t, "CancelScan twice", err, sentineldf.ECONFLICT)
	}
	if n := len(jobsFor(t, b, sentineldf.CallbackJob{}.Kind(), queued.ID)); n != 1 {
		t.Errorf("callback jobs of a canceled scan with URL = %d, want 1", n)
	}

	// A canceled scan stays canceled; its shards are still recorded but
	// the scan is not finalized.
	if changed, err := b.Store.FinishScan(ctx, f.org.ID, running.ID, sentineldf.StateSucceeded, sentineldf.Counts{}, ""); err != nil || changed {
		t.Errorf("FinishScan(canceled) = %v, %v; want false", changed, err)
	}
	for _, sh := range shards {
		if _, last, err := b.Store.CompleteShard(ctx, doneShard(sh)); err != nil || last {
			t.Errorf("CompleteShard(canceled scan) last %v, %v", last, err)
		}
	}
	if n := len(jobsFor(t, b, sentineldf.FinalizeJob{}.Kind(), running.ID)); n != 0 {
		t.Errorf("finalize jobs of canceled scan = %d, want 0", n)
	}
	if got := mustScan(t, b, f.org.ID, running.ID); got.State != sentineldf.StateCanceled {
		t.Errorf("state %q, want canceled", got.State)
	}
	want := []string{sentineldf.AuditScanCanceled, sentineldf.AuditScanCanceled, sentineldf.AuditScanCanceled, sentineldf.AuditOrgCreated}
	if got := auditActions(t, b, f.org.ID); !slices.Equal(got, want) {
		t.Errorf("audit = %v, want %v", got, want)
	}
	_, err := b.Store.CancelScan(ctx, f.org.ID, "scan_missing", ev)
	wantCode(t, "CancelScan unknown", err, sentineldf.ENOTFOUND)
}

func testUsage(t *testing.T, b Backend) {
	ctx := context.Background()
	f := newOrg(t, b, "Acme")
	other := newOrg(t, b, "Other")
	jan, feb, err := sentineldf.PeriodBounds("2026-01")
	if err != nil {
		t.Fatal(err)
	}
	records := []struct {
		u     sentineldf.UsageRecord
		added bool
	}{
		{sentineldf.UsageRecord{OrgID: f.org.ID, Key: "a", Docs: 1, Bytes: 10, At: jan.Add(-time.Microsecond)}, true}, // Dec 31
		{sentineldf.UsageRecord{OrgID: f.org.ID, Key: "b", Docs: 2, Bytes: 20, At: jan}, true},
		{sentineldf.UsageRecord{OrgID: f.org.ID, Key: "c", Docs: 4, Bytes: 40, At: jan.Add(12 * time.Hour)}, true},
		{sentineldf.UsageRecord{OrgID: f.org.ID, Key: "d", Docs: 8, Bytes: 80, At: jan.AddDate(0, 0, 14)}, true},
		{sentineldf.UsageRecord{OrgID: f.org.ID, Key: "e", Docs: 16, Bytes: 160, At: feb.Add(-time.Microsecond)}, true}, // Jan 31 23:59:59.999999
		{sentineldf.UsageRecord{OrgID: f.org.ID, Key: "f", Docs: 32, Bytes: 320, At: feb}, true},
		{sentineldf.UsageRecord{OrgID: f.org.ID, Key: "c", Docs: 64, Bytes: 640, At: jan.Add(time.Hour)}, false}, // replayed key
		{sentineldf.UsageRecord{OrgID: other.org.ID, Key: "c", Docs: 128, Bytes: 1280, At: jan.Add(time.Hour)}, true},
	}
	for _, r := range records {
		added, err := b.Store.RecordUsage(ctx, r.u)
		if err != nil || added != r.added {
			t.Fatalf("RecordUsage(%s/%s) = %v, %v; want %v", r.u.OrgID, r.u.Key, added, err, r.added)
		}
	}
	_, err = b.Store.RecordUsage(ctx, sentineldf.UsageRecord{OrgID: "org_missing", Key: "x", Docs: 1, At: jan})
	wantCode(t, "RecordUsage unknown org", err, sentineldf.ENOTFOUND)

	tests := []struct {
		name        string
		org         string
		from, to    time.Time
		docs, bytes int64
		daily       []sentineldf.DailyUsage
	}{
		{"january", f.org.ID, jan, feb, 30, 300, []sentineldf.DailyUsage{
			{Date: "2026-01-01", Docs: 6, Bytes: 60},
			{Date: "2026-01-15", Docs: 8, Bytes: 80},
			{Date: "2026-01-31", Docs: 16, Bytes: 160},
		}},
		{"february", f.org.ID, feb, feb.AddDate(0, 1, 0), 32, 320, []sentineldf.DailyUsage{{Date: "2026-02-01", Docs: 32, Bytes: 320}}},
		{"december", f.org.ID, jan.AddDate(0, -1, 0), jan, 1, 10, []sentineldf.DailyUsage{{Date: "2025-12-31", Docs: 1, Bytes: 10}}},
		{"other org", other.org.ID, jan, feb, 128, 1280, []sentineldf.DailyUsage{{Date: "2026-01-01", Docs: 128, Bytes: 1280}}},
		{"empty", f.org.ID, feb.AddDate(1, 0, 0), feb.AddDate(1, 1, 0), 0, 0, []sentineldf.DailyUsage{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			docs, bytes, daily, err := b.Store.Usage(ctx, tc.org, tc.from, tc.to)
			if err != nil {
				t.Fatalf("Usage: %v", err)
			}
			if docs != tc.docs || bytes != tc.bytes || !slices.Equal(daily, tc.daily) {
				t.Errorf("Usage = %d, %d, %+v; want %d, %d, %+v", docs, bytes, daily, tc.docs, tc.bytes, tc.daily)
			}
		})
	}
}

func testSigningKey(t *testing.T, b Backend) {
	ctx := context.Background()
	f := newOrg(t, b, "Acme")
	_, err := b.Store.SigningKey(ctx, f.org.ID)
	wantCode(t, "SigningKey before put", err, sentineldf.ENOTFOUND)

	k := &sentineldf.SigningKey{OrgID: f.org.ID, KeyID: "fp1", PublicPEM: "-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----\n",
		PrivatePEM: []byte{0, 1, 2, 0xfe, 0xff, 'x'}, CreatedAt: base}
	if err := b.Store.PutSigningKey(ctx, k); err != nil {
		t.Fatalf("PutSigningKey: %v", err)
	}
	second := &sentineldf.SigningKey{OrgID: f.org.ID, KeyID: "fp2", PublicPEM: "other", PrivatePEM: []byte("other")}
	wantCode(t, "PutSigningKey second", b.Store.PutSigningKey(ctx, second), sentineldf.ECONFLICT)
	wantCode(t, "PutSigningKey unknown org", b.Store.PutSigningKey(ctx, &sentineldf.SigningKey{OrgID: "org_missing", KeyID: "x", PublicPEM: "p", PrivatePEM: []byte("p")}), sentineldf.ENOTFOUND)

	got, err := b.Store.SigningKey(ctx, f.org.ID)
	if err != nil {
		t.Fatalf("SigningKey: %v", err)
	}
	if got.OrgID != k.OrgID || got.KeyID != "fp1" || got.PublicPEM != k.PublicPEM || string(got.PrivatePEM) != string(k.PrivatePEM) || !got.CreatedAt.Equal(base) {
		t.Errorf("SigningKey = %+v, want %+v", got, k)
	}
}

func testMBOM(t *testing.T, b Backend) {
	ctx := context.Background()
	f := newOrg(t, b, "Acme")
	s, _ := runningScan(t, b, f.org.ID, 1, "")
	other, _ := runningScan(t, b, f.org.ID, 1, "")

	var want []string
	for i := range 3 {
		m := &sentineldf.MBOMRecord{
			ID: sentineldf.NewID("mbom"), OrgID: f.org.ID, ScanID: s.ID, ApprovedBy: "alice@example.com",
			KeyID: "fp1", Digest: fmt.Sprintf("sha256:%d", i), ObjectKey: sentineldf.ResultKey(f.org.ID, s.ID, sentineldf.MBOMObject),
			CreatedAt: base.Add(time.Duration(i) * time.Minute),
		}
		if err := b.Store.CreateMBOM(ctx, m, sentineldf.AuditEvent{Action: sentineldf.AuditMBOMSigned, Actor: f.key.ID, Target: s.ID}); err != nil {
			t.Fatalf("CreateMBOM: %v", err)
		}
		want = append(want, m.ID)
	}
	err := b.Store.CreateMBOM(ctx, &sentineldf.MBOMRecord{ID: sentineldf.NewID("mbom"), OrgID: f.org.ID, ScanID: "scan_missing"},
		sentineldf.AuditEvent{Action: sentineldf.AuditMBOMSigned, Actor: f.key.ID})
	wantCode(t, "CreateMBOM unknown scan", err, sentineldf.ENOTFOUND)

	got, err := b.Store.MBOMs(ctx, f.org.ID, s.ID)
	if err != nil {
		t.Fatalf("MBOMs: %v", err)
	}
	var ids []string
	for _, m := range got {
		ids = append(ids, m.ID)
		if m.ScanID != s.ID || m.ApprovedBy != "alice@example.com" || m.ObjectKey == "" {
			t.Errorf("MBOM %+v", m)
		}
	}
	if !slices.Equal(ids, want) {
		t.Errorf("MBOMs = %v, want %v (oldest first)", ids, want)
	}
	if got, err := b.Store.MBOMs(ctx, f.org.ID, other.ID); err != nil || len(got) != 0 {
		t.Errorf("MBOMs(other scan) = %v, %v; want none", got, err)
	}
	_, err = b.Store.MBOMs(ctx, f.org.ID, "scan_missing")
	wantCode(t, "MBOMs unknown scan", err, sentineldf.ENOTFOUND)
	if n := len(auditActions(t, b, f.org.ID)); n != 4 {
		t.Errorf("audit events = %d, want 4 (org + 3 signings)", n)
	}
}

func testAuditLog(t *testing.T, b Backend) {
	ctx := context.Background()
	f := newOrg(t, b, "Acme")
	other := newOrg(t, b, "Other")
	for i := range 5 {
		ev := sentineldf.AuditEvent{
			OrgID: f.org.ID, Action: fmt.Sprintf("test.%d", i), Actor: f.key.ID, Target: "t",
			Details: map[string]string{"n": fmt.Sprint(i)}, RequestID: "req", At: base.Add(time.Duration(i) * time.Second),
		}
		if err := b.Store.AppendAudit(ctx, ev); err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
	}
	wantCode(t, "AppendAudit unknown org", b.Store.AppendAudit(ctx, sentineldf.AuditEvent{OrgID: "org_missing", Action: "x", Actor: "y"}), sentineldf.ENOTFOUND)

	evs, err := b.Store.AuditLog(ctx, f.org.ID, 3)
	if err != nil {
		t.Fatalf("AuditLog: %v", err)
	}
	if len(evs) != 3 {
		t.Fatalf("AuditLog(limit 3) = %d events", len(evs))
	}
	for i, ev := range evs {
		n := 4 - i
		if ev.Action != fmt.Sprintf("test.%d", n) || ev.Details["n"] != fmt.Sprint(n) || ev.RequestID != "req" ||
			ev.OrgID != f.org.ID || !ev.At.Equal(base.Add(time.Duration(n)*time.Second)) {
			t.Errorf("event %d = %+v, want test.%d", i, ev, n)
		}
		if i > 0 && ev.ID >= evs[i-1].ID {
			t.Errorf("ids not decreasing: %d then %d", evs[i-1].ID, ev.ID)
		}
	}
	all, err := b.Store.AuditLog(ctx, other.org.ID, 100)
	if err != nil || len(all) != 1 || all[0].Action != sentineldf.AuditOrgCreated {
		t.Errorf("other org's audit = %+v, %v; want its creation only", all, err)
	}
}

// testTenantIsolation calls every org-scoped method with org B's id on org
// A's objects: each is ENOTFOUND, exactly like a missing object, and A's
// objects are unchanged afterwards.
func testTenantIsolation(t *testing.T, b Backend) {
	ctx := context.Background()
	a := newOrg(t, b, "A")
	bb := newOrg(t, b, "B")
	A, B := a.org.ID, bb.org.ID
	ev := sentineldf.AuditEvent{Action: "test.isolation", Actor: bb.key.ID}

	awaiting := mustCreateScan(t, b, newScan(A, base, ""))
	queued := mustCreateScan(t, b, newScan(A, base, ""))
	if _, err := b.Store.ConfirmScan(ctx, A, queued.ID, 2); err != nil {
		t.Fatalf("ConfirmScan: %v", err)
	}
	running, shards := runningScan(t, b, A, 2, "")
	if err := b.Store.PutSigningKey(ctx, &sentineldf.SigningKey{OrgID: A, KeyID: "fpA", PublicPEM: "pub", PrivatePEM: []byte("priv")}); err != nil {
		t.Fatalf("PutSigningKey: %v", err)
	}
	if err := b.Store.CreateMBOM(ctx, &sentineldf.MBOMRecord{ID: "mbom_a", OrgID: A, ScanID: running.ID}, sentineldf.AuditEvent{Action: sentineldf.AuditMBOMSigned, Actor: a.key.ID}); err != nil {
		t.Fatalf("CreateMBOM: %v", err)
	}
	before := map[string]*sentineldf.Scan{}
	for _, s := range []*sentineldf.Scan{awaiting, queued, running} {
		before[s.ID] = mustScan(t, b, A, s.ID)
	}
	auditBefore := len(auditActions(t, b, A))

	crossShard := doneShard(shards[0])
	crossShard.OrgID = B
	calls := []struct {
		name string
		call func() error
	}{
		{"Scan", func() error { _, err := b.Store.Scan(ctx, B, running.ID); return err }},
		{"ConfirmScan", func() error { _, err := b.Store.ConfirmScan(ctx, B, awaiting.ID, 1); return err }},
		{"StartScan", func() error {
			return b.Store.StartScan(ctx, B, queued.ID, makeShards(queued, 1), sentineldf.Progress{DocsTotal: 1})
		}},
		{"Shards", func() error { _, err := b.Store.Shards(ctx, B, running.ID); return err }},
		{"CompleteShard", func() error { _, _, err := b.Store.CompleteShard(ctx, crossShard); return err }},
		{"FinishScan", func() error {
			_, err := b.Store.FinishScan(ctx, B, running.ID, sentineldf.StateFailed, sentineldf.Counts{}, "x")
			return err
		}},
		{"CancelScan", func() error { _, err := b.Store.CancelScan(ctx, B, running.ID, ev); return err }},
		{"RevokeAPIKey", func() error { _, err := b.Store.RevokeAPIKey(ctx, B, a.key.ID, ev); return err }},
		{"TouchAPIKey", func() error { return b.Store.TouchAPIKey(ctx, B, a.key.ID, base.Add(time.Hour)) }},
		{"MBOMs", func() error { _, err := b.Store.MBOMs(ctx, B, running.ID); return err }},
		{"CreateMBOM", func() error {
			return b.Store.CreateMBOM(ctx, &sentineldf.MBOMRecord{ID: "mbom_b", OrgID: B, ScanID: running.ID}, ev)
		}},
		{"SigningKey", func() error { _, err := b.Store.SigningKey(ctx, B); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			wantCode(t, c.name+" with another org's id", c.call(), sentineldf.ENOTFOUND)
		})
	}

	// Listings of B show none of A's objects.
	if scans, _, err := b.Store.Scans(ctx, B, "", 100); err != nil || len(scans) != 0 {
		t.Errorf("Scans(B) = %d scans, %v; want 0", len(scans), err)
	}
	if keys, err := b.Store.APIKeys(ctx, B); err != nil || len(keys) != 1 || keys[0].ID != bb.key.ID {
		t.Errorf("APIKeys(B) = %v, %v; want only B's key", keyIDs(keys), err)
	}
	if evs, err := b.Store.AuditLog(ctx, B, 100); err != nil || len(evs) != 1 {
		t.Errorf("AuditLog(B) = %d events, %v; want B's creation only", len(evs), err)
	}
	if docs, _, _, err := b.Store.Usage(ctx, B, base.AddDate(-1, 0, 0), time.Now().AddDate(1, 0, 0)); err != nil || docs != 0 {
		t.Errorf("Usage(B) = %d, %v; want 0", docs, err)
	}

	// A's objects are untouched.
	for id, want := range before {
		got := mustScan(t, b, A, id)
		if got.State != want.State || got.Progress != want.Progress || got.Counts != want.Counts || !got.UpdatedAt.Equal(want.UpdatedAt) {
			t.Errorf("scan %s changed: %+v -> %+v", id, want, got)
		}
	}
	if sh, err := b.Store.Shards(ctx, A, running.ID); err != nil || sh[0].Done {
		t.Errorf("A's shard completed through B: %+v, %v", sh, err)
	}
	if k, err := b.Store.LookupAPIKey(ctx, a.key.ID); err != nil || k.Revoked() || k.LastUsedAt != nil {
		t.Errorf("A's key changed through B: %+v, %v", k, err)
	}
	if ms, err := b.Store.MBOMs(ctx, A, running.ID); err != nil || len(ms) != 1 {
		t.Errorf("A's MBOMs = %d, %v; want 1", len(ms), err)
	}
	if n := len(auditActions(t, b, A)); n != auditBefore {
		t.Errorf("A's audit log grew from %d to %d", auditBefore, n)
	}
	if n := len(jobsFor(t, b, sentineldf.PlanJob{}.Kind(), awaiting.ID)); n != 0 {
		t.Errorf("plan jobs for A's unconfirmed scan = %d", n)
	}
	if n := len(jobsFor(t, b, sentineldf.ShardJob{}.Kind(), queued.ID)); n != 0 {
		t.Errorf("shard jobs for A's queued scan = %d", n)
	}
}

func testQueue(t *testing.T, b Backend) {
	ctx := context.Background()
	if err := b.Store.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	depth, err := b.Queue.QueueDepth(ctx)
	if err != nil || depth != 0 {
		t.Fatalf("QueueDepth(empty) = %d, %v", depth, err)
	}
	f := newOrg(t, b, "Acme")
	runningScan(t, b, f.org.ID, 3, "") // a plan job and three shard jobs, nothing runs them
	depth, err = b.Queue.QueueDepth(ctx)
	if err != nil || depth != 4 {
		t.Errorf("QueueDepth = %d, %v; want 4", depth, err)
	}
	dead, err := b.Queue.DeadJobs(ctx, 10)
	if err != nil || len(dead) != 0 {
		t.Errorf("DeadJobs = %v, %v; want none", dead, err)
	}
	wantCode(t, "RetryJob unknown", b.Queue.RetryJob(ctx, 1<<40), sentineldf.ENOTFOUND)
}
