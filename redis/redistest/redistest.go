// Package redistest helps tests that need Redis: URL finds the test
// server, and Proxy is a TCP proxy in front of it that a test can stop,
// pause and restart to cut Redis off from the code under test without
// touching the shared server.
package redistest

import (
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment variables read by URL.
const (
	// EnvURL names the test server, e.g. redis://127.0.0.1:6379/0.
	EnvURL = "TEST_REDIS_URL"
	// EnvRequire, set to 1, makes a missing EnvURL fail the test instead
	// of skipping it.
	EnvRequire = "SENTINELDF_REQUIRE_SERVICES"
)

// URL returns the test server's URL from TEST_REDIS_URL. Without it the
// test is skipped, or fails when SENTINELDF_REQUIRE_SERVICES=1. Tests
// sharing the server must keep their keys apart (a random prefix) and
// never flush it.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s is not set and %s=1: Redis is required", EnvURL, EnvRequire)
		}
		t.Skipf("%s is not set: skipping a test that needs Redis", EnvURL)
	}
	return u
}

// Proxy forwards TCP connections from a loopback port to a target. Its
// address stays the same across Stop and Start. It is safe for concurrent
// use.
type Proxy struct {
	t      testing.TB
	target string
	addr   string

	// ctl serialises Stop, Pause and Start.
	ctl sync.Mutex
	mu  sync.Mutex
	// cond is signalled when paused or gen changes.
	cond   *sync.Cond
	ln     net.Listener
	paused bool
	// gen counts Stops: the connections of an older generation are
	// closed.
	gen   uint64
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy starts a proxy on 127.0.0.1 forwarding to target, a host:port
// or a redis:// URL; it is stopped when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	if strings.Contains(target, "://") {
		u, err := url.Parse(target)
		if err != nil {
			t.Fatalf("redistest: proxy target is not a URL: %v", err)
		}
		target = u.Host
	}
	p := &Proxy{t: t, target: target, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy listen: %v", err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Stop)
	return p
}

// Addr returns the proxy's host:port.
func (p *Proxy) Addr() string { return p.addr }

// URL returns base (a redis:// URL) with its host:port replaced by the
// proxy's, keeping credentials, database and parameters.
func (p *Proxy) URL(base string) string {
	p.t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		p.t.Fatalf("redistest: base is not a URL: %v", err)
	}
	u.Host = p.addr
	return u.String()
}

// Stop closes the listener and every connection, like a dead server: new
// connections are refused and existing ones reset. It is idempotent.
func (p *Proxy) Stop() {
	p.ctl.Lock()
	defer p.ctl.Unlock()
	p.mu.Lock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	p.gen++
	p.paused = false
	for c := range p.conns {
		_ = c.Close()
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}

// Pause makes the proxy a black hole, like a server that hangs or a
// network that drops packets: connections are still accepted, but no
// byte is forwarded either way until Start. A stopped proxy is started
// paused.
func (p *Proxy) Pause() {
	p.t.Helper()
	p.ctl.Lock()
	defer p.ctl.Unlock()
	p.mu.Lock()
	p.paused = true
	running := p.ln != nil
	p.mu.Unlock()
	if !running {
		p.listen()
	}
}

// Start makes a stopped or paused proxy forward again on the same
// address. It is a no-op on a running proxy.
func (p *Proxy) Start() {
	p.t.Helper()
	p.ctl.Lock()
	defer p.ctl.Unlock()
	p.mu.Lock()
	p.paused = false
	p.cond.Broadcast()
	running := p.ln != nil
	p.mu.Unlock()
	if !running {
		p.listen()
	}
}

// listen listens on the proxy's address again. The port was released by
// Stop; another process could take it meanwhile, so a busy port is
// retried for a while.
func (p *Proxy) listen() {
	p.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", p.addr)
		if err == nil {
			p.serve(ln)
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("redistest: proxy listen again on %s: %v", p.addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serve accepts connections on ln until it is closed.
func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln = ln
	gen := p.gen
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by Stop
			}
			p.wg.Go(func() { p.handle(c, gen) })
		}
	})
}

// handle forwards c to the target until either side closes or the
// proxy's generation changes.
func (p *Proxy) handle(c net.Conn, gen uint64) {
	if !p.track(c, gen) {
		_ = c.Close()
		return
	}
	defer p.untrack(c)
	d := net.Dialer{Timeout: 5 * time.Second}
	up, err := d.Dial("tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(up, gen) {
		_ = up.Close()
		return
	}
	defer p.untrack(up)
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			_ = c.Close()
			_ = up.Close()
		})
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(up, c, gen); closeBoth() })
	wg.Go(func() { p.pipe(c, up, gen); closeBoth() })
	wg.Wait()
}

// pipe copies src to dst, holding each chunk while the proxy is paused.
func (p *Proxy) pipe(dst, src net.Conn, gen uint64) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitForwarding(gen) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF, reset, or closed by the other pipe or Stop
		}
	}
}

// waitForwarding blocks while the proxy is paused and reports whether
// generation gen may still forward.
func (p *Proxy) waitForwarding(gen uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.paused && p.gen == gen {
		p.cond.Wait()
	}
	return p.gen == gen
}

// track registers c as a connection of generation gen, or reports false
// when the proxy stopped since.
func (p *Proxy) track(c net.Conn, gen uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gen != gen {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}
