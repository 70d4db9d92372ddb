package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/riverqueue/river"

	"github.com/sentineldf/sentineldf"
)

// callback notifies the scan's callback URL that the scan ended.
func (w *Worker) callback(ctx context.Context, org, scanID string) error {
	sc, err := w.cfg.Store.Scan(ctx, org, scanID)
	if sentineldf.ErrorCode(err) == sentineldf.ENOTFOUND {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load scan: %w", err)
	}
	if sc.CallbackURL == "" {
		return nil
	}
	u, err := url.Parse(sc.CallbackURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		// No retry can fix the URL: cancel the job rather than retry it.
		return river.JobCancel(fmt.Errorf("callback URL is not an absolute http(s) URL"))
	}
	body, err := json.Marshal(sentineldf.CallbackPayload{Event: "scan.finished", Status: statusOf(sc)})
	if err != nil {
		return fmt.Errorf("encode callback: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, CallbackTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return river.JobCancel(fmt.Errorf("callback request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sentineldf-callback/"+w.cfg.Version)
	req.Header.Set(sentineldf.SignatureHeader,
		sentineldf.SignCallback(sentineldf.CallbackSecret(w.cfg.Secret, org), w.now().Unix(), body))
	resp, err := w.client.Do(req)
	if err != nil {
		// A *url.Error quotes the whole URL, whose query may hold a
		// secret of the receiver's: name the host only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("callback to %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("callback: %s answered %s", u.Host, resp.Status)
	}
	w.log.InfoContext(ctx, "callback delivered", "scan_id", scanID, "status", resp.StatusCode)
	return nil
}

// statusOf is a scan's status as the API reports it, without result URLs.
func statusOf(sc *sentineldf.Scan) sentineldf.ScanStatus {
	return sentineldf.ScanStatus{
		JobID: sc.ID, State: sc.State, Progress: sc.Progress, Counts: sc.Counts,
		Malformed: sc.Malformed, CacheHits: sc.CacheHits, Error: sc.Error, Files: sc.Files,
		CreatedAt: sc.CreatedAt, FinishedAt: sc.FinishedAt,
	}
}

// newCallbackClient returns the client that sends callbacks: no proxy, no
// redirects, and unless allowPrivate a dialer that refuses non-public
// addresses after name resolution (so a name that resolves to 127.0.0.1 is
// refused too).
func newCallbackClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = guardDial
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: CallbackTimeout,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       CallbackTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// guardDial is a net.Dialer Control function that refuses connections to
// addresses that are not public unicast.
func guardDial(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("callback destination %q: %w", address, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("callback destination %q: %w", address, err)
	}
	if !publicAddr(ip) {
		return fmt.Errorf("callback destination %s is not allowed: not a public address", ip)
	}
	return nil
}

// nonPublic are ranges that IsPrivate and friends do not cover.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64 (embeds IPv4)
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4 (embeds IPv4)
}

func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}
