package sentineldf

import (
	"path"
	"strings"
	"time"
)

// Scan states.
const (
	StateAwaitingUpload = "awaiting_upload"
	StateQueued         = "queued"
	StateRunning        = "running"
	StateSucceeded      = "succeeded"
	StateFailed         = "failed"
	StateCanceled       = "canceled"
)

// Terminal reports whether state is final.
func Terminal(state string) bool {
	return state == StateSucceeded || state == StateFailed || state == StateCanceled
}

// Limits on async scans.
const (
	MaxFilesPerScan = 100
	// MaxUploadBytes caps one uploaded file (5 GiB, S3's single-PUT limit).
	MaxUploadBytes = 5 << 30
	// MaxSyncDocuments and MaxSyncBytes cap POST /v1/scan.
	MaxSyncDocuments = 1000
	MaxSyncBytes     = 1 << 20
)

// Scan is an async scan job and its outcome.
type Scan struct {
	ID          string     `json:"id"`
	OrgID       string     `json:"org_id"`
	State       string     `json:"state"`
	Priority    int        `json:"priority"`
	CallbackURL string     `json:"callback_url,omitempty"`
	Files       []ScanFile `json:"files"`
	Progress    Progress   `json:"progress"`
	Counts      Counts     `json:"counts"`
	// CacheHits is how many documents' results came from the result cache.
	CacheHits int64 `json:"cache_hits"`
	// Malformed counts records that could not be read (reported in the
	// results' malformed report).
	Malformed int64 `json:"malformed"`
	// Error is the reason of a failed scan, safe to show.
	Error string `json:"error,omitempty"`
	// CreatedBy is the API key id that created the scan.
	CreatedBy string `json:"created_by,omitempty"`
	// Trace is the W3C trace context of the request that created it,
	// carried into its jobs.
	Trace      map[string]string `json:"-"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
	StartedAt  *time.Time        `json:"started_at,omitempty"`
	FinishedAt *time.Time        `json:"finished_at,omitempty"`
}

// ScanFile is one input file of a scan.
type ScanFile struct {
	// Index is the file's position in the scan (0-based).
	Index int    `json:"index"`
	Name  string `json:"name"`
	// Size is the declared size in bytes; the upload must match it.
	Size int64 `json:"size"`
	// SHA256 is the declared hex digest ("" when not declared); when set
	// the upload must match it.
	SHA256 string `json:"sha256,omitempty"`
	// Uploaded is set once the object is stored and verified.
	Uploaded bool `json:"uploaded"`
}

// Progress is how far a scan is.
type Progress struct {
	DocsDone   int64 `json:"docs_done"`
	DocsTotal  int64 `json:"docs_total"`
	BytesDone  int64 `json:"bytes_done"`
	BytesTotal int64 `json:"bytes_total"`
}

// Counts are documents per band.
type Counts struct {
	Clean      int64 `json:"clean"`
	Elevated   int64 `json:"elevated"`
	Quarantine int64 `json:"quarantine"`
}

// Add returns c + o.
func (c Counts) Add(o Counts) Counts {
	return Counts{c.Clean + o.Clean, c.Elevated + o.Elevated, c.Quarantine + o.Quarantine}
}

// Total is the number of documents counted.
func (c Counts) Total() int64 { return c.Clean + c.Elevated + c.Quarantine }

// Shard is a byte range of one file of a scan, scanned by one job. Shards
// end on record boundaries.
type Shard struct {
	ScanID string `json:"scan_id"`
	OrgID  string `json:"org_id"`
	// Index orders the shards of a scan: by file, then by offset.
	Index     int   `json:"index"`
	FileIndex int   `json:"file_index"`
	Offset    int64 `json:"offset"`
	Length    int64 `json:"length"`
	// FirstLine is the 1-based line number at Offset.
	FirstLine int64 `json:"first_line"`
	// Done is set, with the fields below, when the shard's results are
	// stored; a shard is completed at most once.
	Done      bool   `json:"done"`
	Docs      int64  `json:"docs"`
	Bytes     int64  `json:"bytes"`
	Counts    Counts `json:"counts"`
	CacheHits int64  `json:"cache_hits"`
	Malformed int64  `json:"malformed"`
}

// ValidateFileName checks a file name of a scan: a relative slash path
// without "..", at most 255 bytes, without control characters. The name
// becomes part of an object key, so this is a security check.
func ValidateFileName(name string) error {
	if name == "" || len(name) > 255 {
		return FieldError("files.name", "must be 1 to 255 bytes")
	}
	if strings.HasPrefix(name, "/") || path.Clean(name) != name || name == "." {
		return FieldError("files.name", "%q must be a clean relative path", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return FieldError("files.name", "%q must not contain ..", name)
		}
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return FieldError("files.name", "%q contains a forbidden character", name)
		}
	}
	return nil
}

// Object keys. Every object of a scan lives under ScanPrefix, so tenant
// isolation in storage is a prefix check.

// ScanPrefix is "{org}/{scan}/".
func ScanPrefix(orgID, scanID string) string { return orgID + "/" + scanID + "/" }

// InputKey is the object key of a scan's input file.
func InputKey(orgID, scanID string, fileIndex int, name string) string {
	return ScanPrefix(orgID, scanID) + "input/" + itoa(fileIndex) + "/" + name
}

// ShardResultsKey is the object key of a shard's results.
func ShardResultsKey(orgID, scanID string, shard int) string {
	return ScanPrefix(orgID, scanID) + "shards/" + itoa(shard) + ".jsonl"
}

// Result object names under ScanPrefix + "results/".
const (
	ResultsObject    = "results.jsonl"
	CleanObject      = "clean"
	QuarantineObject = "quarantine"
	SummaryObject    = "summary.json"
	MalformedObject  = "malformed.jsonl"
	MBOMObject       = "mbom.dsse.json"
)

// ResultKey is the object key of one of a scan's result objects.
func ResultKey(orgID, scanID, object string) string {
	return ScanPrefix(orgID, scanID) + "results/" + object
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	neg := i < 0
	if neg {
		i = -i
	}
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	if neg {
		n--
		b[n] = '-'
	}
	return string(b[n:])
}

// UsageRecord counts documents and bytes scanned for an org. Key makes it
// idempotent: recording the same key twice counts once (a retried shard,
// a replayed sync request).
type UsageRecord struct {
	OrgID string    `json:"org_id"`
	Key   string    `json:"key"`
	Docs  int64     `json:"documents"`
	Bytes int64     `json:"bytes"`
	At    time.Time `json:"at"`
}

// DailyUsage is an org's usage on one UTC day.
type DailyUsage struct {
	Date  string `json:"date"` // 2006-01-02
	Docs  int64  `json:"documents"`
	Bytes int64  `json:"bytes"`
}

// MBOMRecord is a signed MBOM of a scan.
type MBOMRecord struct {
	ID         string    `json:"id"`
	OrgID      string    `json:"org_id"`
	ScanID     string    `json:"scan_id"`
	ApprovedBy string    `json:"approved_by"`
	KeyID      string    `json:"key_id"` // the signing key's fingerprint
	Digest     string    `json:"digest"` // SHA-256 of the envelope
	ObjectKey  string    `json:"-"`
	CreatedAt  time.Time `json:"created_at"`
}

// SigningKey is an org's MBOM signing key pair. The private key is stored
// encrypted at rest by the Store's owner (see Store.SigningKey).
type SigningKey struct {
	OrgID string `json:"org_id"`
	// KeyID is the hex SHA-256 fingerprint of the public key.
	KeyID      string    `json:"key_id"`
	PublicPEM  string    `json:"public_key"`
	PrivatePEM []byte    `json:"-"`
	CreatedAt  time.Time `json:"created_at"`
}
