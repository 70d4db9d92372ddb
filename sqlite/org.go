package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sentineldf/sentineldf"
)

// Limits on stored values, so a bug or a hostile caller cannot grow a row
// without bound. The API validates earlier and more precisely.
const (
	maxNameLen    = 255
	maxTextLen    = 4096 // URLs, errors, object keys
	maxDetails    = 64   // audit detail entries
	maxScopes     = 32
	maxUsageKey   = 512
	maxAuditLimit = 1000
)

// CreateOrg creates org, its first key and the audit event in one
// transaction. key.OrgID and ev.OrgID default to org.ID; CreatedAt fields
// left zero are set to now.
func (db *DB) CreateOrg(ctx context.Context, org *sentineldf.Org, key *sentineldf.APIKey, ev sentineldf.AuditEvent) error {
	defer db.observe("CreateOrg")()
	if org == nil || key == nil {
		return sentineldf.Errorf(sentineldf.EINVALID, "org and key are required")
	}
	if org.ID == "" || len(org.Name) > maxNameLen || len(org.Plan) > maxNameLen {
		return sentineldf.FieldError("org", "id required, name and plan at most %d bytes", maxNameLen)
	}
	if key.OrgID == "" {
		key.OrgID = org.ID
	}
	if key.OrgID != org.ID {
		return sentineldf.FieldError("key.org_id", "must be the new org's id")
	}
	if ev.OrgID == "" {
		ev.OrgID = org.ID
	}
	org.CreatedAt = norm(org.CreatedAt)
	return db.writeTx(ctx, "create org", func(tx txn) error {
		if org.Operator {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM orgs WHERE is_operator`).Scan(&n); err != nil {
				return fmt.Errorf("sqlite: create org: %w", err)
			}
			if n > 0 {
				return sentineldf.Errorf(sentineldf.ECONFLICT, "an operator org already exists")
			}
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO orgs (id, name, plan, is_operator, created_at) VALUES (?, ?, ?, ?, ?)`,
			org.ID, org.Name, org.Plan, org.Operator, micros(org.CreatedAt))
		if isUniqueViolation(err) {
			return sentineldf.Errorf(sentineldf.ECONFLICT, "org already exists")
		}
		if err != nil {
			return fmt.Errorf("sqlite: create org: %w", err)
		}
		if err := insertAPIKey(ctx, tx, key); err != nil {
			return err
		}
		return appendAudit(ctx, tx, ev)
	})
}

// Org returns an org by id.
func (db *DB) Org(ctx context.Context, orgID string) (*sentineldf.Org, error) {
	defer db.observe("Org")()
	return scanOrg(db.readStmts.QueryRowContext(ctx, qOrg, orgID))
}

// OperatorOrg returns the operator org, ENOTFOUND when there is none.
func (db *DB) OperatorOrg(ctx context.Context) (*sentineldf.Org, error) {
	defer db.observe("OperatorOrg")()
	return scanOrg(db.readStmts.QueryRowContext(ctx,
		`SELECT id, name, plan, is_operator, created_at FROM orgs WHERE is_operator`))
}

func scanOrg(row *sql.Row) (*sentineldf.Org, error) {
	var (
		o       sentineldf.Org
		created int64
	)
	err := row.Scan(&o.ID, &o.Name, &o.Plan, &o.Operator, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sentineldf.NotFound("org")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: org: %w", err)
	}
	o.CreatedAt = fromMicros(created)
	return &o, nil
}

// CreateAPIKey stores key (its hash, never the secret) and the audit event.
func (db *DB) CreateAPIKey(ctx context.Context, key *sentineldf.APIKey, ev sentineldf.AuditEvent) error {
	defer db.observe("CreateAPIKey")()
	if key == nil {
		return sentineldf.Errorf(sentineldf.EINVALID, "key is required")
	}
	if ev.OrgID == "" {
		ev.OrgID = key.OrgID
	}
	if ev.OrgID != key.OrgID {
		return sentineldf.FieldError("org_id", "audit event and key must be of the same org")
	}
	return db.writeTx(ctx, "create key", func(tx txn) error {
		if err := insertAPIKey(ctx, tx, key); err != nil {
			return err
		}
		return appendAudit(ctx, tx, ev)
	})
}

func insertAPIKey(ctx context.Context, tx txn, key *sentineldf.APIKey) error {
	if key.ID == "" || key.OrgID == "" || len(key.Name) > maxNameLen || len(key.Scopes) > maxScopes || len(key.Hash) == 0 || len(key.Hash) > maxTextLen {
		return sentineldf.FieldError("key", "id, org, hash required; name at most %d bytes", maxNameLen)
	}
	key.CreatedAt = norm(key.CreatedAt)
	scopes := key.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	sc, err := json.Marshal(scopes)
	if err != nil {
		return fmt.Errorf("sqlite: encode scopes: %w", err)
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO api_keys (id, org_id, name, scopes, key_hash, created_at, last_used_at, revoked_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		key.ID, key.OrgID, key.Name, string(sc), encodeBytes(key.Hash), micros(key.CreatedAt),
		nullMicros(key.LastUsedAt), nullMicros(key.RevokedAt))
	switch {
	case isUniqueViolation(err):
		return sentineldf.Errorf(sentineldf.ECONFLICT, "key already exists")
	case isForeignKeyViolation(err):
		return sentineldf.NotFound("org")
	case err != nil:
		// The error never carries the hash: modernc reports the statement's
		// failure, not its arguments.
		return fmt.Errorf("sqlite: insert key: %w", err)
	}
	return nil
}

const keyColumns = `id, org_id, name, scopes, key_hash, created_at, last_used_at, revoked_at`

// Hot queries, prepared at Open.
const (
	qOrg         = `SELECT id, name, plan, is_operator, created_at FROM orgs WHERE id = ?`
	qLookupKey   = `SELECT ` + keyColumns + ` FROM api_keys WHERE id = ?`
	qKeyLastUsed = `SELECT last_used_at FROM api_keys WHERE org_id = ? AND id = ?`
	qTouchKey    = `UPDATE api_keys SET last_used_at = ? WHERE org_id = ? AND id = ?`
	qScanExists  = `SELECT 1 FROM scans WHERE org_id = ? AND id = ?`
)

type rowScanner interface{ Scan(dest ...any) error }

func scanAPIKey(row rowScanner) (*sentineldf.APIKey, error) {
	var (
		k                 sentineldf.APIKey
		scopes, hash      string
		created           int64
		lastUsed, revoked sql.NullInt64
	)
	if err := row.Scan(&k.ID, &k.OrgID, &k.Name, &scopes, &hash, &created, &lastUsed, &revoked); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(scopes), &k.Scopes); err != nil {
		return nil, fmt.Errorf("decode scopes of key %s: %w", k.ID, err)
	}
	h, err := decodeBytes(hash)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", k.ID, err)
	}
	k.Hash = h
	k.CreatedAt = fromMicros(created)
	k.LastUsedAt = fromNullMicros(lastUsed)
	k.RevokedAt = fromNullMicros(revoked)
	return &k, nil
}

// LookupAPIKey finds a key by its public id, whatever its org.
func (db *DB) LookupAPIKey(ctx context.Context, keyID string) (*sentineldf.APIKey, error) {
	defer db.observe("LookupAPIKey")()
	k, err := scanAPIKey(db.readStmts.QueryRowContext(ctx, qLookupKey, keyID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sentineldf.NotFound("key")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: lookup key: %w", err)
	}
	return k, nil
}

// APIKeys lists the org's keys, newest first.
func (db *DB) APIKeys(ctx context.Context, orgID string) ([]*sentineldf.APIKey, error) {
	defer db.observe("APIKeys")()
	rows, err := db.readStmts.QueryContext(ctx,
		`SELECT `+keyColumns+` FROM api_keys WHERE org_id = ? ORDER BY created_at DESC, id DESC`, orgID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	defer rows.Close()
	keys := []*sentineldf.APIKey{}
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	return keys, nil
}

// RevokeAPIKey revokes one of the org's keys at ev.At (now when zero) and
// records ev; a revoked key is returned unchanged and nothing is recorded.
func (db *DB) RevokeAPIKey(ctx context.Context, orgID, keyID string, ev sentineldf.AuditEvent) (*sentineldf.APIKey, error) {
	defer db.observe("RevokeAPIKey")()
	if ev.OrgID == "" {
		ev.OrgID = orgID
	}
	if ev.OrgID != orgID {
		return nil, sentineldf.FieldError("org_id", "audit event and key must be of the same org")
	}
	var key *sentineldf.APIKey
	err := db.writeTx(ctx, "revoke key", func(tx txn) error {
		k, err := scanAPIKey(tx.QueryRowContext(ctx,
			`SELECT `+keyColumns+` FROM api_keys WHERE org_id = ? AND id = ?`, orgID, keyID))
		if errors.Is(err, sql.ErrNoRows) {
			return sentineldf.NotFound("key")
		}
		if err != nil {
			return fmt.Errorf("sqlite: revoke key: %w", err)
		}
		key = k
		if k.Revoked() {
			return nil
		}
		at := norm(ev.At)
		ev.At = at
		if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE org_id = ? AND id = ?`,
			micros(at), orgID, keyID); err != nil {
			return fmt.Errorf("sqlite: revoke key: %w", err)
		}
		k.RevokedAt = &at
		return appendAudit(ctx, tx, ev)
	})
	if err != nil {
		return nil, err
	}
	return key, nil
}

// TouchAPIKey sets a key's last-used time; it never moves it backwards.
func (db *DB) TouchAPIKey(ctx context.Context, orgID, keyID string, at time.Time) error {
	defer db.observe("TouchAPIKey")()
	us := micros(norm(at))
	return db.writeTx(ctx, "touch key", func(tx txn) error {
		var last sql.NullInt64
		err := tx.QueryRowContext(ctx, qKeyLastUsed, orgID, keyID).Scan(&last)
		if errors.Is(err, sql.ErrNoRows) {
			return sentineldf.NotFound("key")
		}
		if err != nil {
			return fmt.Errorf("sqlite: touch key: %w", err)
		}
		if last.Valid && last.Int64 >= us {
			return nil
		}
		if _, err := tx.ExecContext(ctx, qTouchKey, us, orgID, keyID); err != nil {
			return fmt.Errorf("sqlite: touch key: %w", err)
		}
		return nil
	})
}

// AppendAudit records an audit event.
func (db *DB) AppendAudit(ctx context.Context, ev sentineldf.AuditEvent) error {
	defer db.observe("AppendAudit")()
	return db.writeTx(ctx, "append audit", func(tx txn) error {
		return appendAudit(ctx, tx, ev)
	})
}

// appendAudit allocates the event's id from its org's sequence and inserts
// it: ENOTFOUND when the org does not exist.
func appendAudit(ctx context.Context, tx txn, ev sentineldf.AuditEvent) error {
	if ev.OrgID == "" || ev.Action == "" || len(ev.Action) > maxNameLen || len(ev.Actor) > maxNameLen ||
		len(ev.Target) > maxTextLen || len(ev.RequestID) > maxNameLen || len(ev.Details) > maxDetails {
		return sentineldf.FieldError("audit", "org and action required; fields too long")
	}
	details, err := encodeMap(ev.Details)
	if err != nil {
		return fmt.Errorf("sqlite: audit: %w", err)
	}
	if len(details) > maxTextLen*4 {
		return sentineldf.FieldError("audit.details", "too large")
	}
	var id int64
	err = tx.QueryRowContext(ctx, `UPDATE orgs SET audit_seq = audit_seq + 1 WHERE id = ? RETURNING audit_seq`, ev.OrgID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return sentineldf.NotFound("org")
	}
	if err != nil {
		return fmt.Errorf("sqlite: audit: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO audit_log (org_id, id, action, actor, target, details, request_id, occurred_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.OrgID, id, ev.Action, ev.Actor, ev.Target, details, ev.RequestID, micros(norm(ev.At))); err != nil {
		return fmt.Errorf("sqlite: audit: %w", err)
	}
	return nil
}

// AuditLog lists the org's audit events, newest first, at most limit
// (1…1000; 0 means 100).
func (db *DB) AuditLog(ctx context.Context, orgID string, limit int) ([]sentineldf.AuditEvent, error) {
	defer db.observe("AuditLog")()
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, maxAuditLimit)
	rows, err := db.readStmts.QueryContext(ctx,
		`SELECT id, org_id, action, actor, target, details, request_id, occurred_at
		 FROM audit_log WHERE org_id = ? ORDER BY id DESC LIMIT ?`, orgID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit log: %w", err)
	}
	defer rows.Close()
	events := []sentineldf.AuditEvent{}
	for rows.Next() {
		var (
			ev      sentineldf.AuditEvent
			details string
			at      int64
		)
		if err := rows.Scan(&ev.ID, &ev.OrgID, &ev.Action, &ev.Actor, &ev.Target, &details, &ev.RequestID, &at); err != nil {
			return nil, fmt.Errorf("sqlite: audit log: %w", err)
		}
		if ev.Details, err = decodeMap(details); err != nil {
			return nil, fmt.Errorf("sqlite: audit log: %w", err)
		}
		ev.At = fromMicros(at)
		events = append(events, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: audit log: %w", err)
	}
	return events, nil
}

// SigningKey returns the org's MBOM signing key, ENOTFOUND when none.
func (db *DB) SigningKey(ctx context.Context, orgID string) (*sentineldf.SigningKey, error) {
	defer db.observe("SigningKey")()
	var (
		k       sentineldf.SigningKey
		priv    string
		created int64
	)
	err := db.readStmts.QueryRowContext(ctx,
		`SELECT org_id, key_id, public_pem, private_pem, created_at FROM signing_keys WHERE org_id = ?`, orgID).
		Scan(&k.OrgID, &k.KeyID, &k.PublicPEM, &priv, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sentineldf.NotFound("signing key")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: signing key: %w", err)
	}
	if k.PrivatePEM, err = decodeBytes(priv); err != nil {
		return nil, fmt.Errorf("sqlite: signing key: %w", err)
	}
	k.CreatedAt = fromMicros(created)
	return &k, nil
}

// PutSigningKey stores the org's signing key; ECONFLICT when one exists.
func (db *DB) PutSigningKey(ctx context.Context, k *sentineldf.SigningKey) error {
	defer db.observe("PutSigningKey")()
	if k == nil || k.OrgID == "" || k.KeyID == "" || len(k.PrivatePEM) == 0 || len(k.PublicPEM) > 4*maxTextLen || len(k.PrivatePEM) > 4*maxTextLen {
		return sentineldf.FieldError("signing_key", "org, key id and keys required")
	}
	k.CreatedAt = norm(k.CreatedAt)
	return db.writeTx(ctx, "put signing key", func(tx txn) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO signing_keys (org_id, key_id, public_pem, private_pem, created_at) VALUES (?, ?, ?, ?, ?)`,
			k.OrgID, k.KeyID, k.PublicPEM, encodeBytes(k.PrivatePEM), micros(k.CreatedAt))
		switch {
		case isUniqueViolation(err):
			return sentineldf.Errorf(sentineldf.ECONFLICT, "the org already has a signing key")
		case isForeignKeyViolation(err):
			return sentineldf.NotFound("org")
		case err != nil:
			return fmt.Errorf("sqlite: put signing key: %w", err)
		}
		return nil
	})
}

// CreateMBOM stores an MBOM record of one of the org's scans and its audit
// event: ENOTFOUND when the scan is not the org's.
func (db *DB) CreateMBOM(ctx context.Context, m *sentineldf.MBOMRecord, ev sentineldf.AuditEvent) error {
	defer db.observe("CreateMBOM")()
	if m == nil || m.ID == "" || m.OrgID == "" || m.ScanID == "" || len(m.ApprovedBy) > maxNameLen ||
		len(m.KeyID) > maxNameLen || len(m.Digest) > maxNameLen || len(m.ObjectKey) > maxTextLen {
		return sentineldf.FieldError("mbom", "id, org and scan required; fields too long")
	}
	if ev.OrgID == "" {
		ev.OrgID = m.OrgID
	}
	if ev.OrgID != m.OrgID {
		return sentineldf.FieldError("org_id", "audit event and MBOM must be of the same org")
	}
	m.CreatedAt = norm(m.CreatedAt)
	return db.writeTx(ctx, "create mbom", func(tx txn) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO mbom_records (org_id, id, scan_id, approved_by, key_id, digest, object_key, created_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			m.OrgID, m.ID, m.ScanID, m.ApprovedBy, m.KeyID, m.Digest, m.ObjectKey, micros(m.CreatedAt))
		switch {
		case isUniqueViolation(err):
			return sentineldf.Errorf(sentineldf.ECONFLICT, "MBOM record already exists")
		case isForeignKeyViolation(err):
			return sentineldf.NotFound("scan")
		case err != nil:
			return fmt.Errorf("sqlite: create mbom: %w", err)
		}
		return appendAudit(ctx, tx, ev)
	})
}

// MBOMs lists a scan's MBOM records, oldest first: ENOTFOUND when the scan
// is not the org's.
func (db *DB) MBOMs(ctx context.Context, orgID, scanID string) ([]*sentineldf.MBOMRecord, error) {
	defer db.observe("MBOMs")()
	var out []*sentineldf.MBOMRecord
	err := db.readTx(ctx, "list mboms", func(tx txn) error {
		if err := scanExists(ctx, tx, orgID, scanID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, qListMBOMs, orgID, scanID)
		if err != nil {
			return fmt.Errorf("sqlite: list mboms: %w", err)
		}
		defer rows.Close()
		out = []*sentineldf.MBOMRecord{}
		for rows.Next() {
			var (
				m       sentineldf.MBOMRecord
				created int64
			)
			if err := rows.Scan(&m.ID, &m.OrgID, &m.ScanID, &m.ApprovedBy, &m.KeyID, &m.Digest, &m.ObjectKey, &created); err != nil {
				return fmt.Errorf("sqlite: list mboms: %w", err)
			}
			m.CreatedAt = fromMicros(created)
			out = append(out, &m)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: list mboms: %w", err)
		}
		return nil
	})
	return out, err
}

// querier is a txn or a pool's stmtCache.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// scanExists returns ENOTFOUND unless the org has the scan.
func scanExists(ctx context.Context, q querier, orgID, scanID string) error {
	var one int
	err := q.QueryRowContext(ctx, qScanExists, orgID, scanID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return sentineldf.NotFound("scan")
	}
	if err != nil {
		return fmt.Errorf("sqlite: scan: %w", err)
	}
	return nil
}

// qListMBOMs lists a scan's MBOM records; the status endpoint runs it.
const qListMBOMs = `SELECT id, org_id, scan_id, approved_by, key_id, digest, object_key, created_at
	 FROM mbom_records WHERE org_id = ? AND scan_id = ? ORDER BY created_at, id`
