// Package webhook delivers the webhook events the store writes to its outbox
// (store/webhooks.go): a Worker on every instance claims due deliveries with
// FOR UPDATE SKIP LOCKED and a lease, signs each with the endpoint's secrets per the
// Standard Webhooks specification and POSTs it through the SSRF guard of
// oauth/safefetch, retrying on a schedule. A worker killed mid-delivery leaves its
// lease to expire and another (or the restarted one) takes the rows again, so every
// event is delivered at least once.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/authgpts/authgpts/oauth/safefetch"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/notify"
)

// DefaultSchedule is the wait before each retry: 8 attempts over about 28 hours.
var DefaultSchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// MaxBodyShown is how much of a request or response body is kept for the deliveries view.
const MaxBodyShown = 4 << 10

// Config builds a Worker. Zero values get the defaults.
type Config struct {
	Store *store.Store
	// Key seals and opens endpoints' secrets (oauth.DerivedKeys.WebhookSecrets).
	Key []byte
	// Notifications wakes the worker when a transaction writes deliveries; nil: it polls.
	Notifications *notify.Listener
	// Policy is where deliveries may go; Client, when set, replaces Policy.Client.
	Policy Policy
	Client *http.Client
	Now    func() time.Time
	Log    *slog.Logger

	PollInterval   time.Duration   // default 1 s: due retries are seen within it
	AttemptTimeout time.Duration   // default 10 s, the whole request
	Lease          time.Duration   // default 1 min: a claim outlives a dead worker this long
	Concurrency    int             // requests in flight on this instance, default 32
	PerEndpoint    int             // requests in flight per endpoint on this instance, default 4
	Schedule       []time.Duration // default DefaultSchedule
	DisableAfter   time.Duration   // default 5 days of failures disables an endpoint
	Retention      time.Duration   // default 30 days: finished events are pruned after it
	PruneInterval  time.Duration   // default 1 h
	UserAgent      string          // default "AuthGPTs-Webhooks/1"
}

// Worker delivers webhooks. Start it once; Close stops it.
type Worker struct {
	cfg    Config
	client *http.Client
	kick   chan struct{}
	ctx    context.Context // stops claiming
	cancel context.CancelFunc
	// sendCtx bounds the attempts in flight: cancelled only when Close gives up waiting.
	sendCtx    context.Context
	cancelSend context.CancelFunc
	done       chan struct{}

	mu        sync.Mutex
	queues    map[string]*endpointQueue // endpoint ID → its claimed deliveries
	held      int                       // claimed and not finished, all endpoints
	sem       chan struct{}             // Concurrency: requests in flight
	wg        sync.WaitGroup
	lastPrune time.Time
	started   bool
}

// endpointQueue is one endpoint's claimed deliveries: at most PerEndpoint runners send
// them one after the other, so a slow endpoint holds up only its own queue.
type endpointQueue struct {
	pending []store.ClaimedDelivery
	running int
}

// prefetch is how many deliveries per request slot a claim takes for an endpoint: one
// claim feeds several deliveries (claims run one at a time on the worker's loop). The
// lease covers the wait in the queue.
const prefetch = 4

// New builds a Worker.
func New(cfg Config) *Worker {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = 10 * time.Second
	}
	if cfg.Lease == 0 {
		cfg.Lease = time.Minute
	}
	if minLease := time.Duration(prefetch+2) * cfg.AttemptTimeout; cfg.Lease < minLease {
		cfg.Lease = minLease // the last of a queue is sent within prefetch attempts
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 32
	}
	if cfg.PerEndpoint == 0 {
		cfg.PerEndpoint = 4
	}
	if cfg.Schedule == nil {
		cfg.Schedule = DefaultSchedule
	}
	if cfg.DisableAfter == 0 {
		cfg.DisableAfter = 5 * 24 * time.Hour
	}
	if cfg.Retention == 0 {
		cfg.Retention = 30 * 24 * time.Hour
	}
	if cfg.PruneInterval == 0 {
		cfg.PruneInterval = time.Hour
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "AuthGPTs-Webhooks/1"
	}
	client := cfg.Client
	if client == nil {
		client = cfg.Policy.Client(cfg.AttemptTimeout)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sendCtx, cancelSend := context.WithCancel(context.Background())
	return &Worker{cfg: cfg, client: client, kick: make(chan struct{}, 1), ctx: ctx, cancel: cancel,
		sendCtx: sendCtx, cancelSend: cancelSend, done: make(chan struct{}), queues: make(map[string]*endpointQueue),
		sem: make(chan struct{}, cfg.Concurrency)}
}

// Start subscribes to the outbox's notifications and starts delivering. It returns once
// the LISTEN is in effect.
func (w *Worker) Start() error {
	if l := w.cfg.Notifications; l != nil {
		if err := l.Subscribe(store.WebhooksChannel, func(string) { w.Kick() }, w.Kick); err != nil {
			return err
		}
	}
	w.started = true
	go w.loop()
	return nil
}

// Close stops claiming and waits (until ctx ends) for the deliveries in flight. One cut
// short then, and the claimed deliveries not yet sent, are released for any instance to
// take at once (a killed worker's are taken again when their lease expires).
func (w *Worker) Close(ctx context.Context) error {
	w.cancel()
	if w.started {
		<-w.done
	}
	idle := make(chan struct{})
	go func() { w.wg.Wait(); close(idle) }()
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		err = ctx.Err()
	}
	w.cancelSend()
	<-idle
	w.mu.Lock()
	var left []store.ClaimedDelivery
	for _, q := range w.queues {
		left = append(left, q.pending...)
	}
	w.queues = map[string]*endpointQueue{}
	w.mu.Unlock()
	if len(left) > 0 {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if rerr := w.cfg.Store.ReleaseWebhookClaims(rctx, left); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// Kick makes the worker look for due deliveries now (tests after advancing their clock).
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *Worker) loop() {
	defer close(w.done)
	t := time.NewTicker(w.cfg.PollInterval)
	defer t.Stop()
	for {
		if _, err := w.claimAndDispatch(w.ctx); err != nil && w.ctx.Err() == nil {
			w.cfg.Log.Error("webhooks: claim failed", "err", err)
		}
		select {
		case <-w.ctx.Done():
			return
		case <-w.kick:
		case <-t.C:
		}
	}
}

// RunOnce claims the due deliveries and delivers them, returning when all are done:
// for tests that drive a Worker that was not started, with their own clock.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	n, err := w.claimAndDispatch(ctx)
	w.wg.Wait()
	return n, err
}

func (w *Worker) claimAndDispatch(ctx context.Context) (int, error) {
	now := w.cfg.Now()
	w.maybePrune(ctx, now)
	w.mu.Lock()
	free := w.cfg.Concurrency*prefetch - w.held
	busy := make(map[string]int, len(w.queues))
	for id, q := range w.queues {
		busy[id] = len(q.pending) + q.running
	}
	w.mu.Unlock()
	if free <= 0 {
		return 0, nil
	}
	claimed, err := w.cfg.Store.ClaimWebhookDeliveries(ctx, now, now.Add(w.cfg.Lease), free, w.cfg.PerEndpoint*prefetch, busy)
	if err != nil {
		return 0, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range claimed {
		q := w.queues[d.EndpointID]
		if q == nil {
			q = &endpointQueue{}
			w.queues[d.EndpointID] = q
		}
		q.pending = append(q.pending, d)
		w.held++
		if q.running < w.cfg.PerEndpoint {
			q.running++
			w.wg.Add(1)
			go w.run(d.EndpointID)
		}
	}
	return len(claimed), nil
}

// run sends an endpoint's queued deliveries one after the other until the queue is
// empty or the worker closes (what is left is released by Close).
func (w *Worker) run(endpointID string) {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		q := w.queues[endpointID]
		if q == nil || len(q.pending) == 0 || w.ctx.Err() != nil {
			if q != nil {
				if q.running--; q.running == 0 && len(q.pending) == 0 {
					delete(w.queues, endpointID)
				}
			}
			w.mu.Unlock()
			w.Kick() // a slot is free: more may be due
			return
		}
		d := q.pending[0]
		q.pending = q.pending[1:]
		w.mu.Unlock()
		w.sem <- struct{}{}
		w.deliver(d)
		<-w.sem
		w.mu.Lock()
		w.held--
		low := len(q.pending) < w.cfg.PerEndpoint
		w.mu.Unlock()
		if low {
			w.Kick() // the queue runs low: claim more
		}
	}
}

func (w *Worker) maybePrune(ctx context.Context, now time.Time) {
	w.mu.Lock()
	due := now.Sub(w.lastPrune) >= w.cfg.PruneInterval
	if due {
		w.lastPrune = now
	}
	w.mu.Unlock()
	if !due {
		return
	}
	if n, err := w.cfg.Store.PruneWebhookEvents(ctx, now.Add(-w.cfg.Retention)); err != nil {
		w.cfg.Log.Error("webhooks: prune failed", "err", err)
	} else if n > 0 {
		w.cfg.Log.Info("webhooks: pruned old events", "events", n)
	}
}

// deliver makes one attempt and records it. Recording uses a context of its own so an
// attempt that was made is recorded even while the worker closes.
func (w *Worker) deliver(d store.ClaimedDelivery) {
	at := w.cfg.Now()
	res := w.attempt(d, at)
	res.Delivery, res.At = d, at
	if !res.Delivered && res.StatusCode == 0 && w.sendCtx.Err() != nil {
		// Cut short by Close: not the endpoint's failure. Give the delivery back.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.cfg.Store.ReleaseWebhookClaims(ctx, []store.ClaimedDelivery{d}); err != nil {
			w.cfg.Log.Error("webhooks: release claim failed", "delivery_id", d.ID, "err", err)
		}
		return
	}
	if !res.Delivered {
		if n := d.Attempts; n < len(w.cfg.Schedule) {
			next := at.Add(w.cfg.Schedule[n])
			res.NextAttemptAt = &next
		}
		res.DisableAfter = w.cfg.DisableAfter
		res.DisableReason = fmt.Sprintf("Disabled after %s of failed deliveries (last: %s). Fix the endpoint, then enable it again.",
			days(w.cfg.DisableAfter), lastFailure(res))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	disabled, err := w.cfg.Store.RecordWebhookAttempt(ctx, res)
	if err != nil {
		w.cfg.Log.Error("webhooks: record attempt failed", "delivery_id", d.ID, "err", err)
		return
	}
	if disabled {
		w.cfg.Log.Warn("webhooks: endpoint disabled after failing", "endpoint_id", d.EndpointID)
	}
	if !res.Delivered {
		w.cfg.Log.Debug("webhooks: attempt failed", "delivery_id", d.ID, "endpoint_id", d.EndpointID,
			"attempt", d.Attempts+1, "status", res.StatusCode, "err", res.Error)
	}
}

// attempt sends the delivery once; the result says what happened, never a secret.
func (w *Worker) attempt(d store.ClaimedDelivery, at time.Time) store.WebhookAttemptResult {
	u, err := url.Parse(d.URL)
	if err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && w.cfg.Policy.DevMode)) {
		return store.WebhookAttemptResult{Error: "not an https URL"}
	}
	secrets, err := w.secrets(d, at)
	if err != nil {
		return store.WebhookAttemptResult{Error: "the signing secret could not be read"}
	}
	body := []byte(d.Payload)
	sig, err := Sign(secrets, d.EventID, at, body)
	if err != nil {
		return store.WebhookAttemptResult{Error: "the payload could not be signed"}
	}
	ctx, cancel := context.WithTimeout(w.sendCtx, w.cfg.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, strings.NewReader(d.Payload))
	if err != nil {
		return store.WebhookAttemptResult{Error: "invalid URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.cfg.UserAgent)
	req.Header.Set("webhook-id", d.EventID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	start := time.Now()
	resp, err := w.client.Do(req)
	if err != nil {
		return store.WebhookAttemptResult{Latency: time.Since(start), Error: describe(err, w.cfg.AttemptTimeout)}
	}
	defer resp.Body.Close()
	shown, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBodyShown))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection reusable
	r := store.WebhookAttemptResult{Latency: time.Since(start), StatusCode: resp.StatusCode,
		ResponseBody: strings.ToValidUTF8(string(shown), "\uFFFD"),
		Delivered:    resp.StatusCode >= 200 && resp.StatusCode < 300}
	if !r.Delivered {
		r.Error = "HTTP " + strconv.Itoa(resp.StatusCode)
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			r.Error += ": redirects are not followed"
		}
	}
	return r
}

// secrets opens the current secret and, during a rotation, the previous one.
func (w *Worker) secrets(d store.ClaimedDelivery, at time.Time) ([]string, error) {
	cur, err := Open(w.cfg.Key, d.EndpointID, d.SecretSealed)
	if err != nil {
		return nil, err
	}
	out := []string{cur}
	if d.PreviousSealed != nil && d.PreviousUntil != nil && at.Before(*d.PreviousUntil) {
		prev, err := Open(w.cfg.Key, d.EndpointID, d.PreviousSealed)
		if err != nil {
			return nil, err
		}
		out = append(out, prev)
	}
	return out, nil
}

// describe turns a transport error into a short reason for the developer.
func describe(err error, timeout time.Duration) string {
	var ne net.Error
	switch {
	case errors.Is(err, safefetch.ErrForbiddenAddr):
		return "the host resolves to a private, loopback or reserved address"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "no answer within " + timeout.String()
	case errors.Is(err, context.Canceled):
		return "interrupted: the server was shutting down"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return "connection failed: " + msg
}

func lastFailure(r store.WebhookAttemptResult) string {
	if r.Error != "" {
		return r.Error
	}
	return "HTTP " + strconv.Itoa(r.StatusCode)
}

func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		n := int(d / (24 * time.Hour))
		if n == 1 {
			return "1 day"
		}
		return strconv.Itoa(n) + " days"
	}
	return d.String()
}
