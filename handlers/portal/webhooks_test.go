package portal_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

var secretRe = regexp.MustCompile(`whsec_[A-Za-z0-9+/=]{40,}`)

// addWebhook adds an endpoint through the portal and returns its ID and secret.
func addWebhook(t *testing.T, env *handlertest.Env, d developer, a store.App, target string, events ...string) (string, string) {
	t.Helper()
	resp, body := hxPost(t, env, d, appURL(a)+"/webhooks", url.Values{"webhook_url": {target}, "events": events})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST webhooks = %d; body %.500s", resp.StatusCode, body)
	}
	secret := secretRe.FindString(body)
	if secret == "" {
		t.Fatal("the answer shows no whsec_ secret")
	}
	eps, err := env.Store.WebhookEndpoints(context.Background(), a.ID)
	if err != nil || len(eps) == 0 {
		t.Fatalf("endpoints = %v, %v", eps, err)
	}
	return eps[len(eps)-1].ID, secret
}

func TestWebhooks_AddSendTestRotateAndDeliveries(t *testing.T) {
	rc := handlertest.NewWebhookReceiver(t)
	env := handlertest.New(t, rc.Option())
	dev := signIn(t, env, "hooks")
	ca := createApp(t, env, dev, "Hooked", "")

	_, page := do(t, env, dev, http.MethodGet, appURL(ca.app), nil, false)
	for _, want := range []string{`id="webhooks-panel"`, `name="webhook_url"`, `name="events"`, `value="credits.low"`, `name="credits_low_threshold"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the app page lacks %s", want)
		}
	}
	epID, secret := addWebhook(t, env, dev, ca.app, rc.URL, store.EventUserConnected, store.EventClientSecretRotated)
	// Shown once: the page afterwards shows only the hint, and the database holds it sealed.
	_, page = do(t, env, dev, http.MethodGet, appURL(ca.app), nil, false)
	if strings.Contains(page, secret) || !strings.Contains(page, secret[len(secret)-4:]) {
		t.Error("the app page must show the secret's hint, never the secret again")
	}
	if n := countRows(t, env, `SELECT count(*) FROM webhook_endpoints WHERE position($1 in encode(secret_sealed, 'escape')) > 0`, secret); n != 0 {
		t.Error("the secret is stored in clear")
	}
	if strings.Contains(auditText(t, env), secret) || strings.Contains(env.Logs.String(), secret) {
		t.Error("the secret is in the audit log or the logs")
	}

	resp, body := hxPost(t, env, dev, appURL(ca.app)+"/webhooks/"+epID+"/test", url.Values{})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "webhook.test") {
		t.Fatalf("send test = %d; %.300s", resp.StatusCode, body)
	}
	got := rc.Wait(t)
	wh, _ := standardwebhooks.NewWebhook(secret)
	if err := wh.Verify(got.Body, got.Header); err != nil {
		t.Fatalf("the test event does not verify: %v", err)
	}
	// Rotating the app's client secret is an event (the endpoint subscribed to it).
	hxPost(t, env, dev, clientURL(ca.app, ca.client)+"/secret", url.Values{"overlap": {"1h"}})
	got = rc.Wait(t)
	var p struct{ Type string }
	_ = json.Unmarshal(got.Body, &p)
	if p.Type != store.EventClientSecretRotated {
		t.Errorf("after a client secret rotation the event is %q", p.Type)
	}

	// Rotation of the webhook secret: shown once, both sign for 24 hours.
	resp, body = hxPost(t, env, dev, appURL(ca.app)+"/webhooks/"+epID+"/rotate", url.Values{})
	newSecret := secretRe.FindString(body)
	if resp.StatusCode != http.StatusOK || newSecret == "" || newSecret == secret || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotate = %d, secret %v, cache %q", resp.StatusCode, newSecret != "", resp.Header.Get("Cache-Control"))
	}
	hxPost(t, env, dev, appURL(ca.app)+"/webhooks/"+epID+"/test", url.Values{})
	got = rc.Wait(t)
	for _, s := range []string{secret, newSecret} {
		w, _ := standardwebhooks.NewWebhook(s)
		if err := w.Verify(got.Body, got.Header); err != nil {
			t.Errorf("during the overlap a secret does not verify: %v", err)
		}
	}

	// Deliveries view and Resend.
	waitAttempts(t, env, epID, 3)
	resp, body = do(t, env, dev, http.MethodGet, appURL(ca.app)+"/webhooks/"+epID, nil, false)
	if resp.StatusCode != http.StatusOK || strings.Count(body, `data-testid="delivery-attempt"`) != 3 || !strings.Contains(body, "200") {
		t.Fatalf("deliveries page = %d with %d attempts", resp.StatusCode, strings.Count(body, `data-testid="delivery-attempt"`))
	}
	attempts, _ := env.Store.WebhookAttempts(context.Background(), epID, 10, 100)
	resp, body = hxPost(t, env, dev, appURL(ca.app)+"/webhooks/"+epID+"/deliveries/"+attempts[0].DeliveryID+"/resend", url.Values{})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="webhook-deliveries"`) {
		t.Fatalf("resend = %d; %.300s", resp.StatusCode, body)
	}
	again := rc.Wait(t)
	if again.Header.Get("webhook-id") != attempts[0].EventID {
		t.Errorf("resend sent %q, want the same event %q", again.Header.Get("webhook-id"), attempts[0].EventID)
	}
	// A delivery of another endpoint is not found through this one.
	resp, _ = hxPost(t, env, dev, appURL(ca.app)+"/webhooks/"+epID+"/deliveries/"+store.NewUUID()+"/resend", url.Values{})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("resend of an unknown delivery = %d, want 404", resp.StatusCode)
	}
}

// waitAttempts waits until the endpoint has n recorded attempts.
func waitAttempts(t *testing.T, env *handlertest.Env, endpointID string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for countRows(t, env, `SELECT count(*) FROM webhook_attempts WHERE endpoint_id = $1`, endpointID) < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d attempts recorded", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWebhooks_InvalidURLsAreFieldErrors(t *testing.T) {
	rc := handlertest.NewWebhookReceiver(t)
	env := handlertest.New(t, rc.Option())
	dev := signIn(t, env, "badhooks")
	ca := createApp(t, env, dev, "Strict", "")
	tests := []struct {
		name, url string
		events    []string
		field     string
	}{
		{"not a URL", "hooks.example.com", []string{"user.connected"}, "Enter a full URL"},
		{"http", "http://8.8.8.8/hooks", []string{"user.connected"}, "https://"},
		{"private address", "https://10.0.0.5/hooks", []string{"user.connected"}, "private"},
		{"loopback", "https://127.0.0.1:9/hooks", []string{"user.connected"}, "private"},
		{"metadata address", "https://169.254.169.254/", []string{"user.connected"}, "private"},
		{"localhost", "https://localhost/hooks", []string{"user.connected"}, "private"},
		{"no event", rc.URL, nil, "at least one event"},
		{"unknown event only", rc.URL, []string{"user.hacked"}, "at least one event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := hxPost(t, env, dev, appURL(ca.app)+"/webhooks", url.Values{"webhook_url": {tt.url}, "events": tt.events})
			if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, tt.field) || !strings.Contains(body, `data-testid="field-error"`) {
				t.Errorf("POST %q = %d; want 422 with %q; body %.300s", tt.url, resp.StatusCode, tt.field, body)
			}
		})
	}
	if n := countRows(t, env, `SELECT count(*) FROM webhook_endpoints`); n != 0 {
		t.Errorf("endpoints after invalid input = %d, want 0", n)
	}
	resp, body := hxPost(t, env, dev, appURL(ca.app)+"/webhooks/threshold", url.Values{"credits_low_threshold": {"-3"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "whole number") {
		t.Errorf("threshold -3 = %d", resp.StatusCode)
	}
	resp, _ = hxPost(t, env, dev, appURL(ca.app)+"/webhooks/threshold", url.Values{"credits_low_threshold": {"25"}})
	if n, _ := env.Store.CreditsLowThreshold(context.Background(), ca.app.ID); resp.StatusCode != http.StatusOK || n != 25 {
		t.Errorf("threshold 25 = %d, stored %d", resp.StatusCode, n)
	}
	// Malformed IDs are 404, not 500.
	for _, p := range []string{"/webhooks/not-a-uuid", "/webhooks/not-a-uuid/rotate", "/webhooks/" + store.NewUUID() + "/deliveries/x/resend"} {
		method := http.MethodPost
		if !strings.Contains(p, "rotate") && !strings.Contains(p, "resend") {
			method = http.MethodGet
		}
		if resp, _ := do(t, env, dev, method, appURL(ca.app)+p, url.Values{}, true); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s = %d, want 404", method, p, resp.StatusCode)
		}
	}
}

func TestWebhooks_DisabledEndpointSaysWhy(t *testing.T) {
	rc := handlertest.NewWebhookReceiver(t)
	rc.SetStatus(http.StatusServiceUnavailable)
	env := handlertest.New(t, rc.Option())
	dev := signIn(t, env, "disabled")
	ca := createApp(t, env, dev, "Flaky", "")
	epID, _ := addWebhook(t, env, dev, ca.app, rc.URL, store.EventUserConnected)
	hxPost(t, env, dev, appURL(ca.app)+"/webhooks/"+epID+"/test", url.Values{})
	rc.Wait(t)
	waitAttempts(t, env, epID, 1)
	env.Clock.Advance(5*24*time.Hour + time.Minute)
	hxPost(t, env, dev, appURL(ca.app)+"/webhooks/"+epID+"/test", url.Values{})
	rc.Wait(t)
	waitAttempts(t, env, epID, 2)
	_, page := do(t, env, dev, http.MethodGet, appURL(ca.app), nil, false)
	if !strings.Contains(page, `data-testid="webhook-disabled"`) || !strings.Contains(page, "5 days") || !strings.Contains(page, "HTTP 503") {
		t.Fatalf("the app page does not say the endpoint was disabled and why")
	}
	rc.SetStatus(http.StatusOK)
	resp, _ := hxPost(t, env, dev, appURL(ca.app)+"/webhooks/"+epID+"/enable", url.Values{})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("enable = %d", resp.StatusCode)
	}
	if e, _ := env.Store.WebhookEndpoint(context.Background(), ca.app.ID, epID); e.DisabledAt != nil {
		t.Error("the endpoint is still disabled after Enable")
	}
}

// TestWebhooks_StuckEndpointNeverDelaysTheRequest: the request that causes an event only
// writes it to the outbox; a receiver that never answers holds up neither it nor the
// next one.
func TestWebhooks_StuckEndpointNeverDelaysTheRequest(t *testing.T) {
	t.Parallel()
	rc := handlertest.NewWebhookReceiver(t)
	env := handlertest.New(t, rc.Option())
	dev := signIn(t, env, "stuck")
	ca := createApp(t, env, dev, "Stuck", "")
	epID, _ := addWebhook(t, env, dev, ca.app, rc.URL, store.EventClientSecretRotated)
	release := rc.Hold(t)
	resp, _ := hxPost(t, env, dev, appURL(ca.app)+"/webhooks/"+epID+"/test", url.Values{})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("send test = %d", resp.StatusCode)
	}
	rc.Wait(t) // the delivery is now stuck in the receiver
	// A change that emits an event answers while that delivery is still open.
	resp, _ = hxPost(t, env, dev, clientURL(ca.app, ca.client)+"/secret", url.Values{"overlap": {"0"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("rotate client secret with a stuck webhook endpoint = %d", resp.StatusCode)
	}
	if n := countRows(t, env, `SELECT count(*) FROM webhook_events WHERE type = 'client.secret_rotated'`); n != 1 {
		t.Fatalf("client.secret_rotated events = %d, want 1 (written with the change)", n)
	}
	if n := countRows(t, env, `SELECT count(*) FROM webhook_attempts WHERE endpoint_id = $1`, epID); n != 0 {
		t.Fatalf("attempts recorded while the receiver holds the first = %d, want 0", n)
	}
	release()
	waitAttempts(t, env, epID, 2)
}
