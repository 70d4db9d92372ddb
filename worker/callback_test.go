package worker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/sentineldf/sentineldf"
)

// hook is a callback receiver that answers with the statuses given, in
// turn, and records what it got.
type hook struct {
	mu       sync.Mutex
	statuses []int
	bodies   [][]byte
	sigs     []string
	types    []string
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bodies = append(h.bodies, b)
	h.sigs = append(h.sigs, r.Header.Get(sentineldf.SignatureHeader))
	h.types = append(h.types, r.Method+" "+r.Header.Get("Content-Type"))
	status := http.StatusOK
	if len(h.statuses) > 0 {
		status, h.statuses = h.statuses[0], h.statuses[1:]
	}
	w.WriteHeader(status)
}

func (h *hook) calls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.bodies)
}

func callbackHarness(t *testing.T, url string, allowPrivate bool) *harness {
	now := time.Unix(1750000000, 0)
	h := newHarness(t, nil, func(c *Config) {
		c.AllowPrivateCallbacks = allowPrivate
		c.Now = func() time.Time { return now }
	})
	h.store.mu.Lock()
	sc := h.store.scans[skey(testOrg, testScan)]
	fin := now.Add(-time.Minute).UTC()
	sc.State, sc.CallbackURL, sc.FinishedAt = sentineldf.StateSucceeded, url, &fin
	sc.Counts = sentineldf.Counts{Clean: 7, Elevated: 2, Quarantine: 1}
	h.store.mu.Unlock()
	return h
}

func TestCallbackSignedAndRetried(t *testing.T) {
	rcv := &hook{statuses: []int{http.StatusInternalServerError, http.StatusOK}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	h := callbackHarness(t, srv.URL+"/hooks/sdf", true)
	ctx := context.Background()
	if err := h.callback(ctx); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("callback answered 500: got %v, want an error for River to retry", err)
	}
	if err := h.callback(ctx); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if rcv.calls() != 2 {
		t.Fatalf("%d requests, want 2", rcv.calls())
	}
	body, sig := rcv.bodies[1], rcv.sigs[1]
	secret := sentineldf.CallbackSecret([]byte("server secret"), testOrg)
	if want := sentineldf.SignCallback(secret, 1750000000, body); !sentineldf.ConstantTimeEqual(sig, want) {
		t.Errorf("signature %q, want %q", sig, want)
	}
	if other := sentineldf.SignCallback(sentineldf.CallbackSecret([]byte("server secret"), "org_b"), 1750000000, body); sig == other {
		t.Error("signature does not depend on the org")
	}
	if rcv.types[1] != "POST application/json" {
		t.Errorf("request %q", rcv.types[1])
	}
	var p sentineldf.CallbackPayload
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Event != "scan.finished" || p.Status.JobID != testScan || p.Status.State != sentineldf.StateSucceeded ||
		p.Status.Counts.Quarantine != 1 || p.Status.Results != nil || p.Status.FinishedAt == nil {
		t.Errorf("payload %+v", p)
	}
	if strings.Contains(string(body), "callback_url") {
		t.Error("payload carries the callback URL")
	}
}

func TestCallbackRefusesPrivateDestinations(t *testing.T) {
	rcv := &hook{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	h := callbackHarness(t, srv.URL, false)
	err := h.callback(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("callback to %s: %v, want refused", srv.URL, err)
	}
	if rcv.calls() != 0 {
		t.Error("the request reached a loopback server")
	}
}

func TestCallbackEdgeCases(t *testing.T) {
	tests := []struct {
		url    string
		cancel bool // the job is canceled, not retried
	}{
		{"", false},
		{"ftp://example.com/x", true},
		{"not a url", true},
		{"http://", true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			h := callbackHarness(t, tt.url, true)
			err := h.callback(context.Background())
			var ce *rivertype.JobCancelError
			if tt.cancel != errors.As(err, &ce) || !tt.cancel && err != nil {
				t.Errorf("callback(%q) = %v, want canceled %v", tt.url, err, tt.cancel)
			}
		})
	}
}

func TestPublicAddr(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"93.184.216.34", true},
		{"2606:4700::1111", true},
		{"127.0.0.1", false},
		{"::1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"fe80::1", false},
		{"fc00::1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"100.64.0.1", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"64:ff9b::a00:1", false},
		{"224.0.0.1", false},
		{"255.255.255.255", false},
	} {
		if got := publicAddr(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("publicAddr(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
	if err := guardDial("tcp", "127.0.0.1:80", nil); err == nil {
		t.Error("guardDial allowed loopback")
	}
	if err := guardDial("tcp", "93.184.216.34:443", nil); err != nil {
		t.Errorf("guardDial refused a public address: %v", err)
	}
}
