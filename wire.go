package sentineldf

import (
	"encoding/json"
	"time"
)

// The request and response bodies of the HTTP API (api/, client/). They are
// the contract the OpenAPI document describes.

// CreateOrgRequest is POST /v1/admin/orgs.
type CreateOrgRequest struct {
	Name string `json:"name"`
	Plan string `json:"plan"`
}

// CreateOrgResponse returns the org and its first key, shown once.
type CreateOrgResponse struct {
	Org    *Org   `json:"org"`
	APIKey string `json:"api_key"`
}

// CreateKeyRequest is POST /v1/auth/keys.
type CreateKeyRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes,omitempty"`
}

// CreateKeyResponse returns the stored key and the secret, shown once.
type CreateKeyResponse struct {
	Key    *APIKey `json:"key"`
	APIKey string  `json:"api_key"`
}

// KeysResponse is GET /v1/auth/keys.
type KeysResponse struct {
	Keys []*APIKey `json:"keys"`
}

// WhoAmIResponse is GET /v1/auth/whoami.
type WhoAmIResponse struct {
	Org *Org    `json:"org"`
	Key *APIKey `json:"key"`
}

// FileSpec declares a file to upload.
type FileSpec struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
}

// UploadsRequest is POST /v1/uploads and the files of POST /v1/scan/async.
type UploadsRequest struct {
	Files []FileSpec `json:"files"`
}

// Upload is a presigned upload of one file.
type Upload struct {
	Name string `json:"name"`
	PresignedRequest
}

// UploadsResponse is POST /v1/uploads: a scan awaiting upload and its URLs.
type UploadsResponse struct {
	JobID   string   `json:"job_id"`
	Uploads []Upload `json:"uploads"`
}

// ScanDocument is one document of a synchronous scan.
type ScanDocument struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// SyncScanRequest is POST /v1/scan.
type SyncScanRequest struct {
	Documents []ScanDocument `json:"documents"`
}

// SyncScanResponse holds one result per document, in request order, each
// the same object as a line of `sentineldf scan --out`, and the summary.
type SyncScanResponse struct {
	Results []json.RawMessage `json:"results"`
	Summary SyncSummary       `json:"summary"`
}

// SyncSummary summarises a synchronous scan.
type SyncSummary struct {
	Documents int64  `json:"documents"`
	Counts    Counts `json:"counts"`
	CacheHits int64  `json:"cache_hits"`
	Engine    string `json:"engine"`
	Ruleset   string `json:"ruleset"`
}

// AsyncScanRequest is POST /v1/scan/async.
type AsyncScanRequest struct {
	Files       []FileSpec `json:"files"`
	Priority    string     `json:"priority,omitempty"` // "high" | "normal" | "low"; bounded by the plan
	CallbackURL string     `json:"callback_url,omitempty"`
}

// ResultURLs are presigned downloads of a finished scan's outputs.
type ResultURLs struct {
	ResultsURL    string `json:"results_url,omitempty"`
	CleanURL      string `json:"clean_url,omitempty"`
	QuarantineURL string `json:"quarantine_url,omitempty"`
	MBOMURL       string `json:"mbom_url,omitempty"`
	SummaryURL    string `json:"summary_url,omitempty"`
	MalformedURL  string `json:"malformed_url,omitempty"`
}

// ScanStatus is GET /v1/scan/status and the items of GET /v1/scans.
type ScanStatus struct {
	JobID      string      `json:"job_id"`
	State      string      `json:"state"`
	Progress   Progress    `json:"progress"`
	Counts     Counts      `json:"counts"`
	Malformed  int64       `json:"malformed"`
	CacheHits  int64       `json:"cache_hits"`
	Error      string      `json:"error,omitempty"`
	Files      []ScanFile  `json:"files,omitempty"`
	Results    *ResultURLs `json:"results,omitempty"`
	CreatedAt  time.Time   `json:"created_at"`
	FinishedAt *time.Time  `json:"finished_at,omitempty"`
}

// ScansResponse is GET /v1/scans.
type ScansResponse struct {
	Scans      []ScanStatus `json:"scans"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// UsageResponse is GET /v1/usage.
type UsageResponse struct {
	Plan   string       `json:"plan"`
	Period string       `json:"period"`
	Docs   int64        `json:"documents"`
	Bytes  int64        `json:"bytes"`
	Quota  *int64       `json:"quota"` // null: unlimited
	Remain *int64       `json:"quota_remaining"`
	Daily  []DailyUsage `json:"daily"`
}

// SignMBOMRequest is POST /v1/mbom.
type SignMBOMRequest struct {
	JobID      string `json:"job_id"`
	ApprovedBy string `json:"approved_by"`
}

// SignMBOMResponse returns the record and a download URL of the envelope.
type SignMBOMResponse struct {
	MBOM     *MBOMRecord     `json:"mbom"`
	Envelope json.RawMessage `json:"envelope"`
	URL      string          `json:"url"`
}

// VerifyMBOMRequest is POST /v1/mbom/verify: an envelope, checked against
// the org's public key (or PublicKey when given, PEM).
type VerifyMBOMRequest struct {
	Envelope  json.RawMessage `json:"envelope"`
	PublicKey string          `json:"public_key,omitempty"`
}

// VerifyMBOMResponse says whether the envelope verified and why not.
type VerifyMBOMResponse struct {
	Valid  bool   `json:"valid"`
	Reason string `json:"reason,omitempty"`
	KeyID  string `json:"key_id,omitempty"`
	ScanID string `json:"job_id,omitempty"`
}

// MBOMKeysResponse is GET /v1/mbom/keys.
type MBOMKeysResponse struct {
	Keys []*SigningKey `json:"keys"`
}

// CallbackPayload is the body POSTed to a scan's callback URL. The request
// carries the header SignatureHeader: "t={unix},v1={hex hmac}" where the
// HMAC-SHA256 (keyed by the org's callback secret) covers "{t}.{body}".
type CallbackPayload struct {
	Event  string     `json:"event"` // "scan.finished"
	Status ScanStatus `json:"scan"`
}

// SignatureHeader is the callback signature header.
const SignatureHeader = "SentinelDF-Signature"

// Problem is an RFC 9457 problem+json error body.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Code      string `json:"code"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Instance  string `json:"instance,omitempty"`
}
