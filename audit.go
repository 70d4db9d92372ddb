package sentineldf

import "time"

// Audit actions.
const (
	AuditOrgCreated   = "org.created"
	AuditKeyCreated   = "key.created"
	AuditKeyRevoked   = "key.revoked"
	AuditMBOMSigned   = "mbom.signed"
	AuditScanCanceled = "scan.canceled"
	AuditJobRetried   = "admin.job_retried"
)

// AuditEvent is one security-relevant action. Details never hold secrets.
type AuditEvent struct {
	ID     int64  `json:"id"`
	OrgID  string `json:"org_id"`
	Action string `json:"action"`
	// Actor is the API key id that acted ("system" for the service itself).
	Actor     string            `json:"actor"`
	Target    string            `json:"target,omitempty"`
	Details   map[string]string `json:"details,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	At        time.Time         `json:"at"`
}
