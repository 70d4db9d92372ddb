package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/sentineldf/sentineldf"
)

// Dead-letter listing limits.
const (
	defaultDeadJobs = 100
	maxDeadJobs     = 1000
)

// DeadJobsResponse is GET /v1/admin/jobs/dead.
type DeadJobsResponse struct {
	Jobs []sentineldf.DeadJob `json:"jobs"`
}

// deadJobs is GET /v1/admin/jobs/dead?limit=.
func (s *Server) deadJobs(w http.ResponseWriter, r *http.Request, p *principal) error {
	limit, err := intParam(r, "limit", defaultDeadJobs, 1, maxDeadJobs)
	if err != nil {
		return err
	}
	jobs, err := s.cfg.Queue.DeadJobs(r.Context(), limit)
	if err != nil {
		return fmt.Errorf("list dead jobs: %w", err)
	}
	if jobs == nil {
		jobs = []sentineldf.DeadJob{}
	}
	s.writeJSON(w, r, http.StatusOK, DeadJobsResponse{Jobs: jobs})
	return nil
}

// retryJob is POST /v1/admin/jobs/{id}/retry.
func (s *Server) retryJob(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return sentineldf.FieldError("id", "must be a positive job id")
	}
	ctx := r.Context()
	if err := s.cfg.Queue.RetryJob(ctx, id); err != nil {
		return fmt.Errorf("retry job %d: %w", id, err)
	}
	ev := sentineldf.AuditEvent{
		OrgID: p.OrgID, Action: sentineldf.AuditJobRetried, Actor: p.KeyID,
		Target: "job:" + strconv.FormatInt(id, 10), RequestID: infoOf(ctx).id, At: s.now().UTC(),
	}
	if err := s.cfg.Store.AppendAudit(ctx, ev); err != nil {
		return fmt.Errorf("audit job retry: %w", err)
	}
	s.writeJSON(w, r, http.StatusOK, struct{}{})
	return nil
}

// intParam parses the optional integer query parameter name within
// [lo, hi], def when absent.
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, sentineldf.FieldError(name, "must be an integer from %d to %d", lo, hi)
	}
	return n, nil
}
