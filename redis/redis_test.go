package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/cachetest"
	"github.com/sentineldf/sentineldf/redis"
	"github.com/sentineldf/sentineldf/redis/redistest"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial, which the outage tests cause on
	// purpose.
	goredis.SetLogger(&redis.Logger{Log: slog.New(slog.DiscardHandler)})
	os.Exit(m.Run())
}

func randomPrefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "sdftest:" + hex.EncodeToString(b) + ":"
}

// raw returns a plain go-redis client of the test server, to look at keys
// behind the package's back.
func raw(t testing.TB, url string) *goredis.Client {
	t.Helper()
	o, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(o)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// open opens a client of the test server under a random prefix, closed
// and its keys deleted when the test ends.
func open(t testing.TB, opts redis.Options) (*redis.Client, redis.Options) {
	t.Helper()
	if opts.URL == "" {
		opts.URL = redistest.URL(t)
	}
	if opts.Prefix == "" {
		opts.Prefix = randomPrefix()
	}
	c, err := redis.Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	rdb := raw(t, redistest.URL(t))
	t.Cleanup(func() { deleteKeys(t, rdb, opts.Prefix) })
	return c, opts
}

// deleteKeys deletes the cache and limiter keys under prefix.
func deleteKeys(t testing.TB, rdb *goredis.Client, prefix string) {
	ctx := context.Background()
	for _, pattern := range []string{prefix + "*", "rate:" + prefix + "*"} {
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Logf("scan %s: %v", pattern, err)
			return
		}
		if len(keys) > 0 {
			_ = rdb.Del(ctx, keys...).Err()
		}
	}
}

func TestCacheConformance(t *testing.T) {
	c, _ := open(t, redis.Options{})
	cachetest.RunCache(t, func(t *testing.T) sentineldf.Cache { return c.Cache() })
}

func TestLimiterConformance(t *testing.T) {
	c, _ := open(t, redis.Options{})
	cachetest.RunLimiter(t, func(t *testing.T) sentineldf.Limiter { return c.Limiter() })
}

// TestKeyLayout checks where keys live, and that clients with different
// prefixes (deployments sharing a server) never see each other's keys.
func TestKeyLayout(t *testing.T) {
	a, ao := open(t, redis.Options{})
	b, bo := open(t, redis.Options{})
	rdb := raw(t, ao.URL)
	ctx := t.Context()

	if err := a.Cache().Set(ctx, "org:1:k", []byte("a"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Limiter().Allow(ctx, "rl:key:1", sentineldf.PerMinute(60, 5)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		key  string
		want bool
	}{
		{ao.Prefix + "org:1:k", true},
		{"rate:" + ao.Prefix + "rl:key:1", true},
		{"org:1:k", false},
		{bo.Prefix + "org:1:k", false},
	} {
		n, err := rdb.Exists(ctx, tt.key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := n == 1; got != tt.want {
			t.Errorf("key %q exists = %v, want %v", tt.key, got, tt.want)
		}
	}
	// The limiter key expires once the bucket is full again.
	if ttl, err := rdb.TTL(ctx, "rate:"+ao.Prefix+"rl:key:1").Result(); err != nil || ttl <= 0 || ttl > 2*time.Second {
		t.Errorf("limiter key TTL = %v, %v; want in (0, 2s]", ttl, err)
	}

	if _, ok, err := b.Cache().Get(ctx, "org:1:k"); err != nil || ok {
		t.Errorf("other prefix: Get = %v, %v; want a miss", ok, err)
	}
	r, err := b.Limiter().Allow(ctx, "rl:key:1", sentineldf.PerMinute(60, 5))
	if err != nil || !r.Allowed || r.Remaining != 4 {
		t.Errorf("other prefix: Allow = %+v, %v; want a full bucket", r, err)
	}
}

func TestCacheTTLRounding(t *testing.T) {
	c, o := open(t, redis.Options{})
	rdb := raw(t, o.URL)
	ctx := t.Context()
	for _, ttl := range []time.Duration{time.Nanosecond, 999 * time.Microsecond, time.Millisecond + 1} {
		t.Run(ttl.String(), func(t *testing.T) {
			key := "k" + ttl.String()
			if err := c.Cache().Set(ctx, key, []byte("v"), ttl); err != nil {
				t.Fatal(err)
			}
			// -2: gone already; -1 would mean no expiry.
			if pttl, err := rdb.PTTL(ctx, o.Prefix+key).Result(); err != nil || pttl == -1 {
				t.Fatalf("PTTL after Set with TTL %v = %v, %v; want an expiring or expired key", ttl, pttl, err)
			}
		})
	}
}

func TestCacheMaxValue(t *testing.T) {
	c, _ := open(t, redis.Options{MaxValueBytes: 10})
	ctx := t.Context()
	for _, tt := range []struct {
		size int
		code string
	}{{10, ""}, {11, sentineldf.ETOOLARGE}} {
		v := make([]byte, tt.size)
		if err := c.Cache().Set(ctx, "k", v, time.Hour); sentineldf.ErrorCode(err) != tt.code {
			t.Errorf("Set of %d bytes: %v, want code %q", tt.size, err, tt.code)
		}
		if _, err := c.Cache().SetNX(ctx, "nx"+strconv.Itoa(tt.size), v, time.Hour); sentineldf.ErrorCode(err) != tt.code {
			t.Errorf("SetNX of %d bytes: %v, want code %q", tt.size, err, tt.code)
		}
	}
}

// TestLimiterRemaining checks Remaining and ResetAfter of a fresh bucket
// for rates whose emission interval is not a round number of seconds,
// where float rounding in the script could lose a token.
func TestLimiterRemaining(t *testing.T) {
	c, _ := open(t, redis.Options{})
	for _, limit := range []sentineldf.Limit{
		sentineldf.PerMinute(60, 20),
		sentineldf.PerMinute(600, 100),
		sentineldf.PerMinute(7, 3),
		{Rate: 3, Period: time.Second, Burst: 2},
		{Rate: 100, Period: time.Second, Burst: 100},
		{Rate: 1000, Period: time.Second, Burst: 50},
		{Rate: 1, Period: 24 * time.Hour, Burst: 1000},
	} {
		name := fmt.Sprintf("%d per %v burst %d", limit.Rate, limit.Period, limit.Burst)
		t.Run(name, func(t *testing.T) {
			interval := limit.Period / time.Duration(limit.Rate)
			start := time.Now()
			for i := range min(3, limit.Burst) {
				r, err := c.Limiter().Allow(t.Context(), "k:"+name, limit)
				if err != nil {
					t.Fatal(err)
				}
				// Tokens refill while the test runs: on a loaded machine a
				// fast rate (1 ms per token) gives some back between calls.
				want := limit.Burst - 1 - i
				refilled := int(time.Since(start) / interval)
				if !r.Allowed || r.Remaining < want || r.Remaining > min(want+refilled, limit.Burst-1) || r.RetryAfter != 0 {
					t.Fatalf("request %d: %+v, want allowed with %d remaining (+%d refilled)", i+1, r, want, refilled)
				}
				// The bucket is full again once the i+1 tokens taken refill.
				if hi := time.Duration(i+1) * interval; r.ResetAfter <= 0 || r.ResetAfter > hi+time.Millisecond {
					t.Fatalf("request %d: ResetAfter %v, want in (0, %v]", i+1, r.ResetAfter, hi)
				}
			}
		})
	}
}

// TestOpenErrors needs no server.
func TestOpenErrors(t *testing.T) {
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()

	for _, tt := range []struct {
		name string
		opts redis.Options
		code string
	}{
		{"no URL", redis.Options{}, sentineldf.EINVALID},
		{"bad scheme", redis.Options{URL: "http://u:s3cret@localhost:6379"}, sentineldf.EINVALID},
		{"unparsable with password", redis.Options{URL: "redis://u:s3cret@local host:6379/0"}, sentineldf.EINVALID},
		{"bad database", redis.Options{URL: "redis://u:s3cret@localhost:6379/x"}, sentineldf.EINVALID},
		{"negative timeout", redis.Options{URL: "redis://" + dead, ReadTimeout: -1}, sentineldf.EINVALID},
		{"negative pool size", redis.Options{URL: "redis://" + dead, PoolSize: -1}, sentineldf.EINVALID},
		{"unreachable", redis.Options{URL: "redis://u:s3cret@" + dead + "/0"}, sentineldf.EUNAVAILABLE},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := redis.Open(t.Context(), tt.opts)
			if err == nil {
				_ = c.Close()
			}
			if got := sentineldf.ErrorCode(err); got != tt.code {
				t.Fatalf("Open: %v, want code %s", err, tt.code)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("Open's error leaks the password: %v", err)
			}
		})
	}

	// SkipPing opens without a server; calls then fail.
	c, err := redis.Open(t.Context(), redis.Options{URL: "redis://" + dead, SkipPing: true})
	if err != nil {
		t.Fatalf("Open with SkipPing: %v", err)
	}
	defer c.Close()
	if _, _, err := c.Cache().Get(t.Context(), "k"); sentineldf.ErrorCode(err) != sentineldf.EUNAVAILABLE {
		t.Fatalf("Get without a server: %v, want code %s", err, sentineldf.EUNAVAILABLE)
	}
}

// op is one call of each method, for the outage tests.
type op struct {
	name string
	call func(ctx context.Context, c *redis.Client) error
}

var ops = []op{
	{"Ping", func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx) }},
	{"Get", func(ctx context.Context, c *redis.Client) error {
		_, _, err := c.Cache().Get(ctx, "k")
		return err
	}},
	{"Set", func(ctx context.Context, c *redis.Client) error {
		return c.Cache().Set(ctx, "k", []byte("v"), time.Hour)
	}},
	{"SetNX", func(ctx context.Context, c *redis.Client) error {
		_, err := c.Cache().SetNX(ctx, "nx", []byte("v"), time.Hour)
		return err
	}},
	{"Delete", func(ctx context.Context, c *redis.Client) error { return c.Cache().Delete(ctx, "gone") }},
	{"Allow", func(ctx context.Context, c *redis.Client) error {
		_, err := c.Limiter().Allow(ctx, "rl", sentineldf.PerMinute(60, 10))
		return err
	}},
}

// TestRedisDown cuts Redis off through a proxy, refusing connections
// (stop) or swallowing every byte (pause): every call fails with
// EUNAVAILABLE, timeouts included, and the same client works again once
// the proxy is back.
func TestRedisDown(t *testing.T) {
	url := redistest.URL(t)
	for _, mode := range []string{"stop", "pause"} {
		t.Run(mode, func(t *testing.T) {
			proxy := redistest.NewProxy(t, url)
			c, o := open(t, redis.Options{URL: proxy.URL(url), DialTimeout: 100 * time.Millisecond, ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond})
			ctx := t.Context()
			if err := c.Cache().Set(ctx, "before", []byte("kept"), time.Hour); err != nil {
				t.Fatal(err)
			}
			for _, op := range ops {
				if err := op.call(ctx, c); err != nil {
					t.Fatalf("%s before the outage: %v", op.name, err)
				}
			}

			if mode == "stop" {
				proxy.Stop()
			} else {
				proxy.Pause()
			}
			for _, op := range ops {
				err := op.call(ctx, c)
				if sentineldf.ErrorCode(err) != sentineldf.EUNAVAILABLE {
					t.Fatalf("%s while Redis is cut off: %v, want code %s", op.name, err, sentineldf.EUNAVAILABLE)
				}
				if msg := sentineldf.ErrorMessage(err); msg != "cache unavailable" && msg != "rate limiter unavailable" {
					t.Fatalf("%s: client message %q", op.name, msg)
				}
				if mode == "pause" && !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("%s while Redis hangs: %v, want a timeout", op.name, err)
				}
				if strings.Contains(err.Error(), o.URL) {
					t.Fatalf("%s: error leaks the URL: %v", op.name, err)
				}
			}

			proxy.Start()
			// The pool reconnects by itself; poll until it has.
			deadline := time.Now().Add(10 * time.Second)
			for {
				err := c.Ping(ctx)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Redis back but Ping still fails: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			for _, op := range ops {
				if err := op.call(ctx, c); err != nil {
					t.Fatalf("%s after the outage: %v", op.name, err)
				}
			}
			if v, ok, err := c.Cache().Get(ctx, "before"); err != nil || !ok || string(v) != "kept" {
				t.Fatalf("Get of a key written before the outage = %q, %v, %v", v, ok, err)
			}
		})
	}
}

// TestCallerContext: a call whose caller gave up reports the caller's
// context error, not an outage.
func TestCallerContext(t *testing.T) {
	url := redistest.URL(t)
	proxy := redistest.NewProxy(t, url)
	c, _ := open(t, redis.Options{URL: proxy.URL(url), ReadTimeout: 10 * time.Second})
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	for _, op := range ops {
		if err := op.call(canceled, c); !errors.Is(err, context.Canceled) || sentineldf.ErrorCode(err) == sentineldf.EUNAVAILABLE {
			t.Fatalf("%s with a canceled context: %v, want context.Canceled", op.name, err)
		}
	}
	// A hanging server and a caller deadline shorter than the read
	// timeout: the deadline wins.
	proxy.Pause()
	for _, op := range ops {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		err := op.call(ctx, c)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || sentineldf.ErrorCode(err) == sentineldf.EUNAVAILABLE {
			t.Fatalf("%s past the caller's deadline: %v, want context.DeadlineExceeded", op.name, err)
		}
	}
}

func TestClosed(t *testing.T) {
	c, err := redis.Open(t.Context(), redis.Options{URL: redistest.URL(t), Prefix: randomPrefix()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if err := op.call(t.Context(), c); sentineldf.ErrorCode(err) != sentineldf.EUNAVAILABLE {
			t.Errorf("%s after Close: %v, want code %s", op.name, err, sentineldf.EUNAVAILABLE)
		}
	}
}

func BenchmarkCacheGet(b *testing.B) {
	c, _ := open(b, redis.Options{})
	val := make([]byte, 256)
	const keys = 1000
	for i := range keys {
		if err := c.Cache().Set(b.Context(), "org:1:key:"+strconv.Itoa(i), val, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	b.ReportAllocs()
	// Many requests at once, as in a busy API process.
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		i := int(n.Add(1)) * 7919
		for pb.Next() {
			i++
			if _, _, err := c.Cache().Get(b.Context(), "org:1:key:"+strconv.Itoa(i%keys)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCacheSet(b *testing.B) {
	c, _ := open(b, redis.Options{})
	val := make([]byte, 256)
	var n atomic.Int64
	b.ReportAllocs()
	// Many requests at once, as in a busy API process.
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		i := int(n.Add(1)) * 1_000_003
		for pb.Next() {
			i++
			if err := c.Cache().Set(b.Context(), "org:1:key:"+strconv.Itoa(i%1000), val, time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkLimiterAllow(b *testing.B) {
	c, _ := open(b, redis.Options{})
	limit := sentineldf.PerMinute(6000, 500)
	var n atomic.Int64
	b.ReportAllocs()
	// Many requests at once, as in a busy API process.
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		i := int(n.Add(1))
		for pb.Next() {
			i++
			if _, err := c.Limiter().Allow(b.Context(), "rl:key:"+strconv.Itoa(i%1000), limit); err != nil {
				b.Fatal(err)
			}
		}
	})
}
