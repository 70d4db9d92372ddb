package s3test_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/sentineldf/sentineldf/s3"
	"github.com/sentineldf/sentineldf/s3/s3test"
)

// hideBinary makes versitygw impossible to find for the rest of the test.
func hideBinary(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("PATH", empty) // also hides the go command
	t.Setenv("GOBIN", "")
	t.Setenv("GOPATH", empty)
	t.Setenv("HOME", empty)
	t.Setenv(s3test.EnvEndpoint, "")
}

func TestFindBinary(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		hideBinary(t)
		if p, err := s3test.FindBinary(); err == nil {
			t.Fatalf("FindBinary = %q, want an error", p)
		}
	})
	for _, where := range []string{"PATH", "GOBIN", "HOME/go/bin"} {
		t.Run(where, func(t *testing.T) {
			hideBinary(t)
			dir := t.TempDir()
			bin := filepath.Join(dir, s3test.Binary)
			switch where {
			case "PATH":
				t.Setenv("PATH", dir)
			case "GOBIN":
				t.Setenv("GOBIN", dir)
			case "HOME/go/bin":
				t.Setenv("HOME", dir)
				bin = filepath.Join(dir, "go", "bin", s3test.Binary)
			}
			if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			if p, err := s3test.FindBinary(); err != nil || p != bin {
				t.Fatalf("FindBinary = %q, %v; want %q", p, err, bin)
			}
		})
	}
}

// fakeTB records how a test ended; Skipf and Fatalf end the goroutine as
// the testing package's do.
type fakeTB struct {
	testing.TB
	mu      sync.Mutex
	skipped string
	failed  string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Skipf(format string, args ...any) {
	f.mu.Lock()
	f.skipped = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.failed = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func TestStartWithoutBinary(t *testing.T) {
	for _, tt := range []struct {
		require  string
		wantSkip bool
	}{
		{"", true},
		{"0", true},
		{"1", false},
	} {
		t.Run("require="+tt.require, func(t *testing.T) {
			hideBinary(t)
			t.Setenv(s3test.EnvRequire, tt.require)
			f := &fakeTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				s3test.Start(f)
				f.failed = "Start returned"
			}()
			<-done
			msg := f.failed
			if tt.wantSkip {
				msg = f.skipped
				if f.failed != "" {
					t.Fatalf("Start failed (%s), want a skip", f.failed)
				}
			} else if f.skipped != "" {
				t.Fatalf("Start skipped (%s), want a failure", f.skipped)
			}
			if !strings.Contains(msg, "scripts/versitygw.sh") {
				t.Errorf("message %q does not point at scripts/versitygw.sh", msg)
			}
		})
	}
}

// TestStart checks the started server works, and that TEST_S3_ENDPOINT
// makes Start use an existing server, creating the bucket it names.
func TestStart(t *testing.T) {
	cfg := s3test.Start(t)
	st, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	t.Setenv(s3test.EnvEndpoint, "http://"+strings.TrimPrefix(cfg.Endpoint, "http://"))
	t.Setenv(s3test.EnvAccessKey, cfg.AccessKeyID)
	t.Setenv(s3test.EnvSecretKey, cfg.SecretAccessKey)
	t.Setenv(s3test.EnvBucket, "sentineldf-other")
	t.Setenv(s3test.EnvRegion, cfg.Region)
	other := s3test.Start(t)
	if other.Bucket != "sentineldf-other" || other.AccessKeyID != cfg.AccessKeyID {
		t.Fatalf("Start with %s = %v, want the named server and bucket", s3test.EnvEndpoint, other)
	}
	st2, err := s3.New(t.Context(), other)
	if err != nil {
		t.Fatal(err)
	}
	if err := st2.Ping(t.Context()); err != nil {
		t.Fatalf("Ping of the bucket Start created: %v", err)
	}
}
