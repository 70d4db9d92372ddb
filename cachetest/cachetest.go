// Package cachetest holds the conformance suites of sentineldf.Cache and
// sentineldf.Limiter: every backend (inmem, redis) runs RunCache and
// RunLimiter. The suites use only the interfaces and real time, and every
// subtest uses keys under a random prefix, so a backend may share its
// server with other runs.
package cachetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sentineldf/sentineldf"
)

// pollTimeout bounds every wait for an expiry or a refill.
const pollTimeout = 5 * time.Second

// RunCache runs the Cache conformance suite. newCache is called once per
// subtest; the cache must hold at least 1 MiB.
func RunCache(t *testing.T, newCache func(t *testing.T) sentineldf.Cache) {
	tests := []struct {
		name string
		fn   func(t *testing.T, c sentineldf.Cache, ns string)
	}{
		{"GetSetMiss", testGetSetMiss},
		{"Overwrite", testOverwrite},
		{"EmptyValue", testEmptyValue},
		{"BinaryValues", testBinaryValues},
		{"LargeValue", testLargeValue},
		{"NotAliased", testNotAliased},
		{"TTLExpiry", testTTLExpiry},
		{"SetClearsTTL", testSetClearsTTL},
		{"NegativeTTL", testNegativeTTL},
		{"SetNX", testSetNX},
		{"SetNXAfterExpiry", testSetNXAfterExpiry},
		{"SetNXConcurrent", testSetNXConcurrent},
		{"DeleteMultiple", testDeleteMultiple},
		{"GetSetMany", testGetSetMany},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t)
			if c == nil {
				t.Fatal("newCache returned nil")
			}
			tt.fn(t, c, "cachetest:"+randomHex(8)+":")
		})
	}
}

func get(t *testing.T, c sentineldf.Cache, key string) ([]byte, bool) {
	t.Helper()
	v, ok, err := c.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v, ok
}

func set(t *testing.T, c sentineldf.Cache, key string, value []byte, ttl time.Duration) {
	t.Helper()
	if err := c.Set(t.Context(), key, value, ttl); err != nil {
		t.Fatalf("Set(%q, ttl %v): %v", key, ttl, err)
	}
}

func wantValue(t *testing.T, c sentineldf.Cache, key string, want []byte) {
	t.Helper()
	got, ok := get(t, c, key)
	if !ok {
		t.Fatalf("Get(%q): miss, want %q", key, want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func wantMiss(t *testing.T, c sentineldf.Cache, key string) {
	t.Helper()
	if got, ok := get(t, c, key); ok {
		t.Fatalf("Get(%q) = %q, want a miss", key, got)
	}
}

// pollUntil calls cond until it is true, failing after pollTimeout.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, pollTimeout)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func testGetSetMiss(t *testing.T, c sentineldf.Cache, ns string) {
	v, ok, err := c.Get(t.Context(), ns+"absent")
	if err != nil || ok || v != nil {
		t.Fatalf("Get of an absent key = %q, %v, %v; want nil, false, nil", v, ok, err)
	}
	set(t, c, ns+"k", []byte("v"), 0)
	wantValue(t, c, ns+"k", []byte("v"))
	set(t, c, ns+"org:1:key", []byte("one"), time.Hour)
	set(t, c, ns+"org:2:key", []byte("two"), time.Hour)
	wantValue(t, c, ns+"org:1:key", []byte("one"))
	wantValue(t, c, ns+"org:2:key", []byte("two"))
	wantMiss(t, c, ns+"org:3:key")
}

func testOverwrite(t *testing.T, c sentineldf.Cache, ns string) {
	set(t, c, ns+"k", []byte("first, longer value"), time.Hour)
	set(t, c, ns+"k", []byte("second"), time.Hour)
	wantValue(t, c, ns+"k", []byte("second"))
}

func testEmptyValue(t *testing.T, c sentineldf.Cache, ns string) {
	for _, v := range [][]byte{nil, {}} {
		set(t, c, ns+"empty", v, time.Hour)
		got, ok := get(t, c, ns+"empty")
		if !ok || len(got) != 0 {
			t.Fatalf("Get of an empty value = %q, %v; want empty, true", got, ok)
		}
	}
}

func testBinaryValues(t *testing.T, c sentineldf.Cache, ns string) {
	all := make([]byte, 512)
	for i := range all {
		all[i] = byte(i)
	}
	for _, tt := range []struct {
		name  string
		key   string
		value []byte
	}{
		{"every byte", "bin:all", all},
		{"NUL and invalid UTF-8", "bin:nul", []byte("\x00\xff\xfe\x00x\x00")},
		{"unicode key", "clé:日本語:✓", []byte("unicode")},
		{"key with spaces and newlines", "a key\nwith\tspace", []byte("ws")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			set(t, c, ns+tt.key, tt.value, time.Hour)
			wantValue(t, c, ns+tt.key, tt.value)
		})
	}
}

func testLargeValue(t *testing.T, c sentineldf.Cache, ns string) {
	v := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
	set(t, c, ns+"large", v, time.Hour)
	wantValue(t, c, ns+"large", v)
}

func testNotAliased(t *testing.T, c sentineldf.Cache, ns string) {
	in := []byte("original")
	set(t, c, ns+"k", in, time.Hour)
	copy(in, "MUTATED!")
	wantValue(t, c, ns+"k", []byte("original"))
	out, _ := get(t, c, ns+"k")
	copy(out, "MUTATED!")
	wantValue(t, c, ns+"k", []byte("original"))

	nxIn := []byte("nx-value")
	if ok, err := c.SetNX(t.Context(), ns+"nx", nxIn, time.Hour); err != nil || !ok {
		t.Fatalf("SetNX = %v, %v", ok, err)
	}
	copy(nxIn, "MUTATED!")
	wantValue(t, c, ns+"nx", []byte("nx-value"))
}

func testTTLExpiry(t *testing.T, c sentineldf.Cache, ns string) {
	set(t, c, ns+"long", []byte("long"), time.Hour)
	set(t, c, ns+"forever", []byte("forever"), 0)
	set(t, c, ns+"short", []byte("short"), 100*time.Millisecond)
	pollUntil(t, "short-TTL entry expires", func() bool {
		_, ok := get(t, c, ns+"short")
		return !ok
	})
	wantValue(t, c, ns+"long", []byte("long"))
	wantValue(t, c, ns+"forever", []byte("forever"))
}

// testSetClearsTTL checks that Set replaces an entry's TTL, like Redis SET.
func testSetClearsTTL(t *testing.T, c sentineldf.Cache, ns string) {
	set(t, c, ns+"k", []byte("v1"), 100*time.Millisecond)
	set(t, c, ns+"k", []byte("v2"), 0)
	set(t, c, ns+"probe", []byte("p"), 100*time.Millisecond)
	pollUntil(t, "probe entry expires", func() bool {
		_, ok := get(t, c, ns+"probe")
		return !ok
	})
	wantValue(t, c, ns+"k", []byte("v2"))
}

func testNegativeTTL(t *testing.T, c sentineldf.Cache, ns string) {
	if err := c.Set(t.Context(), ns+"k", []byte("v"), -time.Second); sentineldf.ErrorCode(err) != sentineldf.EINVALID {
		t.Errorf("Set with a negative TTL: %v, want code %s", err, sentineldf.EINVALID)
	}
	if _, err := c.SetNX(t.Context(), ns+"k", []byte("v"), -time.Second); sentineldf.ErrorCode(err) != sentineldf.EINVALID {
		t.Errorf("SetNX with a negative TTL: %v, want code %s", err, sentineldf.EINVALID)
	}
	wantMiss(t, c, ns+"k")
}

func setNX(t *testing.T, c sentineldf.Cache, key string, value []byte, ttl time.Duration) bool {
	t.Helper()
	ok, err := c.SetNX(t.Context(), key, value, ttl)
	if err != nil {
		t.Fatalf("SetNX(%q): %v", key, err)
	}
	return ok
}

func testSetNX(t *testing.T, c sentineldf.Cache, ns string) {
	if !setNX(t, c, ns+"k", []byte("first"), time.Hour) {
		t.Fatal("SetNX of an absent key = false, want true")
	}
	if setNX(t, c, ns+"k", []byte("second"), time.Hour) {
		t.Fatal("SetNX of a present key = true, want false")
	}
	wantValue(t, c, ns+"k", []byte("first"))
	set(t, c, ns+"k", []byte("set"), time.Hour)
	wantValue(t, c, ns+"k", []byte("set"))
	if err := c.Delete(t.Context(), ns+"k"); err != nil {
		t.Fatal(err)
	}
	if !setNX(t, c, ns+"k", []byte("again"), time.Hour) {
		t.Fatal("SetNX after Delete = false, want true")
	}
	wantValue(t, c, ns+"k", []byte("again"))
}

func testSetNXAfterExpiry(t *testing.T, c sentineldf.Cache, ns string) {
	if !setNX(t, c, ns+"k", []byte("first"), 100*time.Millisecond) {
		t.Fatal("SetNX of an absent key = false, want true")
	}
	pollUntil(t, "SetNX wins once the entry expired", func() bool {
		return setNX(t, c, ns+"k", []byte("second"), time.Hour)
	})
	wantValue(t, c, ns+"k", []byte("second"))
}

func testSetNXConcurrent(t *testing.T, c sentineldf.Cache, ns string) {
	const n = 32
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		winners atomic.Int32
		winner  atomic.Value
		errs    = make(chan error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			v := fmt.Appendf(nil, "goroutine-%d", i)
			ok, err := c.SetNX(context.WithoutCancel(t.Context()), ns+"race", v, time.Hour)
			if err != nil {
				errs <- err
				return
			}
			if ok {
				winners.Add(1)
				winner.Store(v)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("SetNX: %v", err)
	}
	if got := winners.Load(); got != 1 {
		t.Fatalf("%d of %d concurrent SetNX calls won, want exactly 1", got, n)
	}
	wantValue(t, c, ns+"race", winner.Load().([]byte))
}

func testDeleteMultiple(t *testing.T, c sentineldf.Cache, ns string) {
	for _, k := range []string{"a", "b", "c"} {
		set(t, c, ns+k, []byte(k), time.Hour)
	}
	if err := c.Delete(t.Context(), ns+"a", ns+"b", ns+"missing"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantMiss(t, c, ns+"a")
	wantMiss(t, c, ns+"b")
	wantValue(t, c, ns+"c", []byte("c"))
	if err := c.Delete(t.Context()); err != nil {
		t.Fatalf("Delete of no keys: %v", err)
	}
	if err := c.Delete(t.Context(), ns+"missing"); err != nil {
		t.Fatalf("Delete of an absent key: %v", err)
	}
}

// RunLimiter runs the Limiter conformance suite. newLimiter is called once
// per subtest. The suite runs on real time: exact arithmetic is checked
// with slow rates (whose refill cannot happen during the test) and refill
// with fast ones, by polling.
func RunLimiter(t *testing.T, newLimiter func(t *testing.T) sentineldf.Limiter) {
	tests := []struct {
		name string
		fn   func(t *testing.T, l sentineldf.Limiter, ns string)
	}{
		{"BurstThenDeny", testBurstThenDeny},
		{"IndependentKeys", testIndependentKeys},
		{"Refill", testRefill},
		{"Concurrent", testLimiterConcurrent},
		{"InvalidLimit", testInvalidLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiter(t)
			if l == nil {
				t.Fatal("newLimiter returned nil")
			}
			tt.fn(t, l, "limitertest:"+randomHex(8)+":")
		})
	}
}

// slack absorbs the rounding of backends that compute in float seconds.
const slack = time.Millisecond

func allow(t *testing.T, l sentineldf.Limiter, key string, limit sentineldf.Limit) sentineldf.LimitResult {
	t.Helper()
	r, err := l.Allow(t.Context(), key, limit)
	if err != nil {
		t.Fatalf("Allow(%q, %+v): %v", key, limit, err)
	}
	return r
}

// within reports whether lo < d <= hi + slack.
func within(d, lo, hi time.Duration) bool { return d > lo && d <= hi+slack }

func testBurstThenDeny(t *testing.T, l sentineldf.Limiter, ns string) {
	// One token an hour: no refill while the test runs, so every number is
	// exact up to the time the test takes.
	const T = time.Hour
	limit := sentineldf.Limit{Rate: 1, Period: T, Burst: 3}
	for i := range 3 {
		r := allow(t, l, ns+"k", limit)
		if !r.Allowed || r.Remaining != 2-i {
			t.Fatalf("request %d: Allowed %v Remaining %d, want true %d", i+1, r.Allowed, r.Remaining, 2-i)
		}
		// The bucket is full again once the i+1 tokens taken refill.
		if !within(r.ResetAfter, time.Duration(i)*T, time.Duration(i+1)*T) {
			t.Fatalf("request %d: ResetAfter %v, want in (%v, %v]", i+1, r.ResetAfter, time.Duration(i)*T, time.Duration(i+1)*T)
		}
		if r.RetryAfter != 0 {
			t.Fatalf("request %d: RetryAfter %v on an allowed request, want 0", i+1, r.RetryAfter)
		}
	}
	for i := range 2 {
		r := allow(t, l, ns+"k", limit)
		if r.Allowed || r.Remaining != 0 {
			t.Fatalf("request %d past the burst: Allowed %v Remaining %d, want false 0", 4+i, r.Allowed, r.Remaining)
		}
		if !within(r.RetryAfter, 0, T) {
			t.Fatalf("denied request: RetryAfter %v, want in (0, %v]", r.RetryAfter, T)
		}
		if !within(r.ResetAfter, 2*T, 3*T) {
			t.Fatalf("denied request: ResetAfter %v, want in (%v, %v]", r.ResetAfter, 2*T, 3*T)
		}
	}
}

func testIndependentKeys(t *testing.T, l sentineldf.Limiter, ns string) {
	limit := sentineldf.Limit{Rate: 1, Period: time.Hour, Burst: 2}
	for range 2 {
		allow(t, l, ns+"org:a", limit)
	}
	if r := allow(t, l, ns+"org:a", limit); r.Allowed {
		t.Fatal("third request of key a allowed, want denied")
	}
	r := allow(t, l, ns+"org:b", limit)
	if !r.Allowed || r.Remaining != 1 {
		t.Fatalf("first request of key b: Allowed %v Remaining %d, want true 1", r.Allowed, r.Remaining)
	}
}

func testRefill(t *testing.T, l sentineldf.Limiter, ns string) {
	limit := sentineldf.Limit{Rate: 10, Period: time.Second, Burst: 1}
	const T = 100 * time.Millisecond
	var denied sentineldf.LimitResult
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatal("1000 requests at 10/s with burst 1 were all allowed")
		}
		if denied = allow(t, l, ns+"k", limit); !denied.Allowed {
			break
		}
	}
	if !within(denied.RetryAfter, 0, T) {
		t.Fatalf("denied: RetryAfter %v, want in (0, %v]", denied.RetryAfter, T)
	}
	var r sentineldf.LimitResult
	pollUntil(t, "a token refills", func() bool {
		r = allow(t, l, ns+"k", limit)
		return r.Allowed
	})
	if r.Remaining != 0 || !within(r.ResetAfter, 0, T) {
		t.Fatalf("after refill: Remaining %d ResetAfter %v, want 0 and in (0, %v]", r.Remaining, r.ResetAfter, T)
	}
}

func testLimiterConcurrent(t *testing.T, l sentineldf.Limiter, ns string) {
	const (
		goroutines = 20
		each       = 5
		burst      = 7
	)
	limit := sentineldf.Limit{Rate: 1, Period: time.Hour, Burst: burst}
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		allowed atomic.Int32
		errs    = make(chan error, goroutines)
	)
	for range goroutines {
		wg.Go(func() {
			<-start
			for range each {
				r, err := l.Allow(context.WithoutCancel(t.Context()), ns+"shared", limit)
				if err != nil {
					errs <- err
					return
				}
				if r.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Allow: %v", err)
	}
	if got := allowed.Load(); got != burst {
		t.Fatalf("%d of %d concurrent requests allowed, want exactly the burst %d", got, goroutines*each, burst)
	}
}

func testInvalidLimit(t *testing.T, l sentineldf.Limiter, ns string) {
	for _, limit := range []sentineldf.Limit{
		{Rate: 0, Period: time.Second, Burst: 1},
		{Rate: 1, Period: 0, Burst: 1},
		{Rate: 1, Period: time.Second, Burst: 0},
		{Rate: -1, Period: time.Second, Burst: 1},
	} {
		if _, err := l.Allow(t.Context(), ns+"k", limit); sentineldf.ErrorCode(err) != sentineldf.EINVALID {
			t.Errorf("Allow with %+v: error %v, want code %s", limit, err, sentineldf.EINVALID)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testGetSetMany checks the batch calls: values in key order, nil for an
// absent key and non-nil for a present empty one, agreement with Get and
// Set, TTLs, and the errors of mismatched lengths and oversized values.
func testGetSetMany(t *testing.T, c sentineldf.Cache, ns string) {
	bc, ok := c.(sentineldf.BatchCache)
	if !ok {
		t.Fatalf("%T does not implement sentineldf.BatchCache", c)
	}
	ctx := t.Context()
	if got, err := bc.GetMany(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("GetMany(no keys) = %q, %v", got, err)
	}
	if err := bc.SetMany(ctx, nil, nil, 0); err != nil {
		t.Fatalf("SetMany(no keys) = %v", err)
	}
	keys := []string{ns + "a", ns + "b", ns + "empty", ns + "bin"}
	vals := [][]byte{[]byte("alpha"), []byte("beta"), {}, {0, 0xff, '\n', 0}}
	if err := bc.SetMany(ctx, keys, vals, time.Hour); err != nil {
		t.Fatal(err)
	}
	set(t, c, ns+"single", []byte("set alone"), 0)
	got, err := bc.GetMany(ctx, []string{ns + "b", ns + "absent", ns + "a", ns + "empty", ns + "single", ns + "bin", ns + "a"})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{[]byte("beta"), nil, []byte("alpha"), {}, []byte("set alone"), {0, 0xff, '\n', 0}, []byte("alpha")}
	if len(got) != len(want) {
		t.Fatalf("GetMany returned %d values for %d keys", len(got), len(want))
	}
	for i := range want {
		if (got[i] == nil) != (want[i] == nil) || !bytes.Equal(got[i], want[i]) {
			t.Errorf("GetMany value %d = %q (nil %v), want %q (nil %v)", i, got[i], got[i] == nil, want[i], want[i] == nil)
		}
	}
	for i, k := range keys {
		wantValue(t, c, k, vals[i])
	}
	// A short TTL through SetMany expires like Set's.
	if err := bc.SetMany(ctx, []string{ns + "short"}, [][]byte{[]byte("x")}, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "short-TTL SetMany entry expires", func() bool {
		v, err := bc.GetMany(ctx, []string{ns + "short"})
		return err == nil && v[0] == nil
	})
	if err := bc.SetMany(ctx, []string{ns + "x", ns + "y"}, [][]byte{[]byte("1")}, 0); err == nil {
		t.Error("SetMany with 2 keys and 1 value succeeded")
	}
	if err := bc.SetMany(ctx, []string{ns + "neg"}, [][]byte{[]byte("1")}, -time.Second); err == nil {
		t.Error("SetMany with a negative TTL succeeded")
	}
}
