package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/sentineldf/sentineldf"
)

const (
	maxDeadJobs     = 1000
	maxLastErrorLen = 2048
)

// QueueDepth counts jobs waiting to run: available, scheduled or retryable.
func (db *DB) QueueDepth(ctx context.Context) (int64, error) {
	defer db.observe("QueueDepth")()
	var n int64
	if err := db.readStmts.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM river_job WHERE state IN ('available', 'scheduled', 'retryable')`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: queue depth: %w", err)
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
	var out []sentineldf.DeadJob
	err := db.readTx(ctx, "dead jobs", func(tx txn) error {
		res, err := db.river.JobListTx(ctx, tx.Tx, river.NewJobListParams().
			States(rivertype.JobStateDiscarded).
			OrderBy(river.JobListOrderByFinalizedAt, river.SortOrderDesc).
			First(limit))
		if err != nil {
			return fmt.Errorf("sqlite: dead jobs: %w", err)
		}
		out = make([]sentineldf.DeadJob, 0, len(res.Jobs))
		for _, j := range res.Jobs {
			out = append(out, deadJob(j))
		}
		return nil
	})
	return out, err
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
	return db.writeTx(ctx, "retry job", func(tx txn) error {
		j, err := db.river.JobGetTx(ctx, tx.Tx, id)
		if errors.Is(err, rivertype.ErrNotFound) {
			return sentineldf.NotFound("job")
		}
		if err != nil {
			return fmt.Errorf("sqlite: retry job: %w", err)
		}
		if j.State != rivertype.JobStateDiscarded {
			return sentineldf.Errorf(sentineldf.ECONFLICT, "job is %s, not discarded", j.State)
		}
		if _, err := db.river.JobRetryTx(ctx, tx.Tx, id); err != nil {
			return fmt.Errorf("sqlite: retry job: %w", err)
		}
		return nil
	})
}
