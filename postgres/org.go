package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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

const (
	orgColumns = `id, name, plan, is_operator, created_at`
	keyColumns = `id, org_id, name, scopes, key_hash, created_at, last_used_at, revoked_at`
)

// Hot queries (the tests EXPLAIN them).
const (
	qOrg         = `SELECT ` + orgColumns + ` FROM orgs WHERE id = $1`
	qOperatorOrg = `SELECT ` + orgColumns + ` FROM orgs WHERE is_operator`
	qLookupKey   = `SELECT ` + keyColumns + ` FROM api_keys WHERE id = $1`
	qTouchKey    = `UPDATE api_keys SET last_used_at = $1
		WHERE org_id = $2 AND id = $3 AND (last_used_at IS NULL OR last_used_at < $1)`
	qKeyExists = `SELECT 1 FROM api_keys WHERE org_id = $1 AND id = $2`
	// qAppendAudit allocates the event's id from its org's sequence and
	// inserts it, in one statement: no row when the org does not exist.
	qAppendAudit = `WITH seq AS (UPDATE orgs SET audit_seq = audit_seq + 1 WHERE id = $1 RETURNING audit_seq)
		INSERT INTO audit_log (org_id, id, action, actor, target, details, request_id, occurred_at)
		SELECT $1, audit_seq, $2, $3, $4, $5, $6, $7 FROM seq`
	qScanExists = `SELECT 1 FROM scans WHERE org_id = $1 AND id = $2`
	qListKeys   = `SELECT ` + keyColumns + ` FROM api_keys WHERE org_id = $1 ORDER BY created_at DESC, id DESC`
	qAuditLog   = `SELECT id, org_id, action, actor, target, details, request_id, occurred_at
		FROM audit_log WHERE org_id = $1 ORDER BY id DESC LIMIT $2`
	qListMBOMs = `SELECT id, org_id, scan_id, approved_by, key_id, digest, object_key, created_at
		FROM mbom_records WHERE org_id = $1 AND scan_id = $2 ORDER BY created_at, id`
)

// CreateOrg creates org, its first key and the audit event in one
// transaction. key.OrgID and ev.OrgID default to org.ID; CreatedAt fields
// left zero are set to now. A second operator org is ECONFLICT: the unique
// index orgs_single_operator decides, so concurrent first starts agree.
func (db *DB) CreateOrg(ctx context.Context, org *sentineldf.Org, key *sentineldf.APIKey, ev sentineldf.AuditEvent) error {
	defer db.observe("CreateOrg")()
	if org == nil || key == nil {
		return sentineldf.Errorf(sentineldf.EINVALID, "org and key are required")
	}
	if org.ID == "" || len(org.ID) > maxNameLen || len(org.Name) > maxNameLen || len(org.Plan) > maxNameLen {
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
	return db.orgTx(ctx, "create org", org.ID, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO orgs (`+orgColumns+`) VALUES ($1, $2, $3, $4, $5)`,
			org.ID, org.Name, org.Plan, org.Operator, micros(org.CreatedAt))
		switch {
		case isConstraintViolation(err, "orgs_single_operator"):
			return sentineldf.Errorf(sentineldf.ECONFLICT, "an operator org already exists")
		case isUniqueViolation(err):
			return sentineldf.Errorf(sentineldf.ECONFLICT, "org already exists")
		case err != nil:
			return fmt.Errorf("postgres: create org: %w", err)
		}
		if err := insertAPIKey(ctx, tx, key); err != nil {
			return err
		}
		return appendAudit(ctx, tx, org.ID, ev)
	})
}

// Org returns an org by id.
func (db *DB) Org(ctx context.Context, orgID string) (*sentineldf.Org, error) {
	defer db.observe("Org")()
	var o *sentineldf.Org
	err := db.sendBatch(ctx, "org", scopedBatch(qScopeOrg, orgID).queue(qOrg, orgID), func(br pgx.BatchResults) error {
		var err error
		o, err = scanOrg(br.QueryRow())
		return err
	})
	return o, err
}

// OperatorOrg returns the operator org, ENOTFOUND when there is none.
func (db *DB) OperatorOrg(ctx context.Context) (*sentineldf.Org, error) {
	defer db.observe("OperatorOrg")()
	var o *sentineldf.Org
	err := db.sendBatch(ctx, "operator org", scopedBatch(qScopeOperator).queue(qOperatorOrg), func(br pgx.BatchResults) error {
		var err error
		o, err = scanOrg(br.QueryRow())
		return err
	})
	return o, err
}

func scanOrg(row pgx.Row) (*sentineldf.Org, error) {
	var (
		o       sentineldf.Org
		created int64
	)
	err := row.Scan(&o.ID, &o.Name, &o.Plan, &o.Operator, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sentineldf.NotFound("org")
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: org: %w", err)
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
	return db.orgTx(ctx, "create key", key.OrgID, func(tx pgx.Tx) error {
		if err := insertAPIKey(ctx, tx, key); err != nil {
			return err
		}
		return appendAudit(ctx, tx, key.OrgID, ev)
	})
}

// insertAPIKey inserts key in tx, which is scoped to key.OrgID.
func insertAPIKey(ctx context.Context, tx pgx.Tx, key *sentineldf.APIKey) error {
	if key.ID == "" || len(key.ID) > maxNameLen || key.OrgID == "" || len(key.Name) > maxNameLen ||
		len(key.Scopes) > maxScopes || len(key.Hash) == 0 || len(key.Hash) > maxTextLen {
		return sentineldf.FieldError("key", "id, org, hash required; name at most %d bytes", maxNameLen)
	}
	key.CreatedAt = norm(key.CreatedAt)
	scopes := key.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	sc, err := json.Marshal(scopes)
	if err != nil {
		return fmt.Errorf("postgres: encode scopes: %w", err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		key.ID, key.OrgID, key.Name, string(sc), encodeBytes(key.Hash), micros(key.CreatedAt),
		nullMicros(key.LastUsedAt), nullMicros(key.RevokedAt))
	switch {
	case isUniqueViolation(err):
		return sentineldf.Errorf(sentineldf.ECONFLICT, "key already exists")
	case isForeignKeyViolation(err):
		return sentineldf.NotFound("org")
	case err != nil:
		// A *pgconn.PgError carries the statement's failure, never its
		// arguments: the hash stays out of logs.
		return fmt.Errorf("postgres: insert key: %w", err)
	}
	return nil
}

func scanAPIKey(row pgx.Row) (*sentineldf.APIKey, error) {
	var (
		k                 sentineldf.APIKey
		scopes, hash      string
		created           int64
		lastUsed, revoked *int64
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

// LookupAPIKey finds a key by its public id, whatever its org. Its
// transaction is scoped to that key id (app.key_id), which row-level
// security lets see that one key and nothing else.
func (db *DB) LookupAPIKey(ctx context.Context, keyID string) (*sentineldf.APIKey, error) {
	defer db.observe("LookupAPIKey")()
	var k *sentineldf.APIKey
	err := db.sendBatch(ctx, "lookup key", scopedBatch(qScopeKey, keyID).queue(qLookupKey, keyID), func(br pgx.BatchResults) error {
		var err error
		k, err = scanAPIKey(br.QueryRow())
		if errors.Is(err, pgx.ErrNoRows) {
			return sentineldf.NotFound("key")
		}
		if err != nil {
			return fmt.Errorf("postgres: lookup key: %w", err)
		}
		return nil
	})
	return k, err
}

// APIKeys lists the org's keys, newest first.
func (db *DB) APIKeys(ctx context.Context, orgID string) ([]*sentineldf.APIKey, error) {
	defer db.observe("APIKeys")()
	keys := []*sentineldf.APIKey{}
	b := scopedBatch(qScopeOrg, orgID).queue(qListKeys, orgID)
	err := db.sendBatch(ctx, "list keys", b, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("postgres: list keys: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			k, err := scanAPIKey(rows)
			if err != nil {
				return fmt.Errorf("postgres: list keys: %w", err)
			}
			keys = append(keys, k)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("postgres: list keys: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
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
	err := db.orgTx(ctx, "revoke key", orgID, func(tx pgx.Tx) error {
		k, err := scanAPIKey(tx.QueryRow(ctx,
			`SELECT `+keyColumns+` FROM api_keys WHERE org_id = $1 AND id = $2 FOR UPDATE`, orgID, keyID))
		if errors.Is(err, pgx.ErrNoRows) {
			return sentineldf.NotFound("key")
		}
		if err != nil {
			return fmt.Errorf("postgres: revoke key: %w", err)
		}
		key = k
		if k.Revoked() {
			return nil
		}
		at := norm(ev.At)
		ev.At = at
		if _, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE org_id = $2 AND id = $3`,
			micros(at), orgID, keyID); err != nil {
			return fmt.Errorf("postgres: revoke key: %w", err)
		}
		k.RevokedAt = &at
		return appendAudit(ctx, tx, orgID, ev)
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
	var touched bool
	err := db.sendBatch(ctx, "touch key", scopedBatch(qScopeOrg, orgID).queue(qTouchKey, us, orgID, keyID), func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		if err != nil {
			return fmt.Errorf("postgres: touch key: %w", err)
		}
		touched = tag.RowsAffected() == 1
		return nil
	})
	if err != nil || touched {
		return err
	}
	// Nothing updated: the key is missing, or was used later already.
	return db.sendBatch(ctx, "touch key", scopedBatch(qScopeOrg, orgID).queue(qKeyExists, orgID, keyID), func(br pgx.BatchResults) error {
		var one int
		err := br.QueryRow().Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return sentineldf.NotFound("key")
		}
		if err != nil {
			return fmt.Errorf("postgres: touch key: %w", err)
		}
		return nil
	})
}

// AppendAudit records an audit event.
func (db *DB) AppendAudit(ctx context.Context, ev sentineldf.AuditEvent) error {
	defer db.observe("AppendAudit")()
	return db.orgTx(ctx, "append audit", ev.OrgID, func(tx pgx.Tx) error {
		return appendAudit(ctx, tx, ev.OrgID, ev)
	})
}

// appendAudit allocates the event's id from its org's sequence and inserts
// it: ENOTFOUND when the org does not exist. tx is scoped to scope; an
// event of another org is written under that org's scope, then the scope
// is restored.
func appendAudit(ctx context.Context, tx pgx.Tx, scope string, ev sentineldf.AuditEvent) error {
	if ev.OrgID == "" || ev.Action == "" || len(ev.Action) > maxNameLen || len(ev.Actor) > maxNameLen ||
		len(ev.Target) > maxTextLen || len(ev.RequestID) > maxNameLen || len(ev.Details) > maxDetails {
		return sentineldf.FieldError("audit", "org and action required; fields too long")
	}
	details, err := encodeMap(ev.Details)
	if err != nil {
		return fmt.Errorf("postgres: audit: %w", err)
	}
	if len(details) > maxTextLen*4 {
		return sentineldf.FieldError("audit.details", "too large")
	}
	if ev.OrgID != scope {
		if _, err := tx.Exec(ctx, qScopeOrg, ev.OrgID); err != nil {
			return fmt.Errorf("postgres: audit: scope: %w", err)
		}
	}
	tag, err := tx.Exec(ctx, qAppendAudit, ev.OrgID, ev.Action, ev.Actor, ev.Target, details, ev.RequestID, micros(norm(ev.At)))
	if err != nil {
		return fmt.Errorf("postgres: audit: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return sentineldf.NotFound("org")
	}
	if ev.OrgID != scope {
		if _, err := tx.Exec(ctx, qScopeOrg, scope); err != nil {
			return fmt.Errorf("postgres: audit: scope: %w", err)
		}
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
	events := []sentineldf.AuditEvent{}
	b := scopedBatch(qScopeOrg, orgID).queue(qAuditLog, orgID, limit)
	err := db.sendBatch(ctx, "audit log", b, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("postgres: audit log: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				ev      sentineldf.AuditEvent
				details string
				at      int64
			)
			if err := rows.Scan(&ev.ID, &ev.OrgID, &ev.Action, &ev.Actor, &ev.Target, &details, &ev.RequestID, &at); err != nil {
				return fmt.Errorf("postgres: audit log: %w", err)
			}
			if ev.Details, err = decodeMap(details); err != nil {
				return fmt.Errorf("postgres: audit log: %w", err)
			}
			ev.At = fromMicros(at)
			events = append(events, ev)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("postgres: audit log: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return events, nil
}

// SigningKey returns the org's MBOM signing key, ENOTFOUND when none.
func (db *DB) SigningKey(ctx context.Context, orgID string) (*sentineldf.SigningKey, error) {
	defer db.observe("SigningKey")()
	var k *sentineldf.SigningKey
	b := scopedBatch(qScopeOrg, orgID).queue(
		`SELECT org_id, key_id, public_pem, private_pem, created_at FROM signing_keys WHERE org_id = $1`, orgID)
	err := db.sendBatch(ctx, "signing key", b, func(br pgx.BatchResults) error {
		var (
			sk      sentineldf.SigningKey
			priv    string
			created int64
		)
		err := br.QueryRow().Scan(&sk.OrgID, &sk.KeyID, &sk.PublicPEM, &priv, &created)
		if errors.Is(err, pgx.ErrNoRows) {
			return sentineldf.NotFound("signing key")
		}
		if err != nil {
			return fmt.Errorf("postgres: signing key: %w", err)
		}
		if sk.PrivatePEM, err = decodeBytes(priv); err != nil {
			return fmt.Errorf("postgres: signing key: %w", err)
		}
		sk.CreatedAt = fromMicros(created)
		k = &sk
		return nil
	})
	return k, err
}

// PutSigningKey stores the org's signing key; ECONFLICT when one exists.
func (db *DB) PutSigningKey(ctx context.Context, k *sentineldf.SigningKey) error {
	defer db.observe("PutSigningKey")()
	if k == nil || k.OrgID == "" || k.KeyID == "" || len(k.KeyID) > maxNameLen || len(k.PrivatePEM) == 0 ||
		len(k.PublicPEM) > 4*maxTextLen || len(k.PrivatePEM) > 4*maxTextLen {
		return sentineldf.FieldError("signing_key", "org, key id and keys required")
	}
	k.CreatedAt = norm(k.CreatedAt)
	b := scopedBatch(qScopeOrg, k.OrgID).queue(
		`INSERT INTO signing_keys (org_id, key_id, public_pem, private_pem, created_at) VALUES ($1, $2, $3, $4, $5)`,
		k.OrgID, k.KeyID, k.PublicPEM, encodeBytes(k.PrivatePEM), micros(k.CreatedAt))
	return db.sendBatch(ctx, "put signing key", b, func(br pgx.BatchResults) error {
		_, err := br.Exec()
		switch {
		case isUniqueViolation(err):
			return sentineldf.Errorf(sentineldf.ECONFLICT, "the org already has a signing key")
		case isForeignKeyViolation(err):
			return sentineldf.NotFound("org")
		case err != nil:
			return fmt.Errorf("postgres: put signing key: %w", err)
		}
		return nil
	})
}

// CreateMBOM stores an MBOM record of one of the org's scans and its audit
// event: ENOTFOUND when the scan is not the org's.
func (db *DB) CreateMBOM(ctx context.Context, m *sentineldf.MBOMRecord, ev sentineldf.AuditEvent) error {
	defer db.observe("CreateMBOM")()
	if m == nil || m.ID == "" || len(m.ID) > maxNameLen || m.OrgID == "" || m.ScanID == "" || len(m.ApprovedBy) > maxNameLen ||
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
	return db.orgTx(ctx, "create mbom", m.OrgID, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx,
			`INSERT INTO mbom_records (org_id, id, scan_id, approved_by, key_id, digest, object_key, created_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			m.OrgID, m.ID, m.ScanID, m.ApprovedBy, m.KeyID, m.Digest, m.ObjectKey, micros(m.CreatedAt))
		switch {
		case isUniqueViolation(err):
			return sentineldf.Errorf(sentineldf.ECONFLICT, "MBOM record already exists")
		case isForeignKeyViolation(err):
			return sentineldf.NotFound("scan")
		case err != nil:
			return fmt.Errorf("postgres: create mbom: %w", err)
		}
		return appendAudit(ctx, tx, m.OrgID, ev)
	})
}

// MBOMs lists a scan's MBOM records, oldest first: ENOTFOUND when the scan
// is not the org's.
func (db *DB) MBOMs(ctx context.Context, orgID, scanID string) ([]*sentineldf.MBOMRecord, error) {
	defer db.observe("MBOMs")()
	out := []*sentineldf.MBOMRecord{}
	b := scopedBatch(qScopeOrg, orgID).
		queue(qScanExists, orgID, scanID).
		queue(qListMBOMs, orgID, scanID)
	err := db.sendBatch(ctx, "list mboms", b, func(br pgx.BatchResults) error {
		if err := scanExists(br.QueryRow()); err != nil {
			return err
		}
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("postgres: list mboms: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				m       sentineldf.MBOMRecord
				created int64
			)
			if err := rows.Scan(&m.ID, &m.OrgID, &m.ScanID, &m.ApprovedBy, &m.KeyID, &m.Digest, &m.ObjectKey, &created); err != nil {
				return fmt.Errorf("postgres: list mboms: %w", err)
			}
			m.CreatedAt = fromMicros(created)
			out = append(out, &m)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("postgres: list mboms: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// scanExists reads the result of qScanExists: ENOTFOUND unless the org has
// the scan.
func scanExists(row pgx.Row) error {
	var one int
	err := row.Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return sentineldf.NotFound("scan")
	}
	if err != nil {
		return fmt.Errorf("postgres: scan: %w", err)
	}
	return nil
}
