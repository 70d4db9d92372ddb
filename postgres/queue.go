package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/sentineldf/sentineldf"
)

const (
	maxDeadJobs     = 1000
	maxLastErrorLen = 2048
)

// River's tables carry no tenant rows and no row-level security policy:
// the admin's view of the queue crosses orgs by design (see the package
// doc).

// QueueDepth counts jobs waiting to run: available, scheduled or retryable.
func (db *DB) QueueDepth(ctx context.Context) (int64, error) {
	defer db.observe("QueueDepth")()
	var n int64
	if err := db.pool.QueryRow(ctx,
		`SELECT COUNT(*) FROM river_job WHERE state IN ('available', 'scheduled', 'retryable')`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: queue depth: %w", err)
	}
	return n, nil
}

// DeadJobs lists jobs discarded after their last attempt, newest first, at
// most limit (0: 100; at most 1000).
func (db *DB) DeadJobs(ctx context.Context, limit int) ([]sentineldf.DeadJob, error) {
	defer db.observe("DeadJobs")()
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, maxDeadJobs)
	res, err := db.river.JobList(ctx, river.NewJobListParams().
		States(rivertype.JobStateDiscarded).
		OrderBy(river.JobListOrderByFinalizedAt, river.SortOrderDesc).
		First(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: dead jobs: %w", err)
	}
	out := make([]sentineldf.DeadJob, 0, len(res.Jobs))
	for _, j := range res.Jobs {
		out = append(out, deadJob(j))
	}
	return out, nil
}

// deadJob summarises a discarded job; org and scan come from its args.
func deadJob(j *rivertype.JobRow) sentineldf.DeadJob {
	d := sentineldf.DeadJob{ID: j.ID, Kind: j.Kind, Attempts: j.Attempt}
	var args struct {
		OrgID  string `json:"org_id"`
		ScanID string `json:"scan_id"`
	}
	if json.Unmarshal(j.EncodedArgs, &args) == nil {
		d.OrgID, d.ScanID = args.OrgID, args.ScanID
	}
	if n := len(j.Errors); n > 0 {
		d.LastError = j.Errors[n-1].Error
		if len(d.LastError) > maxLastErrorLen {
			d.LastError = d.LastError[:maxLastErrorLen]
		}
	}
	if j.FinalizedAt != nil {
		d.FinalizedAt = j.FinalizedAt.UTC()
	}
	return d
}

// RetryJob makes a dead (discarded) job available again, with one more
// attempt: ENOTFOUND for an unknown job, ECONFLICT for one that is not dead.
func (db *DB) RetryJob(ctx context.Context, id int64) error {
	defer db.observe("RetryJob")()
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: retry job: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	// Lock the job so that a concurrent retry or River's cleaner waits.
	var state string
	err = tx.QueryRow(ctx, `SELECT state::TEXT FROM river_job WHERE id = $1 FOR UPDATE`, id).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return sentineldf.NotFound("job")
	}
	if err != nil {
		return fmt.Errorf("postgres: retry job: %w", err)
	}
	if rivertype.JobState(state) != rivertype.JobStateDiscarded {
		return sentineldf.Errorf(sentineldf.ECONFLICT, "job is %s, not discarded", state)
	}
	if _, err := db.river.JobRetryTx(ctx, tx, id); err != nil {
		return fmt.Errorf("postgres: retry job: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: retry job: commit: %w", err)
	}
	return nil
}
