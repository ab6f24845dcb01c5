package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// NilUserID stands for "no end user" in usage_hourly (client_credentials calls and calls
// refused before a token was accepted), where user_id is part of the primary key.
const NilUserID = "00000000-0000-0000-0000-000000000000"

// LatencyBucketBoundsMicros are the upper bounds (exclusive, in microseconds) of the
// latency histogram kept per hour in usage_hourly.latency_buckets: bucket 0 counts calls
// under 1 ms, bucket i calls in [bound[i-1], bound[i]), the last bucket calls of 60 s or
// more. Percentiles over any range are computed from summed buckets (LatencyPercentile).
var LatencyBucketBoundsMicros = []int64{
	1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000,
	1_000_000, 2_000_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
}

const (
	// last_used_at moves forward only, so batches flushed out of order never move it back.
	qTouchGrants = `
		UPDATE grants g SET last_used_at = v.at
		  FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, at)
		 WHERE g.id = v.id AND (g.last_used_at IS NULL OR g.last_used_at < v.at)`
	qTouchClients = `
		UPDATE clients c SET last_used_at = v.at
		  FROM unnest($1::text[], $2::timestamptz[]) AS v(id, at)
		 WHERE c.id = v.id AND (c.last_used_at IS NULL OR c.last_used_at < v.at)`

	// qLockLiveUsers returns which of the batch's users still exist and holds a KEY SHARE
	// lock on them until the batch commits. DeleteUser takes FOR UPDATE on the user first,
	// so the two serialise: either the batch commits first and the deletion's anonymising
	// UPDATE (a later statement, so a later snapshot) sees its events, or the deletion
	// commits first and the user is not returned here, so the batch writes no user.
	qLockLiveUsers = `SELECT id FROM users WHERE id = ANY($1::uuid[]) ORDER BY id FOR KEY SHARE`

	qAnonymizeEvents    = `UPDATE usage_events SET user_id = NULL WHERE user_id = $1`
	qMergeHourlyIntoNil = `
		INSERT INTO usage_hourly AS h (hour, app_id, client_id, user_id, calls, calls_2xx, calls_3xx,
		       calls_4xx, calls_5xx, credits, latency_sum_us, latency_max_us, latency_buckets)
		SELECT hour, app_id, client_id, '` + NilUserID + `'::uuid, calls, calls_2xx, calls_3xx, calls_4xx,
		       calls_5xx, credits, latency_sum_us, latency_max_us, latency_buckets
		  FROM usage_hourly WHERE user_id = $1
		ON CONFLICT (app_id, hour, client_id, user_id) DO UPDATE SET ` + hourlyAdd
	qDeleteUserHourly = `DELETE FROM usage_hourly WHERE user_id = $1`

	// hourlyAdd adds an EXCLUDED roll-up row to an existing one (h).
	hourlyAdd = `
		       calls = h.calls + EXCLUDED.calls,
		       calls_2xx = h.calls_2xx + EXCLUDED.calls_2xx,
		       calls_3xx = h.calls_3xx + EXCLUDED.calls_3xx,
		       calls_4xx = h.calls_4xx + EXCLUDED.calls_4xx,
		       calls_5xx = h.calls_5xx + EXCLUDED.calls_5xx,
		       credits = h.credits + EXCLUDED.credits,
		       latency_sum_us = h.latency_sum_us + EXCLUDED.latency_sum_us,
		       latency_max_us = GREATEST(h.latency_max_us, EXCLUDED.latency_max_us),
		       latency_buckets = ARRAY(
		           SELECT coalesce(a, 0) + coalesce(b, 0)
		             FROM unnest(h.latency_buckets, EXCLUDED.latency_buckets) WITH ORDINALITY AS t(a, b, i)
		            ORDER BY i)`

	qUsageEventsByApp = `
		SELECT at, app_id, client_id, coalesce(user_id::text, '') AS user_id, method, route, status,
		       latency_us, credits, coalesce(api_key_id::text, '') AS api_key_id,
		       coalesce(upstream_cost_micros, 0) AS upstream_cost_micros,
		       upstream_cost_micros IS NOT NULL AS upstream_cost_reported, overdraft, warning
		  FROM usage_events WHERE app_id = $1 ORDER BY at, id`
	qUsageHourlyByApp = `
		SELECT hour, app_id, client_id, user_id, calls, calls_2xx, calls_3xx, calls_4xx, calls_5xx,
		       credits, latency_sum_us, latency_max_us, latency_buckets
		  FROM usage_hourly WHERE app_id = $1 AND hour >= $2 AND hour < $3
		 ORDER BY hour, client_id, user_id`
)

// The uncorrelated sub-select runs once (an InitPlan): one new ID for all the user's rows.
const qPseudonymizeDaily = `UPDATE usage_user_daily SET user_id = (SELECT gen_random_uuid()) WHERE user_id = $1`

// qPruneUsageEvents deletes up to $2 rolled-up events older than $1. Events not yet
// rolled up are never deleted, whatever their age: the roll-ups must count them first.
const qPruneUsageEvents = `
	DELETE FROM usage_events WHERE id IN (
		SELECT id FROM usage_events WHERE rolled_up AND at < $1 ORDER BY at LIMIT $2 FOR UPDATE SKIP LOCKED)`

// PruneUsageEvents deletes rolled-up raw events older than before, at most limit of
// them, and returns how many it deleted. The roll-ups keep their totals. Safe on every
// instance at once.
func (s *Store) PruneUsageEvents(ctx context.Context, before time.Time, limit int) (int64, error) {
	res, err := s.q.ExecContext(ctx, qPruneUsageEvents, before, limit)
	if err != nil {
		return 0, wrap("prune usage events", err)
	}
	n, err := res.RowsAffected()
	return n, wrap("prune usage events", err)
}

// usageColumns are the columns one usage event fills, in COPY order.
var usageColumns = []string{"at", "app_id", "client_id", "user_id", "method", "route", "status", "latency_us", "credits",
	"api_key_id", "upstream_cost_micros", "overdraft", "warning"}

// qRollUpUsage takes up to $1 events not yet rolled up (FOR UPDATE SKIP LOCKED, so
// instances running the job at once take disjoint events), marks them and adds them to
// their hourly rows. Marking and adding happen in one statement, so an event is counted
// exactly once. It is built from LatencyBucketBoundsMicros so the histogram has one
// counter per bucket.
var qRollUpUsage = func() string {
	bounds := make([]string, len(LatencyBucketBoundsMicros))
	for i, b := range LatencyBucketBoundsMicros {
		bounds[i] = fmt.Sprint(b)
	}
	counters := make([]string, len(LatencyBucketBoundsMicros)+1)
	for i := range counters {
		counters[i] = fmt.Sprintf("count(*) FILTER (WHERE bucket = %d)", i)
	}
	return `
	WITH batch AS (
		SELECT id FROM usage_events WHERE NOT rolled_up ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
	), marked AS (
		UPDATE usage_events e SET rolled_up = true FROM batch WHERE e.id = batch.id
		RETURNING e.at, e.app_id, e.client_id, e.user_id, e.method, e.route, e.status, e.latency_us, e.credits,
		          e.api_key_id, coalesce(e.upstream_cost_micros, 0) AS upstream_cost_micros
	), routes AS (
		INSERT INTO usage_routes_hourly AS r (hour, app_id, client_id, method, route, calls, errors, credits, upstream_cost_micros)
		SELECT date_trunc('hour', at, 'UTC'), app_id, client_id, method, left(route, 200),
		       count(*), count(*) FILTER (WHERE status >= 400), sum(credits), sum(upstream_cost_micros)
		  FROM marked GROUP BY 1, 2, 3, 4, 5
		ON CONFLICT (app_id, hour, client_id, method, route) DO UPDATE SET
		       calls = r.calls + EXCLUDED.calls, errors = r.errors + EXCLUDED.errors,
		       credits = r.credits + EXCLUDED.credits,
		       upstream_cost_micros = r.upstream_cost_micros + EXCLUDED.upstream_cost_micros
	), keys AS (
		INSERT INTO usage_key_hourly AS k (hour, app_id, key_id, calls, calls_4xx, calls_5xx, credits, upstream_cost_micros)
		SELECT date_trunc('hour', at, 'UTC'), app_id, api_key_id, count(*), count(*) FILTER (WHERE status BETWEEN 400 AND 499),
		       count(*) FILTER (WHERE status >= 500), sum(credits), sum(upstream_cost_micros)
		  FROM marked WHERE api_key_id IS NOT NULL GROUP BY 1, 2, 3
		ON CONFLICT (app_id, hour, key_id) DO UPDATE SET
		       calls = k.calls + EXCLUDED.calls, calls_4xx = k.calls_4xx + EXCLUDED.calls_4xx,
		       calls_5xx = k.calls_5xx + EXCLUDED.calls_5xx,
		       credits = k.credits + EXCLUDED.credits,
		       upstream_cost_micros = k.upstream_cost_micros + EXCLUDED.upstream_cost_micros
	), bucketed AS (
		SELECT date_trunc('hour', at, 'UTC') AS hour, app_id, client_id,
		       coalesce(user_id, '` + NilUserID + `'::uuid) AS user_id, status, latency_us, credits,
		       upstream_cost_micros, width_bucket(latency_us, '{` + strings.Join(bounds, ",") + `}'::bigint[]) AS bucket
		  FROM marked
	), agg AS (
		SELECT hour, app_id, client_id, user_id, count(*) AS calls,
		       count(*) FILTER (WHERE status BETWEEN 200 AND 299) AS calls_2xx,
		       count(*) FILTER (WHERE status BETWEEN 300 AND 399) AS calls_3xx,
		       count(*) FILTER (WHERE status BETWEEN 400 AND 499) AS calls_4xx,
		       count(*) FILTER (WHERE status >= 500) AS calls_5xx,
		       sum(credits) AS credits, sum(latency_us) AS latency_sum_us, max(latency_us) AS latency_max_us,
		       ARRAY[` + strings.Join(counters, ", ") + `]::bigint[] AS latency_buckets
		  FROM bucketed GROUP BY hour, app_id, client_id, user_id
	), users_daily AS (
		INSERT INTO usage_user_daily AS d (day, app_id, client_id, user_id, calls, credits)
		SELECT (at AT TIME ZONE 'UTC')::date, app_id, client_id, user_id, count(*), sum(credits)
		  FROM marked WHERE user_id IS NOT NULL GROUP BY 1, 2, 3, 4
		ON CONFLICT (app_id, day, client_id, user_id) DO UPDATE SET
		       calls = d.calls + EXCLUDED.calls, credits = d.credits + EXCLUDED.credits
	), cagg AS (
		SELECT hour, app_id, client_id, count(*) AS calls,
		       count(*) FILTER (WHERE status BETWEEN 200 AND 299) AS calls_2xx,
		       count(*) FILTER (WHERE status BETWEEN 300 AND 399) AS calls_3xx,
		       count(*) FILTER (WHERE status BETWEEN 400 AND 499) AS calls_4xx,
		       count(*) FILTER (WHERE status >= 500) AS calls_5xx,
		       sum(credits) AS credits, sum(upstream_cost_micros) AS upstream_cost_micros,
		       ARRAY[` + strings.Join(counters, ", ") + `]::bigint[] AS latency_buckets
		  FROM bucketed GROUP BY hour, app_id, client_id
	), clients_hourly AS (
		INSERT INTO usage_client_hourly AS c (hour, app_id, client_id, calls, calls_2xx, calls_3xx,
		       calls_4xx, calls_5xx, credits, upstream_cost_micros, latency_buckets)
		SELECT hour, app_id, client_id, calls, calls_2xx, calls_3xx, calls_4xx, calls_5xx, credits,
		       upstream_cost_micros, latency_buckets FROM cagg
		ON CONFLICT (app_id, hour, client_id) DO UPDATE SET
		       calls = c.calls + EXCLUDED.calls,
		       calls_2xx = c.calls_2xx + EXCLUDED.calls_2xx,
		       calls_3xx = c.calls_3xx + EXCLUDED.calls_3xx,
		       calls_4xx = c.calls_4xx + EXCLUDED.calls_4xx,
		       calls_5xx = c.calls_5xx + EXCLUDED.calls_5xx,
		       credits = c.credits + EXCLUDED.credits,
		       upstream_cost_micros = c.upstream_cost_micros + EXCLUDED.upstream_cost_micros,
		       latency_buckets = ARRAY(
		           SELECT coalesce(a, 0) + coalesce(b, 0)
		             FROM unnest(c.latency_buckets, EXCLUDED.latency_buckets) WITH ORDINALITY AS t(a, b, i)
		            ORDER BY i)
	), upserted AS (
		INSERT INTO usage_hourly AS h (hour, app_id, client_id, user_id, calls, calls_2xx, calls_3xx,
		       calls_4xx, calls_5xx, credits, latency_sum_us, latency_max_us, latency_buckets)
		SELECT hour, app_id, client_id, user_id, calls, calls_2xx, calls_3xx, calls_4xx, calls_5xx,
		       credits, latency_sum_us, latency_max_us, latency_buckets FROM agg
		ON CONFLICT (app_id, hour, client_id, user_id) DO UPDATE SET ` + hourlyAdd + `
		RETURNING 1
	)
	SELECT (SELECT count(*) FROM marked) AS events, (SELECT count(*) FROM upserted) AS hour_rows`
}()

// UsageEvent is one gateway call.
type UsageEvent struct {
	At            time.Time `db:"at"`
	AppID         string    `db:"app_id"`
	ClientID      string    `db:"client_id"` // "" when the call was refused before a token was accepted
	UserID        string    `db:"user_id"`   // "" for client_credentials calls and refused calls
	GrantID       string    `db:"-"`         // not stored: used to bump grants.last_used_at
	Method        string    `db:"method"`
	Route         string    `db:"route"` // the path below /gw/<slug>, without the query
	Status        int       `db:"status"`
	LatencyMicros int64     `db:"latency_us"`
	Credits       int64     `db:"credits"`    // credits charged (0 when refunded)
	APIKeyID      string    `db:"api_key_id"` // the API key the call came with, "" for OAuth tokens
	// UpstreamCostMicros is the upstream's AuthGPTs-Upstream-Cost in micro-dollars when
	// UpstreamCostReported (stored as NULL otherwise).
	UpstreamCostMicros   int64  `db:"upstream_cost_micros"`
	UpstreamCostReported bool   `db:"upstream_cost_reported"`
	Overdraft            int64  `db:"overdraft"` // reported credits the balance could not pay
	Warning              string `db:"warning"`   // what was wrong with the upstream's report, if anything
}

// ErrRejected is the error of a batch PostgreSQL refused for its content (SQLSTATE
// class 22, data exception, or 23, integrity constraint violation): the same rows fail
// again however often they are retried, and nothing of the batch was written. The error
// names the SQLSTATE only, never the offending value (it may be anything a caller sent).
var ErrRejected = errors.New("store: rows rejected by the database")

// InsertUsageEvents writes a batch of events with one COPY and, in the same transaction,
// moves grants.last_used_at and clients.last_used_at to the batch's latest use: the
// gateway never writes per call. An event of a user deleted since the call (on any
// instance) is written without the user, as DeleteUser anonymised the stored ones. The
// batch is written whole or not at all; when PostgreSQL refuses a row the error wraps
// ErrRejected.
func (s *Store) InsertUsageEvents(ctx context.Context, events []UsageEvent) error {
	if len(events) == 0 {
		return nil
	}
	grants := map[string]time.Time{}
	clients := map[string]time.Time{}
	keys := map[string]time.Time{}
	for _, e := range events {
		if e.APIKeyID != "" && ValidUUID(e.APIKeyID) && e.At.After(keys[e.APIKeyID]) {
			keys[e.APIKeyID] = e.At
		}
		if e.GrantID != "" && ValidUUID(e.GrantID) && e.At.After(grants[e.GrantID]) {
			grants[e.GrantID] = e.At
		}
		if e.ClientID != "" && e.At.After(clients[e.ClientID]) {
			clients[e.ClientID] = e.At
		}
	}
	err := s.InTx(ctx, func(tx *Tx) error {
		sqlTx, ok := tx.q.(*sqlx.Tx)
		if !ok {
			return fmt.Errorf("COPY needs a transaction")
		}
		live, err := tx.lockLiveUsers(ctx, events)
		if err != nil {
			return err
		}
		stmt, err := sqlTx.PrepareContext(ctx, pq.CopyIn("usage_events", usageColumns...))
		if err != nil {
			return err
		}
		for _, e := range events {
			var user any
			if live[e.UserID] {
				user = e.UserID
			}
			var key, cost any
			if e.APIKeyID != "" && ValidUUID(e.APIKeyID) {
				key = e.APIKeyID
			}
			if e.UpstreamCostReported {
				cost = e.UpstreamCostMicros
			}
			if _, err := stmt.ExecContext(ctx, e.At.UTC(), e.AppID, e.ClientID, user, e.Method, e.Route,
				e.Status, e.LatencyMicros, e.Credits, key, cost, e.Overdraft, e.Warning); err != nil {
				stmt.Close()
				return err
			}
		}
		if _, err := stmt.ExecContext(ctx); err != nil {
			stmt.Close()
			return err
		}
		if err := stmt.Close(); err != nil {
			return err
		}
		if err := tx.touch(ctx, qTouchGrants, grants); err != nil {
			return err
		}
		if err := tx.touch(ctx, qTouchKeys, keys); err != nil {
			return err
		}
		return tx.touch(ctx, qTouchClients, clients)
	})
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && (pqErr.Code.Class() == "22" || pqErr.Code.Class() == "23") {
		return fmt.Errorf("store: insert usage events: %w (SQLSTATE %s)", ErrRejected, pqErr.Code)
	}
	return wrap("insert usage events", err)
}

// lockLiveUsers returns the batch's users that still exist, locked (qLockLiveUsers).
func (s *Store) lockLiveUsers(ctx context.Context, events []UsageEvent) (map[string]bool, error) {
	ids := []string{}
	seen := map[string]bool{}
	for _, e := range events {
		if e.UserID != "" && !seen[e.UserID] && ValidUUID(e.UserID) {
			seen[e.UserID] = true
			ids = append(ids, e.UserID)
		}
	}
	live := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return live, nil
	}
	var found []string
	if err := s.selectContext(ctx, &found, qLockLiveUsers, pq.Array(ids)); err != nil {
		return nil, err
	}
	for _, id := range found {
		live[id] = true
	}
	return live, nil
}

// touch runs one of the last_used_at updates with parallel arrays of IDs and times.
func (s *Store) touch(ctx context.Context, query string, last map[string]time.Time) error {
	if len(last) == 0 {
		return nil
	}
	ids := make([]string, 0, len(last))
	ats := make([]string, 0, len(last))
	for id, at := range last {
		ids = append(ids, id)
		ats = append(ats, at.UTC().Format(time.RFC3339Nano))
	}
	_, err := s.q.ExecContext(ctx, query, pq.Array(ids), pq.Array(ats))
	return err
}

// RollUpUsage adds up to limit pending events to their hourly rows and returns how many
// events it took. Safe to run on every instance at once; call it until it returns less
// than limit to drain the queue.
func (s *Store) RollUpUsage(ctx context.Context, limit int) (int, error) {
	var res struct {
		Events int `db:"events"`
		Rows   int `db:"hour_rows"`
	}
	err := s.getContext(ctx, &res, qRollUpUsage, limit)
	return res.Events, wrap("roll up usage", err)
}

// AnonymizeUsage detaches a deleted user's usage from them: events keep their counts
// with no user, and hourly rows are merged into the "no end user" rows, so developers'
// totals stay right. Call it in the transaction that deletes the account.
func (s *Store) AnonymizeUsage(ctx context.Context, userID string) error {
	return wrap("anonymize usage", s.InTx(ctx, func(tx *Tx) error {
		for _, q := range []string{qAnonymizeEvents, qMergeHourlyIntoNil, qDeleteUserHourly} {
			if _, err := tx.q.ExecContext(ctx, q, userID); err != nil {
				return err
			}
		}
		// Daily rows keep counting one distinct (now anonymous) user: a fresh random ID
		// links to nothing.
		_, err := tx.q.ExecContext(ctx, qPseudonymizeDaily, userID)
		return err
	}))
}

// UsageEventsByApp lists an app's raw events, oldest first (tests and exports; charts
// read UsageHour rows).
func (s *Store) UsageEventsByApp(ctx context.Context, appID string) ([]UsageEvent, error) {
	var out []UsageEvent
	err := s.selectContext(ctx, &out, qUsageEventsByApp, appID)
	return out, wrap("usage events by app", err)
}

// UsageHour is one hourly roll-up row of one (app, client, user).
type UsageHour struct {
	Hour           time.Time     `db:"hour"`
	AppID          string        `db:"app_id"`
	ClientID       string        `db:"client_id"`
	UserID         string        `db:"user_id"` // NilUserID for calls without an end user
	Calls          int64         `db:"calls"`
	Calls2xx       int64         `db:"calls_2xx"`
	Calls3xx       int64         `db:"calls_3xx"`
	Calls4xx       int64         `db:"calls_4xx"`
	Calls5xx       int64         `db:"calls_5xx"`
	Credits        int64         `db:"credits"`
	LatencySumUS   int64         `db:"latency_sum_us"`
	LatencyMaxUS   int64         `db:"latency_max_us"`
	LatencyBuckets pq.Int64Array `db:"latency_buckets"`
}

// UsageHourlyByApp returns an app's roll-up rows with from <= hour < to.
func (s *Store) UsageHourlyByApp(ctx context.Context, appID string, from, to time.Time) ([]UsageHour, error) {
	var out []UsageHour
	err := s.selectContext(ctx, &out, qUsageHourlyByApp, appID, from, to)
	return out, wrap("usage hourly by app", err)
}

// LatencyPercentile returns the upper bound of the latency bucket holding the q-quantile
// (0 < q <= 1) of summed latency_buckets, i.e. "p95 is under this"; the last bucket has
// no upper bound and reports its lower one. Zero when there are no calls.
func LatencyPercentile(buckets []int64, q float64) time.Duration {
	var total int64
	for _, n := range buckets {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := int64(q*float64(total) + 0.999999)
	var seen int64
	for i, n := range buckets {
		seen += n
		if seen >= rank {
			if i < len(LatencyBucketBoundsMicros) {
				return time.Duration(LatencyBucketBoundsMicros[i]) * time.Microsecond
			}
			break
		}
	}
	return time.Duration(LatencyBucketBoundsMicros[len(LatencyBucketBoundsMicros)-1]) * time.Microsecond
}
