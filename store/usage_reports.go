package store

import (
	"context"
	"time"
)

// Reports for the usage page. Every query reads the hourly roll-ups (usage_hourly), never
// the raw events, so a 30-day view costs at most 720 hour rows per (client, user).

const (
	usageFilter = `h.app_id = $1 AND ($2 = '' OR h.client_id = $2) AND h.hour >= $3 AND h.hour < $4`

	qUsageSeries = `
		SELECT date_trunc($5, h.hour, 'UTC') AS bucket,
		       sum(h.calls) AS calls, sum(h.calls_2xx) AS calls_2xx, sum(h.calls_3xx) AS calls_3xx,
		       sum(h.calls_4xx) AS calls_4xx, sum(h.calls_5xx) AS calls_5xx, sum(h.credits) AS credits,
		       count(DISTINCT h.user_id) FILTER (WHERE h.user_id <> '` + NilUserID + `') AS users
		  FROM usage_hourly h WHERE ` + usageFilter + `
		 GROUP BY 1 ORDER BY 1`
	// Latency histograms summed per bucket: one row per (bucket, histogram slot).
	qUsageLatency = `
		SELECT date_trunc($5, h.hour, 'UTC') AS bucket, t.i AS slot, sum(t.n) AS n
		  FROM usage_hourly h, unnest(h.latency_buckets) WITH ORDINALITY AS t(n, i)
		 WHERE ` + usageFilter + `
		 GROUP BY 1, 2 ORDER BY 1, 2`
	qUsageTotals = `
		SELECT coalesce(sum(h.calls), 0) AS calls, coalesce(sum(h.calls_2xx), 0) AS calls_2xx,
		       coalesce(sum(h.calls_4xx), 0) AS calls_4xx, coalesce(sum(h.calls_5xx), 0) AS calls_5xx,
		       coalesce(sum(h.credits), 0) AS credits,
		       count(DISTINCT h.user_id) FILTER (WHERE h.user_id <> '` + NilUserID + `') AS users
		  FROM usage_hourly h WHERE ` + usageFilter
	qUsageTotalLatency = `
		SELECT t.i AS slot, sum(t.n) AS n
		  FROM usage_hourly h, unnest(h.latency_buckets) WITH ORDINALITY AS t(n, i)
		 WHERE ` + usageFilter + `
		 GROUP BY 1 ORDER BY 1`
	qTopUsers = `
		SELECT h.user_id, coalesce(u.email, '') AS email, sum(h.calls) AS calls, sum(h.credits) AS credits,
		       cb.balance
		  FROM usage_hourly h
		  LEFT JOIN users u ON u.id = h.user_id
		  LEFT JOIN credit_balances cb ON cb.app_id = h.app_id AND cb.user_id = h.user_id
		 WHERE ` + usageFilter + ` AND h.user_id <> '` + NilUserID + `'
		 GROUP BY h.user_id, u.email, cb.balance
		 ORDER BY calls DESC, h.user_id LIMIT $5`
)

const qTopRoutes = `
	SELECT h.method, h.route, sum(h.calls) AS calls, sum(h.errors) AS errors
	  FROM usage_routes_hourly h WHERE ` + usageFilter + `
	 GROUP BY h.method, h.route ORDER BY calls DESC, h.route LIMIT $5`

// TopRoute is one of an app's busiest routes in a period.
type TopRoute struct {
	Method string `db:"method"`
	Route  string `db:"route"`
	Calls  int64  `db:"calls"`
	Errors int64  `db:"errors"`
}

// TopRoutes returns the routes with the most calls in q's period.
func (s *Store) TopRoutes(ctx context.Context, q UsageQuery, limit int) ([]TopRoute, error) {
	var out []TopRoute
	err := s.selectContext(ctx, &out, qTopRoutes, q.AppID, q.ClientID, q.From, q.To, limit)
	return out, wrap("top routes", err)
}

// UsageBucket is one point of a usage series.
type UsageBucket struct {
	Bucket   time.Time `db:"bucket"`
	Calls    int64     `db:"calls"`
	Calls2xx int64     `db:"calls_2xx"`
	Calls3xx int64     `db:"calls_3xx"`
	Calls4xx int64     `db:"calls_4xx"`
	Calls5xx int64     `db:"calls_5xx"`
	Credits  int64     `db:"credits"`
	Users    int64     `db:"users"`
	// Latency is the summed latency histogram (see LatencyBucketBoundsMicros).
	Latency []int64 `db:"-"`
}

// UsageQuery selects an app's usage: one client or all (""), over [From, To).
type UsageQuery struct {
	AppID    string
	ClientID string
	From, To time.Time
}

// UsageSeries returns the usage per bucket ("hour" or "day") with its latency histogram.
// Buckets without calls are absent; the caller fills the gaps.
func (s *Store) UsageSeries(ctx context.Context, q UsageQuery, unit string) ([]UsageBucket, error) {
	var out []UsageBucket
	if err := s.selectContext(ctx, &out, qUsageSeries, q.AppID, q.ClientID, q.From, q.To, unit); err != nil {
		return nil, wrap("usage series", err)
	}
	var slots []struct {
		Bucket time.Time `db:"bucket"`
		Slot   int       `db:"slot"`
		N      int64     `db:"n"`
	}
	if err := s.selectContext(ctx, &slots, qUsageLatency, q.AppID, q.ClientID, q.From, q.To, unit); err != nil {
		return nil, wrap("usage latency", err)
	}
	byBucket := make(map[time.Time]int, len(out))
	for i := range out {
		byBucket[out[i].Bucket] = i
		out[i].Latency = make([]int64, len(LatencyBucketBoundsMicros)+1)
	}
	for _, sl := range slots {
		if i, ok := byBucket[sl.Bucket]; ok && sl.Slot >= 1 && sl.Slot <= len(out[i].Latency) {
			out[i].Latency[sl.Slot-1] += sl.N
		}
	}
	return out, nil
}

// UsageTotals sums a period: calls, errors, credits, distinct users and the latency histogram.
type UsageTotals struct {
	Calls    int64 `db:"calls"`
	Calls2xx int64 `db:"calls_2xx"`
	Calls4xx int64 `db:"calls_4xx"`
	Calls5xx int64 `db:"calls_5xx"`
	Credits  int64 `db:"credits"`
	Users    int64 `db:"users"`
	Latency  []int64
}

// UsageTotals sums the usage of q's period.
func (s *Store) UsageTotals(ctx context.Context, q UsageQuery) (UsageTotals, error) {
	var t UsageTotals
	if err := s.getContext(ctx, &t, qUsageTotals, q.AppID, q.ClientID, q.From, q.To); err != nil {
		return t, wrap("usage totals", err)
	}
	var slots []struct {
		Slot int   `db:"slot"`
		N    int64 `db:"n"`
	}
	if err := s.selectContext(ctx, &slots, qUsageTotalLatency, q.AppID, q.ClientID, q.From, q.To); err != nil {
		return t, wrap("usage total latency", err)
	}
	t.Latency = make([]int64, len(LatencyBucketBoundsMicros)+1)
	for _, sl := range slots {
		if sl.Slot >= 1 && sl.Slot <= len(t.Latency) {
			t.Latency[sl.Slot-1] += sl.N
		}
	}
	return t, nil
}

// TopUser is one of an app's heaviest users in a period.
type TopUser struct {
	UserID  string `db:"user_id"`
	Email   string `db:"email"` // empty once the account was deleted
	Calls   int64  `db:"calls"`
	Credits int64  `db:"credits"`
	Balance *int64 `db:"balance"` // nil before the first metered call
}

// TopUsers returns the users with the most calls in q's period.
func (s *Store) TopUsers(ctx context.Context, q UsageQuery, limit int) ([]TopUser, error) {
	var out []TopUser
	err := s.selectContext(ctx, &out, qTopUsers, q.AppID, q.ClientID, q.From, q.To, limit)
	return out, wrap("top users", err)
}
