package postgres

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5/pgconn"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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

// scanWithFiles selects scans s with their files, as arrays in index order,
// so that a scan and its files are one statement: one snapshot, one round
// trip. The caller appends the WHERE clause on s.
const scanWithFiles = `SELECT s.org_id, s.id, s.state, s.priority, s.callback_url, s.docs_done, s.docs_total,
	s.bytes_done, s.bytes_total, s.count_clean, s.count_elevated, s.count_quarantine, s.cache_hits, s.malformed,
	s.error_message, s.created_by, s.trace, s.created_at, s.updated_at, s.started_at, s.finished_at,
	f.idx, f.names, f.sizes, f.shas, f.uploaded
	FROM scans s CROSS JOIN LATERAL (
		SELECT array_agg(file_index ORDER BY file_index) AS idx, array_agg(name ORDER BY file_index) AS names,
			array_agg(size_bytes ORDER BY file_index) AS sizes, array_agg(sha256 ORDER BY file_index) AS shas,
			array_agg(uploaded ORDER BY file_index) AS uploaded
		FROM scan_files WHERE org_id = s.org_id AND scan_id = s.id) f`

// Hot queries (the tests EXPLAIN them).
const (
	// qLoadScan is the status read that clients poll.
	qLoadScan = scanWithFiles + ` WHERE s.org_id = $1 AND s.id = $2`
	// qLockScan reads a scan to change its state, locking its row so that
	// concurrent state changes of one scan apply one after the other.
	qLockScan = `SELECT ` + scanColumns + ` FROM scans WHERE org_id = $1 AND id = $2 FOR UPDATE`
	// qListScans is the first page of a listing; qListScansAfter a page
	// after the cursor ($2, $3).
	qListScans      = scanWithFiles + ` WHERE s.org_id = $1 ORDER BY s.created_at DESC, s.id DESC LIMIT $2`
	qListScansAfter = scanWithFiles + ` WHERE s.org_id = $1 AND (s.created_at, s.id) < ($2, $3)
		ORDER BY s.created_at DESC, s.id DESC LIMIT $4`
	qShards = `SELECT shard_index, file_index, byte_offset, byte_length, first_line, done, docs, bytes,
		count_clean, count_elevated, count_quarantine, cache_hits, malformed
		FROM scan_shards WHERE org_id = $1 AND scan_id = $2 ORDER BY shard_index`
	qCompleteShard = `UPDATE scan_shards SET done = TRUE, docs = $1, bytes = $2, count_clean = $3, count_elevated = $4,
		count_quarantine = $5, cache_hits = $6, malformed = $7
		WHERE org_id = $8 AND scan_id = $9 AND shard_index = $10 AND done = FALSE`
	qShardExists = `SELECT 1 FROM scan_shards WHERE org_id = $1 AND scan_id = $2 AND shard_index = $3`
	qAdvanceScan = `UPDATE scans SET docs_done = docs_done + $1, bytes_done = bytes_done + $2,
		count_clean = count_clean + $3, count_elevated = count_elevated + $4, count_quarantine = count_quarantine + $5,
		cache_hits = cache_hits + $6, malformed = malformed + $7, shards_done = shards_done + 1, updated_at = $8
		WHERE org_id = $9 AND id = $10
		RETURNING shards_done, shards_total, state, priority, trace`
	// qInsertUsage records a usage row only when its key is new to the
	// org's ledger, in one statement.
	qInsertUsage = `WITH k AS (
			INSERT INTO usage_keys (org_id, usage_key, recorded_at) VALUES ($1, $2, $5)
			ON CONFLICT (org_id, usage_key) DO NOTHING RETURNING org_id)
		INSERT INTO usage_records (org_id, usage_key, docs, bytes, recorded_at, day)
		SELECT org_id, $2, $3, $4, $5, $6 FROM k`
	// qUsage sums a period by UTC day: an index-only scan of the period's
	// partitions.
	qUsage = `SELECT day, SUM(docs)::BIGINT, SUM(bytes)::BIGINT FROM usage_records
		WHERE org_id = $1 AND recorded_at >= $2 AND recorded_at < $3 GROUP BY day ORDER BY day`
)

// scanScan reads a row of scanColumns.
func scanScan(row pgx.Row) (*sentineldf.Scan, error) {
	s := &sentineldf.Scan{Files: []sentineldf.ScanFile{}}
	var trace string
	var created, updated int64
	var started, finished *int64
	if err := row.Scan(scanDest(s, &trace, &created, &updated, &started, &finished)...); err != nil {
		return nil, err
	}
	return s, finishScan(s, trace, created, updated, started, finished)
}

// scanScanWithFiles reads a row of scanWithFiles.
func scanScanWithFiles(row pgx.Row) (*sentineldf.Scan, error) {
	s := &sentineldf.Scan{}
	var (
		trace             string
		created, updated  int64
		started, finished *int64
		idx, sizes        []int64
		names, shas       []string
		uploaded          []bool
	)
	dest := append(scanDest(s, &trace, &created, &updated, &started, &finished), &idx, &names, &sizes, &shas, &uploaded)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	if len(names) != len(idx) || len(sizes) != len(idx) || len(shas) != len(idx) || len(uploaded) != len(idx) {
		return nil, fmt.Errorf("scan %s: inconsistent file arrays", s.ID)
	}
	s.Files = make([]sentineldf.ScanFile, len(idx))
	for i := range idx {
		s.Files[i] = sentineldf.ScanFile{Index: int(idx[i]), Name: names[i], Size: sizes[i], SHA256: shas[i], Uploaded: uploaded[i]}
	}
	return s, finishScan(s, trace, created, updated, started, finished)
}

func scanDest(s *sentineldf.Scan, trace *string, created, updated *int64, started, finished **int64) []any {
	return []any{&s.OrgID, &s.ID, &s.State, &s.Priority, &s.CallbackURL,
		&s.Progress.DocsDone, &s.Progress.DocsTotal, &s.Progress.BytesDone, &s.Progress.BytesTotal,
		&s.Counts.Clean, &s.Counts.Elevated, &s.Counts.Quarantine, &s.CacheHits, &s.Malformed,
		&s.Error, &s.CreatedBy, trace, created, updated, started, finished}
}

func finishScan(s *sentineldf.Scan, trace string, created, updated int64, started, finished *int64) error {
	var err error
	if s.Trace, err = decodeMap(trace); err != nil {
		return fmt.Errorf("scan %s: %w", s.ID, err)
	}
	s.CreatedAt = fromMicros(created)
	s.UpdatedAt = fromMicros(updated)
	s.StartedAt = fromNullMicros(started)
	s.FinishedAt = fromNullMicros(finished)
	return nil
}

// loadScan reads one of the org's scans with its files in tx.
func loadScan(ctx context.Context, tx pgx.Tx, orgID, scanID string) (*sentineldf.Scan, error) {
	s, err := scanScanWithFiles(tx.QueryRow(ctx, qLoadScan, orgID, scanID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sentineldf.NotFound("scan")
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: scan: %w", err)
	}
	return s, nil
}

// lockScan reads one of the org's scans, without files, and locks its row
// until tx ends.
func lockScan(ctx context.Context, tx pgx.Tx, orgID, scanID string) (*sentineldf.Scan, error) {
	s, err := scanScan(tx.QueryRow(ctx, qLockScan, orgID, scanID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sentineldf.NotFound("scan")
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: scan: %w", err)
	}
	return s, nil
}

// CreateScan stores a new scan with its files. It sets s.State to
// awaiting_upload, each file's Index to its position, and CreatedAt (when
// zero) and UpdatedAt.
func (db *DB) CreateScan(ctx context.Context, s *sentineldf.Scan) error {
	defer db.observe("CreateScan")()
	if s == nil || s.ID == "" || len(s.ID) > maxNameLen || s.OrgID == "" {
		return sentineldf.FieldError("scan", "id and org are required")
	}
	if len(s.Files) == 0 || len(s.Files) > sentineldf.MaxFilesPerScan {
		return sentineldf.FieldError("files", "must have 1 to %d files", sentineldf.MaxFilesPerScan)
	}
	if len(s.CallbackURL) > maxTextLen || len(s.CreatedBy) > maxNameLen {
		return sentineldf.FieldError("scan", "callback_url or created_by too long")
	}
	var (
		idx, sizes  = make([]int64, len(s.Files)), make([]int64, len(s.Files))
		names, shas = make([]string, len(s.Files)), make([]string, len(s.Files))
		uploaded    = make([]bool, len(s.Files))
	)
	for i := range s.Files {
		f := &s.Files[i]
		if err := sentineldf.ValidateFileName(f.Name); err != nil {
			return err
		}
		if f.Size < 0 || len(f.SHA256) > 64 {
			return sentineldf.FieldError("files.size", "invalid size or sha256")
		}
		f.Index = i
		idx[i], names[i], sizes[i], shas[i], uploaded[i] = int64(i), f.Name, f.Size, f.SHA256, f.Uploaded
	}
	trace, err := encodeMap(s.Trace)
	if err != nil {
		return fmt.Errorf("postgres: create scan: %w", err)
	}
	if len(trace) > maxTextLen {
		return sentineldf.FieldError("trace", "too large")
	}
	s.State = sentineldf.StateAwaitingUpload
	s.CreatedAt = norm(s.CreatedAt)
	s.UpdatedAt = s.CreatedAt
	s.StartedAt, s.FinishedAt, s.Error = nil, nil, ""
	b := scopedBatch(qScopeOrg, s.OrgID).
		queue(`INSERT INTO scans (`+scanColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, NULL, NULL)`,
			s.OrgID, s.ID, s.State, s.Priority, s.CallbackURL,
			s.Progress.DocsDone, s.Progress.DocsTotal, s.Progress.BytesDone, s.Progress.BytesTotal,
			s.Counts.Clean, s.Counts.Elevated, s.Counts.Quarantine, s.CacheHits, s.Malformed,
			"", s.CreatedBy, trace, micros(s.CreatedAt), micros(s.UpdatedAt)).
		queue(`INSERT INTO scan_files (org_id, scan_id, file_index, name, size_bytes, sha256, uploaded)
			SELECT $1, $2, * FROM unnest($3::BIGINT[], $4::TEXT[], $5::BIGINT[], $6::TEXT[], $7::BOOLEAN[])`,
			s.OrgID, s.ID, idx, names, sizes, shas, uploaded)
	return db.sendBatch(ctx, "create scan", b, func(br pgx.BatchResults) error {
		_, err := br.Exec()
		switch {
		case isUniqueViolation(err):
			return sentineldf.Errorf(sentineldf.ECONFLICT, "scan already exists")
		case isForeignKeyViolation(err):
			return sentineldf.NotFound("org")
		case err != nil:
			return fmt.Errorf("postgres: create scan: %w", err)
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("postgres: create scan files: %w", err)
		}
		return nil
	})
}

// Scan returns one of the org's scans with its files: one statement, sent
// with its scope in one round trip. It is the status read that clients
// poll.
func (db *DB) Scan(ctx context.Context, orgID, scanID string) (*sentineldf.Scan, error) {
	defer db.observe("Scan")()
	var s *sentineldf.Scan
	err := db.sendBatch(ctx, "scan", scopedBatch(qScopeOrg, orgID).queue(qLoadScan, orgID, scanID), func(br pgx.BatchResults) error {
		var err error
		s, err = scanScanWithFiles(br.QueryRow())
		if errors.Is(err, pgx.ErrNoRows) {
			return sentineldf.NotFound("scan")
		}
		if err != nil {
			return fmt.Errorf("postgres: scan: %w", err)
		}
		return nil
	})
	return s, err
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
	b := scopedBatch(qScopeOrg, orgID)
	if cursor == "" {
		b.queue(qListScans, orgID, limit+1)
	} else {
		at, id, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		b.queue(qListScansAfter, orgID, at, id, limit+1)
	}
	scans := []*sentineldf.Scan{}
	err := db.sendBatch(ctx, "list scans", b, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("postgres: list scans: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			s, err := scanScanWithFiles(rows)
			if err != nil {
				return fmt.Errorf("postgres: list scans: %w", err)
			}
			scans = append(scans, s)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("postgres: list scans: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	var next string
	if len(scans) > limit {
		scans = scans[:limit]
		last := scans[limit-1]
		next = encodeCursor(micros(last.CreatedAt), last.ID)
	}
	return scans, next, nil
}

// A cursor is base64url("v1:{created_at µs}:{scan id}"): the last scan of
// the previous page (the same cursors as the sqlite store's).
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
	err := db.orgTx(ctx, "confirm scan", orgID, func(tx pgx.Tx) error {
		cur, err := lockScan(ctx, tx, orgID, scanID)
		if err != nil {
			return err
		}
		if cur.State != sentineldf.StateAwaitingUpload {
			return sentineldf.Errorf(sentineldf.ECONFLICT, "scan is %s, not %s", cur.State, sentineldf.StateAwaitingUpload)
		}
		if _, err := tx.Exec(ctx, `UPDATE scans SET state = $1, priority = $2, updated_at = $3 WHERE org_id = $4 AND id = $5`,
			sentineldf.StateQueued, priority, micros(now()), orgID, scanID); err != nil {
			return fmt.Errorf("postgres: confirm scan: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE scan_files SET uploaded = TRUE WHERE org_id = $1 AND scan_id = $2`,
			orgID, scanID); err != nil {
			return fmt.Errorf("postgres: confirm scan: %w", err)
		}
		if err := db.insertJob(ctx, tx, sentineldf.PlanJob{OrgID: orgID, ScanID: scanID, Trace: cur.Trace}, priority); err != nil {
			return fmt.Errorf("postgres: confirm scan: %w", err)
		}
		s, err = loadScan(ctx, tx, orgID, scanID)
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
	var (
		index, file, offset, length, line = make([]int64, len(shards)), make([]int64, len(shards)),
			make([]int64, len(shards)), make([]int64, len(shards)), make([]int64, len(shards))
	)
	for i, sh := range shards {
		if sh.Index != i || sh.FileIndex < 0 || sh.Offset < 0 || sh.Length < 0 || sh.FirstLine < 0 {
			return sentineldf.FieldError("shards", "shard %d: bad index or range", i)
		}
		index[i], file[i], offset[i], length[i], line[i] = int64(sh.Index), int64(sh.FileIndex), sh.Offset, sh.Length, sh.FirstLine
	}
	if total.DocsTotal < 0 || total.BytesTotal < 0 {
		return sentineldf.FieldError("total", "must not be negative")
	}
	return db.orgTx(ctx, "start scan", orgID, func(tx pgx.Tx) error {
		cur, err := lockScan(ctx, tx, orgID, scanID)
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
		// COPY is not allowed on tables with row-level security; one INSERT
		// of arrays is the next best thing.
		if _, err := tx.Exec(ctx,
			`INSERT INTO scan_shards (org_id, scan_id, shard_index, file_index, byte_offset, byte_length, first_line)
			 SELECT $1, $2, * FROM unnest($3::BIGINT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[], $7::BIGINT[])`,
			orgID, scanID, index, file, offset, length, line); err != nil {
			return fmt.Errorf("postgres: start scan: insert shards: %w", err)
		}
		t := micros(now())
		if _, err := tx.Exec(ctx,
			`UPDATE scans SET state = $1, started_at = $2, updated_at = $2, docs_done = 0, bytes_done = 0,
			 docs_total = $3, bytes_total = $4, shards_total = $5, shards_done = 0
			 WHERE org_id = $6 AND id = $7`,
			sentineldf.StateRunning, t, total.DocsTotal, total.BytesTotal, len(shards), orgID, scanID); err != nil {
			return fmt.Errorf("postgres: start scan: %w", err)
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
		if _, err := db.river.InsertManyTx(ctx, tx, params); err != nil {
			return fmt.Errorf("postgres: start scan: enqueue shards: %w", err)
		}
		return nil
	})
}

// Shards returns the scan's shards in index order.
func (db *DB) Shards(ctx context.Context, orgID, scanID string) ([]sentineldf.Shard, error) {
	defer db.observe("Shards")()
	out := []sentineldf.Shard{}
	b := scopedBatch(qScopeOrg, orgID).queue(qScanExists, orgID, scanID).queue(qShards, orgID, scanID)
	err := db.sendBatch(ctx, "shards", b, func(br pgx.BatchResults) error {
		if err := scanExists(br.QueryRow()); err != nil {
			return err
		}
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("postgres: shards: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			sh := sentineldf.Shard{OrgID: orgID, ScanID: scanID}
			if err := rows.Scan(&sh.Index, &sh.FileIndex, &sh.Offset, &sh.Length, &sh.FirstLine, &sh.Done,
				&sh.Docs, &sh.Bytes, &sh.Counts.Clean, &sh.Counts.Elevated, &sh.Counts.Quarantine,
				&sh.CacheHits, &sh.Malformed); err != nil {
				return fmt.Errorf("postgres: shards: %w", err)
			}
			out = append(out, sh)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("postgres: shards: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
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
//
// Concurrent calls serialise on the shard's row (only the first flips
// done), then on the scan's row (each sees the others' progress), so
// exactly one sees the last shard done.
func (db *DB) CompleteShard(ctx context.Context, sh sentineldf.Shard) (recorded, last bool, err error) {
	defer db.observe("CompleteShard")()
	if sh.Docs < 0 || sh.Bytes < 0 || sh.Counts.Clean < 0 || sh.Counts.Elevated < 0 || sh.Counts.Quarantine < 0 ||
		sh.CacheHits < 0 || sh.Malformed < 0 {
		return false, false, sentineldf.FieldError("shard", "counts must not be negative")
	}
	t := now()
	err = db.withUsagePartition(ctx, t, func() error {
		recorded, last = false, false
		return db.orgTx(ctx, "complete shard", sh.OrgID, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, qCompleteShard, sh.Docs, sh.Bytes, sh.Counts.Clean, sh.Counts.Elevated, sh.Counts.Quarantine,
				sh.CacheHits, sh.Malformed, sh.OrgID, sh.ScanID, sh.Index)
			if err != nil {
				return fmt.Errorf("postgres: complete shard: %w", err)
			}
			if tag.RowsAffected() == 0 {
				var one int
				err := tx.QueryRow(ctx, qShardExists, sh.OrgID, sh.ScanID, sh.Index).Scan(&one)
				if errors.Is(err, pgx.ErrNoRows) {
					return sentineldf.NotFound("shard")
				}
				if err != nil {
					return fmt.Errorf("postgres: complete shard: %w", err)
				}
				return nil // already done
			}
			if _, err := insertUsage(ctx, tx, sentineldf.UsageRecord{
				OrgID: sh.OrgID, Key: shardUsageKey(sh.ScanID, sh.Index), Docs: sh.Docs, Bytes: sh.Bytes, At: t,
			}); err != nil {
				return err
			}
			var (
				done, total, priority int64
				state, trace          string
			)
			if err := tx.QueryRow(ctx, qAdvanceScan, sh.Docs, sh.Bytes, sh.Counts.Clean, sh.Counts.Elevated, sh.Counts.Quarantine,
				sh.CacheHits, sh.Malformed, micros(t), sh.OrgID, sh.ScanID).Scan(&done, &total, &state, &priority, &trace); err != nil {
				return fmt.Errorf("postgres: complete shard: progress: %w", err)
			}
			recorded = true
			if done != total || state != sentineldf.StateRunning {
				return nil
			}
			last = true
			tr, err := decodeMap(trace)
			if err != nil {
				return fmt.Errorf("postgres: complete shard: %w", err)
			}
			return db.insertJob(ctx, tx, sentineldf.FinalizeJob{OrgID: sh.OrgID, ScanID: sh.ScanID, Trace: tr}, int(priority))
		})
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
	err := db.orgTx(ctx, "finish scan", orgID, func(tx pgx.Tx) error {
		cur, err := lockScan(ctx, tx, orgID, scanID)
		if err != nil {
			return err
		}
		if sentineldf.Terminal(cur.State) {
			return nil
		}
		t := micros(now())
		if _, err := tx.Exec(ctx,
			`UPDATE scans SET state = $1, count_clean = $2, count_elevated = $3, count_quarantine = $4,
			 error_message = $5, finished_at = $6, updated_at = $6 WHERE org_id = $7 AND id = $8`,
			state, counts.Clean, counts.Elevated, counts.Quarantine, errMsg, t, orgID, scanID); err != nil {
			return fmt.Errorf("postgres: finish scan: %w", err)
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
func (db *DB) enqueueCallback(ctx context.Context, tx pgx.Tx, s *sentineldf.Scan) error {
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
	err := db.orgTx(ctx, "cancel scan", orgID, func(tx pgx.Tx) error {
		cur, err := lockScan(ctx, tx, orgID, scanID)
		if err != nil {
			return err
		}
		if sentineldf.Terminal(cur.State) {
			return sentineldf.Errorf(sentineldf.ECONFLICT, "scan is already %s", cur.State)
		}
		t := micros(now())
		if _, err := tx.Exec(ctx,
			`UPDATE scans SET state = $1, finished_at = $2, updated_at = $2 WHERE org_id = $3 AND id = $4`,
			sentineldf.StateCanceled, t, orgID, scanID); err != nil {
			return fmt.Errorf("postgres: cancel scan: %w", err)
		}
		if err := appendAudit(ctx, tx, orgID, ev); err != nil {
			return err
		}
		if err := db.enqueueCallback(ctx, tx, cur); err != nil {
			return err
		}
		s, err = loadScan(ctx, tx, orgID, scanID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Usage times must fall in these years: each month recorded into becomes a
// partition, so a wild timestamp must not create one.
const (
	minUsageYear = 1970
	maxUsageYear = 9999
)

// RecordUsage adds u unless its key was recorded for the org before (then
// false). u.At defaults to now.
func (db *DB) RecordUsage(ctx context.Context, u sentineldf.UsageRecord) (bool, error) {
	defer db.observe("RecordUsage")()
	if err := validateUsage(u); err != nil {
		return false, err
	}
	u.At = norm(u.At)
	var added bool
	err := db.withUsagePartition(ctx, u.At, func() error {
		return db.orgTx(ctx, "record usage", u.OrgID, func(tx pgx.Tx) error {
			var err error
			added, err = insertUsage(ctx, tx, u)
			return err
		})
	})
	return added, err
}

func validateUsage(u sentineldf.UsageRecord) error {
	if u.OrgID == "" || u.Key == "" || len(u.Key) > maxUsageKey || u.Docs < 0 || u.Bytes < 0 {
		return sentineldf.FieldError("usage", "org and key (at most %d bytes) required, counts not negative", maxUsageKey)
	}
	if !u.At.IsZero() && (u.At.UTC().Year() < minUsageYear || u.At.UTC().Year() > maxUsageYear) {
		return sentineldf.FieldError("usage.at", "must be in the years %d to %d", minUsageYear, maxUsageYear)
	}
	return nil
}

// insertUsage records u in tx, which is scoped to u.OrgID; the partition
// of u.At's month must exist (withUsagePartition).
func insertUsage(ctx context.Context, tx pgx.Tx, u sentineldf.UsageRecord) (bool, error) {
	if err := validateUsage(u); err != nil {
		return false, err
	}
	at := norm(u.At)
	tag, err := tx.Exec(ctx, qInsertUsage, u.OrgID, u.Key, u.Docs, u.Bytes, micros(at), at.Format(time.DateOnly))
	if isForeignKeyViolation(err) {
		return false, sentineldf.NotFound("org")
	}
	if err != nil {
		return false, fmt.Errorf("postgres: record usage: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Usage sums the org's usage recorded in [from, to) and per UTC day, the
// days in order.
func (db *DB) Usage(ctx context.Context, orgID string, from, to time.Time) (docs, bytes int64, daily []sentineldf.DailyUsage, err error) {
	defer db.observe("Usage")()
	if to.Before(from) {
		return 0, 0, nil, sentineldf.FieldError("to", "must not be before from")
	}
	daily = []sentineldf.DailyUsage{}
	b := scopedBatch(qScopeOrg, orgID).queue(qUsage, orgID, ceilMicros(from), ceilMicros(to))
	err = db.sendBatch(ctx, "usage", b, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("postgres: usage: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var d sentineldf.DailyUsage
			if err := rows.Scan(&d.Date, &d.Docs, &d.Bytes); err != nil {
				return fmt.Errorf("postgres: usage: %w", err)
			}
			docs += d.Docs
			bytes += d.Bytes
			daily = append(daily, d)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("postgres: usage: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, 0, nil, err
	}
	return docs, bytes, daily, nil
}

// monthKey identifies t's calendar month (UTC).
func monthKey(t time.Time) int {
	t = t.UTC()
	return t.Year()*12 + int(t.Month()) - 1
}

// ensurePartition makes sure the usage partition of t's month exists.
func (db *DB) ensurePartition(ctx context.Context, t time.Time) error {
	k := monthKey(t)
	if _, ok := db.partitions.Load(k); ok {
		return nil
	}
	t = t.UTC()
	month := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	if _, err := db.pool.Exec(ctx, `SELECT sentineldf_ensure_usage_partition($1::DATE)`, month); err != nil && !isDuplicateTable(err) {
		// Processes starting together can race to create the same
		// partition; losing that race means it exists, which is the goal.
		return fmt.Errorf("postgres: usage partition %s: %w", month.Format("2006-01"), err)
	}
	db.partitions.Store(k, struct{}{})
	return nil
}

// withUsagePartition runs fn, which records usage at t, once the month's
// partition exists. Should the partition have been dropped since this
// process created it (fn fails for want of a partition), it is created
// again and fn runs once more.
func (db *DB) withUsagePartition(ctx context.Context, t time.Time, fn func() error) error {
	if err := db.ensurePartition(ctx, t); err != nil {
		return err
	}
	err := fn()
	if !isNoPartition(err) {
		return err
	}
	db.partitions.Delete(monthKey(t))
	if err := db.ensurePartition(ctx, t); err != nil {
		return err
	}
	return fn()
}

// isNoPartition reports an insert into usage_records for a month that has
// no partition.
func isNoPartition(err error) bool {
	pe := pgError(err)
	return pe != nil && pe.Code == sqlstateCheckViolation && strings.HasPrefix(pe.Message, "no partition of relation")
}

// isDuplicateTable reports a CREATE TABLE that lost a race to another
// session (duplicate_table, or the unique violation on pg_type that a
// concurrent CREATE can raise instead).
func isDuplicateTable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42P07" || pe.Code == "23505" && strings.HasPrefix(pe.ConstraintName, "pg_type"))
}
