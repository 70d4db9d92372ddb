package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/sentineldf/sentineldf"
)

func TestValidateKey(t *testing.T) {
	for _, tt := range []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"org/scan/input/0/data.jsonl", true},
		{"org/scan/input/0/données 日本語.jsonl", true},
		{"org/scan/a b+c%d#e?f=g&h;i'j.csv", true},
		{".hidden/..dots/file.", true},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a/", 511) + "b", true}, // 1023 bytes
		{"", false},
		{"/abs", false},
		{"trailing/", false},
		{"a//b", false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"a/..", false},
		{"a/../../b", false},
		{"a/./b", false},
		{`a\b`, false},
		{"a\x00b", false},
		{"a\tb", false},
		{"a\u0085b", false}, // C1 control
		{"\xff", false},
		{strings.Repeat("a", 256), false},
		{strings.Repeat("a/", 512) + "b", false}, // 1025 bytes
	} {
		err := validateKey(tt.key)
		if (err == nil) != tt.ok {
			t.Errorf("validateKey(%.40q) = %v, want ok=%v", tt.key, err, tt.ok)
		}
		if err != nil && sentineldf.ErrorCode(err) != sentineldf.EINVALID {
			t.Errorf("validateKey(%.40q) code %s, want %s", tt.key, sentineldf.ErrorCode(err), sentineldf.EINVALID)
		}
	}
}

// errBoom is a reader's own failure.
var errBoom = errors.New("boom")

// TestCheckedReader checks the property Put relies on: when the reader
// breaks its declared size, the consumer (the HTTP transport) never
// receives the whole declared body, so the server cannot complete it.
func TestCheckedReader(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100) // 1000 bytes
	sources := map[string]func(b []byte) io.Reader{
		"plain":    func(b []byte) io.Reader { return bytes.NewReader(b) },
		"one byte": func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
		"data+EOF": func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
		"half":     func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
	}
	for _, tt := range []struct {
		name     string
		data     []byte
		failAt   int   // > 0: the reader fails with errBoom after this many bytes
		declared int64 // -1: unknown
		max      int64
		code     string // "" : success
		boom     bool   // the error wraps errBoom
	}{
		{name: "exact", data: data, declared: 1000},
		{name: "empty", data: nil, declared: 0},
		{name: "shorter", data: data[:999], declared: 1000, code: sentineldf.EINVALID},
		{name: "longer", data: data, declared: 999, code: sentineldf.EINVALID},
		{name: "longer by far", data: data, declared: 10, code: sentineldf.EINVALID},
		{name: "empty declared, data given", data: data[:1], declared: 0, code: sentineldf.EINVALID},
		{name: "reader fails", data: data, failAt: 500, declared: 1000, code: sentineldf.EINTERNAL, boom: true},
		{name: "unknown size", data: data, declared: -1, max: 1000},
		{name: "unknown size over the limit", data: data, declared: -1, max: 999, code: sentineldf.ETOOLARGE},
		{name: "unknown size, reader fails", data: data, failAt: 500, declared: -1, max: 2000, code: sentineldf.EINTERNAL, boom: true},
	} {
		for sname, source := range sources {
			t.Run(tt.name+"/"+sname, func(t *testing.T) {
				r := source(tt.data)
				if tt.failAt > 0 {
					r = io.MultiReader(source(tt.data[:tt.failAt]), iotest.ErrReader(errBoom))
				}
				c := &checkedReader{ctx: context.Background(), r: r, left: tt.declared, max: tt.max}
				var got bytes.Buffer
				_, err := io.Copy(&got, c)
				if tt.code == "" {
					if err != nil || c.err != nil {
						t.Fatalf("copy: %v (recorded %v), want success", err, c.err)
					}
					if !bytes.Equal(got.Bytes(), tt.data) {
						t.Fatalf("delivered %d bytes, want %d", got.Len(), len(tt.data))
					}
					return
				}
				if err == nil || c.err == nil {
					t.Fatalf("copy delivered %d bytes without error (recorded %v), want %s", got.Len(), c.err, tt.code)
				}
				if code := sentineldf.ErrorCode(c.err); code != tt.code {
					t.Errorf("error %v has code %s, want %s", c.err, code, tt.code)
				}
				if errors.Is(c.err, errBoom) != tt.boom {
					t.Errorf("error %v: wraps the reader's error = %v, want %v", c.err, !tt.boom, tt.boom)
				}
				if tt.declared >= 0 && int64(got.Len()) >= tt.declared && tt.declared > 0 {
					t.Errorf("delivered %d bytes, the whole declared %d, before failing", got.Len(), tt.declared)
				}
				if tt.declared == 0 && got.Len() != 0 {
					t.Errorf("delivered %d bytes of an empty object", got.Len())
				}
				// The failure sticks.
				if n, err := c.Read(make([]byte, 10)); n != 0 || err == nil {
					t.Errorf("Read after failure = %d, %v; want 0 and the error", n, err)
				}
			})
		}
	}
}

func TestCheckedReaderStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkedReader{ctx: ctx, r: bytes.NewReader(make([]byte, 100)), left: 100}
	if _, err := c.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if n, err := c.Read(make([]byte, 10)); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancel = %d, %v; want 0, context.Canceled", n, err)
	}
}

func TestExpiresAt(t *testing.T) {
	for _, tt := range []struct {
		query string
		want  time.Time
		ok    bool
	}{
		{"X-Amz-Date=20260102T030405Z&X-Amz-Expires=900", time.Date(2026, 1, 2, 3, 19, 5, 0, time.UTC), true},
		{"X-Amz-Date=20261231T235959Z&X-Amz-Expires=1", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"X-Amz-Expires=900", time.Time{}, false},
		{"X-Amz-Date=2026-01-02&X-Amz-Expires=900", time.Time{}, false},
		{"X-Amz-Date=20260102T030405Z", time.Time{}, false},
		{"X-Amz-Date=20260102T030405Z&X-Amz-Expires=0", time.Time{}, false},
		{"X-Amz-Date=20260102T030405Z&X-Amz-Expires=x", time.Time{}, false},
	} {
		got, err := expiresAt(&url.URL{RawQuery: tt.query})
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("expiresAt(%q) = %v, %v; want %v, ok=%v", tt.query, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseEndpoint(t *testing.T) {
	for _, tt := range []struct {
		endpoint   string
		useSSL     bool
		host       string
		secure, ok bool
	}{
		{"127.0.0.1:7070", false, "127.0.0.1:7070", false, true},
		{"s3.amazonaws.com", true, "s3.amazonaws.com", true, true},
		{"http://127.0.0.1:7070", false, "127.0.0.1:7070", false, true},
		{"http://127.0.0.1:7070/", false, "127.0.0.1:7070", false, true},
		{"https://s3.eu-west-1.amazonaws.com", false, "s3.eu-west-1.amazonaws.com", true, true},
		{"https://s3.example.com:8443", true, "s3.example.com:8443", true, true},
		{"", false, "", false, false},
		{"http://127.0.0.1:7070", true, "", false, false}, // contradiction
		{"ftp://host", false, "", false, false},
		{"http://", false, "", false, false},
		{"http://host/bucket", false, "", false, false},
		{"http://user:pass@host", false, "", false, false},
		{"http://host?x=1", false, "", false, false},
		{"host/bucket", false, "", false, false},
		{"user@host", false, "", false, false},
	} {
		host, secure, err := parseEndpoint(tt.endpoint, tt.useSSL)
		if (err == nil) != tt.ok || host != tt.host || secure != tt.secure {
			t.Errorf("parseEndpoint(%q, %v) = %q, %v, %v; want %q, %v, ok=%v", tt.endpoint, tt.useSSL, host, secure, err, tt.host, tt.secure, tt.ok)
		}
		if err != nil && sentineldf.ErrorCode(err) != sentineldf.EINVALID {
			t.Errorf("parseEndpoint(%q) code %s, want %s", tt.endpoint, sentineldf.ErrorCode(err), sentineldf.EINVALID)
		}
	}
}
