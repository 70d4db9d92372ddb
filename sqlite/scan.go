package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/sentineldf/sentineldf"
)

// Limits on scans.
const (
	// maxShards caps the shards of one scan.
	maxShards = 100_000
	// defaultPageSize and maxPageSize bound Scans' limit.
	defaultPageSize = 20
	maxPageSize     = 100
)

const scanColumns = `org_id, id, state, priority, callback_url, docs_done, docs_total, bytes_done, bytes_total,
	count_clean, count_elevated, count_quarantine, cache_hits, malformed, error_message, created_by, trace,
	created_at, updated_at, started_at, finished_at`

// Hot queries, prepared at Open.
const (
	qLoadScan = `SELECT ` + scanColumns + ` FROM scans WHERE org_id = ? AND id = ?`
	qShards   = `SELECT shard_index, file_index, byte_offset, byte_length, first_line, done, docs, bytes,
		count_clean, count_elevated, count_quarantine, cache_hits, malformed
		FROM scan_shards WHERE org_id = ? AND scan_id = ? ORDER BY shard_index`
	qCompleteShard = `UPDATE scan_shards SET done = TRUE, docs = ?, bytes = ?, count_clean = ?, count_elevated = ?,
		count_quarantine = ?, cache_hits = ?, malformed = ?
		WHERE org_id = ? AND scan_id = ? AND shard_index = ? AND done = FALSE`
	qShardExists = `SELECT 1 FROM scan_shards WHERE org_id = ? AND scan_id = ? AND shard_index = ?`
	qAdvanceScan = `UPDATE scans SET docs_done = docs_done + ?, bytes_done = bytes_done + ?,
		count_clean = count_clean + ?, count_elevated = count_elevated + ?, count_quarantine = count_quarantine + ?,
		cache_hits = cache_hits + ?, malformed = malformed + ?, shards_done = shards_done + 1, updated_at = ?
		WHERE org_id = ? AND id = ?
		RETURNING shards_done, shards_total, state, priority, trace`
	qInsertUsage = `INSERT INTO usage_records (org_id, usage_key, docs, bytes, recorded_at, day) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (org_id, usage_key) DO NOTHING`
)

// filesQuery selects the files of n of an org's scans.
func filesQuery(n int) string {
	return `SELECT scan_id, file_index, name, size_bytes, sha256, uploaded FROM scan_files
		WHERE org_id = ? AND scan_id IN (?` + strings.Repeat(", ?", n-1) + `) ORDER BY scan_id, file_index`
}

func scanScan(row rowScanner) (*sentineldf.Scan, error) {
	var (
		s                 sentineldf.Scan
		trace             string
		created, updated  int64
		started, finished sql.NullInt64
	)
	if err := row.Scan(&s.OrgID, &s.ID, &s.State, &s.Priority, &s.CallbackURL,
		&s.Progress.DocsDone, &s.Progress.DocsTotal, &s.Progress.BytesDone, &s.Progress.BytesTotal,
		&s.Counts.Clean, &s.Counts.Elevated, &s.Counts.Quarantine, &s.CacheHits, &s.Malformed,
		&s.Error, &s.CreatedBy, &trace, &created, &updated, &started, &finished); err != nil {
		return nil, err
	}
	var err error
	if s.Trace, err = decodeMap(trace); err != nil {
		return nil, fmt.Errorf("scan %s: %w", s.ID, err)
	}
	s.CreatedAt = fromMicros(created)
	s.UpdatedAt = fromMicros(updated)
	s.StartedAt = fromNullMicros(started)
	s.FinishedAt = fromNullMicros(finished)
	s.Files = []sentineldf.ScanFile{}
	return &s, nil
}

// loadScan reads one of the org's scans, with its files when files is set.
func loadScan(ctx context.Context, tx querier, orgID, scanID string, files bool) (*sentineldf.Scan, error) {
	s, err := scanScan(tx.QueryRowContext(ctx, qLoadScan, orgID, scanID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sentineldf.NotFound("scan")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: scan: %w", err)
	}
	if files {
		byScan, err := loadFiles(ctx, tx, orgID, []string{scanID})
		if err != nil {
			return nil, err
		}
		if f := byScan[scanID]; f != nil {
			s.Files = f
		}
	}
	return s, nil
}

// loadFiles reads the files of the org's scans, by scan id, in index order.
func loadFiles(ctx context.Context, tx querier, orgID string, scanIDs []string) (map[string][]sentineldf.ScanFile, error) {
	out := make(map[string][]sentineldf.ScanFile, len(scanIDs))
	if len(scanIDs) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(scanIDs)+1)
	args = append(args, orgID)
	for _, id := range scanIDs {
		args = append(args, id)
	}
	rows, err := tx.QueryContext(ctx, filesQuery(len(scanIDs)), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: scan files: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			scanID string
			f      sentineldf.ScanFile
		)
		if err := rows.Scan(&scanID, &f.Index, &f.Name, &f.Size, &f.SHA256, &f.Uploaded); err != nil {
			return nil, fmt.Errorf("sqlite: scan files: %w", err)
		}
		out[scanID] = append(out[scanID], f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: scan files: %w", err)
	}
	return out, nil
}

// CreateScan stores a new scan with its files. It sets s.State to
// awaiting_upload, each file's Index to its position, and CreatedAt (when
// zero) and UpdatedAt.
func (db *DB) CreateScan(ctx context.Context, s *sentineldf.Scan) error {
	defer db.observe("CreateScan")()
	if s == nil || s.ID == "" || s.OrgID == "" {
		return sentineldf.FieldError("scan", "id and org are required")
	}
	if len(s.Files) == 0 || len(s.Files) > sentineldf.MaxFilesPerScan {
		return sentineldf.FieldError("files", "must have 1 to %d files", sentineldf.MaxFilesPerScan)
	}
	if len(s.CallbackURL) > maxTextLen || len(s.CreatedBy) > maxNameLen {
		return sentineldf.FieldError("scan", "callback_url or created_by too long")
	}
	for i := range s.Files {
		f := &s.Files[i]
		if err := sentineldf.ValidateFileName(f.Name); err != nil {
			return err
		}
		if f.Size < 0 || len(f.SHA256) > 64 {
			return sentineldf.FieldError("files.size", "invalid size or sha256")
		}
		f.Index = i
	}
	trace, err := encodeMap(s.Trace)
	if err != nil {
		return fmt.Errorf("sqlite: create scan: %w", err)
	}
	if len(trace) > maxTextLen {
		return sentineldf.FieldError("trace", "too large")
	}
	s.State = sentineldf.StateAwaitingUpload
	s.CreatedAt = norm(s.CreatedAt)
	s.UpdatedAt = s.CreatedAt
	s.StartedAt, s.FinishedAt, s.Error = nil, nil, ""
	return db.writeTx(ctx, "create scan", func(tx txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO scans (`+scanColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)`,
			s.OrgID, s.ID, s.State, s.Priority, s.CallbackURL,
			s.Progress.DocsDone, s.Progress.DocsTotal, s.Progress.BytesDone, s.Progress.BytesTotal,
			s.Counts.Clean, s.Counts.Elevated, s.Counts.Quarantine, s.CacheHits, s.Malformed,
			"", s.CreatedBy, trace, micros(s.CreatedAt), micros(s.UpdatedAt))
		switch {
		case isUniqueViolation(err):
			return sentineldf.Errorf(sentineldf.ECONFLICT, "scan already exists")
		case isForeignKeyViolation(err):
			return sentineldf.NotFound("org")
		case err != nil:
			return fmt.Errorf("sqlite: create scan: %w", err)
		}
		for _, f := range s.Files {
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO scan_files (org_id, scan_id, file_index, name, size_bytes, sha256, uploaded)
				 VALUES (?, ?, ?, ?, ?, ?, ?)`,
				s.OrgID, s.ID, f.Index, f.Name, f.Size, f.SHA256, f.Uploaded); err != nil {
				return fmt.Errorf("sqlite: create scan file: %w", err)
			}
		}
		return nil
	})
}

// Scan returns one of the org's scans with its files. It is the status
// read that clients poll, so it runs its two queries without a transaction:
// files only change when the scan is created (with it) and confirmed
// (uploaded flags), so the worst a concurrent confirm can show is an
// awaiting_upload scan whose files are already marked uploaded.
func (db *DB) Scan(ctx context.Context, orgID, scanID string) (*sentineldf.Scan, error) {
	defer db.observe("Scan")()
	return loadScan(ctx, db.readStmts, orgID, scanID, true)
}

// Scans lists the org's scans with their files, newest first (ties by id,
// descending), limit at a time (0: defaultPageSize; at most maxPageSize).
// The cursor is opaque; a malformed one is EINVALID.
func (db *DB) Scans(ctx context.Context, orgID, cursor string, limit int) ([]*sentineldf.Scan, string, error) {
	defer db.observe("Scans")()
	if limit <= 0 {
		limit = defaultPageSize
	}
	limit = min(limit, maxPageSize)
	query := `SELECT ` + scanColumns + ` FROM scans WHERE org_id = ?`
	args := []any{orgID}
	if cursor != "" {
		at, id, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		query += ` AND (created_at < ? OR (created_at = ? AND id < ?))`
		args = append(args, at, at, id)
	}
	query += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, limit+1)

	var (
		scans []*sentineldf.Scan
		next  string
	)
	err := db.readTx(ctx, "list scans", func(tx txn) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("sqlite: list scans: %w", err)
		}
		defer rows.Close()
		scans = []*sentineldf.Scan{}
		for rows.Next() {
			s, err := scanScan(rows)
			if err != nil {
				return fmt.Errorf("sqlite: list scans: %w", err)
			}
			scans = append(scans, s)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: list scans: %w", err)
		}
		rows.Close()
		if len(scans) > limit {
			scans = scans[:limit]
			last := scans[limit-1]
			next = encodeCursor(micros(last.CreatedAt), last.ID)
		}
		ids := make([]string, len(scans))
		for i, s := range scans {
			ids[i] = s.ID
		}
		files, err := loadFiles(ctx, tx, orgID, ids)
		if err != nil {
			return err
		}
		for _, s := range scans {
			if f := files[s.ID]; f != nil {
				s.Files = f
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return scans, next, nil
}

// A cursor is base64url("v1:{created_at µs}:{scan id}"): the last scan of
// the previous page.
func encodeCursor(at int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + strconv.FormatInt(at, 10) + ":" + id))
}

func decodeCursor(c string) (int64, string, error) {
	bad := sentineldf.FieldError("cursor", "invalid cursor")
	if len(c) > 512 {
		return 0, "", bad
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", bad
	}
	parts := strings.SplitN(string(b), ":", 3)
	if len(parts) != 3 || parts[0] != "v1" || parts[2] == "" {
		return 0, "", bad
	}
	at, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return 0, "", bad
	}
	return at, parts[2], nil
}

// ConfirmScan moves an awaiting_upload scan to queued at priority (1…4),
// marks its files uploaded and enqueues its PlanJob.
func (db *DB) ConfirmScan(ctx context.Context, orgID, scanID string, priority int) (*sentineldf.Scan, error) {
	defer db.observe("ConfirmScan")()
	if priority < 1 || priority > 4 {
		return nil, sentineldf.FieldError("priority", "must be 1 to 4")
	}
	var s *sentineldf.Scan
	err := db.writeTx(ctx, "confirm scan", func(tx txn) error {
		cur, err := loadScan(ctx, tx, orgID, scanID, false)
		if err != nil {
			return err
		}
		if cur.State != sentineldf.StateAwaitingUpload {
			return sentineldf.Errorf(sentineldf.ECONFLICT, "scan is %s, not %s", cur.State, sentineldf.StateAwaitingUpload)
		}
		t := now()
		if _, err := tx.ExecContext(ctx, `UPDATE scans SET state = ?, priority = ?, updated_at = ? WHERE org_id = ? AND id = ?`,
			sentineldf.StateQueued, priority, micros(t), orgID, scanID); err != nil {
			return fmt.Errorf("sqlite: confirm scan: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE scan_files SET uploaded = TRUE WHERE org_id = ? AND scan_id = ?`,
			orgID, scanID); err != nil {
			return fmt.Errorf("sqlite: confirm scan: %w", err)
		}
		if err := db.insertJob(ctx, tx, sentineldf.PlanJob{OrgID: orgID, ScanID: scanID, Trace: cur.Trace}, priority); err != nil {
			return fmt.Errorf("sqlite: confirm scan: %w", err)
		}
		s, err = loadScan(ctx, tx, orgID, scanID, true)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// StartScan moves a queued scan to running with its shards and enqueues a
// ShardJob per shard; a running scan is left as it is (a retried PlanJob).
// Shards must be indexed 0…n-1 in order; their OrgID and ScanID are
// ignored (the arguments name the scan). A scan with no shards gets its
// FinalizeJob right away, since no shard will complete to enqueue it.
func (db *DB) StartScan(ctx context.Context, orgID, scanID string, shards []sentineldf.Shard, total sentineldf.Progress) error {
	defer db.observe("StartScan")()
	if len(shards) > maxShards {
		return sentineldf.FieldError("shards", "at most %d shards", maxShards)
	}
	for i, sh := range shards {
		if sh.Index != i || sh.FileIndex < 0 || sh.Offset < 0 || sh.Length < 0 || sh.FirstLine < 0 {
			return sentineldf.FieldError("shards", "shard %d: bad index or range", i)
		}
	}
	if total.DocsTotal < 0 || total.BytesTotal < 0 {
		return sentineldf.FieldError("total", "must not be negative")
	}
	return db.writeTx(ctx, "start scan", func(tx txn) error {
		cur, err := loadScan(ctx, tx, orgID, scanID, false)
		if err != nil {
			return err
		}
		switch cur.State {
		case sentineldf.StateRunning:
			return nil
		case sentineldf.StateQueued:
		default:
			return sentineldf.Errorf(sentineldf.ECONFLICT, "scan is %s, not %s", cur.State, sentineldf.StateQueued)
		}
		for _, sh := range shards {
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO scan_shards (org_id, scan_id, shard_index, file_index, byte_offset, byte_length, first_line)
				 VALUES (?, ?, ?, ?, ?, ?, ?)`,
				orgID, scanID, sh.Index, sh.FileIndex, sh.Offset, sh.Length, sh.FirstLine); err != nil {
				return fmt.Errorf("sqlite: start scan: insert shard: %w", err)
			}
		}
		t := micros(now())
		if _, err := tx.ExecContext(ctx,
			`UPDATE scans SET state = ?, started_at = ?, updated_at = ?, docs_done = 0, bytes_done = 0,
			 docs_total = ?, bytes_total = ?, shards_total = ?, shards_done = 0
			 WHERE org_id = ? AND id = ?`,
			sentineldf.StateRunning, t, t, total.DocsTotal, total.BytesTotal, len(shards), orgID, scanID); err != nil {
			return fmt.Errorf("sqlite: start scan: %w", err)
		}
		if len(shards) == 0 {
			return db.insertJob(ctx, tx, sentineldf.FinalizeJob{OrgID: orgID, ScanID: scanID, Trace: cur.Trace}, cur.Priority)
		}
		params := make([]river.InsertManyParams, len(shards))
		opts := &river.InsertOpts{MaxAttempts: sentineldf.MaxJobAttempts, Priority: jobPriority(cur.Priority)}
		for i, sh := range shards {
			params[i] = river.InsertManyParams{
				Args:       sentineldf.ShardJob{OrgID: orgID, ScanID: scanID, Shard: sh.Index, Trace: cur.Trace},
				InsertOpts: opts,
			}
		}
		if _, err := db.river.InsertManyTx(ctx, tx.Tx, params); err != nil {
			return fmt.Errorf("sqlite: start scan: enqueue shards: %w", err)
		}
		return nil
	})
}

// Shards returns the scan's shards in index order.
func (db *DB) Shards(ctx context.Context, orgID, scanID string) ([]sentineldf.Shard, error) {
	defer db.observe("Shards")()
	var out []sentineldf.Shard
	err := db.readTx(ctx, "shards", func(tx txn) error {
		if err := scanExists(ctx, tx, orgID, scanID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, qShards, orgID, scanID)
		if err != nil {
			return fmt.Errorf("sqlite: shards: %w", err)
		}
		defer rows.Close()
		out = []sentineldf.Shard{}
		for rows.Next() {
			sh := sentineldf.Shard{OrgID: orgID, ScanID: scanID}
			if err := rows.Scan(&sh.Index, &sh.FileIndex, &sh.Offset, &sh.Length, &sh.FirstLine, &sh.Done,
				&sh.Docs, &sh.Bytes, &sh.Counts.Clean, &sh.Counts.Elevated, &sh.Counts.Quarantine,
				&sh.CacheHits, &sh.Malformed); err != nil {
				return fmt.Errorf("sqlite: shards: %w", err)
			}
			out = append(out, sh)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: shards: %w", err)
		}
		return nil
	})
	return out, err
}

// shardUsageKey is the usage idempotency key of a scan's shard.
func shardUsageKey(scanID string, shard int) string {
	return "shard:" + scanID + ":" + strconv.Itoa(shard)
}

// CompleteShard records a shard's outcome, its usage and the scan's
// progress exactly once. last reports that this call completed the scan's
// last shard, in which case the FinalizeJob was enqueued; a second call for
// a done shard returns (false, false). A shard of a scan that ended
// meanwhile (canceled) is still recorded, with its usage, since its
// documents were scanned, but nothing is enqueued.
func (db *DB) CompleteShard(ctx context.Context, sh sentineldf.Shard) (recorded, last bool, err error) {
	defer db.observe("CompleteShard")()
	if sh.Docs < 0 || sh.Bytes < 0 || sh.Counts.Clean < 0 || sh.Counts.Elevated < 0 || sh.Counts.Quarantine < 0 ||
		sh.CacheHits < 0 || sh.Malformed < 0 {
		return false, false, sentineldf.FieldError("shard", "counts must not be negative")
	}
	err = db.writeTx(ctx, "complete shard", func(tx txn) error {
		res, err := tx.ExecContext(ctx, qCompleteShard, sh.Docs, sh.Bytes, sh.Counts.Clean, sh.Counts.Elevated, sh.Counts.Quarantine, sh.CacheHits, sh.Malformed,
			sh.OrgID, sh.ScanID, sh.Index)
		if err != nil {
			return fmt.Errorf("sqlite: complete shard: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("sqlite: complete shard: %w", err)
		}
		if n == 0 {
			var one int
			err := tx.QueryRowContext(ctx, qShardExists, sh.OrgID, sh.ScanID, sh.Index).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return sentineldf.NotFound("shard")
			}
			if err != nil {
				return fmt.Errorf("sqlite: complete shard: %w", err)
			}
			return nil // already done
		}
		recorded = true
		t := now()
		if _, err := insertUsage(ctx, tx, sentineldf.UsageRecord{
			OrgID: sh.OrgID, Key: shardUsageKey(sh.ScanID, sh.Index), Docs: sh.Docs, Bytes: sh.Bytes, At: t,
		}); err != nil {
			return err
		}
		var (
			done, total, priority int64
			state, trace          string
		)
		if err := tx.QueryRowContext(ctx, qAdvanceScan, sh.Docs, sh.Bytes, sh.Counts.Clean, sh.Counts.Elevated, sh.Counts.Quarantine, sh.CacheHits, sh.Malformed,
			micros(t), sh.OrgID, sh.ScanID).Scan(&done, &total, &state, &priority, &trace); err != nil {
			return fmt.Errorf("sqlite: complete shard: progress: %w", err)
		}
		if done != total || state != sentineldf.StateRunning {
			return nil
		}
		last = true
		tr, err := decodeMap(trace)
		if err != nil {
			return fmt.Errorf("sqlite: complete shard: %w", err)
		}
		return db.insertJob(ctx, tx, sentineldf.FinalizeJob{OrgID: sh.OrgID, ScanID: sh.ScanID, Trace: tr}, int(priority))
	})
	if err != nil {
		return false, false, err
	}
	return recorded, last, nil
}

// FinishScan moves a scan to the terminal state with its final counts
// (errMsg kept for failed only) and enqueues its CallbackJob when it has a
// callback URL. A terminal scan is left alone: false.
func (db *DB) FinishScan(ctx context.Context, orgID, scanID, state string, counts sentineldf.Counts, errMsg string) (bool, error) {
	defer db.observe("FinishScan")()
	if !sentineldf.Terminal(state) {
		return false, sentineldf.FieldError("state", "%q is not a terminal state", state)
	}
	if state != sentineldf.StateFailed {
		errMsg = ""
	}
	if len(errMsg) > maxTextLen {
		errMsg = errMsg[:maxTextLen]
	}
	changed := false
	err := db.writeTx(ctx, "finish scan", func(tx txn) error {
		cur, err := loadScan(ctx, tx, orgID, scanID, false)
		if err != nil {
			return err
		}
		if sentineldf.Terminal(cur.State) {
			return nil
		}
		t := micros(now())
		if _, err := tx.ExecContext(ctx,
			`UPDATE scans SET state = ?, count_clean = ?, count_elevated = ?, count_quarantine = ?,
			 error_message = ?, finished_at = ?, updated_at = ? WHERE org_id = ? AND id = ?`,
			state, counts.Clean, counts.Elevated, counts.Quarantine, errMsg, t, t, orgID, scanID); err != nil {
			return fmt.Errorf("sqlite: finish scan: %w", err)
		}
		changed = true
		return db.enqueueCallback(ctx, tx, cur)
	})
	if err != nil {
		return false, err
	}
	return changed, nil
}

// enqueueCallback enqueues s's CallbackJob when it has a callback URL.
func (db *DB) enqueueCallback(ctx context.Context, tx txn, s *sentineldf.Scan) error {
	if s.CallbackURL == "" {
		return nil
	}
	return db.insertJob(ctx, tx, sentineldf.CallbackJob{OrgID: s.OrgID, ScanID: s.ID, Trace: s.Trace}, s.Priority)
}

// CancelScan cancels a scan that is not terminal, records ev and, like any
// scan that ends, enqueues its CallbackJob when it has a callback URL.
func (db *DB) CancelScan(ctx context.Context, orgID, scanID string, ev sentineldf.AuditEvent) (*sentineldf.Scan, error) {
	defer db.observe("CancelScan")()
	if ev.OrgID == "" {
		ev.OrgID = orgID
	}
	if ev.OrgID != orgID {
		return nil, sentineldf.FieldError("org_id", "audit event and scan must be of the same org")
	}
	var s *sentineldf.Scan
	err := db.writeTx(ctx, "cancel scan", func(tx txn) error {
		cur, err := loadScan(ctx, tx, orgID, scanID, false)
		if err != nil {
			return err
		}
		if sentineldf.Terminal(cur.State) {
			return sentineldf.Errorf(sentineldf.ECONFLICT, "scan is already %s", cur.State)
		}
		t := micros(now())
		if _, err := tx.ExecContext(ctx,
			`UPDATE scans SET state = ?, finished_at = ?, updated_at = ? WHERE org_id = ? AND id = ?`,
			sentineldf.StateCanceled, t, t, orgID, scanID); err != nil {
			return fmt.Errorf("sqlite: cancel scan: %w", err)
		}
		if err := appendAudit(ctx, tx, ev); err != nil {
			return err
		}
		if err := db.enqueueCallback(ctx, tx, cur); err != nil {
			return err
		}
		s, err = loadScan(ctx, tx, orgID, scanID, true)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// RecordUsage adds u unless its key was recorded for the org before (then
// false). u.At defaults to now.
func (db *DB) RecordUsage(ctx context.Context, u sentineldf.UsageRecord) (bool, error) {
	defer db.observe("RecordUsage")()
	var added bool
	err := db.writeTx(ctx, "record usage", func(tx txn) error {
		var err error
		added, err = insertUsage(ctx, tx, u)
		return err
	})
	return added, err
}

func insertUsage(ctx context.Context, tx txn, u sentineldf.UsageRecord) (bool, error) {
	if u.OrgID == "" || u.Key == "" || len(u.Key) > maxUsageKey || u.Docs < 0 || u.Bytes < 0 {
		return false, sentineldf.FieldError("usage", "org and key (at most %d bytes) required, counts not negative", maxUsageKey)
	}
	at := norm(u.At)
	res, err := tx.ExecContext(ctx, qInsertUsage, u.OrgID, u.Key, u.Docs, u.Bytes, micros(at), at.Format(time.DateOnly))
	if isForeignKeyViolation(err) {
		return false, sentineldf.NotFound("org")
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: record usage: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: record usage: %w", err)
	}
	return n == 1, nil
}

// Usage sums the org's usage recorded in [from, to) and per UTC day, the
// days in order.
func (db *DB) Usage(ctx context.Context, orgID string, from, to time.Time) (docs, bytes int64, daily []sentineldf.DailyUsage, err error) {
	defer db.observe("Usage")()
	if to.Before(from) {
		return 0, 0, nil, sentineldf.FieldError("to", "must not be before from")
	}
	rows, err := db.readStmts.QueryContext(ctx,
		`SELECT day, CAST(SUM(docs) AS BIGINT), CAST(SUM(bytes) AS BIGINT) FROM usage_records
		 WHERE org_id = ? AND recorded_at >= ? AND recorded_at < ? GROUP BY day ORDER BY day`,
		orgID, ceilMicros(from), ceilMicros(to))
	if err != nil {
		return 0, 0, nil, fmt.Errorf("sqlite: usage: %w", err)
	}
	defer rows.Close()
	daily = []sentineldf.DailyUsage{}
	for rows.Next() {
		var d sentineldf.DailyUsage
		if err := rows.Scan(&d.Date, &d.Docs, &d.Bytes); err != nil {
			return 0, 0, nil, fmt.Errorf("sqlite: usage: %w", err)
		}
		docs += d.Docs
		bytes += d.Bytes
		daily = append(daily, d)
	}
	if err := rows.Err(); err != nil {
		return 0, 0, nil, fmt.Errorf("sqlite: usage: %w", err)
	}
	return docs, bytes, daily, nil
}
