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
