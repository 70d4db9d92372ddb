package redis

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/go-redis/redis_rate/v10"

	"github.com/sentineldf/sentineldf"
)

// Limiter is a sentineldf.Limiter on Redis: the generic cell rate
// algorithm (GCRA) of github.com/go-redis/redis_rate, one Lua script call
// per Allow, timed by the server's clock, so every process shares one
// bucket per key. A bucket is one string key, "rate:" + Prefix + key,
// expiring once the bucket is full again. Get it from Client.Limiter.
type Limiter struct {
	c  *Client
	rl *redis_rate.Limiter
}

var _ sentineldf.Limiter = (*Limiter)(nil)

// limiterUnavailable is the client-safe message of a failed Allow.
const limiterUnavailable = "rate limiter unavailable"

// scriptResolution is the resolution of the script's clock (Redis TIME):
// a float result closer than this to a token boundary is rounding noise.
const scriptResolution = time.Microsecond

// Allow takes one token from key's bucket under limit.
//
// Allowed, RetryAfter and ResetAfter come from the script. Remaining is
// recomputed from ResetAfter, floor((Burst*T - ResetAfter) / T) with the
// emission interval T = Period/Rate, because the script truncates a
// float quotient that rounding may leave a hair under the integer.
func (l *Limiter) Allow(ctx context.Context, key string, limit sentineldf.Limit) (res sentineldf.LimitResult, err error) {
	if limit.Rate <= 0 || limit.Period <= 0 || limit.Burst <= 0 {
		return sentineldf.LimitResult{}, sentineldf.FieldError("limit", "rate, period and burst must be positive (got %d per %s, burst %d)", limit.Rate, limit.Period, limit.Burst)
	}
	// redis_rate asserts the reply's types; a server that answers
	// otherwise must not crash the caller.
	defer func() {
		if r := recover(); r != nil {
			res, err = sentineldf.LimitResult{}, &sentineldf.Error{Code: sentineldf.EUNAVAILABLE, Message: limiterUnavailable, Err: fmt.Errorf("redis rate limit script: unexpected reply: %v", r)}
		}
	}()
	r, err := l.rl.Allow(ctx, l.c.prefix+key, redis_rate.Limit{Rate: limit.Rate, Period: limit.Period, Burst: limit.Burst})
	if err != nil {
		return sentineldf.LimitResult{}, wrap(ctx, "rate limit script", limiterUnavailable, err)
	}
	return result(limit, r), nil
}

// result converts redis_rate's result for limit.
func result(limit sentineldf.Limit, r *redis_rate.Result) sentineldf.LimitResult {
	reset := max(r.ResetAfter, 0)
	if r.Allowed <= 0 {
		return sentineldf.LimitResult{
			Allowed: false,
			// The script's RetryAfter is positive when it denies; keep it
			// so after the float conversion.
			RetryAfter: max(r.RetryAfter, scriptResolution),
			ResetAfter: reset,
		}
	}
	interval := float64(limit.Period) / float64(limit.Rate)
	remaining := math.Floor((float64(limit.Burst)*interval - float64(reset) + float64(scriptResolution)) / interval)
	return sentineldf.LimitResult{
		Allowed:    true,
		Remaining:  int(min(max(remaining, 0), float64(limit.Burst-1))),
		ResetAfter: reset,
	}
}
