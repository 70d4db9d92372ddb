// Package client is the Go SDK of the SentinelDF API.
//
// A Client has one typed method per endpoint, taking and returning the
// request and response types of the root package (wire.go). It retries
// rate-limited (429), unavailable (502, 503, 504) and failed (network)
// requests with exponential backoff and jitter, honouring Retry-After, and
// sends an Idempotency-Key on every POST so that a retried POST is applied
// once. ScanFiles runs the whole asynchronous flow: it hashes local files,
// creates a scan, uploads the files to their presigned URLs, confirms the
// scan and waits for it; the returned ScanResult downloads the outputs.
//
// The client never logs and never puts the API key in an error message.
package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sentineldf/sentineldf"
)

// Defaults of the options.
const (
	// DefaultMaxRetries is how many times a failed request is retried.
	DefaultMaxRetries = 4
	// DefaultRetryBaseDelay is the backoff before the first retry; it
	// doubles with every retry, with jitter, up to DefaultMaxRetryDelay.
	DefaultRetryBaseDelay = 250 * time.Millisecond
	// DefaultMaxRetryDelay caps the exponential backoff.
	DefaultMaxRetryDelay = 30 * time.Second
	// DefaultMaxRetryAfter is the longest Retry-After the client waits; a
	// longer one (an exhausted quota, say) returns the error instead.
	DefaultMaxRetryAfter = 2 * time.Minute
	// DefaultRequestTimeout bounds one attempt of an API call (not uploads
	// or downloads, which are bounded by their context only).
	DefaultRequestTimeout = 60 * time.Second
	// DefaultUserAgent is sent when WithUserAgent is not given.
	DefaultUserAgent = "sentineldf-go"
)

const (
	// maxResponseBytes caps a JSON response body.
	maxResponseBytes = 64 << 20
	// maxErrorBytes caps an error response body.
	maxErrorBytes = 64 << 10
	// maxIdempotencyKey is the longest Idempotency-Key accepted.
	maxIdempotencyKey = 255
)

// Client calls the SentinelDF API. It is safe for concurrent use.
type Client struct {
	base           string // scheme://host[/prefix], no trailing slash
	baseURL        *url.URL
	apiKey         string
	hc             *http.Client
	userAgent      string
	maxRetries     int
	retryBase      time.Duration
	retryMax       time.Duration
	maxRetryAfter  time.Duration
	requestTimeout time.Duration
	allowHTTP      bool
	// sleep waits d or until ctx ends; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: one with http.DefaultTransport
// and no overall timeout; attempts are bounded by WithRequestTimeout).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithMaxRetries sets how many times a failed request is retried (0: never).
func WithMaxRetries(n int) Option { return func(c *Client) { c.maxRetries = max(n, 0) } }

// WithRetryBaseDelay sets the backoff before the first retry; later retries
// double it, with jitter, up to WithMaxRetryDelay.
func WithRetryBaseDelay(d time.Duration) Option { return func(c *Client) { c.retryBase = d } }

// WithMaxRetryDelay caps the exponential backoff between retries.
func WithMaxRetryDelay(d time.Duration) Option { return func(c *Client) { c.retryMax = d } }

// WithMaxRetryAfter sets the longest Retry-After the client waits before
// retrying; a response asking for a longer wait is returned as an error.
func WithMaxRetryAfter(d time.Duration) Option { return func(c *Client) { c.maxRetryAfter = d } }

// WithRequestTimeout bounds each attempt of an API call (0: no bound but
// the context's). Uploads and downloads are not bounded by it.
func WithRequestTimeout(d time.Duration) Option { return func(c *Client) { c.requestTimeout = d } }

// WithInsecureHTTP allows a plain-HTTP base URL on a host other than
// loopback. Without it New refuses one, because the API key would cross
// the network in clear text.
func WithInsecureHTTP() Option { return func(c *Client) { c.allowHTTP = true } }

// New returns a client of the API at baseURL (for example
// "http://127.0.0.1:8080" or "https://api.example.com") that authenticates
// with apiKey ("sdf_live_…"; "" for the unauthenticated health endpoints).
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		return nil, sentineldf.Errorf(sentineldf.EINVALID, "API URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, sentineldf.Errorf(sentineldf.EINVALID, "API URL %q: must be http:// or https:// with a host", baseURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, sentineldf.Errorf(sentineldf.EINVALID, "API URL: must not have user info, a query or a fragment")
	}
	for _, r := range apiKey {
		if r <= ' ' || r >= 0x7f {
			return nil, sentineldf.Errorf(sentineldf.EINVALID, "API key: contains a character that is not printable ASCII")
		}
	}
	c := &Client{
		apiKey:         apiKey,
		hc:             &http.Client{},
		userAgent:      DefaultUserAgent,
		maxRetries:     DefaultMaxRetries,
		retryBase:      DefaultRetryBaseDelay,
		retryMax:       DefaultMaxRetryDelay,
		maxRetryAfter:  DefaultMaxRetryAfter,
		requestTimeout: DefaultRequestTimeout,
		sleep:          sleepCtx,
	}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if u.Scheme == "http" && apiKey != "" && !c.allowHTTP && !isLoopback(u.Hostname()) {
		return nil, sentineldf.Errorf(sentineldf.EINVALID,
			"API URL %s: plain HTTP to a non-loopback host would send the API key in clear text; use https (or allow it explicitly)", u.Redacted())
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c.baseURL = u
	c.base = u.String()
	return c, nil
}

// BaseURL returns the API's base URL.
func (c *Client) BaseURL() string { return c.base }

// String describes the client without its API key.
func (c *Client) String() string { return "client.Client{" + c.base + "}" }

// GoString describes the client without its API key (for %#v).
func (c *Client) GoString() string { return c.String() }

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Error is an error response of the API: its HTTP status and its
// problem+json body.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Problem is the decoded body; for a body that is not problem+json
	// (a proxy's error page) it is synthesised from the status.
	Problem sentineldf.Problem
	// RequestID is the response's X-Request-Id, to quote to support.
	RequestID string
	// RetryAfter is the response's Retry-After, when it had one.
	RetryAfter time.Duration
}

// Error describes the problem, its code, status and request id.
func (e *Error) Error() string {
	msg := e.Problem.Detail
	if msg == "" {
		msg = e.Problem.Title
	}
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if f := e.Problem.Field; f != "" && !strings.HasPrefix(msg, f+":") {
		msg = f + ": " + msg
	}
	s := fmt.Sprintf("%s: %s (HTTP %d", e.Code(), msg, e.Status)
	if e.RequestID != "" {
		s += ", request " + e.RequestID
	}
	return s + ")"
}

// Code returns the problem's stable code (sentineldf.ENOTFOUND…), derived
// from the status when the body had none.
func (e *Error) Code() string {
	if e.Problem.Code != "" {
		return e.Problem.Code
	}
	return codeForStatus(e.Status)
}

// IsCode reports whether err is, or wraps, an API *Error or a
// *sentineldf.Error with the given code.
func IsCode(err error, code string) bool {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Code() == code
	}
	var de *sentineldf.Error
	if errors.As(err, &de) {
		return de.Code == code
	}
	return false
}

func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return sentineldf.EINVALID
	case http.StatusUnauthorized:
		return sentineldf.EUNAUTHORIZED
	case http.StatusForbidden:
		return sentineldf.EFORBIDDEN
	case http.StatusNotFound, http.StatusGone:
		return sentineldf.ENOTFOUND
	case http.StatusConflict:
		return sentineldf.ECONFLICT
	case http.StatusRequestEntityTooLarge:
		return sentineldf.ETOOLARGE
	case http.StatusTooManyRequests:
		return sentineldf.ERATELIMITED
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return sentineldf.EUNAVAILABLE
	}
	return sentineldf.EINTERNAL
}

// ctxKey is the type of the context keys of this package.
type ctxKey int

const idempotencyKeyCtx ctxKey = iota

// WithIdempotencyKey returns a context whose next POST uses key as its
// Idempotency-Key instead of a fresh random one: repeating a call with the
// same key and body (after a crash, say) replays the first response rather
// than acting twice. Use a context derived for one call only: a second,
// different POST with the same key is rejected (sentineldf.EIDEMPOTENCY).
// An empty key restores the default, a fresh key per call.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKeyCtx, key)
}

// idempotencyKey returns the context's key or a fresh random one.
func idempotencyKey(ctx context.Context) (string, error) {
	if k, _ := ctx.Value(idempotencyKeyCtx).(string); k != "" {
		if len(k) > maxIdempotencyKey {
			return "", sentineldf.Errorf(sentineldf.EINVALID, "idempotency key: longer than %d bytes", maxIdempotencyKey)
		}
		for _, r := range k {
			if r <= ' ' || r >= 0x7f {
				return "", sentineldf.Errorf(sentineldf.EINVALID, "idempotency key: must be printable ASCII without spaces")
			}
		}
		return k, nil
	}
	return crand.Text(), nil
}

// request is one logical API call.
type request struct {
	method string
	path   string // escaped, starting with "/"
	query  url.Values
	body   any // JSON-encoded; nil for none
	// noAuth omits the Authorization header.
	noAuth bool
	// noRetry disables retries (health probes want the first answer).
	noRetry bool
}

// do performs an API call with retries and decodes a 2xx JSON response into
// out (when not nil).
func (c *Client) do(ctx context.Context, r request, out any) error {
	var body []byte
	if r.body != nil {
		var err error
		if body, err = json.Marshal(r.body); err != nil {
			return fmt.Errorf("%s %s: encode request: %w", r.method, r.path, err)
		}
	}
	target := c.base + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var key string
	if r.method == http.MethodPost {
		var err error
		if key, err = idempotencyKey(ctx); err != nil {
			return fmt.Errorf("%s %s: %w", r.method, r.path, err)
		}
	}
	// A POST is retried only because it carries an Idempotency-Key, which
	// it always does; the other methods the client uses are idempotent.
	retriable := !r.noRetry && (r.method != http.MethodPost || key != "")
	for attempt := 0; ; attempt++ {
		err := c.attempt(ctx, r, target, body, key, out)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", r.method, r.path, context.Cause(ctx))
		}
		wait, ok := c.retryWait(ctx, err, attempt, retriable)
		if !ok {
			return wrapCall(r.method, r.path, err)
		}
		if err := c.sleep(ctx, wait); err != nil {
			return fmt.Errorf("%s %s: %w", r.method, r.path, err)
		}
	}
}

// wrapCall adds the call to a network error; API errors are returned as
// they are, since they carry their own context.
func wrapCall(method, path string, err error) error {
	var ae *Error
	if errors.As(err, &ae) {
		return err
	}
	return fmt.Errorf("%s %s: %w", method, path, err)
}

// attempt makes one request and decodes its response.
func (c *Client) attempt(ctx context.Context, r request, target string, body []byte, key string, out any) error {
	if c.requestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.requestTimeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, rd)
	if err != nil {
		return permanent(fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if c.apiKey != "" && !r.noAuth {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return redactURLError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return responseError(resp)
	}
	if out == nil {
		_, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
		return err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if len(data) > maxResponseBytes {
		return sentineldf.Errorf(sentineldf.ETOOLARGE, "response larger than %d bytes", maxResponseBytes)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return permanent(fmt.Errorf("decode response (HTTP %d, request %s): %w", resp.StatusCode, resp.Header.Get("X-Request-Id"), err))
	}
	return nil
}

// permanentError marks a failure that a retry does not fix: a response
// that is not the expected JSON, a local file or destination that fails.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// permanent marks err as not worth retrying.
func permanent(err error) error { return &permanentError{err} }

// responseError turns a non-2xx response into an *Error.
func responseError(resp *http.Response) *Error {
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	ct := strings.ToLower(resp.Header.Get("Content-Type"))
	if strings.Contains(ct, "json") {
		var p sentineldf.Problem
		if json.Unmarshal(data, &p) == nil {
			e.Problem = p
		}
	}
	if e.Problem.Status == 0 {
		e.Problem.Status = resp.StatusCode
	}
	if e.Problem.Title == "" {
		e.Problem.Title = http.StatusText(resp.StatusCode)
	}
	if e.Problem.Code == "" {
		e.Problem.Code = codeForStatus(resp.StatusCode)
	}
	if e.RequestID == "" {
		e.RequestID = e.Problem.RequestID
	}
	return e
}

// parseRetryAfter reads a Retry-After value: delay seconds (fractions
// tolerated) or an HTTP date. It returns 0 when absent or malformed.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 || s > 1e6 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// retryWait decides whether the failed attempt is retried and after how
// long.
func (c *Client) retryWait(ctx context.Context, err error, attempt int, retriable bool) (time.Duration, bool) {
	if !retriable || attempt >= c.maxRetries {
		return 0, false
	}
	var pe *permanentError
	if errors.As(err, &pe) {
		return 0, false
	}
	var ae *Error
	wait := c.backoff(attempt)
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		default:
			return 0, false
		}
		if ae.Code() == sentineldf.EQUOTA {
			return 0, false // the quota does not come back by retrying
		}
		if ae.RetryAfter > 0 {
			if ae.RetryAfter > c.maxRetryAfter {
				return 0, false
			}
			wait = ae.RetryAfter
		}
	} else {
		var se *sentineldf.Error
		if errors.As(err, &se) {
			return 0, false // a local error: retrying changes nothing
		}
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		return 0, false // the answer would come too late anyway
	}
	return wait, true
}

// backoff is the exponential backoff with jitter before retry attempt+1:
// a random duration in [d/2, d] where d = base·2^attempt, capped.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.retryBase
	for i := 0; i < attempt && d < c.retryMax; i++ {
		d *= 2
	}
	d = min(d, c.retryMax)
	if d <= 1 {
		return max(d, 0)
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// redactURLError strips the query (a presigned URL's signature) from the
// URL that the HTTP client puts in its errors.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = redactURL(ue.URL)
	}
	return err
}

// redactURL returns raw without its query, user info and fragment.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(url)"
	}
	u.User, u.RawQuery, u.Fragment, u.RawFragment = nil, "", "", ""
	return u.String()
}

// resolve makes a URL returned by the API absolute against the base URL.
func (c *Client) resolve(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", sentineldf.Errorf(sentineldf.EINVALID, "malformed URL %s", redactURL(raw))
	}
	if !u.IsAbs() {
		u = c.baseURL.ResolveReference(u)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", sentineldf.Errorf(sentineldf.EINVALID, "URL %s: not http or https", redactURL(raw))
	}
	return u.String(), nil
}
