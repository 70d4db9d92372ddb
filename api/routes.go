package api

import (
	"net/http"

	"github.com/sentineldf/sentineldf"
)

// blobRoute is where Config.BlobHandler is mounted (localfs.PathPrefix).
const blobRoute = "/blobs/"

// catchAllRoute answers requests that match no route.
const catchAllRoute = "/"

// Body limits by route (others get Config.MaxBodyBytes).
const (
	// syncScanBodyLimit leaves room around sentineldf.MaxSyncBytes of text
	// for the JSON encoding: ids, quoting and escapes (an encoder that
	// escapes <, > and & writes each as six bytes). The text itself is
	// checked against MaxSyncBytes after decoding.
	syncScanBodyLimit = 2*sentineldf.MaxSyncBytes + 64<<10
	// verifyBodyLimit fits an envelope of a scan of many files.
	verifyBodyLimit = 1 << 20
)

// routes registers every route of the API on s.mux: this function is the
// API's table of contents, and the OpenAPI document lists the same routes
// (a test checks it).
func (s *Server) routes() {
	handle := func(pattern string, h http.Handler) {
		s.mux.Handle(pattern, h)
		s.patterns = append(s.patterns, pattern)
	}

	// Health, metrics and documentation: no key, no rate limit.
	handle("GET /health", http.HandlerFunc(s.health))
	handle("GET /health/ready", http.HandlerFunc(s.ready))
	handle("GET /metrics", http.HandlerFunc(s.serveMetrics))
	handle("GET /openapi.json", http.HandlerFunc(s.openAPI))
	handle("GET /docs", http.HandlerFunc(s.docs))

	// Operator administration.
	handle("POST /v1/admin/orgs", s.auth(sentineldf.ScopeAdmin, s.createOrg))
	handle("GET /v1/admin/jobs/dead", s.auth(sentineldf.ScopeAdmin, s.deadJobs))
	handle("POST /v1/admin/jobs/{id}/retry", s.auth(sentineldf.ScopeAdmin, s.retryJob))

	// API keys.
	handle("POST /v1/auth/keys", s.auth(sentineldf.ScopeKeysAdmin, s.createKey))
	handle("GET /v1/auth/keys", s.auth(sentineldf.ScopeKeysAdmin, s.listKeys))
	handle("DELETE /v1/auth/keys/{id}", s.auth(sentineldf.ScopeKeysAdmin, s.revokeKey))
	handle("GET /v1/auth/whoami", s.auth("", s.whoAmI))
	handle("GET /v1/auth/callback-secret", s.auth(sentineldf.ScopeKeysAdmin, s.callbackSecret))

	// Scans.
	handle("POST /v1/uploads", s.auth(sentineldf.ScopeScanWrite, s.createUploads))
	handle("POST /v1/scan", s.auth(sentineldf.ScopeScanWrite, s.syncScan))
	handle("POST /v1/scan/async", s.auth(sentineldf.ScopeScanWrite, s.asyncScan))
	handle("POST /v1/scan/async/confirm", s.auth(sentineldf.ScopeScanWrite, s.confirmScan))
	handle("GET /v1/scan/status", s.auth(sentineldf.ScopeScanRead, s.scanStatus))
	handle("GET /v1/scans", s.auth(sentineldf.ScopeScanRead, s.listScans))
	handle("POST /v1/scans/{id}/cancel", s.auth(sentineldf.ScopeScanWrite, s.cancelScan))

	// Usage.
	handle("GET /v1/usage", s.auth(sentineldf.ScopeUsageRead, s.usage))

	// MBOMs.
	handle("POST /v1/mbom", s.auth(sentineldf.ScopeMBOMSign, s.signMBOM))
	handle("POST /v1/mbom/verify", s.auth(sentineldf.ScopeScanRead, s.verifyMBOM))
	handle("GET /v1/mbom/keys", s.auth(sentineldf.ScopeScanRead, s.mbomKeys))

	// Not API routes, so not in s.patterns nor the OpenAPI document:
	// presigned blob URLs (the blob store's own protocol) and the
	// problem+json 404/405 for everything else.
	if s.cfg.BlobHandler != nil {
		s.mux.Handle(blobRoute, s.cfg.BlobHandler)
	}
	s.mux.Handle(catchAllRoute, http.HandlerFunc(s.notFound))
}

// bodyLimitOf returns the request body limit of route.
func (s *Server) bodyLimitOf(route string) int64 {
	switch route {
	case "POST /v1/scan":
		return syncScanBodyLimit
	case "POST /v1/mbom/verify":
		return max(verifyBodyLimit, s.cfg.MaxBodyBytes)
	}
	return s.cfg.MaxBodyBytes
}
