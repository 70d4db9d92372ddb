package redis

import (
	"context"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sentineldf/sentineldf"
)

// Cache is a sentineldf.Cache on Redis: GET, SET [PX], SET NX [PX] and DEL
// of Prefix + key. Values are binary-safe. Get it from Client.Cache.
type Cache struct {
	c *Client
}

var _ sentineldf.BatchCache = (*Cache)(nil)

// cacheUnavailable is the client-safe message of a failed cache call.
const cacheUnavailable = "cache unavailable"

// Get returns the value of key and whether it was present.
func (k *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := k.c.rdb.Get(ctx, k.c.prefix+key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, wrap(ctx, "GET", cacheUnavailable, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, true, nil
}

// Set stores value under key for ttl (0: no expiry), replacing any value
// and TTL the key had.
func (k *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ttl, err := k.check(value, ttl)
	if err != nil {
		return err
	}
	if err := k.c.rdb.Set(ctx, k.c.prefix+key, value, ttl).Err(); err != nil {
		return wrap(ctx, "SET", cacheUnavailable, err)
	}
	return nil
}

// GetMany returns the values of keys (nil for absent keys) with one MGET.
func (k *Cache) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	full := make([]string, len(keys))
	for i, key := range keys {
		full[i] = k.c.prefix + key
	}
	vals, err := k.c.rdb.MGet(ctx, full...).Result()
	if err != nil {
		return nil, wrap(ctx, "MGET", cacheUnavailable, err)
	}
	for i, v := range vals {
		if s, ok := v.(string); ok {
			out[i] = make([]byte, len(s)) // non-nil even when empty
			copy(out[i], s)
		}
	}
	return out, nil
}

// SetMany stores values[i] under keys[i] for ttl (0: no expiry), as one
// pipeline of SETs (one round trip; not a transaction).
func (k *Cache) SetMany(ctx context.Context, keys []string, values [][]byte, ttl time.Duration) error {
	if len(keys) != len(values) {
		return sentineldf.FieldError("values", "%d values for %d keys", len(values), len(keys))
	}
	if len(keys) == 0 {
		return nil
	}
	for _, v := range values {
		var err error
		if ttl, err = k.check(v, ttl); err != nil {
			return err
		}
	}
	_, err := k.c.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, key := range keys {
			p.Set(ctx, k.c.prefix+key, values[i], ttl)
		}
		return nil
	})
	if err != nil {
		return wrap(ctx, "SET (pipeline)", cacheUnavailable, err)
	}
	return nil
}

// SetNX stores value under key for ttl (0: no expiry) only if key is
// absent, and reports whether it did. Redis runs it atomically, so of
// concurrent callers in any number of processes exactly one wins.
func (k *Cache) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ttl, err := k.check(value, ttl)
	if err != nil {
		return false, err
	}
	ok, err := k.c.rdb.SetNX(ctx, k.c.prefix+key, value, ttl).Result()
	if err != nil {
		return false, wrap(ctx, "SET NX", cacheUnavailable, err)
	}
	return ok, nil
}

// Delete removes keys; absent keys are ignored, and no keys is a no-op.
func (k *Cache) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	full := make([]string, len(keys))
	for i, key := range keys {
		full[i] = k.c.prefix + key
	}
	if err := k.c.rdb.Del(ctx, full...).Err(); err != nil {
		return wrap(ctx, "DEL", cacheUnavailable, err)
	}
	return nil
}

// check validates a value and TTL and rounds a TTL up to Redis's
// millisecond resolution, so that a positive TTL never means "no expiry".
func (k *Cache) check(value []byte, ttl time.Duration) (time.Duration, error) {
	if ttl < 0 {
		return 0, sentineldf.FieldError("ttl", "must not be negative (got %s)", ttl)
	}
	if len(value) > k.c.maxValue {
		return 0, sentineldf.Errorf(sentineldf.ETOOLARGE, "cache value of %d bytes exceeds the limit of %d bytes", len(value), k.c.maxValue)
	}
	if r := ttl % time.Millisecond; r != 0 {
		ttl += time.Millisecond - r
	}
	return ttl, nil
}
