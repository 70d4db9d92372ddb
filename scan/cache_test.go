package scan

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func key(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func TestCachePutGet(t *testing.T) {
	dir := t.TempDir()
	rs := sampleResults()
	c, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			r := rs[i%len(rs)]
			if err := c.Put(key(string(rune('a'+i))), &r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// Results written in this run are not visible until reopened.
	if _, ok := c.Get(key("a")); ok {
		t.Error("Get found a result put in the same session")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c, err = OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Len() != 50 {
		t.Errorf("Len = %d, want 50", c.Len())
	}
	for i := range 50 {
		got, ok := c.Get(key(string(rune('a' + i))))
		if !ok {
			t.Fatalf("result %d missing", i)
		}
		if want := rs[i%len(rs)]; !reflect.DeepEqual(got, want) {
			t.Errorf("result %d = %+v, want %+v", i, got, want)
		}
	}
	if _, ok := c.Get(key("absent")); ok {
		t.Error("Get found an absent key")
	}
	if c.Hits() != 50 {
		t.Errorf("Hits = %d, want 50", c.Hits())
	}
}

// segments returns the cache's segment files.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fillCache(t *testing.T, dir string, keys ...string) {
	t.Helper()
	c, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := sampleResults()[1]
	for _, k := range keys {
		if err := c.Put(key(k), &r); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCacheTornWrite(t *testing.T) {
	tests := []struct {
		name   string
		damage func(b []byte) []byte
		want   int // entries still found
	}{
		{"truncated payload", func(b []byte) []byte { return b[:len(b)-3] }, 2},
		{"truncated header", func(b []byte) []byte { return b[:len(b)-lastRecordLen(b)+10] }, 2},
		{"flipped payload byte", func(b []byte) []byte { b[len(b)-2] ^= 0xff; return b }, 2},
		{"garbage appended", func(b []byte) []byte { return append(b, "SDFR garbage"...) }, 3},
		{"bad file header", func(b []byte) []byte { b[0] = 'X'; return b }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fillCache(t, dir, "one", "two", "three")
			segs := segments(t, dir)
			if len(segs) != 1 || !strings.HasSuffix(segs[0], ".seg") {
				t.Fatalf("segments = %v, want one sealed segment", segs)
			}
			b, err := os.ReadFile(segs[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(segs[0], tt.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := OpenCache(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			found := 0
			want := sampleResults()[1]
			for _, k := range []string{"one", "two", "three"} {
				if r, ok := c.Get(key(k)); ok {
					found++
					if !reflect.DeepEqual(r, want) {
						t.Errorf("%s: damaged cache returned a wrong result %+v", k, r)
					}
				}
			}
			if found != tt.want {
				t.Errorf("found %d results, want %d", found, tt.want)
			}
		})
	}
}

func lastRecordLen(b []byte) int {
	r := sampleResults()[1]
	return recordHeader + len(appendResult(nil, &r))
}

// TestCacheDamageAfterOpen damages a segment after the cache indexed it: a
// segment read from disk on demand must not return the damaged record, and
// one held in memory returns the record as it was checksummed.
func TestCacheDamageAfterOpen(t *testing.T) {
	for _, tt := range []struct {
		name   string
		budget int64
		want   bool
	}{
		{"on disk", 0, false},
		{"in memory", cacheMemBudget, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fillCache(t, dir, "one")
			c, err := openCache(dir, tt.budget)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			seg := segments(t, dir)[0]
			b, _ := os.ReadFile(seg)
			b[len(b)-1] ^= 0xff
			if err := os.WriteFile(seg, b, 0o600); err != nil {
				t.Fatal(err)
			}
			r, ok := c.Get(key("one"))
			if ok != tt.want {
				t.Fatalf("Get found %v (%+v), want %v", ok, r, tt.want)
			}
			if want := sampleResults()[1]; ok && !reflect.DeepEqual(r, want) {
				t.Errorf("Get returned %+v, want %+v", r, want)
			}
		})
	}
}

func TestCacheCompaction(t *testing.T) {
	dir := t.TempDir()
	var all []string
	for i := range maxSealedSegments + 3 {
		k := []string{string(rune('a' + i)), "shared"}
		fillCache(t, dir, k...)
		all = append(all, k[0])
	}
	c, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n := len(segments(t, dir)); n > maxSealedSegments {
		t.Errorf("%d segments after open, want at most %d (compaction did not run)", n, maxSealedSegments)
	}
	for _, k := range append(all, "shared") {
		if _, ok := c.Get(key(k)); !ok {
			t.Errorf("%s lost in compaction", k)
		}
	}
	if c.Len() != len(all)+1 {
		t.Errorf("Len = %d, want %d", c.Len(), len(all)+1)
	}
}

func TestCacheUnsealedSegmentIsRead(t *testing.T) {
	// A scan that crashed leaves its segment unsealed; what it wrote
	// completely is still used.
	dir := t.TempDir()
	c, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := sampleResults()[1]
	c.Put(key("x"), &r)
	c.mu.Lock()
	c.bw.Flush()
	c.mu.Unlock()
	c2, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, ok := c2.Get(key("x")); !ok {
		t.Error("result of an unsealed segment not found")
	}
	c.Close()
}
