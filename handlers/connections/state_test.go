package connections_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

// TestCallback_StateRules: a state works once, for 10 minutes, for the user and the
// browser session that started the flow; anything else is 400 and links nothing.
func TestCallback_StateRules(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tp := handlertest.NewOAuthProvider(t, "generic")
	p := w.addProvider(t, w.app, testProviderConfig(tp, "acme", "read"), tp.Secret)
	email := handlertest.UniqueEmail(t, "user")
	u := w.env.SignIn(t, email)
	user := w.user(t, email)

	// redirect returns the provider's redirect to our callback for a new flow of c.
	redirect := func(c *http.Client) string {
		resp, body := follow(t, w.env.Client(), w.start(t, c, "acme", "").String())
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("provider authorize = %d: %s", resp.StatusCode, body)
		}
		return resp.Header.Get("Location")
	}
	wantBadState := func(t *testing.T, c *http.Client, callback string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, callback, nil)
		req.Header.Set("Accept", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"detail":{"message":"This connection request is invalid or has expired."`) {
			t.Errorf("callback = %d %s, want 400 with the detail shape", resp.StatusCode, body)
		}
		if _, err := w.env.Store.LinkedAccount(t.Context(), p.ID, user.ID); err != store.ErrNotFound {
			t.Errorf("an account was linked: %v", err)
		}
	}

	t.Run("wrong state", func(t *testing.T) {
		cb, _ := url.Parse(redirect(u))
		q := cb.Query()
		q.Set("state", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		cb.RawQuery = q.Encode()
		wantBadState(t, u, cb.String())
	})
	t.Run("missing state", func(t *testing.T) {
		cb, _ := url.Parse(redirect(u))
		q := cb.Query()
		q.Del("state")
		cb.RawQuery = q.Encode()
		wantBadState(t, u, cb.String())
	})
	t.Run("another session of the same user", func(t *testing.T) {
		wantBadState(t, w.env.SignIn(t, email), redirect(u))
	})
	t.Run("another user", func(t *testing.T) {
		wantBadState(t, w.env.SignIn(t, handlertest.UniqueEmail(t, "intruder")), redirect(u))
	})
	t.Run("expired", func(t *testing.T) {
		cb := redirect(u)
		w.env.Clock.Advance(10*time.Minute + time.Second)
		wantBadState(t, u, cb)
	})
	t.Run("provider error", func(t *testing.T) {
		cb, _ := url.Parse(redirect(u))
		q := cb.Query()
		q.Del("code")
		q.Set("error", "access_denied")
		q.Set("error_description", "<script>alert(1)</script>")
		cb.RawQuery = q.Encode()
		resp, body := follow(t, u, cb.String())
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "The provider did not connect your account.") ||
			strings.Contains(body, "<script>alert") {
			t.Errorf("callback with error= = %d, want 400 with a fixed message: %.300s", resp.StatusCode, body)
		}
	})
	t.Run("replay", func(t *testing.T) {
		cb := redirect(u)
		if resp, body := follow(t, u, cb); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("first callback = %d: %.300s", resp.StatusCode, body)
		}
		if l := w.linked(t, p, user.ID); l.Status != store.ConnectionActive {
			t.Fatalf("status %s after the first callback", l.Status)
		}
		if err := w.env.Store.DisconnectLinkedAccount(t.Context(), []string{user.ID}, w.linked(t, p, user.ID).ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		wantBadState(t, u, cb)
	})
}

// TestStart_Errors: unknown connection 404, provider without credentials 501, both in
// the detail shape for JSON callers.
func TestStart_Errors(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tp := handlertest.NewOAuthProvider(t, "generic")
	unconfigured := testProviderConfig(tp, "later", "read")
	unconfigured.ClientID = ""
	w.addProvider(t, w.app, unconfigured, "")
	u := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	tests := []struct {
		name, path string
		want       int
	}{
		{"unknown provider", "/connections/nope/start?app=" + w.app.App.Slug, http.StatusNotFound},
		{"unknown app", "/connections/later/start?app=no-such-app", http.StatusNotFound},
		{"not configured", "/connections/later/start?app=" + w.app.App.Slug, http.StatusNotImplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, w.env.BaseURL+tt.path, nil)
			req.Header.Set("HX-Request", "true")
			resp, err := u.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != tt.want || !strings.Contains(body, `{"detail":{"message":`) || !strings.Contains(body, `"hint":`) {
				t.Errorf("GET %s = %d %s, want %d in the detail shape", tt.path, resp.StatusCode, body, tt.want)
			}
		})
	}
	// A browser navigation gets a readable page.
	resp, body := w.env.Get(t, u, "/connections/later/start?app="+w.app.App.Slug)
	if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(body, "This provider is not configured yet.") {
		t.Errorf("page = %d, want 501 with a readable message", resp.StatusCode)
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}
