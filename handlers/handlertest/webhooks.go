package handlertest

import (
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/store/webhook"
)

// WebhookReceiver is a real local HTTPS server that records the webhooks it gets.
type WebhookReceiver struct {
	Server *httptest.Server
	URL    string // where endpoints should point: Server.URL + "/hooks"
	// Status is what it answers (200 unless set before the request).
	mu     sync.Mutex
	status int
	hold   chan struct{} // non-nil: requests wait until it is closed
	got    []ReceivedWebhook
	notify chan ReceivedWebhook
}

// ReceivedWebhook is one request the receiver got.
type ReceivedWebhook struct {
	Header http.Header
	Body   []byte
}

// NewWebhookReceiver starts a receiver that closes with the test.
func NewWebhookReceiver(t testing.TB) *WebhookReceiver {
	t.Helper()
	rc := &WebhookReceiver{status: http.StatusOK, notify: make(chan ReceivedWebhook, 1000)}
	rc.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		g := ReceivedWebhook{Header: r.Header.Clone(), Body: body}
		rc.mu.Lock()
		rc.got = append(rc.got, g)
		status, hold := rc.status, rc.hold
		rc.mu.Unlock()
		rc.notify <- g
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"received":true}`))
	}))
	t.Cleanup(rc.Server.Close)
	rc.URL = rc.Server.URL + "/hooks"
	return rc
}

// SetStatus sets the status of the next answers.
func (rc *WebhookReceiver) SetStatus(code int) {
	rc.mu.Lock()
	rc.status = code
	rc.mu.Unlock()
}

// Hold makes the receiver keep every request open (a stuck endpoint) until release is
// called (or the test ends).
func (rc *WebhookReceiver) Hold(t testing.TB) (release func()) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	ch := make(chan struct{})
	rc.hold = ch
	var once sync.Once
	release = func() {
		once.Do(func() {
			rc.mu.Lock()
			rc.hold = nil
			rc.mu.Unlock()
			close(ch)
		})
	}
	t.Cleanup(release)
	return release
}

// Policy allow-lists the receiver (a loopback address) and trusts its certificate.
func (rc *WebhookReceiver) Policy() webhook.Policy {
	pool := x509.NewCertPool()
	pool.AddCert(rc.Server.Certificate())
	return webhook.Policy{AllowAddrs: []string{rc.Server.Listener.Addr().String()}, RootCAs: pool}
}

// Option sets the server's webhook policy to reach this receiver.
func (rc *WebhookReceiver) Option() Option {
	return func(c *handlers.Config) { c.WebhookPolicy = rc.Policy() }
}

// Wait returns the next webhook, failing the test when none comes.
func (rc *WebhookReceiver) Wait(t testing.TB) ReceivedWebhook {
	t.Helper()
	select {
	case g := <-rc.notify:
		return g
	case <-time.After(30 * time.Second):
		t.Fatal("handlertest: the webhook receiver got nothing")
		return ReceivedWebhook{}
	}
}
