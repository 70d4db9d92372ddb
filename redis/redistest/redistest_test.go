package redistest_test

import (
	"bufio"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/sentineldf/sentineldf/redis/redistest"
)

// echoServer returns the address of a line echo server.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadBytes('\n')
					if err != nil {
						return
					}
					if _, err := c.Write(line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends line over c and returns the reply, or an error after
// wait.
func roundTrip(c net.Conn, line string, wait time.Duration) (string, error) {
	if err := c.SetDeadline(time.Now().Add(wait)); err != nil {
		return "", err
	}
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return reply[:len(reply)-1], nil
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func wantEcho(t *testing.T, c net.Conn, line string) {
	t.Helper()
	got, err := roundTrip(c, line, 5*time.Second)
	if err != nil || got != line {
		t.Fatalf("echo of %q = %q, %v", line, got, err)
	}
}

func TestProxy(t *testing.T) {
	p := redistest.NewProxy(t, echoServer(t))
	addr := p.Addr()
	c := dial(t, addr)
	wantEcho(t, c, "one")

	// Stopped: the open connection is cut and new ones are refused.
	p.Stop()
	p.Stop() // idempotent
	if _, err := roundTrip(c, "two", 5*time.Second); err == nil {
		t.Fatal("a connection survived Stop")
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("dial of a stopped proxy succeeded")
	}

	// Started again on the same address.
	p.Start()
	p.Start() // no-op
	if p.Addr() != addr {
		t.Fatalf("address changed from %s to %s", addr, p.Addr())
	}
	c = dial(t, addr)
	wantEcho(t, c, "three")

	// Paused: connections are accepted but nothing comes back until
	// Start, which delivers what was held.
	p.Pause()
	if _, err := roundTrip(c, "held", 100*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("round trip through a paused proxy: %v, want a timeout", err)
	}
	c2 := dial(t, addr)
	if _, err := roundTrip(c2, "new", 100*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("round trip of a new connection through a paused proxy: %v, want a timeout", err)
	}
	p.Start()
	if err := c2.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, err := bufio.NewReader(c2).ReadString('\n'); err != nil || got != "new\n" {
		t.Fatalf("held bytes after Start = %q, %v", got, err)
	}
	wantEcho(t, c2, "after")

	// Pausing a stopped proxy starts it paused.
	p.Stop()
	p.Pause()
	c3 := dial(t, addr)
	if _, err := roundTrip(c3, "x", 100*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("round trip through a proxy paused from stopped: %v, want a timeout", err)
	}
	p.Start()
	c4 := dial(t, addr)
	wantEcho(t, c4, "last")
}

func TestProxyURL(t *testing.T) {
	p := redistest.NewProxy(t, "redis://u:pw@127.0.0.1:1/3?dial_timeout=1s")
	want := "redis://u:pw@" + p.Addr() + "/3?dial_timeout=1s"
	if got := p.URL("redis://u:pw@127.0.0.1:6379/3?dial_timeout=1s"); got != want {
		t.Fatalf("URL = %q, want %q", got, want)
	}
}
