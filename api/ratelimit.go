package api

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/sentineldf/sentineldf"
)

// limiterLogEvery is how often a failing limiter is logged at most.
const limiterLogEvery = time.Minute

// rateLimit takes a token from the key's and the org's buckets under the
// org's plan and sets the RateLimit-* headers. An exhausted bucket is a
// 429 with Retry-After. When the limiter itself fails, the request is
// served (fail open, counted) or refused with 503, per the config.
func (s *Server) rateLimit(w http.ResponseWriter, r *http.Request, p *principal) error {
	plan, err := s.plan(p.Plan)
	if err != nil {
		return err
	}
	if plan.RatePerMinute <= 0 {
		return nil // unlimited
	}
	ctx := r.Context()
	limit := sentineldf.PerMinute(plan.RatePerMinute, max(plan.Burst, 1))
	kr, err := s.cfg.Limiter.Allow(ctx, "rl:key:"+p.KeyID, limit)
	if err != nil {
		return s.limiterFailed(ctx, err)
	}
	if !kr.Allowed {
		return s.limited(w, plan, kr, "key")
	}
	or, err := s.cfg.Limiter.Allow(ctx, "rl:org:"+p.OrgID, limit)
	if err != nil {
		return s.limiterFailed(ctx, err)
	}
	if !or.Allowed {
		return s.limited(w, plan, or, "org")
	}
	setRateHeaders(w, plan, min(kr.Remaining, or.Remaining), max(kr.ResetAfter, or.ResetAfter))
	return nil
}

// limited sets the headers of a refused request and returns its error.
func (s *Server) limited(w http.ResponseWriter, plan sentineldf.Plan, res sentineldf.LimitResult, reason string) error {
	s.metrics.RateLimited.WithLabelValues(reason).Inc()
	setRateHeaders(w, plan, 0, res.ResetAfter)
	retry := ceilSeconds(res.RetryAfter)
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	return sentineldf.Errorf(sentineldf.ERATELIMITED, "the per-%s rate limit of %d requests per minute is exhausted; retry in %d s", reason, plan.RatePerMinute, retry)
}

// limiterFailed handles a limiter error: counted and logged once a
// minute; nil (serve) when failing open, 503 otherwise.
func (s *Server) limiterFailed(ctx context.Context, err error) error {
	s.metrics.DependencyErrors.WithLabelValues("limiter").Inc()
	now := time.Now().Unix()
	last := s.limiterLogged.Load()
	if now-last >= int64(limiterLogEvery/time.Second) && s.limiterLogged.CompareAndSwap(last, now) {
		s.log.ErrorContext(ctx, "rate limiter failed", "error", err.Error(), "fail_open", s.cfg.RateLimitFailOpen)
	}
	if s.cfg.RateLimitFailOpen {
		return nil
	}
	return &sentineldf.Error{Code: sentineldf.EUNAVAILABLE, Message: "rate limiter unavailable; retry later", Err: err}
}

// setRateHeaders sets the RateLimit-* headers (IETF draft): the limit per
// minute, the requests left now and the seconds until the bucket is full.
func setRateHeaders(w http.ResponseWriter, plan sentineldf.Plan, remaining int, reset time.Duration) {
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(plan.RatePerMinute))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(remaining, 0)))
	h.Set("RateLimit-Reset", strconv.Itoa(max(int(math.Ceil(reset.Seconds())), 0)))
	h.Set("RateLimit-Policy", strconv.Itoa(plan.RatePerMinute)+";w=60;burst="+strconv.Itoa(max(plan.Burst, 1)))
}

// ceilSeconds is d in whole seconds, rounded up, at least 1.
func ceilSeconds(d time.Duration) int { return max(int(math.Ceil(d.Seconds())), 1) }
