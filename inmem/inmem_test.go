package inmem

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/cachetest"
)

func TestCacheConformance(t *testing.T) {
	cachetest.RunCache(t, func(t *testing.T) sentineldf.Cache { return NewCache(16 << 20) })
}

func TestLimiterConformance(t *testing.T) {
	cachetest.RunLimiter(t, func(t *testing.T) sentineldf.Limiter { return NewLimiter(LimiterOptions{}) })
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// stats returns the number of entries and their bytes.
func (c *Cache) stats() (n int, bytes int64) {
	for _, s := range c.shards {
		s.mu.Lock()
		n += len(s.items)
		bytes += s.bytes
		s.mu.Unlock()
	}
	return n, bytes
}

func TestLimiterGCRA(t *testing.T) {
	type step struct {
		advance   time.Duration
		allowed   bool
		remaining int
		retry     time.Duration
		reset     time.Duration
	}
	const ms = time.Millisecond
	tests := []struct {
		name  string
		limit sentineldf.Limit
		steps []step
	}{
		{
			name:  "10 per second, burst 3",
			limit: sentineldf.Limit{Rate: 10, Period: time.Second, Burst: 3},
			steps: []step{
				{0, true, 2, 0, 100 * ms},
				{0, true, 1, 0, 200 * ms},
				{0, true, 0, 0, 300 * ms},
				{0, false, 0, 100 * ms, 300 * ms},
				{40 * ms, false, 0, 60 * ms, 260 * ms},
				{60 * ms, true, 0, 0, 300 * ms},
				{150 * ms, true, 0, 0, 250 * ms},  // 1.5 tokens back, one taken
				{50 * ms, true, 0, 0, 300 * ms},   // exactly one token back
				{1000 * ms, true, 2, 0, 100 * ms}, // full again
			},
		},
		{
			name:  "burst 1",
			limit: sentineldf.Limit{Rate: 1, Period: time.Second, Burst: 1},
			steps: []step{
				{0, true, 0, 0, time.Second},
				{999 * ms, false, 0, ms, ms},
				{ms, true, 0, 0, time.Second},
			},
		},
		{
			// T = 1s/3 = 333,333,333 ns: arithmetic stays in whole ns.
			name:  "period not divisible by rate",
			limit: sentineldf.Limit{Rate: 3, Period: time.Second, Burst: 2},
			steps: []step{
				{0, true, 1, 0, 333_333_333},
				{0, true, 0, 0, 666_666_666},
				{0, false, 0, 333_333_333, 666_666_666},
				{333_333_332, false, 0, 1, 333_333_334},
				{1, true, 0, 0, 666_666_666},
			},
		},
		{
			name:  "per minute",
			limit: sentineldf.PerMinute(60, 20),
			steps: []step{
				{0, true, 19, 0, time.Second},
				{time.Hour, true, 19, 0, time.Second},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			l := NewLimiter(LimiterOptions{Now: clock.Now})
			for i, s := range tt.steps {
				clock.Advance(s.advance)
				got, err := l.Allow(t.Context(), "k", tt.limit)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				want := sentineldf.LimitResult{Allowed: s.allowed, Remaining: s.remaining, RetryAfter: s.retry, ResetAfter: s.reset}
				if got != want {
					t.Fatalf("step %d (+%v): got %+v, want %+v", i, s.advance, got, want)
				}
			}
		})
	}
}

func TestLimiterSweepsIdleKeys(t *testing.T) {
	clock := newFakeClock()
	l := NewLimiter(LimiterOptions{Now: clock.Now})
	limit := sentineldf.Limit{Rate: 1, Period: time.Second, Burst: 5}
	keys := func() int {
		n := 0
		for i := range l.shards {
			l.shards[i].mu.Lock()
			n += len(l.shards[i].tat)
			l.shards[i].mu.Unlock()
		}
		return n
	}
	for round := range 5 {
		for i := range 50_000 {
			if _, err := l.Allow(t.Context(), fmt.Sprintf("r%d-%d", round, i), limit); err != nil {
				t.Fatal(err)
			}
		}
		// Every bucket refills in one second: all keys of this round go
		// idle, and later rounds sweep them.
		clock.Advance(2 * time.Second)
	}
	// Without sweeping there would be 250,000 keys; each shard holds at
	// most about twice one round's share.
	if n := keys(); n > 2*50_000+limiterShards*minSweep {
		t.Fatalf("%d keys held after 5 rounds of 50,000 idle keys", n)
	}
	// A swept key starts with a full bucket.
	r, err := l.Allow(t.Context(), "r0-0", limit)
	if err != nil || !r.Allowed || r.Remaining != 4 {
		t.Fatalf("Allow of a swept key = %+v, %v; want allowed with 4 remaining", r, err)
	}
}

func TestCacheLRUByteBound(t *testing.T) {
	const max = 1000
	c := NewCache(max)
	if len(c.shards) != 1 {
		t.Fatalf("a %d-byte cache has %d shards, want 1", max, len(c.shards))
	}
	ctx := t.Context()
	val := make([]byte, 98) // with a 2-byte key: 100 bytes an entry
	for i := range 10 {
		if err := c.Set(ctx, fmt.Sprintf("k%d", i), val, 0); err != nil {
			t.Fatal(err)
		}
	}
	if n, b := c.stats(); n != 10 || b != max {
		t.Fatalf("stats = %d entries, %d bytes; want 10, %d", n, b, max)
	}
	// Touch k0: k1 is now the least recently used.
	if _, ok, _ := c.Get(ctx, "k0"); !ok {
		t.Fatal("k0 missing")
	}
	if err := c.Set(ctx, "kA", val, 0); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		key     string
		present bool
	}{{"k0", true}, {"k1", false}, {"k2", true}, {"kA", true}} {
		if _, ok, _ := c.Get(ctx, tt.key); ok != tt.present {
			t.Errorf("Get(%s) present = %v, want %v", tt.key, ok, tt.present)
		}
	}
	// A big entry evicts as many as it needs.
	if err := c.Set(ctx, "big", make([]byte, 497), 0); err != nil {
		t.Fatal(err)
	}
	if _, b := c.stats(); b > max {
		t.Fatalf("cache holds %d bytes, bound %d", b, max)
	}
	// Overwriting accounts for the old value.
	if err := c.Set(ctx, "big", nil, 0); err != nil {
		t.Fatal(err)
	}
	if n, b := c.stats(); b != int64(100*(n-1)+3) {
		t.Fatalf("stats after shrinking an entry = %d entries, %d bytes", n, b)
	}
	if err := c.Set(ctx, "huge", make([]byte, max), 0); sentineldf.ErrorCode(err) != sentineldf.ETOOLARGE {
		t.Fatalf("Set of an entry over the bound: %v, want code %s", err, sentineldf.ETOOLARGE)
	}
	if ok, err := c.SetNX(ctx, "huge", make([]byte, max), 0); ok || sentineldf.ErrorCode(err) != sentineldf.ETOOLARGE {
		t.Fatalf("SetNX of an entry over the bound = %v, %v; want false and code %s", ok, err, sentineldf.ETOOLARGE)
	}
}

func TestCacheShards(t *testing.T) {
	for _, tt := range []struct {
		max    int64
		shards int
	}{{0, 16}, {1, 1}, {2 << 20, 2}, {5 << 20, 4}, {16 << 20, 16}, {1 << 30, 16}} {
		if got := len(NewCache(tt.max).shards); got != tt.shards {
			t.Errorf("NewCache(%d) has %d shards, want %d", tt.max, got, tt.shards)
		}
	}
}

func TestCacheTTLFakeClock(t *testing.T) {
	clock := newFakeClock()
	c := NewCache(1000)
	c.now = clock.Now
	c.base = clock.Now()
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Set(ctx, "short", []byte("s"), time.Second))
	must(c.Set(ctx, "long", []byte("l"), time.Hour))
	must(c.Set(ctx, "none", []byte("n"), 0))
	clock.Advance(time.Second - 1)
	if _, ok, _ := c.Get(ctx, "short"); !ok {
		t.Fatal("entry expired before its TTL")
	}
	clock.Advance(1)
	if _, ok, _ := c.Get(ctx, "short"); ok {
		t.Fatal("entry present at its TTL")
	}
	if n, _ := c.stats(); n != 2 {
		t.Fatalf("%d entries after a lazy expiry, want 2", n)
	}
	if ok, _ := c.SetNX(ctx, "long", []byte("x"), 0); ok {
		t.Fatal("SetNX over a live entry won")
	}
	clock.Advance(time.Hour)
	if ok, _ := c.SetNX(ctx, "long", []byte("x"), 0); !ok {
		t.Fatal("SetNX over an expired entry lost")
	}
	if _, ok, _ := c.Get(ctx, "none"); !ok {
		t.Fatal("entry without TTL expired")
	}

	// Expired entries at the cold end go on the next write.
	c = NewCache(1000)
	c.now = clock.Now
	c.base = clock.Now()
	must(c.Set(ctx, "a", []byte("a"), time.Second))
	must(c.Set(ctx, "b", []byte("b"), 0))
	clock.Advance(time.Second)
	must(c.Set(ctx, "c", []byte("c"), 0))
	if n, b := c.stats(); n != 2 || b != 4 {
		t.Fatalf("stats = %d entries, %d bytes; want 2, 4 (expired a dropped)", n, b)
	}
}

func TestCacheConcurrentBound(t *testing.T) {
	c := NewCache(4 << 20)
	var wg sync.WaitGroup
	val := make([]byte, 1000)
	for g := range 8 {
		wg.Go(func() {
			for i := range 5000 {
				k := strconv.Itoa(g*5000 + i)
				if err := c.Set(t.Context(), k, val, 0); err != nil {
					t.Error(err)
					return
				}
				_, _, _ = c.Get(t.Context(), strconv.Itoa(i))
			}
		})
	}
	wg.Wait()
	if _, b := c.stats(); b > 4<<20 {
		t.Fatalf("cache holds %d bytes, bound %d", b, 4<<20)
	}
}

func BenchmarkCacheGet(b *testing.B) {
	c := NewCache(64 << 20)
	val := make([]byte, 256)
	const keys = 10_000
	for i := range keys {
		_ = c.Set(b.Context(), "org:1:key:"+strconv.Itoa(i), val, time.Hour)
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(n.Add(1)) * 7919
		for pb.Next() {
			i++
			if _, _, err := c.Get(b.Context(), "org:1:key:"+strconv.Itoa(i%keys)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCacheSet(b *testing.B) {
	c := NewCache(64 << 20)
	val := make([]byte, 256)
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(n.Add(1)) * 1_000_003
		for pb.Next() {
			i++
			if err := c.Set(b.Context(), "org:1:key:"+strconv.Itoa(i%100_000), val, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkLimiterAllow(b *testing.B) {
	l := NewLimiter(LimiterOptions{})
	limit := sentineldf.PerMinute(6000, 500)
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(n.Add(1))
		for pb.Next() {
			i++
			if _, err := l.Allow(b.Context(), "key:"+strconv.Itoa(i%1000), limit); err != nil {
				b.Fatal(err)
			}
		}
	})
}
