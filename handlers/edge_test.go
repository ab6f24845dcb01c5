package handlers_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// Shapes of the answers to input the server refuses.
const (
	shapeOAuth  = "oauth"  // RFC 6749 JSON {"error": code}
	shapeJSON   = "json"   // a JSON error of a machine endpoint ({"error": code})
	shapePage   = "page"   // an HTML error page
	shapeDetail = "detail" // the portal's {"detail":{"message"}}
)

// TestEdge_InvalidTextIsRefusedWithTheDocumentedShape (issue 16 items 3 and 4): NUL
// bytes, invalid UTF-8 and over-long values in every kind of input (form fields of
// each surface, Basic credentials, query parameters, JSON members, paths) are refused
// before they reach PostgreSQL, with the error shape of the surface, and change
// nothing; over-long request targets are 414 at once.
func TestEdge_InvalidTextIsRefusedWithTheDocumentedShape(t *testing.T) {
	adminEmail := handlertest.UniqueEmail(t, "admin")
	env := handlertest.New(t, func(c *handlers.Config) { c.AdminEmails = []string{adminEmail} })
	fx := env.NewApp(t, adminEmail, store.ClientKindGPT, "https://chatgpt.com/aip/g-edge/oauth/callback")
	dev := env.SignIn(t, adminEmail)
	slug := fx.App.Slug
	long := strings.Repeat("x", oauth.MaxParamBytes+1)

	form := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	tests := []struct {
		name       string
		method     string
		path       string // sent as is: its escapes are the test's
		form       url.Values
		json       string
		basic      [2]string
		htmx       bool
		signedIn   bool
		wantStatus int
		wantShape  string
		wantCode   string // the "error" member of JSON answers
	}{
		// The OAuth endpoints: invalid_client for the client's own parameters, else invalid_request.
		{name: "token client_id NUL", method: "POST", path: oauth.PathToken, form: form("grant_type", "client_credentials", "client_id", "agpt_\x00x"),
			wantStatus: 401, wantShape: shapeOAuth, wantCode: "invalid_client"},
		{name: "token client_id invalid UTF-8", method: "POST", path: oauth.PathToken, form: form("grant_type", "client_credentials", "client_id", "agpt_\xffx"),
			wantStatus: 401, wantShape: shapeOAuth, wantCode: "invalid_client"},
		{name: "token client_secret NUL", method: "POST", path: oauth.PathToken, form: form("grant_type", "client_credentials", "client_id", fx.Client.ID, "client_secret", "s\x00"),
			wantStatus: 401, wantShape: shapeOAuth, wantCode: "invalid_client"},
		{name: "token code NUL", method: "POST", path: oauth.PathToken, form: form("grant_type", "authorization_code", "code", "a\x00b", "client_id", fx.Client.ID, "client_secret", fx.Secret),
			wantStatus: 400, wantShape: shapeOAuth, wantCode: "invalid_request"},
		{name: "token code too long", method: "POST", path: oauth.PathToken, form: form("grant_type", "authorization_code", "code", long, "client_id", fx.Client.ID, "client_secret", fx.Secret),
			wantStatus: 400, wantShape: shapeOAuth, wantCode: "invalid_request"},
		{name: "token JSON body with \\u0000", method: "POST", path: oauth.PathToken, json: `{"grant_type":"client_credentials","client_id":"agpt_\u0000"}`,
			wantStatus: 401, wantShape: shapeOAuth, wantCode: "invalid_client"},
		{name: "token Basic credentials with NUL", method: "POST", path: oauth.PathToken, form: form("grant_type", "client_credentials"), basic: [2]string{fx.Client.ID + "\x00", "s"},
			wantStatus: 401, wantShape: shapeOAuth, wantCode: "invalid_client"},
		{name: "token Basic secret invalid UTF-8", method: "POST", path: oauth.PathToken, form: form("grant_type", "client_credentials"), basic: [2]string{fx.Client.ID, "\xff\xfe"},
			wantStatus: 401, wantShape: shapeOAuth, wantCode: "invalid_client"},
		{name: "revoke client_id NUL", method: "POST", path: oauth.PathRevoke, form: form("token", "t", "client_id", "\x00"),
			wantStatus: 401, wantShape: shapeOAuth, wantCode: "invalid_client"},
		{name: "revoke token invalid UTF-8", method: "POST", path: oauth.PathRevoke, form: form("token", "agrt_\xff", "client_id", fx.Client.ID, "client_secret", fx.Secret),
			wantStatus: 400, wantShape: shapeOAuth, wantCode: "invalid_request"},
		{name: "introspect client_id invalid UTF-8", method: "POST", path: oauth.PathIntrospect, form: form("token", "t", "client_id", "\xc3("),
			wantStatus: 401, wantShape: shapeOAuth, wantCode: "invalid_client"},
		{name: "register client_name \\u0000", method: "POST", path: oauth.PathRegister, json: `{"redirect_uris":["https://a.example/cb"],"client_name":"a\u0000b"}`,
			wantStatus: 400, wantShape: shapeOAuth, wantCode: "invalid_client_metadata"},
		{name: "register contact with a control character", method: "POST", path: oauth.PathRegister, json: `{"redirect_uris":["https://a.example/cb"],"contacts":["a\u0007@b.example"]}`,
			wantStatus: 400, wantShape: shapeOAuth, wantCode: "invalid_client_metadata"},
		{name: "token query parameter NUL", method: "POST", path: oauth.PathToken + "?x=%00", form: form("grant_type", "client_credentials"),
			wantStatus: 400, wantShape: shapeOAuth, wantCode: "invalid_request"},
		// Authorization: never a redirect, an error page.
		{name: "authorize client_id NUL", method: "GET", path: oauth.PathAuthorize + "?response_type=code&client_id=%00&redirect_uri=https%3A%2F%2Fchatgpt.com%2F",
			wantStatus: 400, wantShape: shapePage},
		{name: "authorize client_id invalid UTF-8", method: "GET", path: oauth.PathAuthorize + "?response_type=code&client_id=%ff",
			wantStatus: 400, wantShape: shapePage},
		{name: "authorize state NUL with a valid client", method: "GET", signedIn: true,
			path:       oauth.PathAuthorize + "?response_type=code&client_id=" + fx.Client.ID + "&redirect_uri=" + url.QueryEscape(fx.Client.RedirectURIs[0]) + "&state=a%00b",
			wantStatus: 400, wantShape: shapePage},
		// Well-known documents and the gateway: a slug that cannot exist names nothing.
		{name: "protected resource metadata %ff slug", method: "GET", path: "/.well-known/oauth-protected-resource/gw/%ff",
			wantStatus: 404, wantShape: shapeJSON, wantCode: "not_found"},
		{name: "protected resource metadata %00 slug", method: "GET", path: "/.well-known/oauth-protected-resource/gw/a%00b",
			wantStatus: 404, wantShape: shapeJSON, wantCode: "not_found"},
		{name: "gateway %ff slug", method: "GET", path: "/gw/%ff/x",
			wantStatus: 404, wantShape: shapeJSON, wantCode: "not_found"},
		// Pages and the portal: a page, or {"detail"} for HTMX.
		{name: "sign-in email NUL", method: "POST", path: "/login", form: form("email", "a\x00@b.example"),
			wantStatus: 400, wantShape: shapePage},
		{name: "page path invalid UTF-8", method: "GET", path: "/dashboard/apps/%ff", signedIn: true,
			wantStatus: 404, wantShape: shapePage},
		{name: "new app name NUL", method: "POST", path: "/dashboard/apps", form: form("name", "a\x00b"), signedIn: true, htmx: true,
			wantStatus: 400, wantShape: shapeDetail},
		{name: "new app name invalid UTF-8 (no HTMX)", method: "POST", path: "/dashboard/apps", form: form("name", "\xff"), signedIn: true,
			wantStatus: 400, wantShape: shapePage},
		{name: "app settings description-like field NUL", method: "POST", path: "/dashboard/apps/" + slug + "/settings", form: form("name", "ok", "upstream_url", "https://api.example/\x00"), signedIn: true, htmx: true,
			wantStatus: 400, wantShape: shapeDetail},
		{name: "scope name NUL", method: "POST", path: "/dashboard/apps/" + slug + "/scopes", form: form("name", "read\x00", "description", "Read"), signedIn: true, htmx: true,
			wantStatus: 400, wantShape: shapeDetail},
		{name: "scope description invalid UTF-8", method: "POST", path: "/dashboard/apps/" + slug + "/scopes", form: form("name", "read", "description", "R\xffead"), signedIn: true, htmx: true,
			wantStatus: 400, wantShape: shapeDetail},
		{name: "client name NUL", method: "POST", path: "/dashboard/apps/" + slug + "/clients", form: form("name", "c\x00", "kind", "gpt"), signedIn: true, htmx: true,
			wantStatus: 400, wantShape: shapeDetail},
		{name: "credit reason NUL", method: "POST", path: "/dashboard/apps/" + slug + "/credits", form: form("email", "u@example.com", "amount", "5", "reason", "gift\x00", "mode", "add"), signedIn: true, htmx: true,
			wantStatus: 400, wantShape: shapeDetail},
		{name: "admin suspend reason NUL", method: "POST", path: "/admin/suspend", form: form("target_type", "app", "target_id", fx.App.ID, "reason", "spam\x00", "action", "suspend"), signedIn: true,
			wantStatus: 400, wantShape: shapePage},
		{name: "admin suspend target_id invalid UTF-8", method: "POST", path: "/admin/suspend", form: form("target_type", "user", "target_id", "\xff", "action", "suspend"), signedIn: true, htmx: true,
			wantStatus: 400, wantShape: shapeDetail},
		// Request targets over 8 KiB: 414 before any handler runs.
		{name: "long path on a page", method: "POST", path: "/account/grants/" + strings.Repeat("a", 80_000) + "/revoke", signedIn: true,
			wantStatus: 414, wantShape: shapePage},
		{name: "long query on the token endpoint", method: "POST", path: oauth.PathToken + "?x=" + strings.Repeat("a", 9000), form: form("grant_type", "client_credentials"),
			wantStatus: 414, wantShape: shapeOAuth, wantCode: "invalid_request"},
	}

	var appsBefore, scopesBefore, clientsBefore, auditBefore int
	count := func() (apps, scopes, clients, audit int) {
		db := env.Store.DB()
		_ = db.Get(&apps, `SELECT count(*) FROM apps`)
		_ = db.Get(&scopes, `SELECT count(*) FROM scopes`)
		_ = db.Get(&clients, `SELECT count(*) FROM clients`)
		_ = db.Get(&audit, `SELECT count(*) FROM audit_log WHERE action LIKE 'admin.%'`)
		return
	}
	appsBefore, scopesBefore, clientsBefore, auditBefore = count()
	anonymous := env.Client()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			contentType := ""
			switch {
			case tt.form != nil:
				body, contentType = strings.NewReader(tt.form.Encode()), "application/x-www-form-urlencoded"
			case tt.json != "":
				body, contentType = strings.NewReader(tt.json), "application/json"
			}
			req, err := http.NewRequest(tt.method, env.BaseURL+"/", body)
			if err != nil {
				t.Fatal(err)
			}
			req.URL.Opaque = tt.path // the path goes out byte for byte, escapes and all
			if contentType != "" {
				req.Header.Set("Content-Type", contentType)
			}
			if tt.basic[0] != "" {
				req.SetBasicAuth(tt.basic[0], tt.basic[1])
			}
			if tt.htmx {
				req.Header.Set("HX-Request", "true")
			}
			c := anonymous
			if tt.signedIn {
				c = dev
			}
			c.Timeout = 5 * time.Second
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s %.80s: %v", tt.method, tt.path, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("%s %.80s = %d, want %d: %.300s", tt.method, tt.path, resp.StatusCode, tt.wantStatus, b)
			}
			ct := resp.Header.Get("Content-Type")
			switch tt.wantShape {
			case shapeOAuth, shapeJSON:
				var e struct {
					Error string `json:"error"`
				}
				if !strings.HasPrefix(ct, "application/json") || json.Unmarshal(b, &e) != nil || e.Error != tt.wantCode {
					t.Errorf("answer %s %.200s, want JSON error %q", ct, b, tt.wantCode)
				}
			case shapeDetail:
				var e struct {
					Detail struct{ Message string } `json:"detail"`
				}
				if json.Unmarshal(b, &e) != nil || e.Detail.Message == "" {
					t.Errorf("answer %s %.200s, want {\"detail\":{\"message\":…}}", ct, b)
				}
			case shapePage:
				if !strings.HasPrefix(ct, "text/html") || !strings.Contains(string(b), "<html") {
					t.Errorf("answer %s %.200s, want an error page", ct, b)
				}
			}
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("answer redirects to %q; refused input is never redirected", loc)
			}
		})
	}
	if a, s, c, au := count(); a != appsBefore || s != scopesBefore || c != clientsBefore || au != auditBefore {
		t.Errorf("refused input changed the database: apps %d→%d, scopes %d→%d, clients %d→%d, admin audit %d→%d",
			appsBefore, a, scopesBefore, s, clientsBefore, c, auditBefore, au)
	}
	if strings.Contains(env.Logs.String(), `"level":"ERROR"`) {
		t.Errorf("refused input logged an error (a 500 path): %.600s", errorLines(env.Logs.String()))
	}
}

func errorLines(logs string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"level":"ERROR"`) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestLogs_RequestChosenValuesAreCapped (issue 16 item 5): values a request chooses (a
// rejected redirect_uri, a path) reach the log cut to web.MaxLogValue, so one request
// cannot write kilobytes of log.
func TestLogs_RequestChosenValuesAreCapped(t *testing.T) {
	env := handlertest.New(t)
	fx := env.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindGPT, "https://chatgpt.com/aip/g-logs/oauth/callback")
	c := env.Client()
	requests := []struct {
		path       string
		wantStatus int
	}{
		{oauth.PathAuthorize + "?response_type=code&client_id=" + fx.Client.ID + "&redirect_uri=" +
			url.QueryEscape("https://evil.example/"+strings.Repeat("x", 7000)), http.StatusBadRequest},
		{"/" + strings.Repeat("p", 8000), http.StatusNotFound},
	}
	for _, r := range requests {
		before := len(env.Logs.String())
		resp, _ := env.Get(t, c, r.path)
		if resp.StatusCode != r.wantStatus {
			t.Fatalf("GET %.60s… = %d, want %d", r.path, resp.StatusCode, r.wantStatus)
		}
		for _, line := range strings.Split(env.Logs.String()[before:], "\n") {
			if len(line) > 3*web.MaxLogValue {
				t.Errorf("GET %.60s… logged a line of %d bytes: %.200s…", r.path, len(line), line)
			}
		}
	}
	if !strings.Contains(env.Logs.String(), "redirect_uri is not registered") {
		t.Error("the rejected redirect_uri was not logged at all; the developer needs the line (AI-CLIENTS.md A5)")
	}
}
