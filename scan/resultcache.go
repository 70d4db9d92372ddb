package scan

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/sentineldf/sentineldf/detect"
)

// ResultCache stores results keyed by detect.Engine.CacheKey. *Cache (a
// directory) is one; KVResultCache adapts a shared key-value cache (the
// service's in-memory or Redis cache) into another.
type ResultCache interface {
	// Get returns the result cached under key.
	Get(key [32]byte) (detect.Result, bool)
	// Put caches r under key. An error only costs speed.
	Put(key [32]byte, r *detect.Result) error
}

var _ ResultCache = (*Cache)(nil)

// BatchResultCache is a ResultCache that looks up and stores many results
// in one round trip. The scan's workers use it for each batch of documents
// when the cache implements it (KVResultCache does when its KV does).
type BatchResultCache interface {
	ResultCache
	// GetMany returns the results cached under keys; ok[i] reports a hit.
	GetMany(keys [][32]byte) (res []detect.Result, ok []bool)
	// PutMany caches rs[i] under keys[i]. An error only costs speed.
	PutMany(keys [][32]byte, rs []*detect.Result) error
}

// BatchKV is the batch extension of KV (sentineldf.BatchCache satisfies it).
type BatchKV interface {
	KV
	GetMany(ctx context.Context, keys []string) ([][]byte, error)
	SetMany(ctx context.Context, keys []string, values [][]byte, ttl time.Duration) error
}

var _ BatchResultCache = (*KVResultCache)(nil)

// KV is the subset of a shared key-value cache that KVResultCache needs
// (sentineldf.Cache satisfies it).
type KV interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
}

// KVResultCache is a ResultCache over a KV store. Keys are prefix + the hex
// cache key (which already covers the engine version and configuration);
// the prefix namespaces one tenant's results from another's.
type KVResultCache struct {
	ctx    context.Context
	kv     KV
	prefix string
	ttl    time.Duration
	// OnError, when set, is told about KV errors (they are otherwise
	// treated as misses: a cache outage costs speed, not results).
	OnError func(error)
}

// NewKVResultCache returns a ResultCache storing results in kv under
// prefix for ttl (0: no expiry); ctx bounds its KV calls.
func NewKVResultCache(ctx context.Context, kv KV, prefix string, ttl time.Duration) *KVResultCache {
	return &KVResultCache{ctx: ctx, kv: kv, prefix: prefix, ttl: ttl}
}

func (c *KVResultCache) key(k [32]byte) string { return c.prefix + hex.EncodeToString(k[:]) }

// Get returns the cached result for key; a KV error or a damaged value is a miss.
func (c *KVResultCache) Get(key [32]byte) (detect.Result, bool) {
	b, ok, err := c.kv.Get(c.ctx, c.key(key))
	if err != nil {
		if c.OnError != nil {
			c.OnError(err)
		}
		return detect.Result{}, false
	}
	if !ok {
		return detect.Result{}, false
	}
	r, err := decodeResult(b)
	if err != nil {
		return detect.Result{}, false
	}
	return r, true
}

// Put stores r under key.
func (c *KVResultCache) Put(key [32]byte, r *detect.Result) error {
	err := c.kv.Set(c.ctx, c.key(key), appendResult(make([]byte, 0, 64), r), c.ttl)
	if err != nil && c.OnError != nil {
		c.OnError(err)
	}
	return err
}

// GetMany looks keys up with one batch call when the KV supports it, else
// one Get per key. A KV error or a damaged value is a miss.
func (c *KVResultCache) GetMany(keys [][32]byte) ([]detect.Result, []bool) {
	res, ok := make([]detect.Result, len(keys)), make([]bool, len(keys))
	bkv, batch := c.kv.(BatchKV)
	if !batch {
		for i, k := range keys {
			res[i], ok[i] = c.Get(k)
		}
		return res, ok
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = c.key(k)
	}
	vals, err := bkv.GetMany(c.ctx, names)
	if err != nil {
		if c.OnError != nil {
			c.OnError(err)
		}
		return res, ok
	}
	for i, b := range vals {
		if b == nil {
			continue
		}
		if r, err := decodeResult(b); err == nil {
			res[i], ok[i] = r, true
		}
	}
	return res, ok
}

// PutMany stores rs under keys with one batch call when the KV supports it.
func (c *KVResultCache) PutMany(keys [][32]byte, rs []*detect.Result) error {
	bkv, batch := c.kv.(BatchKV)
	if !batch {
		for i, k := range keys {
			if err := c.Put(k, rs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	names := make([]string, len(keys))
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		names[i] = c.key(k)
		vals[i] = appendResult(make([]byte, 0, 64), rs[i])
	}
	err := bkv.SetMany(c.ctx, names, vals, c.ttl)
	if err != nil && c.OnError != nil {
		c.OnError(err)
	}
	return err
}
