package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/lib/pq"
)

// Webhook events (DESIGN.md "Webhooks"). Each is written to the outbox (webhook_emit, in
// migrations/00011) in the transaction of the change it reports.
const (
	EventUserConnected       = "user.connected"        // a grant was created (UpsertGrant)
	EventUserDisconnected    = "user.disconnected"     // a grant was revoked (RevokeGrantBy)
	EventUserDeleted         = "user.deleted"          // the user deleted their account (DeleteUser)
	EventCreditsLow          = "credits.low"           // a balance fell below the app's threshold
	EventCreditsExhausted    = "credits.exhausted"     // a balance fell below one call's price
	EventConnectionLinked    = "connection.linked"     // a user linked (or relinked) a third-party account (SaveLinkedAccount)
	EventConnectionRevoked   = "connection.revoked"    // a linked account was disconnected or its grant revoked
	EventClientSecretRotated = "client.secret_rotated" // RotateClientSecret
	// EventTest is sent to one endpoint by the portal's "Send test event".
	EventTest = "webhook.test"
)

// WebhookEventTypes lists the events an endpoint may subscribe to, in display order.
var WebhookEventTypes = []string{
	EventUserConnected, EventUserDisconnected, EventUserDeleted, EventCreditsLow,
	EventCreditsExhausted, EventConnectionLinked, EventConnectionRevoked, EventClientSecretRotated,
}

// Why a grant was revoked, the "reason" of user.disconnected.
const (
	RevokedByUser      = "user"      // the user, on /account
	RevokedByDeveloper = "developer" // the app's developer, in the portal
	RevokedByAdmin     = "admin"     // an admin
	RevokedByClient    = "client"    // the client, at /oauth/revoke
	RevokedBySecurity  = "security"  // a replayed code or refresh token
)

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

const (
	// Grant events carry the app, the user (with the email when the email scope was
	// granted), the client, the grant and its scopes.
	grantEventData = `jsonb_strip_nulls(jsonb_build_object(
		         'app', jsonb_build_object('id', a.id, 'slug', a.slug),
		         'user', jsonb_build_object('id', u.id, 'email', CASE WHEN 'email' = ANY (g.scopes) THEN u.email END),
		         'client_id', g.client_id, 'grant_id', g.id, 'scopes', to_jsonb(g.scopes), 'reason', $3::text))`
	// Connection events carry the app, the user, the provider and the account's name at
	// the provider, never a token; $1 is a list of linked-account IDs.
	qEmitConnectionEvents = `
		SELECT count(webhook_emit(p.app_id, $2, jsonb_strip_nulls(jsonb_build_object(
		         'app', jsonb_build_object('id', a.id, 'slug', a.slug),
		         'user', jsonb_build_object('id', l.user_id),
		         'provider', p.provider, 'account_name', NULLIF(l.account_name, ''), 'reason', $3::text)), $4))
		  FROM linked_accounts l JOIN connection_providers p ON p.id = l.provider_id JOIN apps a ON a.id = p.app_id
		 WHERE l.id = ANY ($1::uuid[])`
	qEmitGrantEvent = `
		SELECT webhook_emit(g.app_id, $2, ` + grantEventData + `, $4)
		  FROM grants g JOIN apps a ON a.id = g.app_id JOIN users u ON u.id = g.user_id
		 WHERE g.id = $1`
	// Deleting a client ends its users' grants on the app (by cascade): each is a
	// user.disconnected by the developer, written before the delete.
	qEmitClientGrantsEnded = `
		SELECT count(webhook_emit(g.app_id, $4, ` + grantEventData + `, now()))
		  FROM grants g JOIN apps a ON a.id = g.app_id JOIN users u ON u.id = g.user_id
		 WHERE g.client_id = $1 AND g.app_id = $2 AND g.revoked_at IS NULL`
	// user.deleted goes to every app (of another owner) the user was connected to or
	// held a balance with; it runs before the rows are deleted.
	qEmitUserDeleted = `
		SELECT count(webhook_emit(a.id, 'user.deleted', jsonb_build_object(
		         'app', jsonb_build_object('id', a.id, 'slug', a.slug), 'user', jsonb_build_object('id', $1::uuid)), $2))
		  FROM apps a
		 WHERE a.owner_id <> $1
		   AND (a.id IN (SELECT app_id FROM grants WHERE user_id = $1) OR a.id IN (SELECT app_id FROM credit_balances WHERE user_id = $1))`
	qEmitSecretRotated = `
		SELECT webhook_emit(a.id, 'client.secret_rotated', jsonb_build_object(
		         'app', jsonb_build_object('id', a.id, 'slug', a.slug), 'client_id', c.id,
		         'previous_secret_valid_until', $2::timestamptz), $3)
		  FROM clients c JOIN apps a ON a.id = c.app_id WHERE c.id = $1`

	// creditAlerts* follow a statement named s that lowered one balance by $3 and
	// returned app_id, user_id and balance: it records the credits.low (below the app's
	// threshold) and credits.exhausted (below $cost) alerts not yet sent for that balance
	// and emits their events. An alert row exists until a developer tops the balance up
	// again, so each fires once per crossing, however the credits were spent (leases
	// or single calls) and on whichever instance.
	creditAlertsHead = `,
		crossed AS (
			INSERT INTO credit_alerts (app_id, user_id, kind, at)
			SELECT s.app_id, s.user_id, k.kind, $4 FROM s
			 CROSS JOIN LATERAL (VALUES
			       ('credits.low', (SELECT credits_low_threshold FROM webhook_settings w WHERE w.app_id = s.app_id)),
			       ('credits.exhausted', `
	creditAlertsTail = `)) AS k (kind, threshold)
			 WHERE s.balance < k.threshold
			ON CONFLICT DO NOTHING
			RETURNING app_id, user_id, kind),
		emitted AS (
			SELECT count(webhook_emit(c.app_id, c.kind, jsonb_build_object(
			         'app', jsonb_build_object('id', a.id, 'slug', a.slug), 'user', jsonb_build_object('id', c.user_id),
			         'balance', s.balance, 'credits_per_call', a.credits_per_call,
			         'threshold', CASE WHEN c.kind = 'credits.low' THEN (SELECT credits_low_threshold FROM webhook_settings w WHERE w.app_id = c.app_id) END), $4)) AS n
			  FROM crossed c JOIN s ON true JOIN apps a ON a.id = c.app_id)
		SELECT s.balance FROM s, emitted`
	creditAlertsSpend = creditAlertsHead + `$3::bigint` + creditAlertsTail // exhausted: below one call ($3)
	creditAlertsLease = creditAlertsHead + `NULL::bigint` + creditAlertsTail

	// A developer's change to balances clears the alerts the new balance is above, so the
	// next crossing fires again.
	qResetCreditAlerts = `
		DELETE FROM credit_alerts ca USING credit_balances b, apps a
		 WHERE ca.app_id = $1 AND ($2::uuid IS NULL OR ca.user_id = $2)
		   AND b.app_id = ca.app_id AND b.user_id = ca.user_id AND a.id = ca.app_id
		   AND ((ca.kind = 'credits.low' AND b.balance >= coalesce((SELECT credits_low_threshold FROM webhook_settings w WHERE w.app_id = ca.app_id), 0))
		     OR (ca.kind = 'credits.exhausted' AND b.balance >= a.credits_per_call))`

	endpointColumns = `e.id, e.app_id, e.url, e.events, e.secret_hint, e.previous_until, e.created_at, e.updated_at,
		e.failing_since, e.disabled_at, coalesce(e.disabled_reason, '') AS disabled_reason`

	qInsertEndpoint = `
		INSERT INTO webhook_endpoints (id, app_id, url, events, secret_sealed, secret_hint, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`
	qEndpointsOfApp = `SELECT ` + endpointColumns + ` FROM webhook_endpoints e WHERE e.app_id = $1 ORDER BY e.created_at, e.id`
	qEndpointOfApp  = `SELECT ` + endpointColumns + ` FROM webhook_endpoints e WHERE e.app_id = $1 AND e.id = $2`
	// A rotation keeps the current secret as the previous one until $5; a previous one
	// still in its window is replaced (two signatures at most).
	qRotateEndpointSecret = `
		UPDATE webhook_endpoints SET previous_sealed = secret_sealed, previous_until = $5,
		       secret_sealed = $3, secret_hint = $4, updated_at = $6
		 WHERE app_id = $1 AND id = $2`
	qDeleteEndpoint = `DELETE FROM webhook_endpoints WHERE app_id = $1 AND id = $2`
	// The worker records an attempt by updating the delivery, then its endpoint; a
	// deletion's cascade goes the other way (endpoint, then its deliveries). Locking the
	// deliveries first puts a deletion in the worker's order, so neither deadlocks.
	qLockDeliveriesOfEndpoint = `SELECT id FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY id FOR UPDATE`
	qLockDeliveriesOfApp      = `
		SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
		 WHERE e.app_id = $1 ORDER BY d.id FOR UPDATE OF d`
	qLockDeliveriesOfOwner = `
		SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id JOIN apps a ON a.id = e.app_id
		 WHERE a.owner_id = $1 ORDER BY d.id FOR UPDATE OF d`
	qEnableEndpoint = `
		UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, failing_since = NULL, updated_at = $3
		 WHERE app_id = $1 AND id = $2`
	qInsertTestEvent = `
		WITH ev AS (
			INSERT INTO webhook_events (id, app_id, type, payload, created_at)
			SELECT $3, e.app_id, 'webhook.test', jsonb_build_object('type', 'webhook.test',
			         'timestamp', to_char($4::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
			         'data', jsonb_build_object('app', jsonb_build_object('id', a.id, 'slug', a.slug), 'endpoint_id', e.id))::text, $4
			  FROM webhook_endpoints e JOIN apps a ON a.id = e.app_id WHERE e.app_id = $1 AND e.id = $2
			RETURNING id)
		INSERT INTO webhook_deliveries (event_id, endpoint_id, next_attempt_at, created_at)
		SELECT ev.id, $2, $4, $4 FROM ev`
	qNotifyWebhooks = `SELECT pg_notify('` + WebhooksChannel + `', $1::text)`
	qResendDelivery = `
		UPDATE webhook_deliveries d SET state = 'pending', next_attempt_at = $4, locked_until = NULL, claim = NULL
		  FROM webhook_endpoints e
		 WHERE d.id = $3 AND d.endpoint_id = $2 AND e.id = d.endpoint_id AND e.app_id = $1`
	qEndpointAttempts = `
		SELECT t.id, t.delivery_id, t.attempt, t.at, t.status_code, t.latency_ms, t.error, t.response_body,
		       t.next_retry_at, d.state, d.next_attempt_at, ev.id AS event_id, ev.type AS event_type,
		       left(ev.payload, $3) AS request_body
		  FROM webhook_attempts t
		  JOIN webhook_deliveries d ON d.id = t.delivery_id
		  JOIN webhook_events ev ON ev.id = d.event_id
		 WHERE t.endpoint_id = $1
		 ORDER BY t.id DESC LIMIT $2`
	// Deliveries that have not been tried yet (just emitted, or resent), for the view.
	qEndpointQueued = `
		SELECT d.id, d.state, d.next_attempt_at, d.attempts, ev.id AS event_id, ev.type AS event_type, ev.created_at
		  FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id
		 WHERE d.endpoint_id = $1 AND d.state = 'pending'
		 ORDER BY d.next_attempt_at LIMIT $2`

	qWebhookSettings = `
		SELECT coalesce((SELECT credits_low_threshold FROM webhook_settings WHERE app_id = $1), 0)`
	qSetWebhookSettings = `
		INSERT INTO webhook_settings (app_id, credits_low_threshold) VALUES ($1, $2)
		ON CONFLICT (app_id) DO UPDATE SET credits_low_threshold = EXCLUDED.credits_low_threshold`

	// The worker's claim: due deliveries of enabled endpoints, at most $4 in flight per
	// endpoint on this instance ($5/$6: the endpoints it already has in flight and how
	// many), $2 in all. FOR UPDATE SKIP LOCKED lets every instance claim at once without
	// taking the same row; the lease (locked_until) outlives a worker killed mid-delivery
	// only until it expires. A claim lost in a PostgreSQL crash costs nothing (the rows
	// are due again), so its commit does not wait for the WAL flush.
	qClaimDeliveries = `
		WITH async AS (SELECT set_config('synchronous_commit', 'off', true) AS v),
		busy AS (SELECT * FROM unnest($5::uuid[], $6::int[]) AS b (endpoint_id, n)),
		eps AS (
			SELECT e.id, coalesce(b.n, 0) AS n FROM webhook_endpoints e LEFT JOIN busy b ON b.endpoint_id = e.id
			 WHERE e.disabled_at IS NULL AND coalesce(b.n, 0) < $4 AND (SELECT v FROM async) = 'off'
			   AND EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.state = 'pending'
			                  AND d.next_attempt_at <= $1 AND (d.locked_until IS NULL OR d.locked_until <= $1))),
		picked AS (
			SELECT x.id FROM eps CROSS JOIN LATERAL (
				SELECT d.id FROM webhook_deliveries d
				 WHERE d.endpoint_id = eps.id AND d.state = 'pending' AND d.next_attempt_at <= $1
				   AND (d.locked_until IS NULL OR d.locked_until <= $1)
				 ORDER BY d.next_attempt_at LIMIT $4 - eps.n
				 FOR UPDATE OF d SKIP LOCKED) x
			LIMIT $2)
		UPDATE webhook_deliveries d SET locked_until = $3, claim = gen_random_uuid()
		  FROM picked, webhook_events ev, webhook_endpoints e
		 WHERE d.id = picked.id AND ev.id = d.event_id AND e.id = d.endpoint_id
		RETURNING d.id, d.claim, d.event_id, d.endpoint_id, d.attempts, ev.type AS event_type, ev.payload,
		          e.url, e.secret_sealed, e.previous_sealed, e.previous_until`
	// One statement records an attempt: the attempt row, the delivery moved on (only
	// while this worker still holds its claim), and the endpoint's health (a success ends
	// a failing run; a failure starts or continues it, and a run of $13 seconds disables
	// the endpoint with the reason $14). Its commit does not wait for the WAL flush: a
	// PostgreSQL crash can at worst forget an attempt, and the event is sent again
	// (at least once).
	qRecordAttempt = `
		WITH async AS (SELECT set_config('synchronous_commit', 'off', true) AS v),
		ins AS (
			INSERT INTO webhook_attempts (delivery_id, endpoint_id, attempt, at, status_code, latency_ms, error, response_body, next_retry_at)
			SELECT $1::uuid, $3::uuid, $4::int, $5::timestamptz, $6::int, $7::int, $8::text, $9::text, $10::timestamptz
			  FROM async WHERE async.v = 'off'),
		fin AS (
			UPDATE webhook_deliveries SET state = $11::text, attempts = $4, next_attempt_at = coalesce($10, next_attempt_at),
			       delivered_at = CASE WHEN $11 = 'delivered' THEN $5::timestamptz END, locked_until = NULL, claim = NULL
			 WHERE id = $1 AND claim = $2),
		health AS (
			UPDATE webhook_endpoints SET
			       failing_since = CASE WHEN $12::boolean THEN NULL ELSE coalesce(failing_since, $5) END,
			       disabled_at = CASE WHEN NOT $12 AND disabled_at IS NULL AND coalesce(failing_since, $5) <= $5 - $13 * interval '1 second' THEN $5 ELSE disabled_at END,
			       disabled_reason = CASE WHEN NOT $12 AND disabled_at IS NULL AND coalesce(failing_since, $5) <= $5 - $13::float8 * interval '1 second' THEN $14::text ELSE disabled_reason END
			 WHERE id = $3 AND ($12 = (failing_since IS NOT NULL) OR NOT $12)
			RETURNING disabled_at IS NOT NULL AND disabled_at = $5 AS disabled)
		SELECT coalesce((SELECT disabled FROM health), false)`
	// A closing worker gives back the deliveries it claimed and did not send.
	qReleaseClaims = `
		UPDATE webhook_deliveries SET locked_until = NULL, claim = NULL
		 WHERE id = ANY ($1::uuid[]) AND claim = ANY ($2::uuid[])`
	// Delivered (or abandoned) events are kept for the deliveries view for a while.
	qPruneEvents = `
		DELETE FROM webhook_events ev WHERE ev.id IN (
			SELECT ev2.id FROM webhook_events ev2 WHERE ev2.created_at < $1
			   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = ev2.id AND d.state = 'pending')
			 LIMIT 10000)`
)

// WebhookEndpoint is one of an app's webhook receivers; its secrets stay sealed in the
// database (WebhookEndpoints never returns them).
type WebhookEndpoint struct {
	ID             string         `db:"id"`
	AppID          string         `db:"app_id"`
	URL            string         `db:"url"`
	Events         pq.StringArray `db:"events"`
	SecretHint     string         `db:"secret_hint"`
	PreviousUntil  *time.Time     `db:"previous_until"`
	CreatedAt      time.Time      `db:"created_at"`
	UpdatedAt      time.Time      `db:"updated_at"`
	FailingSince   *time.Time     `db:"failing_since"`
	DisabledAt     *time.Time     `db:"disabled_at"`
	DisabledReason string         `db:"disabled_reason"`
}

// NewWebhookEndpoint is an endpoint to create; ID comes from NewUUID so that the secret
// can be sealed to it before the insert.
type NewWebhookEndpoint struct {
	ID           string
	URL          string
	Events       []string
	SecretSealed []byte
	SecretHint   string
}

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// CreateWebhookEndpoint adds an endpoint to the app (the caller checked the owner).
func (s *Store) CreateWebhookEndpoint(ctx context.Context, appID string, n NewWebhookEndpoint, now time.Time) error {
	_, err := s.q.ExecContext(ctx, qInsertEndpoint, n.ID, appID, n.URL, pq.Array(n.Events), n.SecretSealed, n.SecretHint, now)
	return wrap("create webhook endpoint", err)
}

// WebhookEndpoints lists the app's endpoints, oldest first.
func (s *Store) WebhookEndpoints(ctx context.Context, appID string) ([]WebhookEndpoint, error) {
	var out []WebhookEndpoint
	err := s.selectContext(ctx, &out, qEndpointsOfApp, appID)
	return out, wrap("webhook endpoints", err)
}

// WebhookEndpoint returns one endpoint of the app; another app's is ErrNotFound.
func (s *Store) WebhookEndpoint(ctx context.Context, appID, id string) (WebhookEndpoint, error) {
	var e WebhookEndpoint
	if !isUUID(id) {
		return e, ErrNotFound
	}
	err := s.getContext(ctx, &e, qEndpointOfApp, appID, id)
	return e, wrap("webhook endpoint", err)
}

// RotateWebhookSecret makes sealed the endpoint's secret; the current one keeps signing
// (a second signature) until previousUntil.
func (s *Store) RotateWebhookSecret(ctx context.Context, appID, id string, sealed []byte, hint string, previousUntil, now time.Time) error {
	if !isUUID(id) {
		return ErrNotFound
	}
	return s.execOne(ctx, "rotate webhook secret", qRotateEndpointSecret, appID, id, sealed, hint, previousUntil, now)
}

// DeleteWebhookEndpoint removes an endpoint with its deliveries.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, appID, id string) error {
	if !isUUID(id) {
		return ErrNotFound
	}
	return s.InTx(ctx, func(tx *Tx) error {
		if err := tx.lockWebhookDeliveries(ctx, qLockDeliveriesOfEndpoint, id); err != nil {
			return err
		}
		return tx.execOne(ctx, "delete webhook endpoint", qDeleteEndpoint, appID, id)
	})
}

// lockWebhookDeliveries locks the webhook deliveries a deletion is about to cascade to
// (one endpoint's, an app's or an owner's: qLockDeliveriesOf*), before the cascade
// takes their endpoints (qLockDeliveriesOfEndpoint says why).
func (s *Store) lockWebhookDeliveries(ctx context.Context, query, id string) error {
	var locked []string
	return wrap("lock webhook deliveries", s.selectContext(ctx, &locked, query, id))
}

// EnableWebhookEndpoint re-enables a disabled endpoint; its pending deliveries resume.
func (s *Store) EnableWebhookEndpoint(ctx context.Context, appID, id string, now time.Time) error {
	if !isUUID(id) {
		return ErrNotFound
	}
	return s.InTx(ctx, func(tx *Tx) error {
		if err := tx.execOne(ctx, "enable webhook endpoint", qEnableEndpoint, appID, id, now); err != nil {
			return err
		}
		_, err := tx.q.ExecContext(ctx, qNotifyWebhooks, appID)
		return err
	})
}

// SendTestWebhook queues a webhook.test event for one endpoint of the app.
func (s *Store) SendTestWebhook(ctx context.Context, appID, endpointID string, now time.Time) error {
	if !isUUID(endpointID) {
		return ErrNotFound
	}
	err := s.InTx(ctx, func(tx *Tx) error {
		id := "msg_" + hexID()
		if err := tx.execOne(ctx, "send test webhook", qInsertTestEvent, appID, endpointID, id, now); err != nil {
			return err
		}
		_, err := tx.q.ExecContext(ctx, qNotifyWebhooks, appID)
		return err
	})
	return wrap("send test webhook", err)
}

// ResendWebhookDelivery queues a delivery of the app's endpoint for an attempt now.
func (s *Store) ResendWebhookDelivery(ctx context.Context, appID, endpointID, deliveryID string, now time.Time) error {
	if !isUUID(endpointID) || !isUUID(deliveryID) {
		return ErrNotFound
	}
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.execOne(ctx, "resend webhook", qResendDelivery, appID, endpointID, deliveryID, now); err != nil {
			return err
		}
		_, err := tx.q.ExecContext(ctx, qNotifyWebhooks, appID)
		return err
	})
	return wrap("resend webhook", err)
}

// WebhookAttempt is one delivery attempt, for the deliveries view.
type WebhookAttempt struct {
	ID            int64      `db:"id"`
	DeliveryID    string     `db:"delivery_id"`
	Attempt       int        `db:"attempt"`
	At            time.Time  `db:"at"`
	StatusCode    *int       `db:"status_code"`
	LatencyMS     int        `db:"latency_ms"`
	Error         string     `db:"error"`
	ResponseBody  string     `db:"response_body"`
	NextRetryAt   *time.Time `db:"next_retry_at"`
	State         string     `db:"state"` // the delivery's state now
	NextAttemptAt time.Time  `db:"next_attempt_at"`
	EventID       string     `db:"event_id"`
	EventType     string     `db:"event_type"`
	RequestBody   string     `db:"request_body"` // the payload, cut at the requested length
}

// WebhookAttempts returns the endpoint's latest attempts, newest first, with request
// bodies cut at maxBody characters.
func (s *Store) WebhookAttempts(ctx context.Context, endpointID string, limit, maxBody int) ([]WebhookAttempt, error) {
	var out []WebhookAttempt
	err := s.selectContext(ctx, &out, qEndpointAttempts, endpointID, limit, maxBody)
	return out, wrap("webhook attempts", err)
}

// QueuedWebhook is a pending delivery.
type QueuedWebhook struct {
	ID            string    `db:"id"`
	State         string    `db:"state"`
	NextAttemptAt time.Time `db:"next_attempt_at"`
	Attempts      int       `db:"attempts"`
	EventID       string    `db:"event_id"`
	EventType     string    `db:"event_type"`
	CreatedAt     time.Time `db:"created_at"`
}

// QueuedWebhooks returns the endpoint's pending deliveries, soonest first.
func (s *Store) QueuedWebhooks(ctx context.Context, endpointID string, limit int) ([]QueuedWebhook, error) {
	var out []QueuedWebhook
	err := s.selectContext(ctx, &out, qEndpointQueued, endpointID, limit)
	return out, wrap("queued webhooks", err)
}

// CreditsLowThreshold returns the app's credits.low threshold (0: off).
func (s *Store) CreditsLowThreshold(ctx context.Context, appID string) (int64, error) {
	var n int64
	err := s.getContext(ctx, &n, qWebhookSettings, appID)
	return n, wrap("credits low threshold", err)
}

// SetCreditsLowThreshold sets the app's credits.low threshold.
func (s *Store) SetCreditsLowThreshold(ctx context.Context, appID string, threshold int64) error {
	_, err := s.q.ExecContext(ctx, qSetWebhookSettings, appID, threshold)
	return wrap("set credits low threshold", err)
}

// ClaimedDelivery is a delivery a worker holds until LockedUntil, with what it needs
// to send it.
type ClaimedDelivery struct {
	ID             string     `db:"id"`
	Claim          string     `db:"claim"`
	EventID        string     `db:"event_id"`
	EndpointID     string     `db:"endpoint_id"`
	Attempts       int        `db:"attempts"` // before this one
	EventType      string     `db:"event_type"`
	Payload        string     `db:"payload"`
	URL            string     `db:"url"`
	SecretSealed   []byte     `db:"secret_sealed"`
	PreviousSealed []byte     `db:"previous_sealed"`
	PreviousUntil  *time.Time `db:"previous_until"`
}

// ClaimWebhookDeliveries takes up to limit due deliveries until leaseUntil, at most
// perEndpoint in flight per endpoint counting inFlight (this worker's own).
func (s *Store) ClaimWebhookDeliveries(ctx context.Context, now, leaseUntil time.Time, limit, perEndpoint int, inFlight map[string]int) ([]ClaimedDelivery, error) {
	ids := make([]string, 0, len(inFlight))
	ns := make([]int64, 0, len(inFlight))
	for id, n := range inFlight {
		ids = append(ids, id)
		ns = append(ns, int64(n))
	}
	var out []ClaimedDelivery
	err := s.selectContext(ctx, &out, qClaimDeliveries, now, limit, leaseUntil, perEndpoint, pq.Array(ids), pq.Array(ns))
	return out, wrap("claim webhook deliveries", err)
}

// WebhookAttemptResult is the outcome of one attempt of a claimed delivery.
type WebhookAttemptResult struct {
	Delivery     ClaimedDelivery
	At           time.Time
	StatusCode   int // 0: no HTTP answer
	Latency      time.Duration
	Error        string // why it failed, safe to show the developer
	ResponseBody string
	Delivered    bool
	// NextAttemptAt is the retry time of a failed attempt; nil: no retry is left.
	NextAttemptAt *time.Time
	// DisableAfter disables the endpoint when it has failed for that long;
	// DisableReason says why, on the page.
	DisableAfter  time.Duration
	DisableReason string
}

// RecordWebhookAttempt stores an attempt, moves the delivery on (delivered, retry at
// NextAttemptAt, or failed) if this worker still holds its claim, and updates the
// endpoint's health, in one statement. It reports whether this attempt disabled it.
func (s *Store) RecordWebhookAttempt(ctx context.Context, r WebhookAttemptResult) (bool, error) {
	d := r.Delivery
	var status any
	if r.StatusCode != 0 {
		status = r.StatusCode
	}
	state := DeliveryDelivered
	switch {
	case r.Delivered:
	case r.NextAttemptAt != nil:
		state = DeliveryPending
	default:
		state = DeliveryFailed
	}
	var disabled bool
	err := s.getContext(ctx, &disabled, qRecordAttempt, d.ID, d.Claim, d.EndpointID, d.Attempts+1, r.At, status,
		r.Latency.Milliseconds(), r.Error, r.ResponseBody, r.NextAttemptAt, state, r.Delivered, r.DisableAfter.Seconds(), r.DisableReason)
	return disabled, wrap("record webhook attempt", err)
}

// ReleaseWebhookClaims gives back claimed deliveries (still held by these claims) so
// that any instance takes them at once, without waiting for the lease.
func (s *Store) ReleaseWebhookClaims(ctx context.Context, ds []ClaimedDelivery) error {
	ids := make([]string, len(ds))
	claims := make([]string, len(ds))
	for i, d := range ds {
		ids[i], claims[i] = d.ID, d.Claim
	}
	_, err := s.q.ExecContext(ctx, qReleaseClaims, pq.Array(ids), pq.Array(claims))
	return wrap("release webhook claims", err)
}

// PruneWebhookEvents deletes events created before before whose deliveries are all
// done (delivered or given up), with their deliveries and attempts.
func (s *Store) PruneWebhookEvents(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.q.ExecContext(ctx, qPruneEvents, before)
	if err != nil {
		return 0, wrap("prune webhook events", err)
	}
	n, err := res.RowsAffected()
	return n, wrap("prune webhook events", err)
}

// emitGrantEvent writes a grant's event to the outbox (in the caller's transaction).
// emitConnectionEvents writes eventType for the linked accounts ids (reason "" for
// connection.linked), in the caller's transaction.
func (s *Store) emitConnectionEvents(ctx context.Context, ids []string, eventType, reason string, now time.Time) error {
	var n int
	var r *string
	if reason != "" {
		r = &reason
	}
	return s.getContext(ctx, &n, qEmitConnectionEvents, pq.Array(ids), eventType, r, now)
}

func (s *Store) emitGrantEvent(ctx context.Context, grantID, eventType, reason string, now time.Time) error {
	var r any
	if reason != "" {
		r = reason
	}
	var n int
	return s.getContext(ctx, &n, qEmitGrantEvent, grantID, eventType, r, now)
}

// resetCreditAlerts clears the app's (or one user's, userID != "") credit alerts that
// the balances are now above.
func (s *Store) resetCreditAlerts(ctx context.Context, appID, userID string) error {
	var u any
	if userID != "" {
		u = userID
	}
	_, err := s.q.ExecContext(ctx, qResetCreditAlerts, appID, u)
	return err
}

func hexID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
