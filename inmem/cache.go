// Package inmem holds in-process implementations of sentineldf.Cache and
// sentineldf.Limiter, for `sentineldf serve` on one machine. The redis
// package implements the same interfaces for several processes.
package inmem

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/sentineldf/sentineldf"
)

// DefaultCacheBytes is the capacity of a Cache made with maxBytes <= 0.
const DefaultCacheBytes = 64 << 20

const (
	maxShards = 16
	// minShardBytes keeps shards big enough for typical entries: a small
	// cache has fewer shards.
	minShardBytes = 1 << 20
)

// Cache is a sentineldf.Cache in memory: an LRU bounded by the bytes of its
// keys and values, with per-entry expiry, split into shards that lock
// independently. It is safe for concurrent use.
type Cache struct {
	seed   maphash.Seed
	shards []*shard
	// now is the clock; tests replace it.
	now  func() time.Time
	base time.Time
}

var _ sentineldf.BatchCache = (*Cache)(nil)

// NewCache returns a cache holding at most maxBytes of keys and values
// (DefaultCacheBytes when maxBytes <= 0). The bound is split evenly over up
// to 16 shards of at least 1 MiB each; an entry larger than a shard is
// refused with ETOOLARGE.
func NewCache(maxBytes int64) *Cache {
	if maxBytes <= 0 {
		maxBytes = DefaultCacheBytes
	}
	n := 1
	for n < maxShards && maxBytes/int64(n*2) >= minShardBytes {
		n *= 2
	}
	c := &Cache{seed: maphash.MakeSeed(), shards: make([]*shard, n), now: time.Now}
	c.base = c.now()
	for i := range c.shards {
		s := &shard{max: maxBytes / int64(n), items: map[string]*entry{}}
		s.head.next, s.head.prev = &s.head, &s.head
		c.shards[i] = s
	}
	return c
}

// entry is a cached value on its shard's LRU list.
type entry struct {
	key        string
	value      []byte
	expires    int64 // ns since Cache.base; 0: never
	prev, next *entry
}

func (e *entry) size() int64 { return int64(len(e.key) + len(e.value)) }

// shard is an LRU list: head.next is the most recently used entry,
// head.prev the least.
type shard struct {
	mu    sync.Mutex
	max   int64
	bytes int64
	items map[string]*entry
	head  entry
}

func (c *Cache) shardOf(key string) *shard {
	return c.shards[maphash.String(c.seed, key)&uint64(len(c.shards)-1)]
}

// clock returns the current time as ns since c.base.
func (c *Cache) clock() int64 { return int64(c.now().Sub(c.base)) }

// expiry returns the expiry of an entry set now with ttl.
func (c *Cache) expiry(ttl time.Duration) (int64, error) {
	switch {
	case ttl < 0:
		return 0, sentineldf.FieldError("ttl", "must not be negative")
	case ttl == 0:
		return 0, nil
	}
	return c.clock() + int64(ttl), nil
}

// Get returns a copy of key's value and whether it was present.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	s := c.shardOf(key)
	now := c.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.items[key]
	if e == nil {
		return nil, false, nil
	}
	if e.expired(now) {
		s.remove(e)
		return nil, false, nil
	}
	s.moveToFront(e)
	return append([]byte{}, e.value...), true, nil
}

// GetMany returns copies of the values of keys, nil for absent keys.
func (c *Cache) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		v, ok, err := c.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		if ok {
			if v == nil {
				v = []byte{}
			}
			out[i] = v
		}
	}
	return out, nil
}

// SetMany stores copies of values under keys for ttl (0: no expiry).
func (c *Cache) SetMany(ctx context.Context, keys []string, values [][]byte, ttl time.Duration) error {
	if len(keys) != len(values) {
		return sentineldf.FieldError("values", "%d values for %d keys", len(values), len(keys))
	}
	for i, k := range keys {
		if err := c.Set(ctx, k, values[i], ttl); err != nil {
			return err
		}
	}
	return nil
}

// Set stores a copy of value under key for ttl (0: no expiry).
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := c.set(ctx, key, value, ttl, false)
	return err
}

// SetNX stores a copy of value under key unless a live entry is there, and
// reports whether it did.
func (c *Cache) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return c.set(ctx, key, value, ttl, true)
}

func (c *Cache) set(ctx context.Context, key string, value []byte, ttl time.Duration, nx bool) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	exp, err := c.expiry(ttl)
	if err != nil {
		return false, err
	}
	s := c.shardOf(key)
	if size := int64(len(key) + len(value)); size > s.max {
		return false, sentineldf.Errorf(sentineldf.ETOOLARGE, "cache entry of %d bytes exceeds the shard capacity of %d bytes", size, s.max)
	}
	v := append([]byte{}, value...)
	now := c.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.items[key]; old != nil {
		if nx && !old.expired(now) {
			return false, nil
		}
		s.remove(old)
	}
	e := &entry{key: key, value: v, expires: exp}
	s.items[key] = e
	s.pushFront(e)
	s.bytes += e.size()
	s.evict(now)
	return true, nil
}

// Delete removes keys; absent keys are ignored.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, k := range keys {
		s := c.shardOf(k)
		s.mu.Lock()
		if e := s.items[k]; e != nil {
			s.remove(e)
		}
		s.mu.Unlock()
	}
	return nil
}

func (e *entry) expired(now int64) bool { return e.expires != 0 && now >= e.expires }

// evict drops least recently used entries (expired ones on the way) until
// the shard fits its bound. The caller holds s.mu.
func (s *shard) evict(now int64) {
	for s.bytes > s.max {
		s.remove(s.head.prev)
	}
	// Drop expired entries at the cold end: they would otherwise linger
	// until evicted.
	for e := s.head.prev; e != &s.head && e.expired(now); e = s.head.prev {
		s.remove(e)
	}
}

func (s *shard) pushFront(e *entry) {
	e.prev, e.next = &s.head, s.head.next
	s.head.next.prev = e
	s.head.next = e
}

func (s *shard) unlink(e *entry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

func (s *shard) moveToFront(e *entry) {
	if s.head.next == e {
		return
	}
	s.unlink(e)
	s.pushFront(e)
}

func (s *shard) remove(e *entry) {
	s.unlink(e)
	delete(s.items, e.key)
	s.bytes -= e.size()
}
