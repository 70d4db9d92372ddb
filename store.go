package sentineldf

import (
	"context"
	"time"
)

// Store is the system of record: orgs, keys, scans and their shards, usage,
// MBOM records and the audit log. Implementations: sqlite (embedded) and
// postgres (distributed). Every method that reads or writes an org's
// objects takes the org id and scopes its query by it; an object of another
// org is ENOTFOUND, exactly like a missing one. The conformance suite in
// storetest pins the behaviour both implementations share.
//
// Methods that change a scan's state also enqueue the job that the new
// state needs, in the same transaction, so a state change and its job are
// never seen one without the other.
type Store interface {
	// CreateOrg creates org with its first API key and records the audit
	// event, in one transaction. ECONFLICT when an operator org already
	// exists and org.Operator is set.
	CreateOrg(ctx context.Context, org *Org, key *APIKey, ev AuditEvent) error
	// Org returns an org by id.
	Org(ctx context.Context, orgID string) (*Org, error)
	// OperatorOrg returns the operator org, or ENOTFOUND before the first
	// start created it.
	OperatorOrg(ctx context.Context) (*Org, error)

	// CreateAPIKey stores key (its Hash, never the secret) and the audit event.
	CreateAPIKey(ctx context.Context, key *APIKey, ev AuditEvent) error
	// LookupAPIKey finds a key by its public id, whatever its org: it is
	// the one unscoped query, used only to authenticate.
	LookupAPIKey(ctx context.Context, keyID string) (*APIKey, error)
	// APIKeys lists an org's keys, newest first.
	APIKeys(ctx context.Context, orgID string) ([]*APIKey, error)
	// RevokeAPIKey revokes one of the org's keys and records ev;
	// revoking a revoked key is a no-op that returns it.
	RevokeAPIKey(ctx context.Context, orgID, keyID string, ev AuditEvent) (*APIKey, error)
	// TouchAPIKey sets a key's last-used time.
	TouchAPIKey(ctx context.Context, orgID, keyID string, at time.Time) error

	// CreateScan stores a new scan (state awaiting_upload) with its files.
	CreateScan(ctx context.Context, s *Scan) error
	// Scan returns one of the org's scans with its files.
	Scan(ctx context.Context, orgID, scanID string) (*Scan, error)
	// Scans lists the org's scans, newest first, limit at a time; cursor is
	// "" for the first page and the returned next cursor after that ("" at
	// the end).
	Scans(ctx context.Context, orgID, cursor string, limit int) (scans []*Scan, next string, err error)
	// ConfirmScan moves a scan from awaiting_upload to queued, records the
	// files' actual sizes (all files are verified present by the caller) and
	// enqueues its PlanJob at the plan's priority. Confirming a queued or
	// later scan is ECONFLICT.
	ConfirmScan(ctx context.Context, orgID, scanID string, priority int) (*Scan, error)
	// StartScan moves a queued scan to running, stores its shards and
	// enqueues one ShardJob per shard, in one transaction. It is
	// idempotent: a scan that already has shards keeps them (a retried
	// PlanJob) and nothing is enqueued twice. ECONFLICT when the scan is
	// canceled or finished.
	StartScan(ctx context.Context, orgID, scanID string, shards []Shard, total Progress) error
	// Shards returns the scan's shards in index order.
	Shards(ctx context.Context, orgID, scanID string) ([]Shard, error)
	// CompleteShard records a shard's outcome and its usage exactly once:
	// completing a done shard again changes nothing and returns
	// recorded=false. The usage record (key "shard:{scan}:{index}") goes
	// in the same transaction, and the scan's progress advances. When the
	// last shard completes, the scan's FinalizeJob is enqueued, once.
	CompleteShard(ctx context.Context, sh Shard) (recorded, last bool, err error)
	// FinishScan moves a scan to a terminal state with its final counts
	// (errMsg for failed), and enqueues its CallbackJob when it has a
	// callback URL. A scan already terminal is left alone (returns false).
	FinishScan(ctx context.Context, orgID, scanID, state string, counts Counts, errMsg string) (bool, error)
	// CancelScan cancels a scan that is not terminal and records ev.
	// Canceling a terminal scan is ECONFLICT.
	CancelScan(ctx context.Context, orgID, scanID string, ev AuditEvent) (*Scan, error)

	// RecordUsage adds u unless its key was recorded before (then false).
	RecordUsage(ctx context.Context, u UsageRecord) (bool, error)
	// Usage sums the org's usage in [from, to) and per UTC day.
	Usage(ctx context.Context, orgID string, from, to time.Time) (docs, bytes int64, daily []DailyUsage, err error)

	// SigningKey returns the org's MBOM signing key, ENOTFOUND when none.
	SigningKey(ctx context.Context, orgID string) (*SigningKey, error)
	// PutSigningKey stores the org's signing key; ECONFLICT when one exists
	// (callers then read it: two concurrent first signings agree).
	PutSigningKey(ctx context.Context, k *SigningKey) error
	// CreateMBOM stores an MBOM record and its audit event.
	CreateMBOM(ctx context.Context, m *MBOMRecord, ev AuditEvent) error
	// MBOMs lists a scan's MBOM records, oldest first.
	MBOMs(ctx context.Context, orgID, scanID string) ([]*MBOMRecord, error)

	// AppendAudit records an audit event.
	AppendAudit(ctx context.Context, ev AuditEvent) error
	// AuditLog lists the org's audit events, newest first.
	AuditLog(ctx context.Context, orgID string, limit int) ([]AuditEvent, error)

	// Ping checks the store is reachable (readiness).
	Ping(ctx context.Context) error
}

// JobQueue is the admin's view of the job queue.
type JobQueue interface {
	// QueueDepth counts jobs waiting to run (available, scheduled, retryable).
	QueueDepth(ctx context.Context) (int64, error)
	// DeadJobs lists jobs discarded after their last attempt, newest first.
	DeadJobs(ctx context.Context, limit int) ([]DeadJob, error)
	// RetryJob makes a dead job available again.
	RetryJob(ctx context.Context, id int64) error
}

// DeadJob is a job that exhausted its attempts.
type DeadJob struct {
	ID          int64     `json:"id"`
	Kind        string    `json:"kind"`
	OrgID       string    `json:"org_id"`
	ScanID      string    `json:"scan_id"`
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"last_error"`
	FinalizedAt time.Time `json:"finalized_at"`
}

// Job arguments. Each is a River job (its Kind method); the Trace map
// carries the W3C trace context from the request that caused the job.

// PlanJob splits a confirmed scan into shards.
type PlanJob struct {
	OrgID  string            `json:"org_id"`
	ScanID string            `json:"scan_id"`
	Trace  map[string]string `json:"trace,omitempty"`
}

// Kind names the job.
func (PlanJob) Kind() string { return "scan_plan" }

// ShardJob scans one shard.
type ShardJob struct {
	OrgID  string            `json:"org_id"`
	ScanID string            `json:"scan_id"`
	Shard  int               `json:"shard"`
	Trace  map[string]string `json:"trace,omitempty"`
}

// Kind names the job.
func (ShardJob) Kind() string { return "scan_shard" }

// FinalizeJob merges a scan's shards, runs the dataset-level detectors and
// writes the results, splits and summary.
type FinalizeJob struct {
	OrgID  string            `json:"org_id"`
	ScanID string            `json:"scan_id"`
	Trace  map[string]string `json:"trace,omitempty"`
}

// Kind names the job.
func (FinalizeJob) Kind() string { return "scan_finalize" }

// CallbackJob notifies a scan's callback URL that it ended.
type CallbackJob struct {
	OrgID  string            `json:"org_id"`
	ScanID string            `json:"scan_id"`
	Trace  map[string]string `json:"trace,omitempty"`
}

// Kind names the job.
func (CallbackJob) Kind() string { return "scan_callback" }

// MaxJobAttempts is how many times a job runs before it is discarded to the
// dead-letter list.
const MaxJobAttempts = 5
