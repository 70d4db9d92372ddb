package sentineldf

import (
	"context"
	"time"
)

// Cache is a shared key-value cache with expiry: verified API keys,
// idempotency records and scan results. Implementations: inmem (one
// process) and redis (shared by all processes). Callers namespace keys by
// org ("org:{id}:…") so one org's entries are never served to another.
type Cache interface {
	// Get returns the value of key and whether it was present.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Set stores value under key for ttl (0: no expiry).
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX stores value under key only if key is absent, and reports
	// whether it did. It is how concurrent duplicates elect one winner.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Delete removes keys; absent keys are ignored.
	Delete(ctx context.Context, keys ...string) error
}

// BatchCache is a Cache that reads and writes many keys in one round trip.
// Both backends implement it; a caller type-asserts and falls back to Get
// and Set one key at a time.
type BatchCache interface {
	Cache
	// GetMany returns the values of keys in order: nil where a key is
	// absent (a present empty value is non-nil and empty).
	GetMany(ctx context.Context, keys []string) ([][]byte, error)
	// SetMany stores values[i] under keys[i] for ttl (0: no expiry). It is
	// not atomic: on an error some values may have been stored.
	SetMany(ctx context.Context, keys []string, values [][]byte, ttl time.Duration) error
}

// Limiter is a rate limiter (a token bucket / GCRA per key).
// Implementations: inmem and redis.
type Limiter interface {
	// Allow takes one token from key's bucket under limit.
	Allow(ctx context.Context, key string, limit Limit) (LimitResult, error)
}

// Limit is a token bucket: Rate tokens per Period, holding at most Burst.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// PerMinute returns a limit of rate per minute with burst.
func PerMinute(rate, burst int) Limit { return Limit{Rate: rate, Period: time.Minute, Burst: burst} }

// LimitResult is the outcome of Allow.
type LimitResult struct {
	Allowed bool
	// Remaining is the tokens left after this request.
	Remaining int
	// RetryAfter is how long until a token is available when !Allowed.
	RetryAfter time.Duration
	// ResetAfter is how long until the bucket is full again.
	ResetAfter time.Duration
}
