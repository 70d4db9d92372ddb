package scan

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// countingKV is a KV (and, with batch set, a BatchKV) that counts its calls.
type countingKV struct {
	mu                          sync.Mutex
	m                           map[string][]byte
	gets, sets, getMany, setMny int
	err                         error
}

func (c *countingKV) Get(_ context.Context, key string) ([]byte, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gets++
	if c.err != nil {
		return nil, false, c.err
	}
	v, ok := c.m[key]
	return slices.Clone(v), ok, nil
}

func (c *countingKV) Set(_ context.Context, key string, value []byte, _ time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sets++
	if c.err != nil {
		return c.err
	}
	c.m[key] = slices.Clone(value)
	return nil
}

// batchKV adds the batch calls.
type batchKV struct{ *countingKV }

func (c batchKV) GetMany(_ context.Context, keys []string) ([][]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.getMany++
	if c.err != nil {
		return nil, c.err
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		if v, ok := c.m[k]; ok {
			out[i] = slices.Clone(v)
		}
	}
	return out, nil
}

func (c batchKV) SetMany(_ context.Context, keys []string, values [][]byte, _ time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setMny++
	if c.err != nil {
		return c.err
	}
	for i, k := range keys {
		c.m[k] = slices.Clone(values[i])
	}
	return nil
}

func TestRunKVResultCache(t *testing.T) {
	dir := t.TempDir()
	path := writeMixed(t, dir, 150)
	cfg := Config{Paths: []string{path}, Workers: 3}
	plain, _ := run(t, cfg, Output{})
	for _, batch := range []bool{true, false} {
		kv := &countingKV{m: map[string][]byte{}}
		var store KV = kv
		if batch {
			store = batchKV{kv}
		}
		c := cfg
		c.ResultCache = NewKVResultCache(context.Background(), store, "org:1:result:", time.Hour)
		first, s1 := run(t, c, Output{})
		second, s2 := run(t, c, Output{})
		// The first run can hit only the file's own duplicates (every 11th
		// document repeats an earlier one), when the earlier one's batch
		// stored it first.
		if s1.CacheHits > 150/11 || s2.CacheHits != 150 {
			t.Errorf("batch %v: cache hits %d then %d, want ≤ %d then 150", batch, s1.CacheHits, s2.CacheHits, 150/11)
		}
		if !bytes.Equal(plain, first) || !bytes.Equal(plain, second) {
			t.Errorf("batch %v: results through the cache differ from uncached ones", batch)
		}
		if batch {
			// Documents travel in batches of up to 16: far fewer calls than
			// documents, and no single-key calls at all.
			if kv.gets != 0 || kv.sets != 0 {
				t.Errorf("batch KV: %d Get and %d Set calls, want none", kv.gets, kv.sets)
			}
			if kv.getMany == 0 || kv.getMany > 2*150/2 || kv.setMny == 0 {
				t.Errorf("batch KV: %d GetMany and %d SetMany calls for 2 × 150 documents", kv.getMany, kv.setMny)
			}
		} else if kv.gets < 300 || kv.sets == 0 {
			t.Errorf("plain KV: %d Get and %d Set calls", kv.gets, kv.sets)
		}
	}
}

func TestRunKVResultCacheOutage(t *testing.T) {
	dir := t.TempDir()
	path := writeMixed(t, dir, 60)
	cfg := Config{Paths: []string{path}, Workers: 2}
	plain, _ := run(t, cfg, Output{})
	kv := &countingKV{m: map[string][]byte{}, err: errors.New("connection refused")}
	rc := NewKVResultCache(context.Background(), batchKV{kv}, "org:1:result:", time.Hour)
	var mu sync.Mutex
	var errs int
	rc.OnError = func(error) { mu.Lock(); errs++; mu.Unlock() }
	cfg.ResultCache = rc
	got, sum := run(t, cfg, Output{})
	if !bytes.Equal(plain, got) || sum.CacheHits != 0 {
		t.Errorf("a failing cache changed the results (hits %d)", sum.CacheHits)
	}
	if errs == 0 {
		t.Error("OnError was never called")
	}
}
