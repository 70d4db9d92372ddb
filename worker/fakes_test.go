package worker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sentineldf/sentineldf"
)

// memBlobs is a map-backed BlobStore.
type memBlobs struct {
	mu     sync.Mutex
	m      map[string][]byte
	ranges int   // GetRange calls
	putErr error // when set, Put fails with it
}

func newMemBlobs() *memBlobs { return &memBlobs{m: map[string][]byte{}} }

func (b *memBlobs) object(key string) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[key]
	return v, ok
}

func (b *memBlobs) keys(prefix string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ks []string
	for k := range b.m {
		if strings.HasPrefix(k, prefix) {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

func (b *memBlobs) set(key string, v []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[key] = v
}

func (b *memBlobs) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	v, ok := b.object(key)
	if !ok {
		return nil, sentineldf.NotFound("object")
	}
	return io.NopCloser(bytes.NewReader(v)), nil
}

func (b *memBlobs) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	b.mu.Lock()
	b.ranges++
	b.mu.Unlock()
	v, ok := b.object(key)
	if !ok {
		return nil, sentineldf.NotFound("object")
	}
	offset = min(offset, int64(len(v)))
	end := int64(len(v))
	if length >= 0 {
		end = min(end, offset+length)
	}
	return io.NopCloser(bytes.NewReader(v[offset:end])), nil
}

func (b *memBlobs) Stat(ctx context.Context, key string) (sentineldf.BlobInfo, error) {
	v, ok := b.object(key)
	if !ok {
		return sentineldf.BlobInfo{}, sentineldf.NotFound("object")
	}
	return sentineldf.BlobInfo{Key: key, Size: int64(len(v))}, nil
}

func (b *memBlobs) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	b.mu.Lock()
	err := b.putErr
	b.mu.Unlock()
	if err != nil {
		return err
	}
	v, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if size >= 0 && int64(len(v)) != size {
		return errors.New("size mismatch")
	}
	b.set(key, v)
	return nil
}

func (b *memBlobs) Delete(ctx context.Context, key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, key)
	return nil
}

func (b *memBlobs) PresignPut(context.Context, string, sentineldf.PutConstraints, time.Duration) (sentineldf.PresignedRequest, error) {
	return sentineldf.PresignedRequest{}, errors.New("not supported")
}

func (b *memBlobs) PresignGet(context.Context, string, time.Duration) (sentineldf.PresignedRequest, error) {
	return sentineldf.PresignedRequest{}, errors.New("not supported")
}

func (b *memBlobs) Ping(context.Context) error { return nil }

// memCache is a map-backed Cache.
type memCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (c *memCache) Get(_ context.Context, key string) ([]byte, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return v, ok, nil
}

func (c *memCache) Set(_ context.Context, key string, value []byte, _ time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	c.m[key] = slices.Clone(value)
	return nil
}

func (c *memCache) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	c.mu.Lock()
	_, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return false, nil
	}
	return true, c.Set(ctx, key, value, ttl)
}

func (c *memCache) Delete(_ context.Context, keys ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		delete(c.m, k)
	}
	return nil
}

// fakeStore implements the Store methods the worker calls, with the state
// machine and job enqueueing the real stores have. Other methods panic
// (the embedded interface is nil).
type fakeStore struct {
	sentineldf.Store

	mu       sync.Mutex
	scans    map[string]*sentineldf.Scan
	shards   map[string][]sentineldf.Shard
	usage    map[string]sentineldf.UsageRecord
	jobs     []any // enqueued ShardJob, FinalizeJob, CallbackJob
	started  int   // StartScan calls
	recorded int   // CompleteShard calls that recorded
	finishes int   // FinishScan calls that finished

	// completeErr, when set, fails the next CompleteShard.
	completeErr error
	// onScan, when set, may change the scan each time it is read.
	onScan func(*sentineldf.Scan)
}

func newFakeStore() *fakeStore {
	return &fakeStore{scans: map[string]*sentineldf.Scan{}, shards: map[string][]sentineldf.Shard{}, usage: map[string]sentineldf.UsageRecord{}}
}

func skey(org, id string) string { return org + "/" + id }

func (s *fakeStore) add(sc *sentineldf.Scan) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scans[skey(sc.OrgID, sc.ID)] = sc
}

func (s *fakeStore) setState(org, id, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scans[skey(org, id)].State = state
}

func (s *fakeStore) get(org, id string) sentineldf.Scan {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := *s.scans[skey(org, id)]
	sc.Files = slices.Clone(sc.Files)
	return sc
}

func (s *fakeStore) popJobs() []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs
	s.jobs = nil
	return j
}

func (s *fakeStore) Scan(ctx context.Context, org, id string) (*sentineldf.Scan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, ok := s.scans[skey(org, id)]
	if !ok {
		return nil, sentineldf.NotFound("scan")
	}
	if s.onScan != nil {
		s.onScan(sc)
	}
	c := *sc
	c.Files = slices.Clone(sc.Files)
	return &c, nil
}

func (s *fakeStore) StartScan(ctx context.Context, org, id string, shards []sentineldf.Shard, total sentineldf.Progress) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, ok := s.scans[skey(org, id)]
	if !ok {
		return sentineldf.NotFound("scan")
	}
	if sentineldf.Terminal(sc.State) {
		return sentineldf.Errorf(sentineldf.ECONFLICT, "scan is %s", sc.State)
	}
	s.started++
	if _, ok := s.shards[skey(org, id)]; ok {
		return nil
	}
	s.shards[skey(org, id)] = slices.Clone(shards)
	sc.State, sc.Progress = sentineldf.StateRunning, total
	for _, sh := range shards {
		s.jobs = append(s.jobs, sentineldf.ShardJob{OrgID: org, ScanID: id, Shard: sh.Index})
	}
	return nil
}

func (s *fakeStore) Shards(ctx context.Context, org, id string) ([]sentineldf.Shard, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.scans[skey(org, id)]; !ok {
		return nil, sentineldf.NotFound("scan")
	}
	return slices.Clone(s.shards[skey(org, id)]), nil
}

func (s *fakeStore) CompleteShard(ctx context.Context, sh sentineldf.Shard) (bool, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.completeErr; err != nil {
		s.completeErr = nil
		return false, false, err
	}
	k := skey(sh.OrgID, sh.ScanID)
	shards := s.shards[k]
	if sh.Index < 0 || sh.Index >= len(shards) {
		return false, false, sentineldf.NotFound("shard")
	}
	if shards[sh.Index].Done {
		return false, false, nil
	}
	shards[sh.Index] = sh
	s.recorded++
	uk := "shard:" + sh.ScanID + ":" + strconv.Itoa(sh.Index)
	if _, dup := s.usage[uk]; !dup {
		s.usage[uk] = sentineldf.UsageRecord{OrgID: sh.OrgID, Key: uk, Docs: sh.Docs, Bytes: sh.Bytes}
	}
	sc := s.scans[k]
	sc.Progress.DocsDone += sh.Docs
	sc.Progress.BytesDone += sh.Bytes
	sc.Counts = sc.Counts.Add(sh.Counts)
	sc.CacheHits += sh.CacheHits
	sc.Malformed += sh.Malformed
	for _, o := range shards {
		if !o.Done {
			return true, false, nil
		}
	}
	s.jobs = append(s.jobs, sentineldf.FinalizeJob{OrgID: sh.OrgID, ScanID: sh.ScanID})
	return true, true, nil
}

func (s *fakeStore) FinishScan(ctx context.Context, org, id, state string, counts sentineldf.Counts, errMsg string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, ok := s.scans[skey(org, id)]
	if !ok {
		return false, sentineldf.NotFound("scan")
	}
	if sentineldf.Terminal(sc.State) {
		return false, nil
	}
	s.finishes++
	now := time.Now()
	sc.State, sc.Counts, sc.Error, sc.FinishedAt = state, counts, errMsg, &now
	if sc.CallbackURL != "" {
		s.jobs = append(s.jobs, sentineldf.CallbackJob{OrgID: org, ScanID: id})
	}
	return true, nil
}
