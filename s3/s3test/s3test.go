// Package s3test gives tests an S3-compatible server: Start runs a private
// versitygw (posix backend in a temporary directory) on a loopback port,
// or uses the server named by TEST_S3_ENDPOINT.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sentineldf/sentineldf/s3"
)

// Environment variables read by Start.
const (
	// EnvEndpoint names an existing server (host:port or URL) to use
	// instead of starting versitygw; EnvAccessKey and EnvSecretKey are
	// its credentials, EnvBucket its bucket (created when missing;
	// default DefaultBucket) and EnvRegion its region (default Region).
	EnvEndpoint  = "TEST_S3_ENDPOINT"
	EnvAccessKey = "TEST_S3_ACCESS_KEY"
	EnvSecretKey = "TEST_S3_SECRET_KEY"
	EnvBucket    = "TEST_S3_BUCKET"
	EnvRegion    = "TEST_S3_REGION"
	// EnvRequire, set to 1, makes a missing versitygw fail the test
	// instead of skipping it.
	EnvRequire = "SENTINELDF_REQUIRE_SERVICES"
)

const (
	// Binary is the versitygw executable's name.
	Binary = "versitygw"
	// Region is the region of the started server.
	Region = "us-east-1"
	// DefaultBucket is the bucket Start creates.
	DefaultBucket = "sentineldf-test"
	// installHint tells how to get versitygw.
	installHint = "run scripts/versitygw.sh to install it (versitygw v1.8.0)"
	// startTimeout bounds how long versitygw may take to answer.
	startTimeout = 30 * time.Second
)

// Start returns the Config of an S3 server with an existing bucket, for
// the rest of the test. With TEST_S3_ENDPOINT set it uses that server;
// otherwise it starts versitygw (found on PATH, in $GOBIN or in
// $(go env GOPATH)/bin) and stops it when the test ends. Without
// versitygw the test is skipped, or fails when
// SENTINELDF_REQUIRE_SERVICES=1. Tests that share a server must keep
// their keys apart (a random prefix).
func Start(t testing.TB) s3.Config {
	t.Helper()
	if ep := os.Getenv(EnvEndpoint); ep != "" {
		return existing(t, ep)
	}
	bin, err := FindBinary()
	if err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("s3test: %v, and %s=1: %s", err, EnvRequire, installHint)
		}
		t.Skipf("s3test: %v: skipping a test that needs S3 (%s, or set %s)", err, installHint, EnvEndpoint)
	}
	cfg := s3.Config{
		Bucket:          DefaultBucket,
		Region:          Region,
		AccessKeyID:     "test" + randomHex(8),
		SecretAccessKey: randomHex(20),
	}
	cfg.Endpoint = startGateway(t, bin, cfg.AccessKeyID, cfg.SecretAccessKey)
	createBucket(t, cfg)
	return cfg
}

// existing returns the Config of the server at endpoint.
func existing(t testing.TB, endpoint string) s3.Config {
	t.Helper()
	cfg := s3.Config{
		Endpoint:        endpoint,
		Bucket:          envOr(EnvBucket, DefaultBucket),
		Region:          envOr(EnvRegion, Region),
		AccessKeyID:     os.Getenv(EnvAccessKey),
		SecretAccessKey: os.Getenv(EnvSecretKey),
	}
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		t.Fatalf("s3test: %s is set, but %s or %s is not", EnvEndpoint, EnvAccessKey, EnvSecretKey)
	}
	createBucket(t, cfg)
	return cfg
}

// createBucket creates cfg's bucket when it is missing.
func createBucket(t testing.TB, cfg s3.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cfg.CreateBucket = true
	if _, err := s3.New(ctx, cfg); err != nil {
		t.Fatalf("s3test: create bucket %q at %s: %v", cfg.Bucket, cfg.Endpoint, err)
	}
}

// FindBinary returns the path of versitygw: on PATH, in $GOBIN, or in the
// bin directory of $(go env GOPATH), where scripts/versitygw.sh puts it.
func FindBinary() (string, error) {
	if p, err := exec.LookPath(Binary); err == nil {
		return p, nil
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) == 2 {
			if gobin := strings.TrimSpace(lines[0]); gobin != "" {
				dirs = append(dirs, gobin)
			}
			for _, p := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(p, "bin"))
			}
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, Binary)
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New(Binary + " is not on PATH, in $GOBIN or in $(go env GOPATH)/bin")
}

// startGateway starts versitygw with a posix backend in a temporary
// directory and returns its host:port once it answers. A port taken
// between choosing and binding it is retried with another.
func startGateway(t testing.TB, bin, accessKey, secretKey string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "gateway")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatalf("s3test: %v", err)
	}
	var lastErr error
	for range 3 {
		addr, err := freePort()
		if err != nil {
			t.Fatalf("s3test: %v", err)
		}
		g := &gateway{exited: make(chan struct{})}
		g.cmd = exec.Command(bin, "--port", addr, "--region", Region, "--quiet", "posix", root)
		// Credentials go through the environment, not the command line,
		// which other users of the machine can read.
		g.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+accessKey, "ROOT_SECRET_KEY="+secretKey)
		g.cmd.Stdout = &g.out
		g.cmd.Stderr = &g.out
		setDeathSignal(g.cmd)
		if err := g.cmd.Start(); err != nil {
			t.Fatalf("s3test: start %s: %v", bin, err)
		}
		go func() {
			g.err = g.cmd.Wait()
			close(g.exited)
		}()
		if lastErr = g.waitReady(addr); lastErr == nil {
			t.Cleanup(g.stop)
			return addr
		}
		g.stop()
	}
	t.Fatalf("s3test: versitygw did not start: %v", lastErr)
	return ""
}

// gateway is a running versitygw process.
type gateway struct {
	cmd    *exec.Cmd
	out    lockedBuffer
	exited chan struct{} // closed once the process has been waited for
	err    error         // the exit status, set before exited is closed
}

// waitReady polls addr until versitygw answers HTTP, it exits, or
// startTimeout passes.
func (g *gateway) waitReady(addr string) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-g.exited:
			return errors.New("versitygw exited: " + errString(g.err) + ": " + g.out.String())
		default:
		}
		resp, err := client.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return nil // any answer, 403 included: it serves S3
		}
		if time.Now().After(deadline) {
			return errors.New("versitygw did not answer on " + addr + " within " + startTimeout.String() + ": " + g.out.String())
		}
		select {
		case <-g.exited:
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// stop terminates the process: SIGTERM, then SIGKILL after 5 s.
func (g *gateway) stop() {
	select {
	case <-g.exited:
		return
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(5 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
}

// freePort returns a loopback host:port that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", err
	}
	return addr, nil
}

// lockedBuffer collects a process's output, at most 64 KiB of it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 64<<10 - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func errString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
