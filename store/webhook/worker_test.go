package webhook_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/storetest"
	"github.com/authgpts/authgpts/store/webhook"
)

var testKey = oauth.DeriveKeys([]byte("webhook test root secret, not for production use")).WebhookSecrets

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Microsecond)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// fixture is a developer's app with a GPT client, an end user and a database.
type fixture struct {
	s      *store.Store
	app    store.App
	client store.Client
	user   store.User
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	s := storetest.NewDB(t)
	ctx := context.Background()
	owner, err := s.EnsureUser(ctx, "owner@example.com")
	if err != nil {
		t.Fatal(err)
	}
	user, err := s.EnsureUser(ctx, "user@example.com")
	if err != nil {
		t.Fatal(err)
	}
	app, client, err := s.CreateApp(ctx, store.NewApp{OwnerID: owner.ID, Name: "Weather",
		Client: store.NewClient{ID: "agpt_weather", Name: "GPT", Kind: store.ClientKindGPT,
			RedirectURIs: []string{"https://chatgpt.com/aip/g-1/oauth/callback"}, SecretHash: []byte("h1"), SecretHint: "…aaaa"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return fixture{s: s, app: app, client: client, user: user}
}

// received is one request the receiver got.
type received struct {
	ID      string
	Header  http.Header
	Body    []byte
	Payload struct {
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
}

// receiver is a real HTTPS server that records what it gets; answer decides the reply.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(w http.ResponseWriter, r *http.Request, n int) // n: requests so far, this one included
	notify chan received
}

func newReceiver(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, n int)) *receiver {
	t.Helper()
	rc := &receiver{answer: answer, notify: make(chan received, 10000)}
	rc.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		g := received{ID: r.Header.Get("webhook-id"), Header: r.Header.Clone(), Body: body}
		_ = json.Unmarshal(body, &g.Payload)
		rc.mu.Lock()
		rc.got = append(rc.got, g)
		n := len(rc.got)
		rc.mu.Unlock()
		rc.notify <- g
		if rc.answer != nil {
			rc.answer(w, r, n)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) policy() webhook.Policy {
	pool := x509.NewCertPool()
	pool.AddCert(rc.srv.Certificate())
	return webhook.Policy{AllowAddrs: []string{rc.srv.Listener.Addr().String()}, RootCAs: pool}
}

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// wait returns the next request, failing the test if none arrives.
func (rc *receiver) wait(t *testing.T) received {
	t.Helper()
	select {
	case g := <-rc.notify:
		return g
	case <-time.After(30 * time.Second):
		t.Fatal("the receiver got no request")
		return received{}
	}
}

// addEndpoint creates an endpoint of the app for url and returns its secret.
func addEndpoint(t *testing.T, s *store.Store, appID, url string, events ...string) (string, string) {
	t.Helper()
	if len(events) == 0 {
		events = store.WebhookEventTypes
	}
	id := store.NewUUID()
	secret := webhook.NewSecret()
	sealed, err := webhook.Seal(testKey, id, secret)
	if err != nil {
		t.Fatal(err)
	}
	err = s.CreateWebhookEndpoint(context.Background(), appID, store.NewWebhookEndpoint{ID: id, URL: url, Events: events,
		SecretSealed: sealed, SecretHint: webhook.SecretHint(secret)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return id, secret
}

func newWorker(t *testing.T, s *store.Store, rc *receiver, now func() time.Time, cfg func(*webhook.Config)) *webhook.Worker {
	t.Helper()
	c := webhook.Config{Store: s, Key: testKey, Policy: rc.policy(), Now: now, AttemptTimeout: 5 * time.Second}
	if cfg != nil {
		cfg(&c)
	}
	return webhook.New(c)
}

func runOnce(t *testing.T, w *webhook.Worker) int {
	t.Helper()
	n, err := w.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce() error = %v", err)
	}
	return n
}

func verify(t *testing.T, secret string, g received, checkTime bool) error {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if checkTime {
		return wh.Verify(g.Body, g.Header)
	}
	return wh.VerifyIgnoringTimestamp(g.Body, g.Header)
}

func countRows(t *testing.T, s *store.Store, q string, args ...any) int {
	t.Helper()
	var n int
	if err := s.DB().Get(&n, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestDeliver_UserConnectedSignedPerStandardWebhooks(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := newReceiver(t, nil)
	_, secret := addEndpoint(t, f.s, f.app.ID, rc.srv.URL+"/hooks")
	w := newWorker(t, f.s, rc, time.Now, nil)

	g, err := f.s.UpsertGrant(ctx, store.NewGrant{UserID: f.user.ID, ClientID: f.client.ID, AppID: f.app.ID,
		Scopes: []string{"openid", "email"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// A second consent to the same grant changes its scopes, not the connection.
	if _, err := f.s.UpsertGrant(ctx, store.NewGrant{UserID: f.user.ID, ClientID: f.client.ID, AppID: f.app.ID,
		Scopes: []string{"openid", "email", "profile"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := runOnce(t, w); n != 1 {
		t.Fatalf("RunOnce() delivered %d, want 1 (one user.connected)", n)
	}
	got := rc.all()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	r := got[0]
	if err := verify(t, secret, r, true); err != nil {
		t.Errorf("standardwebhooks Verify() = %v, want nil", err)
	}
	if !strings.HasPrefix(r.ID, "msg_") || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers = %v", r.Header)
	}
	var data struct {
		App      struct{ ID, Slug string }
		User     struct{ ID, Email string }
		ClientID string   `json:"client_id"`
		GrantID  string   `json:"grant_id"`
		Scopes   []string `json:"scopes"`
	}
	if err := json.Unmarshal(r.Payload.Data, &data); err != nil {
		t.Fatal(err)
	}
	if r.Payload.Type != store.EventUserConnected || data.GrantID != g.ID || data.User.ID != f.user.ID ||
		data.User.Email != "user@example.com" || data.App.Slug != f.app.Slug || data.ClientID != f.client.ID {
		t.Errorf("payload = %s", r.Body)
	}
	if _, err := time.Parse(time.RFC3339Nano, r.Payload.Timestamp); err != nil {
		t.Errorf("timestamp %q: %v", r.Payload.Timestamp, err)
	}
	// Another secret does not verify it.
	if err := verify(t, webhook.NewSecret(), r, true); !errors.Is(err, standardwebhooks.ErrNoMatchingSignature) {
		t.Errorf("Verify() with another secret = %v, want ErrNoMatchingSignature", err)
	}

	// Revocation by the user: user.disconnected with the reason.
	if _, err := f.s.RevokeGrantBy(ctx, g.ID, store.RevokedByUser, time.Now()); err != nil {
		t.Fatal(err)
	}
	runOnce(t, w)
	got = rc.all()
	if len(got) != 2 || got[1].Payload.Type != store.EventUserDisconnected || !strings.Contains(string(got[1].Payload.Data), `"reason": "user"`) {
		t.Fatalf("second delivery = %+v", got[len(got)-1].Payload)
	}
}

func TestOutbox_RolledBackChangeEmitsNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := newReceiver(t, nil)
	addEndpoint(t, f.s, f.app.ID, rc.srv.URL)
	boom := errors.New("boom")
	err := f.s.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.UpsertGrant(ctx, store.NewGrant{UserID: f.user.ID, ClientID: f.client.ID, AppID: f.app.ID, Scopes: []string{"openid"}}, time.Now()); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx() = %v", err)
	}
	if n := countRows(t, f.s, `SELECT count(*) FROM webhook_events`); n != 0 {
		t.Fatalf("events after a rolled-back consent = %d, want 0", n)
	}
	if n := countRows(t, f.s, `SELECT count(*) FROM webhook_deliveries`); n != 0 {
		t.Fatalf("deliveries after a rolled-back consent = %d, want 0", n)
	}
	// The same change committed writes exactly one event and one delivery.
	if _, err := f.s.UpsertGrant(ctx, store.NewGrant{UserID: f.user.ID, ClientID: f.client.ID, AppID: f.app.ID, Scopes: []string{"openid"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, f.s, `SELECT count(*) FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id WHERE e.type = 'user.connected'`); n != 1 {
		t.Fatalf("deliveries after a committed consent = %d, want 1", n)
	}
}

func TestOutbox_OnlySubscribedEnabledEndpoints(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := newReceiver(t, nil)
	addEndpoint(t, f.s, f.app.ID, rc.srv.URL+"/a", store.EventCreditsLow)
	if _, err := f.s.UpsertGrant(ctx, store.NewGrant{UserID: f.user.ID, ClientID: f.client.ID, AppID: f.app.ID, Scopes: []string{"openid"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, f.s, `SELECT count(*) FROM webhook_events`); n != 0 {
		t.Fatalf("events with no endpoint subscribed to user.connected = %d, want 0", n)
	}
}

func TestRetries_FollowScheduleWithFakeClock(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 1:
			http.Error(w, "upstream broke", http.StatusInternalServerError)
		case 2:
			// A reset connection: no HTTP answer at all.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		case 3:
			w.Header().Set("Location", "https://example.com/elsewhere")
			w.WriteHeader(http.StatusFound)
		default:
			w.Write([]byte(`{"ok":true}`))
		}
	})
	epID, _ := addEndpoint(t, f.s, f.app.ID, rc.srv.URL)
	clk := newClock()
	w := newWorker(t, f.s, rc, clk.Now, nil)
	if err := f.s.SendTestWebhook(ctx, f.app.ID, epID, clk.Now()); err != nil {
		t.Fatal(err)
	}
	wantWaits := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute}
	for i, wait := range wantWaits {
		if n := runOnce(t, w); n != 1 {
			t.Fatalf("attempt %d: RunOnce() = %d, want 1", i+1, n)
		}
		// Not due yet a moment before the wait is over.
		clk.Advance(wait - time.Millisecond)
		if n := runOnce(t, w); n != 0 {
			t.Fatalf("after attempt %d: RunOnce() before the retry is due = %d, want 0", i+1, n)
		}
		clk.Advance(time.Millisecond)
	}
	if n := runOnce(t, w); n != 1 {
		t.Fatal("fourth attempt not made")
	}
	attempts, err := f.s.WebhookAttempts(ctx, epID, 10, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) != 4 {
		t.Fatalf("attempts = %d, want 4", len(attempts))
	}
	// Newest first.
	tests := []struct {
		status  int
		errPart string
		retry   bool
	}{
		{200, "", false},
		{302, "redirects are not followed", true},
		{0, "connection failed", true},
		{500, "HTTP 500", true},
	}
	for i, tt := range tests {
		a := attempts[i]
		gotStatus := 0
		if a.StatusCode != nil {
			gotStatus = *a.StatusCode
		}
		if gotStatus != tt.status || !strings.Contains(a.Error, tt.errPart) || (a.NextRetryAt != nil) != tt.retry || a.Attempt != 4-i {
			t.Errorf("attempt %d = status %d, err %q, next %v; want %d, %q, retry %v", a.Attempt, gotStatus, a.Error, a.NextRetryAt, tt.status, tt.errPart, tt.retry)
		}
	}
	if attempts[0].State != store.DeliveryDelivered || !strings.Contains(attempts[0].ResponseBody, `"ok":true`) ||
		!strings.Contains(attempts[3].ResponseBody, "upstream broke") {
		t.Errorf("final state %q, bodies %q / %q", attempts[0].State, attempts[0].ResponseBody, attempts[3].ResponseBody)
	}
	// The redirect's target was never asked: four requests, all to the receiver.
	if n := len(rc.all()); n != 4 {
		t.Errorf("receiver got %d requests, want 4", n)
	}
}

func TestRetries_GiveUpAfterSchedule(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(http.StatusServiceUnavailable) })
	epID, _ := addEndpoint(t, f.s, f.app.ID, rc.srv.URL)
	clk := newClock()
	w := newWorker(t, f.s, rc, clk.Now, nil)
	if err := f.s.SendTestWebhook(ctx, f.app.ID, epID, clk.Now()); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, wait := range append(webhook.DefaultSchedule, 24*time.Hour) {
		total += runOnce(t, w)
		clk.Advance(wait)
	}
	if total != 8 {
		t.Fatalf("attempts made = %d, want 8 (one and seven retries)", total)
	}
	attempts, _ := f.s.WebhookAttempts(ctx, epID, 20, 10)
	if attempts[0].State != store.DeliveryFailed || attempts[0].NextRetryAt != nil {
		t.Errorf("after the last retry: state %q, next %v; want failed, none", attempts[0].State, attempts[0].NextRetryAt)
	}
}

func TestDeliver_TimeoutIsRecordedAndRetried(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	epID, _ := addEndpoint(t, f.s, f.app.ID, rc.srv.URL)
	clk := newClock()
	w := newWorker(t, f.s, rc, clk.Now, func(c *webhook.Config) { c.AttemptTimeout = 200 * time.Millisecond })
	if err := f.s.SendTestWebhook(ctx, f.app.ID, epID, clk.Now()); err != nil {
		t.Fatal(err)
	}
	runOnce(t, w)
	attempts, _ := f.s.WebhookAttempts(ctx, epID, 10, 10)
	if len(attempts) != 1 || !strings.Contains(attempts[0].Error, "no answer within") || attempts[0].NextRetryAt == nil {
		t.Fatalf("attempts = %+v", attempts)
	}
}

func TestRotation_BothSecretsSignFor24Hours(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := newReceiver(t, nil)
	epID, oldSecret := addEndpoint(t, f.s, f.app.ID, rc.srv.URL)
	clk := newClock()
	w := newWorker(t, f.s, rc, clk.Now, nil)

	newSecret := webhook.NewSecret()
	sealed, _ := webhook.Seal(testKey, epID, newSecret)
	if err := f.s.RotateWebhookSecret(ctx, f.app.ID, epID, sealed, webhook.SecretHint(newSecret), clk.Now().Add(webhook.RotationOverlap), clk.Now()); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SendTestWebhook(ctx, f.app.ID, epID, clk.Now()); err != nil {
		t.Fatal(err)
	}
	runOnce(t, w)
	r := rc.wait(t)
	if n := len(strings.Fields(r.Header.Get("webhook-signature"))); n != 2 {
		t.Errorf("signatures during the overlap = %d, want 2", n)
	}
	for name, s := range map[string]string{"old": oldSecret, "new": newSecret} {
		if err := verify(t, s, r, false); err != nil {
			t.Errorf("during the overlap, the %s secret: Verify() = %v", name, err)
		}
	}
	clk.Advance(webhook.RotationOverlap + time.Second)
	if err := f.s.SendTestWebhook(ctx, f.app.ID, epID, clk.Now()); err != nil {
		t.Fatal(err)
	}
	runOnce(t, w)
	r = rc.wait(t)
	if err := verify(t, newSecret, r, false); err != nil {
		t.Errorf("after the overlap, the new secret: Verify() = %v", err)
	}
	if err := verify(t, oldSecret, r, false); err == nil {
		t.Error("after the overlap the old secret still verifies")
	}
}

func TestDisable_AfterFiveDaysOfFailures(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	failing := true
	var mu sync.Mutex
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	epID, _ := addEndpoint(t, f.s, f.app.ID, rc.srv.URL)
	clk := newClock()
	w := newWorker(t, f.s, rc, clk.Now, nil)
	send := func() {
		t.Helper()
		if err := f.s.SendTestWebhook(ctx, f.app.ID, epID, clk.Now()); err != nil {
			t.Fatal(err)
		}
		runOnce(t, w)
	}
	endpoint := func() store.WebhookEndpoint {
		t.Helper()
		e, err := f.s.WebhookEndpoint(ctx, f.app.ID, epID)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	send()
	clk.Advance(3 * 24 * time.Hour)
	// A success in between ends the failing run.
	mu.Lock()
	failing = false
	mu.Unlock()
	send()
	if e := endpoint(); e.FailingSince != nil || e.DisabledAt != nil {
		t.Fatalf("after a success: failing since %v, disabled %v", e.FailingSince, e.DisabledAt)
	}
	mu.Lock()
	failing = true
	mu.Unlock()
	send() // the run starts here
	start := clk.Now()
	clk.Advance(5*24*time.Hour - time.Minute)
	send()
	if e := endpoint(); e.DisabledAt != nil || e.FailingSince == nil || !e.FailingSince.Equal(start) {
		t.Fatalf("after 5 days less a minute: disabled %v, failing since %v (want %v)", e.DisabledAt, e.FailingSince, start)
	}
	clk.Advance(time.Minute)
	send()
	e := endpoint()
	if e.DisabledAt == nil || !strings.Contains(e.DisabledReason, "5 days") || !strings.Contains(e.DisabledReason, "HTTP 502") {
		t.Fatalf("after 5 days of failures: disabled %v, reason %q", e.DisabledAt, e.DisabledReason)
	}
	// A disabled endpoint gets nothing: its pending retries wait, new events skip it.
	before := len(rc.all())
	clk.Advance(24 * time.Hour)
	if n := runOnce(t, w); n != 0 {
		t.Errorf("RunOnce() for a disabled endpoint = %d, want 0", n)
	}
	if _, err := f.s.UpsertGrant(ctx, store.NewGrant{UserID: f.user.ID, ClientID: f.client.ID, AppID: f.app.ID, Scopes: []string{"openid"}}, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, f.s, `SELECT count(*) FROM webhook_events WHERE type = 'user.connected'`); n != 0 {
		t.Errorf("events for a disabled endpoint = %d, want 0", n)
	}
	if len(rc.all()) != before {
		t.Error("a disabled endpoint received a request")
	}
	// Enabling it again resumes its pending deliveries.
	mu.Lock()
	failing = false
	mu.Unlock()
	if err := f.s.EnableWebhookEndpoint(ctx, f.app.ID, epID, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if n := runOnce(t, w); n == 0 {
		t.Error("after enabling, no pending delivery was retried")
	}
}

func TestCredits_LowAndExhaustedOncePerCrossing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := newReceiver(t, nil)
	addEndpoint(t, f.s, f.app.ID, rc.srv.URL)
	if err := f.s.SetCreditsLowThreshold(ctx, f.app.ID, 10); err != nil {
		t.Fatal(err)
	}
	events := func(typ string) int {
		return countRows(t, f.s, `SELECT count(*) FROM webhook_events WHERE type = $1`, typ)
	}
	now := time.Now()
	// 14 free credits, 1 a call: the 5th call leaves 9, below 10.
	for i := 0; i < 8; i++ {
		if _, err := f.s.SpendCredits(ctx, f.app.ID, f.user.ID, 1, 14, now); err != nil {
			t.Fatal(err)
		}
		want := 0
		if i >= 4 {
			want = 1
		}
		if got := events(store.EventCreditsLow); got != want {
			t.Fatalf("after call %d: credits.low events = %d, want %d", i+1, got, want)
		}
	}
	// A refund (a failed call) back above the threshold and a spend again: same crossing.
	if err := f.s.RefundCredits(ctx, f.app.ID, f.user.ID, 5, now); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := f.s.SpendCredits(ctx, f.app.ID, f.user.ID, 1, 14, now)
		if errors.Is(err, store.ErrNoCredits) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := events(store.EventCreditsLow); got != 1 {
		t.Errorf("credits.low after a refund and more calls = %d, want 1", got)
	}
	if got := events(store.EventCreditsExhausted); got != 1 {
		t.Errorf("credits.exhausted at zero = %d, want 1", got)
	}
	// A developer's top-up resets both: the next crossings fire again.
	if _, err := f.s.ChangeCredits(ctx, store.CreditChange{AppID: f.app.ID, UserID: f.user.ID, Amount: 1000}, store.AuditEntry{ActorEmail: "owner@example.com"}, now); err != nil {
		t.Fatal(err)
	}
	// Leases (64 a time) cross the threshold too; set it high enough to be reached.
	if err := f.s.SetCreditsLowThreshold(ctx, f.app.ID, 900); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := f.s.LeaseCredits(ctx, f.app.ID, f.user.ID, 64, 256, 14, now); err != nil {
			t.Fatal(err)
		}
	}
	if got := events(store.EventCreditsLow); got != 2 {
		t.Errorf("credits.low after a top-up and leases across 900 = %d, want 2", got)
	}
	var data struct {
		Balance   int64 `json:"balance"`
		Threshold int64 `json:"threshold"`
		User      struct{ ID string }
	}
	var raw string
	if err := f.s.DB().Get(&raw, `SELECT payload::json->>'data' FROM webhook_events WHERE type = 'credits.low' AND (payload::json->'data'->>'threshold')::int = 900`); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(raw), &data); err != nil || data.Threshold != 900 || data.Balance >= 900 || data.User.ID != f.user.ID {
		t.Errorf("credits.low data = %s (%v)", raw, err)
	}
}

func TestTwoWorkers_DeliverEachEventOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := newReceiver(t, nil)
	epA, _ := addEndpoint(t, f.s, f.app.ID, rc.srv.URL+"/a")
	epB, _ := addEndpoint(t, f.s, f.app.ID, rc.srv.URL+"/b")
	const perEndpoint = 100
	for i := 0; i < perEndpoint; i++ {
		for _, ep := range []string{epA, epB} {
			if err := f.s.SendTestWebhook(ctx, f.app.ID, ep, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	var workers []*webhook.Worker
	for i := 0; i < 2; i++ {
		w := newWorker(t, f.s, rc, time.Now, func(c *webhook.Config) { c.PollInterval = 5 * time.Millisecond; c.Concurrency = 8 })
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		workers = append(workers, w)
	}
	for i := 0; i < 2*perEndpoint; i++ {
		rc.wait(t)
	}
	for _, w := range workers {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	seen := map[string]int{}
	for _, g := range rc.all() {
		seen[g.ID]++
	}
	if len(seen) != 2*perEndpoint || len(rc.all()) != 2*perEndpoint {
		t.Fatalf("distinct events %d, requests %d; want %d each (no duplicates)", len(seen), len(rc.all()), 2*perEndpoint)
	}
	if n := countRows(t, f.s, `SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered' AND attempts = 1`); n != 2*perEndpoint {
		t.Errorf("deliveries delivered at the first attempt = %d, want %d", n, 2*perEndpoint)
	}
}

func TestSlowEndpoint_DoesNotDelayOthers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	release := make(chan struct{})
	var mu sync.Mutex
	inSlow, maxSlow := 0, 0
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path != "/slow" {
			return
		}
		mu.Lock()
		inSlow++
		maxSlow = max(maxSlow, inSlow)
		mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		mu.Lock()
		inSlow--
		mu.Unlock()
	})
	slow, _ := addEndpoint(t, f.s, f.app.ID, rc.srv.URL+"/slow")
	fast, _ := addEndpoint(t, f.s, f.app.ID, rc.srv.URL+"/fast")
	for i := 0; i < 20; i++ {
		if err := f.s.SendTestWebhook(ctx, f.app.ID, slow, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	w := newWorker(t, f.s, rc, time.Now, func(c *webhook.Config) { c.PollInterval = 5 * time.Millisecond; c.PerEndpoint = 2 })
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(release)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		w.Close(ctx)
	})
	// Both slow slots are taken and stuck.
	rc.wait(t)
	rc.wait(t)
	if err := f.s.SendTestWebhook(ctx, f.app.ID, fast, time.Now()); err != nil {
		t.Fatal(err)
	}
	for {
		g := rc.wait(t)
		if strings.HasSuffix(g.Header.Get("webhook-id"), "") && g.Payload.Type == store.EventTest && strings.Contains(string(g.Payload.Data), fast) {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if maxSlow > 2 {
		t.Errorf("requests in flight to the slow endpoint = %d, want at most 2 (PerEndpoint)", maxSlow)
	}
}

func TestPrune_DeletesOldFinishedEventsOnly(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := newReceiver(t, nil)
	epID, _ := addEndpoint(t, f.s, f.app.ID, rc.srv.URL)
	old := time.Now().Add(-31 * 24 * time.Hour)
	for i := 0; i < 2; i++ {
		if err := f.s.SendTestWebhook(ctx, f.app.ID, epID, old); err != nil {
			t.Fatal(err)
		}
	}
	// One delivered, one still pending.
	if _, err := f.s.DB().Exec(`UPDATE webhook_deliveries SET state = 'delivered' WHERE id = (SELECT id FROM webhook_deliveries LIMIT 1)`); err != nil {
		t.Fatal(err)
	}
	n, err := f.s.PruneWebhookEvents(ctx, time.Now().Add(-30*24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("PruneWebhookEvents() = %d, %v; want 1", n, err)
	}
	if got := countRows(t, f.s, `SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'`); got != 1 {
		t.Errorf("pending deliveries after pruning = %d, want 1", got)
	}
}

func TestSeal_BoundToEndpoint(t *testing.T) {
	secret := webhook.NewSecret()
	sealed, err := webhook.Seal(testKey, "ep-1", secret)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), secret[len(webhook.SecretPrefix):]) {
		t.Fatal("the sealed secret holds the clear one")
	}
	if got, err := webhook.Open(testKey, "ep-1", sealed); err != nil || got != secret {
		t.Fatalf("Open() = %q, %v", got, err)
	}
	if _, err := webhook.Open(testKey, "ep-2", sealed); err == nil {
		t.Error("a secret sealed for one endpoint opened for another")
	}
	if _, err := webhook.Open(oauth.DeriveKeys([]byte("another root secret, another server!!")).WebhookSecrets, "ep-1", sealed); err == nil {
		t.Error("a secret opened under another key")
	}
}

func TestCheckURL(t *testing.T) {
	ctx := context.Background()
	prod := webhook.Policy{}
	dev := webhook.Policy{DevMode: true}
	tests := []struct {
		name string
		p    webhook.Policy
		url  string
		want error
	}{
		{"public https", prod, "https://8.8.8.8/hooks", nil},
		{"http in production", prod, "http://8.8.8.8/hooks", webhook.ErrNotHTTPS},
		{"loopback", prod, "https://127.0.0.1/hooks", webhook.ErrPrivateAddr},
		{"private", prod, "https://10.1.2.3/hooks", webhook.ErrPrivateAddr},
		{"metadata", prod, "https://169.254.169.254/latest", webhook.ErrPrivateAddr},
		{"ipv6 loopback", prod, "https://[::1]:8443/", webhook.ErrPrivateAddr},
		{"localhost", prod, "https://localhost/hooks", webhook.ErrPrivateAddr},
		{"credentials", prod, "https://u:p@8.8.8.8/", webhook.ErrInvalidURL},
		{"not a URL", prod, "hooks.example.com", webhook.ErrInvalidURL},
		{"ftp", prod, "ftp://8.8.8.8/", webhook.ErrInvalidURL},
		{"dev http localhost", dev, "http://localhost:3000/hooks", nil},
		{"dev loopback", dev, "http://127.0.0.1:3000/hooks", nil},
		{"dev still no private", dev, "https://192.168.1.10/hooks", webhook.ErrPrivateAddr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.CheckURL(ctx, tt.url); !errors.Is(err, tt.want) {
				t.Errorf("CheckURL(%q) = %v, want %v", tt.url, err, tt.want)
			}
		})
	}
}

func TestDeliver_RefusesPrivateAddressAtDialTime(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := newReceiver(t, nil)
	// Stored by other means (the portal refuses it): the dialer still refuses it.
	epID, _ := addEndpoint(t, f.s, f.app.ID, rc.srv.URL)
	w := newWorker(t, f.s, rc, time.Now, func(c *webhook.Config) { c.Policy.AllowAddrs = nil })
	if err := f.s.SendTestWebhook(ctx, f.app.ID, epID, time.Now()); err != nil {
		t.Fatal(err)
	}
	runOnce(t, w)
	attempts, _ := f.s.WebhookAttempts(ctx, epID, 10, 10)
	if len(attempts) != 1 || !strings.Contains(attempts[0].Error, "private") || len(rc.all()) != 0 {
		t.Fatalf("attempts = %+v, receiver got %d", attempts, len(rc.all()))
	}
}

// TestHelperWorkerProcess is the child of TestKill9_RestartDeliversTheRest: a worker
// process that delivers until it is killed. It does nothing in a normal run.
func TestHelperWorkerProcess(t *testing.T) {
	dsn := os.Getenv("WEBHOOK_CHILD_DSN")
	if dsn == "" {
		t.Skip("only runs as the child of TestKill9_RestartDeliversTheRest")
	}
	s, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(os.Getenv("WEBHOOK_CHILD_CA"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	w := webhook.New(webhook.Config{Store: s, Key: testKey, Now: time.Now, PollInterval: 10 * time.Millisecond,
		Concurrency: 1, PerEndpoint: 1,
		Policy: webhook.Policy{AllowAddrs: []string{os.Getenv("WEBHOOK_CHILD_ADDR")}, RootCAs: pool}})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	select {} // until SIGKILL
}

func TestKill9_RestartDeliversTheRest(t *testing.T) {
	dsn := storetest.NewDSN(t)
	s, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	owner, _ := s.EnsureUser(ctx, "owner@example.com")
	app, _, err := s.CreateApp(ctx, store.NewApp{OwnerID: owner.ID, Name: "Weather",
		Client: store.NewClient{ID: "agpt_weather", Name: "GPT", Kind: store.ClientKindPublic}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	inFlight := make(chan struct{})
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 5 {
			close(inFlight) // the child is waiting for this answer when it is killed
			<-release
		}
	})
	epID, secret := addEndpoint(t, s, app.ID, rc.srv.URL)
	const events = 10
	for i := 0; i < events; i++ {
		if err := s.SendTestWebhook(ctx, app.ID, epID, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	caFile := t.TempDir() + "/ca.pem"
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rc.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestHelperWorkerProcess$", "-test.count=1")
	child.Env = append(os.Environ(), "WEBHOOK_CHILD_DSN="+dsn, "WEBHOOK_CHILD_CA="+caFile,
		"WEBHOOK_CHILD_ADDR="+rc.srv.Listener.Addr().String())
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inFlight:
	case <-time.After(60 * time.Second):
		child.Process.Kill()
		t.Fatal("the child worker never reached the fifth delivery")
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	close(release)
	if n := countRows(t, s, `SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'`); n != 4 {
		t.Fatalf("delivered before the kill = %d, want 4", n)
	}

	// The restarted instance: the killed worker's lease (1 min) has run out by its clock.
	later := func() time.Time { return time.Now().Add(2 * time.Minute) }
	w := newWorker(t, s, rc, later, nil)
	for i := 0; i < events && countRows(t, s, `SELECT count(*) FROM webhook_deliveries WHERE state <> 'delivered'`) > 0; i++ {
		runOnce(t, w)
	}
	if n := countRows(t, s, `SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'`); n != events {
		t.Fatalf("delivered after the restart = %d, want %d", n, events)
	}
	seen := map[string]int{}
	for _, g := range rc.all() {
		if err := verify(t, secret, g, false); err != nil {
			t.Errorf("delivery %s: Verify() = %v", g.ID, err)
		}
		seen[g.ID]++
	}
	if len(seen) != events {
		t.Fatalf("distinct events received = %d, want %d", len(seen), events)
	}
	// At least once: only the one cut short by the kill came twice.
	twice := 0
	for _, n := range seen {
		if n > 1 {
			twice++
		}
	}
	if twice != 1 || len(rc.all()) != events+1 {
		t.Errorf("events received twice = %d, requests = %d; want 1 and %d", twice, len(rc.all()), events+1)
	}
}

func TestOutbox_DeletingAClientDisconnectsItsUsers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := newReceiver(t, nil)
	addEndpoint(t, f.s, f.app.ID, rc.srv.URL, store.EventUserDisconnected)
	if _, err := f.s.UpsertGrant(ctx, store.NewGrant{UserID: f.user.ID, ClientID: f.client.ID, AppID: f.app.ID, Scopes: []string{"openid"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Someone else's delete (wrong owner) is refused and emits nothing.
	if err := f.s.DeleteClient(ctx, f.user.ID, f.app.ID, f.client.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteClient() by another user = %v, want ErrNotFound", err)
	}
	if n := countRows(t, f.s, `SELECT count(*) FROM webhook_events`); n != 0 {
		t.Fatalf("events after a refused delete = %d, want 0", n)
	}
	if err := f.s.DeleteClient(ctx, f.app.OwnerID, f.app.ID, f.client.ID); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, f.s, `SELECT count(*) FROM webhook_events WHERE type = 'user.disconnected' AND payload LIKE '%"reason": "developer"%'`); n != 1 {
		t.Fatalf("user.disconnected events after deleting the client = %d, want 1", n)
	}
}

func TestOutbox_UserDeletedReachesTheAppsTheyUsed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := newReceiver(t, nil)
	_, secret := addEndpoint(t, f.s, f.app.ID, rc.srv.URL, store.EventUserDeleted)
	if _, err := f.s.UpsertGrant(ctx, store.NewGrant{UserID: f.user.ID, ClientID: f.client.ID, AppID: f.app.ID, Scopes: []string{"openid"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DeleteUser(ctx, f.user, time.Now()); err != nil {
		t.Fatal(err)
	}
	w := newWorker(t, f.s, rc, time.Now, nil)
	if n := runOnce(t, w); n != 1 {
		t.Fatalf("deliveries after the account deletion = %d, want 1", n)
	}
	r := rc.wait(t)
	if err := verify(t, secret, r, true); err != nil || r.Payload.Type != store.EventUserDeleted || !strings.Contains(string(r.Payload.Data), f.user.ID) {
		t.Fatalf("user.deleted delivery = %s (%v)", r.Body, err)
	}
	if strings.Contains(string(r.Body), "user@example.com") {
		t.Error("user.deleted carries the deleted user's email")
	}
}

func TestClose_ReleasesClaimedDeliveriesNotSent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	epID, _ := addEndpoint(t, f.s, f.app.ID, rc.srv.URL)
	for i := 0; i < 10; i++ {
		if err := f.s.SendTestWebhook(ctx, f.app.ID, epID, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	w := newWorker(t, f.s, rc, time.Now, func(c *webhook.Config) { c.PerEndpoint = 1; c.PollInterval = 5 * time.Millisecond })
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	rc.wait(t) // one request is stuck; more are claimed behind it
	if n := countRows(t, f.s, `SELECT count(*) FROM webhook_deliveries WHERE claim IS NOT NULL`); n < 2 {
		t.Fatalf("claimed deliveries = %d, want the one in flight and some queued", n)
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_ = w.Close(cctx) // gives up on the stuck one
	if n := countRows(t, f.s, `SELECT count(*) FROM webhook_deliveries WHERE claim IS NOT NULL OR locked_until IS NOT NULL`); n != 0 {
		t.Errorf("deliveries still claimed after Close = %d, want 0 (released for any instance)", n)
	}
	if n := countRows(t, f.s, `SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'`); n != 10 {
		t.Errorf("pending deliveries after Close = %d, want all 10", n)
	}
	// The attempt cut short by the shutdown is not the endpoint's failure.
	if n := countRows(t, f.s, `SELECT count(*) FROM webhook_attempts`); n != 0 {
		t.Errorf("attempts recorded for deliveries cut short by Close = %d, want 0", n)
	}
	if e, _ := f.s.WebhookEndpoint(ctx, f.app.ID, epID); e.FailingSince != nil {
		t.Error("a shutdown marked the endpoint as failing")
	}
}
