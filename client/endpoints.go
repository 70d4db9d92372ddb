package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/sentineldf/sentineldf"
)

// One method per endpoint of the API, in the order of its reference.

// CreateOrg creates an org and its first API key (POST /v1/admin/orgs; needs
// the admin scope). The key in the response is shown only this once.
func (c *Client) CreateOrg(ctx context.Context, req sentineldf.CreateOrgRequest) (*sentineldf.CreateOrgResponse, error) {
	var out sentineldf.CreateOrgResponse
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/admin/orgs", body: req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateKey creates an API key of the caller's org (POST /v1/auth/keys). The
// key in the response is shown only this once.
func (c *Client) CreateKey(ctx context.Context, req sentineldf.CreateKeyRequest) (*sentineldf.CreateKeyResponse, error) {
	var out sentineldf.CreateKeyResponse
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/auth/keys", body: req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListKeys lists the org's API keys, newest first (GET /v1/auth/keys).
func (c *Client) ListKeys(ctx context.Context) ([]*sentineldf.APIKey, error) {
	var out sentineldf.KeysResponse
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/auth/keys"}, &out); err != nil {
		return nil, err
	}
	return out.Keys, nil
}

// RevokeKey revokes one of the org's API keys and returns it
// (DELETE /v1/auth/keys/{id}).
func (c *Client) RevokeKey(ctx context.Context, keyID string) (*sentineldf.APIKey, error) {
	if err := checkID("key id", keyID); err != nil {
		return nil, err
	}
	var out struct {
		Key *sentineldf.APIKey `json:"key"`
	}
	if err := c.do(ctx, request{method: http.MethodDelete, path: "/v1/auth/keys/" + url.PathEscape(keyID)}, &out); err != nil {
		return nil, err
	}
	return out.Key, nil
}

// WhoAmI returns the caller's org and key (GET /v1/auth/whoami).
func (c *Client) WhoAmI(ctx context.Context) (*sentineldf.WhoAmIResponse, error) {
	var out sentineldf.WhoAmIResponse
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/auth/whoami"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateUploads creates a scan awaiting upload and returns a presigned
// upload per file (POST /v1/uploads).
func (c *Client) CreateUploads(ctx context.Context, req sentineldf.UploadsRequest) (*sentineldf.UploadsResponse, error) {
	var out sentineldf.UploadsResponse
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/uploads", body: req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Scan scans documents synchronously (POST /v1/scan; at most
// sentineldf.MaxSyncDocuments documents and sentineldf.MaxSyncBytes bytes).
func (c *Client) Scan(ctx context.Context, req sentineldf.SyncScanRequest) (*sentineldf.SyncScanResponse, error) {
	var out sentineldf.SyncScanResponse
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/scan", body: req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ScanAsync creates an asynchronous scan of files and returns its job id
// and a presigned upload per file (POST /v1/scan/async). Upload each file
// (UploadFile), then ConfirmScan. ScanFiles does all of it.
func (c *Client) ScanAsync(ctx context.Context, req sentineldf.AsyncScanRequest) (*sentineldf.UploadsResponse, error) {
	var out sentineldf.UploadsResponse
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/scan/async", body: req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ConfirmScan queues a scan whose files are all uploaded
// (POST /v1/scan/async/confirm).
func (c *Client) ConfirmScan(ctx context.Context, jobID string) (*sentineldf.ScanStatus, error) {
	if err := checkID("job id", jobID); err != nil {
		return nil, err
	}
	var out sentineldf.ScanStatus
	r := request{method: http.MethodPost, path: "/v1/scan/async/confirm", query: url.Values{"job_id": {jobID}}}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ScanStatus returns a scan's state and progress, and once it succeeded
// the presigned URLs of its outputs (GET /v1/scan/status).
func (c *Client) ScanStatus(ctx context.Context, jobID string) (*sentineldf.ScanStatus, error) {
	if err := checkID("job id", jobID); err != nil {
		return nil, err
	}
	var out sentineldf.ScanStatus
	r := request{method: http.MethodGet, path: "/v1/scan/status", query: url.Values{"job_id": {jobID}}}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListScans lists the org's scans, newest first, limit at a time (0: the
// server's default); cursor is "" for the first page and the previous
// page's NextCursor after that (GET /v1/scans).
func (c *Client) ListScans(ctx context.Context, limit int, cursor string) (*sentineldf.ScansResponse, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var out sentineldf.ScansResponse
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/scans", query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CancelScan cancels a scan that has not ended (POST /v1/scans/{id}/cancel).
func (c *Client) CancelScan(ctx context.Context, jobID string) (*sentineldf.ScanStatus, error) {
	if err := checkID("job id", jobID); err != nil {
		return nil, err
	}
	var out sentineldf.ScanStatus
	r := request{method: http.MethodPost, path: "/v1/scans/" + url.PathEscape(jobID) + "/cancel"}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Usage returns the org's usage in the current period (GET /v1/usage).
func (c *Client) Usage(ctx context.Context) (*sentineldf.UsageResponse, error) {
	var out sentineldf.UsageResponse
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/usage"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SignMBOM signs a succeeded scan's MBOM with the org's key (POST /v1/mbom).
func (c *Client) SignMBOM(ctx context.Context, req sentineldf.SignMBOMRequest) (*sentineldf.SignMBOMResponse, error) {
	var out sentineldf.SignMBOMResponse
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/mbom", body: req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// VerifyMBOM verifies an MBOM envelope (POST /v1/mbom/verify). An envelope
// that does not verify is not an error: the response says why.
func (c *Client) VerifyMBOM(ctx context.Context, req sentineldf.VerifyMBOMRequest) (*sentineldf.VerifyMBOMResponse, error) {
	var out sentineldf.VerifyMBOMResponse
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/mbom/verify", body: req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// MBOMKeys lists the org's MBOM signing keys, public parts only
// (GET /v1/mbom/keys).
func (c *Client) MBOMKeys(ctx context.Context) ([]*sentineldf.SigningKey, error) {
	var out sentineldf.MBOMKeysResponse
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/mbom/keys"}, &out); err != nil {
		return nil, err
	}
	return out.Keys, nil
}

// DeadJobs lists the jobs discarded after their last attempt, newest first
// (GET /v1/admin/jobs/dead; needs the admin scope).
func (c *Client) DeadJobs(ctx context.Context) ([]sentineldf.DeadJob, error) {
	var out struct {
		Jobs []sentineldf.DeadJob `json:"jobs"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/admin/jobs/dead"}, &out); err != nil {
		return nil, err
	}
	return out.Jobs, nil
}

// RetryJob makes a dead job available again
// (POST /v1/admin/jobs/{id}/retry; needs the admin scope).
func (c *Client) RetryJob(ctx context.Context, id int64) error {
	r := request{method: http.MethodPost, path: "/v1/admin/jobs/" + strconv.FormatInt(id, 10) + "/retry"}
	return c.do(ctx, r, nil)
}

// Health checks that the server is up (GET /health). It is not retried.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodGet, path: "/health", noAuth: true, noRetry: true}, nil)
}

// Ready checks that the server and its dependencies are ready to serve
// (GET /health/ready); a server that is not ready is an *Error with status
// 503. It is not retried.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodGet, path: "/health/ready", noAuth: true, noRetry: true}, nil)
}

// checkID rejects an empty id before a request is made.
func checkID(what, id string) error {
	if id == "" {
		return sentineldf.Errorf(sentineldf.EINVALID, "%s is empty", what)
	}
	return nil
}
