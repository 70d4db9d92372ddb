package inmem

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/sentineldf/sentineldf"
)

// LimiterOptions configure a Limiter.
type LimiterOptions struct {
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

const (
	limiterShards = 16
	// minSweep is the size a shard's map may reach before its first sweep
	// of idle keys.
	minSweep = 1024
)

// Limiter is a sentineldf.Limiter in memory: the generic cell rate
// algorithm (GCRA), which gives token-bucket semantics while storing one
// number per key, the theoretical arrival time (TAT) of the next request.
// Keys whose bucket has refilled hold no state and are swept away, so
// memory is bounded by the keys active within one bucket-refill time. It is
// safe for concurrent use.
type Limiter struct {
	now    func() time.Time
	base   time.Time
	seed   maphash.Seed
	shards [limiterShards]limiterShard
}

var _ sentineldf.Limiter = (*Limiter)(nil)

type limiterShard struct {
	mu sync.Mutex
	// tat is each key's TAT in ns since Limiter.base.
	tat map[string]int64
	// sweepAt is the map size that triggers the next sweep.
	sweepAt int
}

// NewLimiter returns an empty Limiter.
func NewLimiter(opts LimiterOptions) *Limiter {
	l := &Limiter{now: opts.Now, seed: maphash.MakeSeed()}
	if l.now == nil {
		l.now = time.Now
	}
	l.base = l.now()
	for i := range l.shards {
		l.shards[i].tat = map[string]int64{}
		l.shards[i].sweepAt = minSweep
	}
	return l
}

// Allow takes one token from key's bucket under limit.
//
// With the emission interval T = Period/Rate (one token's refill time, to
// the nanosecond) and a stored TAT (now when absent or past), a request is
// allowed when TAT+T-Burst*T <= now, and then TAT becomes TAT+T. Remaining
// is how many more requests would be allowed now, RetryAfter how long until
// the next would be, ResetAfter how long until the bucket is full.
func (l *Limiter) Allow(ctx context.Context, key string, limit sentineldf.Limit) (sentineldf.LimitResult, error) {
	if err := ctx.Err(); err != nil {
		return sentineldf.LimitResult{}, err
	}
	if limit.Rate <= 0 || limit.Period <= 0 || limit.Burst <= 0 {
		return sentineldf.LimitResult{}, sentineldf.FieldError("limit", "rate, period and burst must be positive (got %d per %s, burst %d)", limit.Rate, limit.Period, limit.Burst)
	}
	interval := max(int64(limit.Period)/int64(limit.Rate), 1)
	burst := interval * int64(limit.Burst)

	s := &l.shards[maphash.String(l.seed, key)%limiterShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	now := int64(l.now().Sub(l.base))
	tat, ok := s.tat[key]
	if !ok || tat < now {
		tat = now
	}
	newTAT := tat + interval
	allowAt := newTAT - burst
	if now < allowAt {
		return sentineldf.LimitResult{
			Allowed:    false,
			Remaining:  0,
			RetryAfter: time.Duration(allowAt - now),
			ResetAfter: time.Duration(tat - now),
		}, nil
	}
	if !ok {
		s.maybeSweep(now)
	}
	s.tat[key] = newTAT
	return sentineldf.LimitResult{
		Allowed:    true,
		Remaining:  int((now - allowAt) / interval),
		ResetAfter: time.Duration(newTAT - now),
	}, nil
}

// maybeSweep deletes the keys whose bucket is full (TAT <= now) once the
// map has doubled since the last sweep, so sweeping costs amortised O(1)
// per new key and the map holds at most about twice the active keys. The caller
// holds s.mu.
func (s *limiterShard) maybeSweep(now int64) {
	if len(s.tat) < s.sweepAt {
		return
	}
	// A new map, since Go maps never shrink.
	live := make(map[string]int64, len(s.tat)/2)
	for k, tat := range s.tat {
		if tat > now {
			live[k] = tat
		}
	}
	s.tat = live
	s.sweepAt = max(2*len(live), minSweep)
}
