package portal_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

// developer is a signed-in browser.
type developer struct {
	c    *http.Client
	user store.User
}

func signIn(t *testing.T, env *handlertest.Env, prefix string) developer {
	t.Helper()
	email := handlertest.UniqueEmail(t, prefix)
	c := env.SignIn(t, email)
	u, err := env.Store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return developer{c: c, user: u}
}

// do sends a request as a plain form post (htmx false) or as htmx sends it.
func do(t *testing.T, env *handlertest.Env, d developer, method, path string, form url.Values, htmx bool) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, env.BaseURL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if htmx {
		req.Header.Set("HX-Request", "true")
	}
	resp, err := d.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func hxPost(t *testing.T, env *handlertest.Env, d developer, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	return do(t, env, d, http.MethodPost, path, form, true)
}

// inputValue reads the value of the input with that id from a page.
func inputValue(body, id string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*?value="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// auditActions lists the actions the user caused, oldest first.
func auditActions(t *testing.T, env *handlertest.Env, userID string) []string {
	t.Helper()
	var out []string
	if err := env.Store.DB().Select(&out, `SELECT action FROM audit_log WHERE actor_id = $1 ORDER BY id`, userID); err != nil {
		t.Fatal(err)
	}
	return out
}

// auditRows returns every audit row as text, to check no secret is in one.
func auditText(t *testing.T, env *handlertest.Env) string {
	t.Helper()
	var rows []string
	if err := env.Store.DB().Select(&rows, `SELECT action || ' ' || target_id || ' ' || details::text FROM audit_log`); err != nil {
		t.Fatal(err)
	}
	return strings.Join(rows, "\n")
}

// createdApp is what creating an app through the portal returned.
type createdApp struct {
	app    store.App
	client store.Client
	secret string
}

// createApp creates an app through the "New app" form and reads the setup page.
func createApp(t *testing.T, env *handlertest.Env, d developer, name, callback string) createdApp {
	t.Helper()
	resp, body := do(t, env, d, http.MethodPost, "/dashboard/apps", url.Values{"name": {name}, "callback_url": {callback}}, false)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /dashboard/apps = %d; body: %.500s", resp.StatusCode, body)
	}
	ctx := context.Background()
	id := inputValue(body, "setup-client-id")
	cl, err := env.Store.ClientByID(ctx, id)
	if err != nil {
		t.Fatalf("client %q of the setup page: %v", id, err)
	}
	a, err := env.Store.AppByID(ctx, cl.AppID)
	if err != nil {
		t.Fatal(err)
	}
	return createdApp{app: a, client: cl, secret: inputValue(body, "setup-client-secret")}
}

func appURL(a store.App) string { return "/dashboard/apps/" + a.Slug }

func clientURL(a store.App, c store.Client) string { return appURL(a) + "/clients/" + c.ID }

func countRows(t *testing.T, env *handlertest.Env, query string, args ...any) int {
	t.Helper()
	var n int
	if err := env.Store.DB().Get(&n, query, args...); err != nil {
		t.Fatal(err)
	}
	return n
}
