package sentineldf

import (
	"fmt"
	"time"
)

// Org is a tenant. Every other object belongs to exactly one org, and every
// query is scoped by its ID.
type Org struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Plan      string    `json:"plan"`
	CreatedAt time.Time `json:"created_at"`
	// Operator marks the org that runs the service; its admin keys may
	// manage other orgs.
	Operator bool `json:"operator,omitempty"`
}

// User is a person in an org. API keys act for the org; a user is recorded
// as a key's creator and as an MBOM's approver.
type User struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"org_id"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

// Plan is a billing plan's limits.
type Plan struct {
	Name string `json:"name"`
	// MonthlyDocuments is the document quota per calendar month (UTC); 0
	// means unlimited.
	MonthlyDocuments int64 `json:"monthly_documents"`
	// RatePerMinute and Burst configure the token bucket applied per key
	// and per org.
	RatePerMinute int `json:"rate_per_minute"`
	Burst         int `json:"burst"`
	// Priority orders jobs in the queue: a higher plan's jobs run first.
	// River priorities run from 1 (first) to 4 (last).
	Priority int `json:"priority"`
}

// Plans is a set of plans by name.
type Plans map[string]Plan

// DefaultPlans returns the built-in plans. Deployments may override them.
func DefaultPlans() Plans {
	return Plans{
		"free":       {Name: "free", MonthlyDocuments: 10_000, RatePerMinute: 60, Burst: 20, Priority: 3},
		"pro":        {Name: "pro", MonthlyDocuments: 1_000_000, RatePerMinute: 600, Burst: 100, Priority: 2},
		"enterprise": {Name: "enterprise", MonthlyDocuments: 0, RatePerMinute: 6_000, Burst: 500, Priority: 1},
	}
}

// Get returns the named plan or an EINVALID error.
func (p Plans) Get(name string) (Plan, error) {
	pl, ok := p[name]
	if !ok {
		return Plan{}, FieldError("plan", "unknown plan %q", name)
	}
	return pl, nil
}

// ValidateOrgName checks an org name: 1–100 printable characters.
func ValidateOrgName(name string) error {
	if name == "" || len(name) > 100 {
		return FieldError("name", "must be 1 to 100 bytes")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return FieldError("name", "must not contain control characters")
		}
	}
	return nil
}

// Period returns the usage period ("2006-01") containing t, in UTC.
func Period(t time.Time) string { return t.UTC().Format("2006-01") }

// PeriodBounds returns the start (inclusive) and end (exclusive) of period.
func PeriodBounds(period string) (time.Time, time.Time, error) {
	start, err := time.Parse("2006-01", period)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("period %q: %w", period, err)
	}
	return start, start.AddDate(0, 1, 0), nil
}
