package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/sentineldf/sentineldf"
)

// quotaRemaining returns the documents the org may still scan this month
// and whether its plan has a quota at all.
func (s *Server) quotaRemaining(ctx context.Context, p *principal) (remaining int64, limited bool, err error) {
	plan, err := s.plan(p.Plan)
	if err != nil {
		return 0, false, err
	}
	if plan.MonthlyDocuments <= 0 {
		return 0, false, nil
	}
	from, to, err := sentineldf.PeriodBounds(sentineldf.Period(s.now()))
	if err != nil {
		return 0, false, err
	}
	docs, _, _, err := s.cfg.Store.Usage(ctx, p.OrgID, from, to)
	if err != nil {
		return 0, false, fmt.Errorf("read usage: %w", err)
	}
	return max(plan.MonthlyDocuments-docs, 0), true, nil
}

// quotaExceeded counts a refusal for quota and returns its error.
func (s *Server) quotaExceeded(format string, args ...any) error {
	s.metrics.RateLimited.WithLabelValues("quota").Inc()
	return sentineldf.Errorf(sentineldf.EQUOTA, format, args...)
}

// usage is GET /v1/usage: the current period's usage, per UTC day, and
// the quota (null when unlimited).
func (s *Server) usage(w http.ResponseWriter, r *http.Request, p *principal) error {
	plan, err := s.plan(p.Plan)
	if err != nil {
		return err
	}
	period := sentineldf.Period(s.now())
	from, to, err := sentineldf.PeriodBounds(period)
	if err != nil {
		return err
	}
	docs, bytes, daily, err := s.cfg.Store.Usage(r.Context(), p.OrgID, from, to)
	if err != nil {
		return fmt.Errorf("read usage: %w", err)
	}
	if daily == nil {
		daily = []sentineldf.DailyUsage{}
	}
	resp := sentineldf.UsageResponse{Plan: plan.Name, Period: period, Docs: docs, Bytes: bytes, Daily: daily}
	if resp.Plan == "" {
		resp.Plan = p.Plan
	}
	if plan.MonthlyDocuments > 0 {
		quota := plan.MonthlyDocuments
		remain := max(quota-docs, 0)
		resp.Quota, resp.Remain = &quota, &remain
	}
	s.writeJSON(w, r, http.StatusOK, resp)
	return nil
}
