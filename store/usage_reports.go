package store

import (
	"context"
	"slices"
	"time"

	"github.com/lib/pq"
)

// Reports for the usage page. They read roll-ups only, never raw events: calls, credits
// and latency from usage_client_hourly (one row per client and hour), users from
// usage_hourly for hourly buckets or usage_user_daily for daily ones, routes from
// usage_routes_hourly. A 30-day view of one app reads a few thousand rows.

const (
	clientFilter = `h.app_id = $1 AND ($2 = '' OR h.client_id = $2) AND h.hour >= $3 AND h.hour < $4`
	dayFilter    = `d.app_id = $1 AND ($2 = '' OR d.client_id = $2) AND d.day >= ($3 AT TIME ZONE 'UTC')::date AND d.day < ($4 AT TIME ZONE 'UTC')::date`
	hourFilter   = `u.app_id = $1 AND ($2 = '' OR u.client_id = $2) AND u.hour >= $3 AND u.hour < $4 AND u.user_id <> '` + NilUserID + `'`

	// The per-client hour rows of a period: at most 24 * 30 per client for 30 days. Buckets,
	// totals and latency histograms are summed from them in Go, in one round trip.
	qUsageClientHours = `
		SELECT h.hour, h.calls, h.calls_2xx, h.calls_3xx, h.calls_4xx, h.calls_5xx, h.credits,
		       h.upstream_cost_micros, h.latency_buckets
		  FROM usage_client_hourly h WHERE ` + clientFilter
	// One API key's hours (usage_key_hourly has no latency histogram, users or 2xx/3xx split).
	qUsageKeyHours = `
		SELECT h.hour, h.calls, h.calls - h.calls_4xx - h.calls_5xx AS calls_2xx, 0 AS calls_3xx, h.calls_4xx, h.calls_5xx,
		       h.credits, h.upstream_cost_micros, '{}'::bigint[] AS latency_buckets
		  FROM usage_key_hourly h WHERE h.app_id = $1 AND h.key_id::text = $2 AND h.hour >= $3 AND h.hour < $4`
	qUsersPerHour = `
		SELECT u.hour AS bucket, count(DISTINCT u.user_id) AS n
		  FROM usage_hourly u WHERE ` + hourFilter + ` GROUP BY 1`
	qUsersPerDay = `
		SELECT d.day::timestamp AT TIME ZONE 'UTC' AS bucket, count(DISTINCT d.user_id) AS n
		  FROM usage_user_daily d WHERE ` + dayFilter + ` GROUP BY 1`
	qUsersInHours = `SELECT count(DISTINCT u.user_id) FROM usage_hourly u WHERE ` + hourFilter
	qUsersInDays  = `SELECT count(DISTINCT d.user_id) FROM usage_user_daily d WHERE ` + dayFilter

	// Top users: aggregate first, then join the ten winners to their email and balance.
	qTopUsersHours = `
		WITH top AS (
			SELECT u.user_id, sum(u.calls) AS calls, sum(u.credits) AS credits
			  FROM usage_hourly u WHERE ` + hourFilter + `
			 GROUP BY u.user_id ORDER BY calls DESC, u.user_id LIMIT $5)
		SELECT top.user_id, coalesce(nullif(us.email, ''), nullif(us.subject || ' (' || us.issuer || ')', ' ()'), '') AS email, top.calls, top.credits, cb.balance
		  FROM top LEFT JOIN users us ON us.id = top.user_id
		  LEFT JOIN credit_balances cb ON cb.app_id = $1 AND cb.user_id = top.user_id
		 ORDER BY top.calls DESC, top.user_id`
	qTopUsersDays = `
		WITH top AS (
			SELECT d.user_id, sum(d.calls) AS calls, sum(d.credits) AS credits
			  FROM usage_user_daily d WHERE ` + dayFilter + `
			 GROUP BY d.user_id ORDER BY calls DESC, d.user_id LIMIT $5)
		SELECT top.user_id, coalesce(nullif(us.email, ''), nullif(us.subject || ' (' || us.issuer || ')', ' ()'), '') AS email, top.calls, top.credits, cb.balance
		  FROM top LEFT JOIN users us ON us.id = top.user_id
		  LEFT JOIN credit_balances cb ON cb.app_id = $1 AND cb.user_id = top.user_id
		 ORDER BY top.calls DESC, top.user_id`
	qTopRoutes = `
		SELECT h.method, h.route, sum(h.calls) AS calls, sum(h.errors) AS errors, sum(h.credits) AS credits,
		       sum(h.upstream_cost_micros) AS upstream_cost_micros
		  FROM usage_routes_hourly h WHERE ` + clientFilter + `
		 GROUP BY h.method, h.route ORDER BY calls DESC, h.route LIMIT $5`
)

// UsageQuery selects an app's usage: one client or all (""), or one API key, over
// [From, To), in hourly or daily buckets. Daily queries need From and To on UTC midnights.
type UsageQuery struct {
	AppID    string
	ClientID string
	KeyID    string // one API key's calls (ClientID is then ignored; no users or latency)
	From, To time.Time
	Daily    bool
}

func (q UsageQuery) unit() string {
	if q.Daily {
		return "day"
	}
	return "hour"
}

// UsageBucket is one point of a usage series, or a whole period's totals.
type UsageBucket struct {
	Bucket   time.Time
	Calls    int64
	Calls2xx int64
	Calls3xx int64
	Calls4xx int64
	Calls5xx int64
	Credits  int64
	// UpstreamCostMicros sums the costs upstreams reported (AuthGPTs-Upstream-Cost).
	UpstreamCostMicros int64
	Users              int64
	// Latency is the summed latency histogram (see LatencyBucketBoundsMicros).
	Latency []int64
}

// Errors counts 4xx and 5xx answers.
func (b UsageBucket) Errors() int64 { return b.Calls4xx + b.Calls5xx }

func (b *UsageBucket) add(h usageClientHour) {
	b.Calls += h.Calls
	b.Calls2xx += h.Calls2xx
	b.Calls3xx += h.Calls3xx
	b.Calls4xx += h.Calls4xx
	b.Calls5xx += h.Calls5xx
	b.Credits += h.Credits
	b.UpstreamCostMicros += h.UpstreamCostMicros
	if b.Latency == nil {
		b.Latency = make([]int64, len(LatencyBucketBoundsMicros)+1)
	}
	for i, n := range h.LatencyBuckets {
		if i < len(b.Latency) {
			b.Latency[i] += n
		}
	}
}

type usageClientHour struct {
	Hour               time.Time     `db:"hour"`
	Calls              int64         `db:"calls"`
	Calls2xx           int64         `db:"calls_2xx"`
	Calls3xx           int64         `db:"calls_3xx"`
	Calls4xx           int64         `db:"calls_4xx"`
	Calls5xx           int64         `db:"calls_5xx"`
	Credits            int64         `db:"credits"`
	UpstreamCostMicros int64         `db:"upstream_cost_micros"`
	LatencyBuckets     pq.Int64Array `db:"latency_buckets"`
}

// UsageReport is a period's series (buckets without calls are absent) and totals.
type UsageReport struct {
	Series []UsageBucket
	Totals UsageBucket
}

// UsageReport reads q's period: per bucket and in total, calls by status class, credits,
// distinct users and the latency histogram. withSeries false skips the per-bucket users
// (totals for a comparison period).
func (s *Store) UsageReport(ctx context.Context, q UsageQuery, withSeries bool) (UsageReport, error) {
	var rows []usageClientHour
	hours, filter := qUsageClientHours, q.ClientID
	if q.KeyID != "" {
		hours, filter = qUsageKeyHours, q.KeyID
	}
	if err := s.selectContext(ctx, &rows, hours, q.AppID, filter, q.From, q.To); err != nil {
		return UsageReport{}, wrap("usage report", err)
	}
	var r UsageReport
	r.Totals.Latency = make([]int64, len(LatencyBucketBoundsMicros)+1)
	byBucket := map[int64]*UsageBucket{}
	var order []int64
	for _, h := range rows {
		r.Totals.add(h)
		if !withSeries {
			continue
		}
		start := h.Hour.UTC().Truncate(time.Hour)
		if q.Daily {
			start = h.Hour.UTC().Truncate(24 * time.Hour)
		}
		b, ok := byBucket[start.Unix()]
		if !ok {
			b = &UsageBucket{Bucket: start}
			byBucket[start.Unix()] = b
			order = append(order, start.Unix())
		}
		b.add(h)
	}
	if q.KeyID != "" {
		return finishSeries(r, byBucket, order), nil // users are not kept per key
	}
	totalUsers, perBucket := qUsersInHours, qUsersPerHour
	if q.Daily {
		totalUsers, perBucket = qUsersInDays, qUsersPerDay
	}
	if err := s.getContext(ctx, &r.Totals.Users, totalUsers, q.AppID, q.ClientID, q.From, q.To); err != nil {
		return r, wrap("usage report users", err)
	}
	if !withSeries {
		return r, nil
	}
	var users []struct {
		Bucket time.Time `db:"bucket"`
		N      int64     `db:"n"`
	}
	if err := s.selectContext(ctx, &users, perBucket, q.AppID, q.ClientID, q.From, q.To); err != nil {
		return r, wrap("usage report users per bucket", err)
	}
	for _, u := range users {
		if b, ok := byBucket[u.Bucket.Unix()]; ok {
			b.Users = u.N
		}
	}
	return finishSeries(r, byBucket, order), nil
}

func finishSeries(r UsageReport, byBucket map[int64]*UsageBucket, order []int64) UsageReport {
	slices.Sort(order)
	for _, k := range order {
		r.Series = append(r.Series, *byBucket[k])
	}
	return r
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
	query := qTopUsersHours
	if q.Daily {
		query = qTopUsersDays
	}
	var out []TopUser
	err := s.selectContext(ctx, &out, query, q.AppID, q.ClientID, q.From, q.To, limit)
	return out, wrap("top users", err)
}

// TopRoute is one of an app's busiest routes in a period.
type TopRoute struct {
	Method string `db:"method"`
	Route  string `db:"route"`
	Calls  int64  `db:"calls"`
	Errors int64  `db:"errors"`
	// Credits charged and upstream-reported cost on the route.
	Credits            int64 `db:"credits"`
	UpstreamCostMicros int64 `db:"upstream_cost_micros"`
}

// TopRoutes returns the routes with the most calls in q's period.
func (s *Store) TopRoutes(ctx context.Context, q UsageQuery, limit int) ([]TopRoute, error) {
	var out []TopRoute
	err := s.selectContext(ctx, &out, qTopRoutes, q.AppID, q.ClientID, q.From, q.To, limit)
	return out, wrap("top routes", err)
}
