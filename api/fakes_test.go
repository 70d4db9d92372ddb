package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sentineldf/sentineldf"
)

// fakeStore is an in-memory Store with just enough behaviour for the
// handler tests: org scoping, state checks and call counters.
type fakeStore struct {
	mu       sync.Mutex
	orgs     map[string]*sentineldf.Org
	keys     map[string]*sentineldf.APIKey
	scans    map[string]*sentineldf.Scan
	usage    map[string]sentineldf.UsageRecord
	signing  map[string]*sentineldf.SigningKey
	mboms    []*sentineldf.MBOMRecord
	audit    []sentineldf.AuditEvent
	touched  map[string]time.Time
	pingErr  error
	scanErrs []error // CreateScan pops one error per call while any remain

	lookups     atomic.Int64
	createScans atomic.Int64
}

func newFakeStore() *fakeStore {
	return &fakeStore{
		orgs: map[string]*sentineldf.Org{}, keys: map[string]*sentineldf.APIKey{},
		scans: map[string]*sentineldf.Scan{}, usage: map[string]sentineldf.UsageRecord{},
		signing: map[string]*sentineldf.SigningKey{}, touched: map[string]time.Time{},
	}
}

var errNotImplemented = errors.New("fake: not implemented")

func clone[T any](v *T) *T { c := *v; return &c }

func (f *fakeStore) CreateOrg(ctx context.Context, org *sentineldf.Org, key *sentineldf.APIKey, ev sentineldf.AuditEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if org.Operator {
		for _, o := range f.orgs {
			if o.Operator {
				return sentineldf.Errorf(sentineldf.ECONFLICT, "operator org exists")
			}
		}
	}
	f.orgs[org.ID] = clone(org)
	f.keys[key.ID] = clone(key)
	f.audit = append(f.audit, ev)
	return nil
}

func (f *fakeStore) Org(ctx context.Context, orgID string) (*sentineldf.Org, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.orgs[orgID]
	if !ok {
		return nil, sentineldf.NotFound("org")
	}
	return clone(o), nil
}

func (f *fakeStore) OperatorOrg(ctx context.Context) (*sentineldf.Org, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.orgs {
		if o.Operator {
			return clone(o), nil
		}
	}
	return nil, sentineldf.NotFound("org")
}

func (f *fakeStore) CreateAPIKey(ctx context.Context, key *sentineldf.APIKey, ev sentineldf.AuditEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[key.ID] = clone(key)
	f.audit = append(f.audit, ev)
	return nil
}

func (f *fakeStore) LookupAPIKey(ctx context.Context, keyID string) (*sentineldf.APIKey, error) {
	f.lookups.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[keyID]
	if !ok {
		return nil, sentineldf.NotFound("key")
	}
	return clone(k), nil
}

func (f *fakeStore) APIKeys(ctx context.Context, orgID string) ([]*sentineldf.APIKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*sentineldf.APIKey
	for _, k := range f.keys {
		if k.OrgID == orgID {
			out = append(out, clone(k))
		}
	}
	return out, nil
}

func (f *fakeStore) RevokeAPIKey(ctx context.Context, orgID, keyID string, ev sentineldf.AuditEvent) (*sentineldf.APIKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[keyID]
	if !ok || k.OrgID != orgID {
		return nil, sentineldf.NotFound("key")
	}
	if k.RevokedAt == nil {
		t := ev.At
		k.RevokedAt = &t
		f.audit = append(f.audit, ev)
	}
	return clone(k), nil
}

func (f *fakeStore) TouchAPIKey(ctx context.Context, orgID, keyID string, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.touched[keyID] = at
	return nil
}

func (f *fakeStore) CreateScan(ctx context.Context, s *sentineldf.Scan) error {
	f.createScans.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.scanErrs) > 0 {
		err := f.scanErrs[0]
		f.scanErrs = f.scanErrs[1:]
		return err
	}
	c := clone(s)
	c.Files = slices.Clone(s.Files)
	f.scans[s.ID] = c
	return nil
}

func (f *fakeStore) scan(orgID, scanID string) (*sentineldf.Scan, error) {
	s, ok := f.scans[scanID]
	if !ok || s.OrgID != orgID {
		return nil, sentineldf.NotFound("scan")
	}
	return s, nil
}

func (f *fakeStore) Scan(ctx context.Context, orgID, scanID string) (*sentineldf.Scan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.scan(orgID, scanID)
	if err != nil {
		return nil, err
	}
	return clone(s), nil
}

func (f *fakeStore) Scans(ctx context.Context, orgID, cursor string, limit int) ([]*sentineldf.Scan, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*sentineldf.Scan
	for _, s := range f.scans {
		if s.OrgID == orgID {
			out = append(out, clone(s))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, "", nil
}

func (f *fakeStore) ConfirmScan(ctx context.Context, orgID, scanID string, priority int) (*sentineldf.Scan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.scan(orgID, scanID)
	if err != nil {
		return nil, err
	}
	if s.State != sentineldf.StateAwaitingUpload {
		return nil, sentineldf.Errorf(sentineldf.ECONFLICT, "scan is %s", s.State)
	}
	s.State, s.Priority = sentineldf.StateQueued, priority
	for i := range s.Files {
		s.Files[i].Uploaded = true
	}
	return clone(s), nil
}

func (f *fakeStore) StartScan(ctx context.Context, orgID, scanID string, shards []sentineldf.Shard, total sentineldf.Progress) error {
	return errNotImplemented
}

func (f *fakeStore) Shards(ctx context.Context, orgID, scanID string) ([]sentineldf.Shard, error) {
	return nil, errNotImplemented
}

func (f *fakeStore) CompleteShard(ctx context.Context, sh sentineldf.Shard) (bool, bool, error) {
	return false, false, errNotImplemented
}

func (f *fakeStore) FinishScan(ctx context.Context, orgID, scanID, state string, counts sentineldf.Counts, errMsg string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.scan(orgID, scanID)
	if err != nil {
		return false, err
	}
	if sentineldf.Terminal(s.State) {
		return false, nil
	}
	s.State, s.Counts, s.Error = state, counts, errMsg
	return true, nil
}

func (f *fakeStore) CancelScan(ctx context.Context, orgID, scanID string, ev sentineldf.AuditEvent) (*sentineldf.Scan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.scan(orgID, scanID)
	if err != nil {
		return nil, err
	}
	if sentineldf.Terminal(s.State) {
		return nil, sentineldf.Errorf(sentineldf.ECONFLICT, "scan is %s", s.State)
	}
	s.State = sentineldf.StateCanceled
	f.audit = append(f.audit, ev)
	return clone(s), nil
}

func (f *fakeStore) RecordUsage(ctx context.Context, u sentineldf.UsageRecord) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.usage[u.Key]; ok {
		return false, nil
	}
	f.usage[u.Key] = u
	return true, nil
}

func (f *fakeStore) Usage(ctx context.Context, orgID string, from, to time.Time) (int64, int64, []sentineldf.DailyUsage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var docs, bytes int64
	days := map[string]*sentineldf.DailyUsage{}
	for _, u := range f.usage {
		if u.OrgID != orgID || u.At.Before(from) || !u.At.Before(to) {
			continue
		}
		docs += u.Docs
		bytes += u.Bytes
		d := u.At.UTC().Format("2006-01-02")
		if days[d] == nil {
			days[d] = &sentineldf.DailyUsage{Date: d}
		}
		days[d].Docs += u.Docs
		days[d].Bytes += u.Bytes
	}
	var daily []sentineldf.DailyUsage
	for _, d := range days {
		daily = append(daily, *d)
	}
	sort.Slice(daily, func(i, j int) bool { return daily[i].Date < daily[j].Date })
	return docs, bytes, daily, nil
}

func (f *fakeStore) SigningKey(ctx context.Context, orgID string) (*sentineldf.SigningKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.signing[orgID]
	if !ok {
		return nil, sentineldf.NotFound("signing key")
	}
	return clone(k), nil
}

func (f *fakeStore) PutSigningKey(ctx context.Context, k *sentineldf.SigningKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.signing[k.OrgID]; ok {
		return sentineldf.Errorf(sentineldf.ECONFLICT, "signing key exists")
	}
	f.signing[k.OrgID] = clone(k)
	return nil
}

func (f *fakeStore) CreateMBOM(ctx context.Context, m *sentineldf.MBOMRecord, ev sentineldf.AuditEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mboms = append(f.mboms, clone(m))
	f.audit = append(f.audit, ev)
	return nil
}

func (f *fakeStore) MBOMs(ctx context.Context, orgID, scanID string) ([]*sentineldf.MBOMRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*sentineldf.MBOMRecord
	for _, m := range f.mboms {
		if m.OrgID == orgID && m.ScanID == scanID {
			out = append(out, clone(m))
		}
	}
	return out, nil
}

func (f *fakeStore) AppendAudit(ctx context.Context, ev sentineldf.AuditEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.audit = append(f.audit, ev)
	return nil
}

func (f *fakeStore) AuditLog(ctx context.Context, orgID string, limit int) ([]sentineldf.AuditEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []sentineldf.AuditEvent
	for _, ev := range slices.Backward(f.audit) {
		if ev.OrgID == orgID && len(out) < limit {
			out = append(out, ev)
		}
	}
	return out, nil
}

func (f *fakeStore) Ping(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pingErr
}

func (f *fakeStore) auditActions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, ev := range f.audit {
		out = append(out, ev.Action)
	}
	return out
}

// fakeQueue is a JobQueue with a fixed dead-letter list.
type fakeQueue struct {
	mu      sync.Mutex
	depth   int64
	dead    []sentineldf.DeadJob
	retried []int64
}

func (q *fakeQueue) QueueDepth(ctx context.Context) (int64, error) { return q.depth, nil }

func (q *fakeQueue) DeadJobs(ctx context.Context, limit int) ([]sentineldf.DeadJob, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.dead), nil
}

func (q *fakeQueue) RetryJob(ctx context.Context, id int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, j := range q.dead {
		if j.ID == id {
			q.retried = append(q.retried, id)
			return nil
		}
	}
	return sentineldf.NotFound("job")
}

// fakeBlobs is a BlobStore in a map; presigned URLs are fake.
type fakeBlobs struct {
	mu      sync.Mutex
	objects map[string][]byte
}

func newFakeBlobs() *fakeBlobs { return &fakeBlobs{objects: map[string][]byte{}} }

func (b *fakeBlobs) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.objects[key]
	if !ok {
		return nil, sentineldf.NotFound("object")
	}
	return io.NopCloser(bytes.NewReader(o)), nil
}

func (b *fakeBlobs) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	return nil, errNotImplemented
}

func (b *fakeBlobs) Stat(ctx context.Context, key string) (sentineldf.BlobInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.objects[key]
	if !ok {
		return sentineldf.BlobInfo{}, sentineldf.NotFound("object")
	}
	return sentineldf.BlobInfo{Key: key, Size: int64(len(o))}, nil
}

func (b *fakeBlobs) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objects[key] = data
	return nil
}

func (b *fakeBlobs) Delete(ctx context.Context, key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.objects, key)
	return nil
}

func (b *fakeBlobs) PresignPut(ctx context.Context, key string, c sentineldf.PutConstraints, ttl time.Duration) (sentineldf.PresignedRequest, error) {
	return sentineldf.PresignedRequest{URL: "https://blobs.test/" + key + "?op=put", Method: "PUT", ExpiresAt: time.Now().Add(ttl)}, nil
}

func (b *fakeBlobs) PresignGet(ctx context.Context, key string, ttl time.Duration) (sentineldf.PresignedRequest, error) {
	return sentineldf.PresignedRequest{URL: "https://blobs.test/" + key + "?op=get", Method: "GET", ExpiresAt: time.Now().Add(ttl)}, nil
}

func (b *fakeBlobs) Ping(ctx context.Context) error { return nil }

func (b *fakeBlobs) put(key string, data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objects[key] = data
}

// fakeCache is a Cache in a map with expiry.
type fakeCache struct {
	mu      sync.Mutex
	entries map[string]cacheEntry
	err     error // every call fails with err when set
}

type cacheEntry struct {
	value   []byte
	expires time.Time
}

func newFakeCache() *fakeCache { return &fakeCache{entries: map[string]cacheEntry{}} }

func (c *fakeCache) live(key string) (cacheEntry, bool) {
	e, ok := c.entries[key]
	if ok && !e.expires.IsZero() && time.Now().After(e.expires) {
		delete(c.entries, key)
		return cacheEntry{}, false
	}
	return e, ok
}

func (c *fakeCache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, false, c.err
	}
	e, ok := c.live(key)
	return bytes.Clone(e.value), ok, nil
}

func (c *fakeCache) set(key string, value []byte, ttl time.Duration) {
	e := cacheEntry{value: bytes.Clone(value)}
	if ttl > 0 {
		e.expires = time.Now().Add(ttl)
	}
	c.entries[key] = e
}

func (c *fakeCache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.set(key, value, ttl)
	return nil
}

func (c *fakeCache) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false, c.err
	}
	if _, ok := c.live(key); ok {
		return false, nil
	}
	c.set(key, value, ttl)
	return true, nil
}

func (c *fakeCache) Delete(ctx context.Context, keys ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	for _, k := range keys {
		delete(c.entries, k)
	}
	return nil
}

func (c *fakeCache) keysWithPrefix(prefix string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k := range c.entries {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

// fakeLimiter allows Burst requests per key, then refuses with a fixed
// RetryAfter; err makes every call fail.
type fakeLimiter struct {
	mu    sync.Mutex
	used  map[string]int
	err   error
	calls atomic.Int64
}

func newFakeLimiter() *fakeLimiter { return &fakeLimiter{used: map[string]int{}} }

func (l *fakeLimiter) Allow(ctx context.Context, key string, limit sentineldf.Limit) (sentineldf.LimitResult, error) {
	l.calls.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return sentineldf.LimitResult{}, l.err
	}
	if l.used[key] >= limit.Burst {
		return sentineldf.LimitResult{Allowed: false, RetryAfter: 1500 * time.Millisecond, ResetAfter: 30 * time.Second}, nil
	}
	l.used[key]++
	return sentineldf.LimitResult{Allowed: true, Remaining: limit.Burst - l.used[key], ResetAfter: time.Duration(l.used[key]) * time.Second}, nil
}
