package redis

import (
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"

	"github.com/sentineldf/sentineldf"
)

// TestResult checks the conversion of redis_rate's float-derived results.
func TestResult(t *testing.T) {
	const ms = time.Millisecond
	perSec := func(rate, burst int) sentineldf.Limit {
		return sentineldf.Limit{Rate: rate, Period: time.Second, Burst: burst}
	}
	for _, tt := range []struct {
		name  string
		limit sentineldf.Limit
		in    redis_rate.Result
		want  sentineldf.LimitResult
	}{
		{
			name:  "allowed, exact",
			limit: perSec(10, 3),
			in:    redis_rate.Result{Allowed: 1, Remaining: 2, RetryAfter: -1, ResetAfter: 100 * ms},
			want:  sentineldf.LimitResult{Allowed: true, Remaining: 2, ResetAfter: 100 * ms},
		},
		{
			// The script's float quotient fell a hair short and truncated.
			name:  "allowed, reset a hair over one interval",
			limit: sentineldf.PerMinute(600, 100),
			in:    redis_rate.Result{Allowed: 1, Remaining: 98, RetryAfter: -1, ResetAfter: 100*ms + 3},
			want:  sentineldf.LimitResult{Allowed: true, Remaining: 99, ResetAfter: 100*ms + 3},
		},
		{
			name:  "allowed, partly refilled",
			limit: perSec(10, 3),
			in:    redis_rate.Result{Allowed: 1, Remaining: 1, RetryAfter: -1, ResetAfter: 150 * ms},
			want:  sentineldf.LimitResult{Allowed: true, Remaining: 1, ResetAfter: 150 * ms},
		},
		{
			name:  "allowed, last token",
			limit: perSec(10, 3),
			in:    redis_rate.Result{Allowed: 1, Remaining: 0, RetryAfter: -1, ResetAfter: 300 * ms},
			want:  sentineldf.LimitResult{Allowed: true, Remaining: 0, ResetAfter: 300 * ms},
		},
		{
			name:  "allowed, reset rounded under the minimum",
			limit: perSec(10, 3),
			in:    redis_rate.Result{Allowed: 1, Remaining: 2, RetryAfter: -1, ResetAfter: 99 * ms},
			want:  sentineldf.LimitResult{Allowed: true, Remaining: 2, ResetAfter: 99 * ms},
		},
		{
			name:  "denied",
			limit: perSec(10, 3),
			in:    redis_rate.Result{Allowed: 0, Remaining: 0, RetryAfter: 60 * ms, ResetAfter: 260 * ms},
			want:  sentineldf.LimitResult{Allowed: false, RetryAfter: 60 * ms, ResetAfter: 260 * ms},
		},
		{
			name:  "denied, retry rounded to zero",
			limit: perSec(10, 3),
			in:    redis_rate.Result{Allowed: 0, Remaining: 0, RetryAfter: 0, ResetAfter: 200 * ms},
			want:  sentineldf.LimitResult{Allowed: false, RetryAfter: time.Microsecond, ResetAfter: 200 * ms},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := result(tt.limit, &tt.in); got != tt.want {
				t.Fatalf("result = %+v, want %+v", got, tt.want)
			}
		})
	}
}
