package authserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers/authserver"
	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// claudeDCR is the registration body Claude sends (AI-CLIENTS.md K1).
const claudeDCR = `{"client_name":"claudeai","grant_types":["authorization_code","refresh_token"],"response_types":["code"],` +
	`"token_endpoint_auth_method":"none","scope":"claudeai","redirect_uris":["https://claude.ai/api/mcp/auth_callback"]}`

// registerJSON posts body to /oauth/register as JSON.
func registerJSON(t *testing.T, env *handlertest.Env, body string) tokenResult {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, env.BaseURL+oauth.PathRegister, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

// registration is a registered client as the tests use it.
type registration struct {
	ClientID, Secret, Token, URI string
}

func mustRegister(t *testing.T, env *handlertest.Env, body string) registration {
	t.Helper()
	r := registerJSON(t, env, body)
	if r.Status != http.StatusCreated {
		t.Fatalf("register = %d %s, want 201", r.Status, r.Raw)
	}
	return registration{ClientID: r.str("client_id"), Secret: r.str("client_secret"),
		Token: r.str("registration_access_token"), URI: r.str("registration_client_uri")}
}

// clientRow is what the database holds about a client.
type clientRow struct {
	AppID      *string `db:"app_id"`
	Origin     string  `db:"origin"`
	Kind       string  `db:"kind"`
	Name       string  `db:"name"`
	AuthMethod string  `db:"token_endpoint_auth_method"`
	TokenHash  []byte  `db:"registration_token_hash"`
	Redirects  string  `db:"redirects"`
}

func readClient(t *testing.T, env *handlertest.Env, id string) (clientRow, bool) {
	t.Helper()
	var r clientRow
	err := env.Store.DB().Get(&r, `SELECT app_id::text AS app_id, origin, kind, name, token_endpoint_auth_method,
		registration_token_hash, array_to_string(redirect_uris, ' ') AS redirects FROM clients WHERE id = $1`, id)
	if err != nil {
		return clientRow{}, false
	}
	return r, true
}

func countRows(t *testing.T, env *handlertest.Env, query string, args ...any) int {
	t.Helper()
	var n int
	if err := env.Store.DB().Get(&n, query, args...); err != nil {
		t.Fatal(err)
	}
	return n
}

// noEmptyFields fails when a JSON object has a null or "" member (AI-CLIENTS.md M5, F3).
func noEmptyFields(t *testing.T, raw string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("not a JSON object: %s", raw)
	}
	for k, v := range m {
		if v == nil || v == "" {
			t.Errorf("member %q is %#v; optional members must be omitted", k, v)
		}
	}
}

func TestRegister_ClaudeBodyCreatesAppLessPublicClient(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	r := registerJSON(t, env, claudeDCR)
	if r.Status != http.StatusCreated {
		t.Fatalf("register = %d %s, want 201", r.Status, r.Raw)
	}
	noEmptyFields(t, r.Raw)
	id := r.str("client_id")
	if !strings.HasPrefix(id, oauth.PrefixClientID) {
		t.Errorf("client_id = %q, want a server-assigned %s… ID", id, oauth.PrefixClientID)
	}
	if v, ok := r.Body["client_id_issued_at"].(float64); !ok || v <= 0 || v != float64(int64(v)) {
		t.Errorf("client_id_issued_at = %v, want an integer", r.Body["client_id_issued_at"])
	}
	for k, want := range map[string]string{"client_name": "claudeai", "token_endpoint_auth_method": "none",
		"registration_client_uri": env.BaseURL + "/oauth/register/" + id} {
		if r.str(k) != want {
			t.Errorf("%s = %q, want %q", k, r.str(k), want)
		}
	}
	if got, _ := json.Marshal(r.Body["redirect_uris"]); string(got) != `["https://claude.ai/api/mcp/auth_callback"]` {
		t.Errorf("redirect_uris = %s", got)
	}
	if got, _ := json.Marshal(r.Body["grant_types"]); string(got) != `["authorization_code","refresh_token"]` {
		t.Errorf("grant_types = %s", got)
	}
	// The unknown scope "claudeai" is dropped, and an empty scope is omitted.
	for _, absent := range []string{"scope", "client_secret", "client_secret_expires_at"} {
		if _, ok := r.Body[absent]; ok {
			t.Errorf("%s = %v, want it absent", absent, r.Body[absent])
		}
	}
	if !strings.HasPrefix(r.str("registration_access_token"), oauth.PrefixRegistrationToken) {
		t.Errorf("registration_access_token = %q", r.str("registration_access_token"))
	}
	if r.Header.Get("Access-Control-Allow-Origin") != "*" || r.Header.Get("Set-Cookie") != "" || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers: CORS %q, Set-Cookie %q, Cache-Control %q", r.Header.Get("Access-Control-Allow-Origin"),
			r.Header.Get("Set-Cookie"), r.Header.Get("Cache-Control"))
	}

	row, ok := readClient(t, env, id)
	if !ok {
		t.Fatal("no clients row")
	}
	if row.AppID != nil || row.Origin != store.ClientOriginRegistration || row.Kind != store.ClientKindPublic ||
		row.AuthMethod != "none" || row.Name != "claudeai" || row.Redirects != "https://claude.ai/api/mcp/auth_callback" {
		t.Errorf("row = %+v", row)
	}
	if !bytes.Equal(row.TokenHash, env.Hasher().Hash(r.str("registration_access_token"))) {
		t.Error("registration_token_hash is not the keyed hash of the registration access token")
	}
	if n := countRows(t, env, `SELECT count(*) FROM client_secrets WHERE client_id = $1`, id); n != 0 {
		t.Errorf("a public client has %d secrets", n)
	}
	if n := countRows(t, env, `SELECT count(*) FROM audit_log WHERE action = 'client.registered' AND target_id = $1`, id); n != 1 {
		t.Errorf("audit entries = %d, want 1", n)
	}
	if logs := env.Logs.String(); strings.Contains(logs, r.str("registration_access_token")) {
		t.Error("the registration access token was logged")
	}
}

func TestRegister_SecretMethodGetsHashedSecretThatNeverExpires(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	r := registerJSON(t, env, `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"client_secret_post","client_name":"Tool"}`)
	if r.Status != http.StatusCreated {
		t.Fatalf("register = %d %s", r.Status, r.Raw)
	}
	noEmptyFields(t, r.Raw)
	secret := r.str("client_secret")
	if !strings.HasPrefix(secret, oauth.PrefixClientSecret) {
		t.Fatalf("client_secret = %q", secret)
	}
	// RFC 7591 §3.2.1: REQUIRED with a secret, an integer, 0 = never (F3: never a float).
	if !strings.Contains(r.Raw, `"client_secret_expires_at":0`) {
		t.Errorf("client_secret_expires_at is not the integer 0: %s", r.Raw)
	}
	row, _ := readClient(t, env, r.str("client_id"))
	if row.Kind != store.ClientKindGPT || row.AuthMethod != "client_secret_post" {
		t.Errorf("row = %+v, want a confidential client", row)
	}
	if n := countRows(t, env, `SELECT count(*) FROM client_secrets WHERE client_id = $1 AND secret_hash = $2`,
		r.str("client_id"), env.Hasher().Hash(secret)); n != 1 {
		t.Errorf("secrets stored as the keyed hash = %d, want 1", n)
	}
	if strings.Contains(env.Logs.String(), secret) {
		t.Error("the client secret was logged")
	}
}

func TestRegister_InvalidMetadataRefusedAsJSONAndNothingStored(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	cases := []struct {
		name, contentType, body, code string
	}{
		{"no redirect_uris", "application/json", `{"client_name":"x","token_endpoint_auth_method":"none"}`, "invalid_redirect_uri"},
		{"http redirect not loopback", "application/json", `{"redirect_uris":["http://evil.example/cb"],"token_endpoint_auth_method":"none"}`, "invalid_redirect_uri"},
		{"redirect with fragment", "application/json", `{"redirect_uris":["https://a.example/cb#x"],"token_endpoint_auth_method":"none"}`, "invalid_redirect_uri"},
		{"client-chosen client_id", "application/json", `{"client_id":"admin","redirect_uris":["https://a.example/cb"]}`, "invalid_client_metadata"},
		{"client_credentials grant", "application/json", `{"redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}`, "invalid_client_metadata"},
		{"implicit response type", "application/json", `{"redirect_uris":["https://a.example/cb"],"response_types":["token"]}`, "invalid_client_metadata"},
		{"unknown auth method", "application/json", `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"tls_client_auth"}`, "invalid_client_metadata"},
		{"redirect_uris not a list", "application/json", `{"redirect_uris":"https://a.example/cb"}`, "invalid_client_metadata"},
		{"not JSON", "application/json", `redirect_uris=https://a.example/cb`, "invalid_client_metadata"},
		{"form body", "application/x-www-form-urlencoded", `redirect_uris=https://a.example/cb`, "invalid_client_metadata"},
		{"http logo", "application/json", `{"redirect_uris":["https://a.example/cb"],"logo_uri":"http://a.example/l.png"}`, "invalid_client_metadata"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, env.BaseURL+oauth.PathRegister, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			r := do(t, req)
			wantError(t, r, http.StatusBadRequest, tc.code)
			if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				t.Errorf("Content-Type = %q, want JSON", r.Header.Get("Content-Type"))
			}
		})
	}
	if n := countRows(t, env, `SELECT count(*) FROM clients`); n != 0 {
		t.Errorf("%d clients stored after refused registrations", n)
	}
}

func TestRegister_PreflightAllowsBrowserClients(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	for _, path := range []string{oauth.PathRegister, oauth.PathRegister + "/agpt_x"} {
		req, _ := http.NewRequest(http.MethodOptions, env.BaseURL+path, nil)
		req.Header.Set("Origin", "http://localhost:6274") // MCP Inspector
		req.Header.Set("Access-Control-Request-Method", "POST")
		r := do(t, req)
		if r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "MCP-Protocol-Version") ||
			!strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), "PUT") || r.Header.Get("Set-Cookie") != "" {
			t.Errorf("OPTIONS %s = %d %v", path, r.Status, r.Header)
		}
	}
}

func TestRegister_RateLimitedPerIP(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	// The bucket refills at one registration a second: on a loaded machine the 60 below
	// can take longer than that, so the clock stands still.
	env.Clock.Freeze()
	body := `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"}`
	// The bound allows what refilled meanwhile by the server's clock (nothing, frozen).
	start := env.Clock.Now()
	created := 0
	var refused tokenResult
	for created <= 200 {
		r := registerJSON(t, env, body)
		if r.Status == http.StatusTooManyRequests {
			refused = r
			break
		}
		if r.Status != http.StatusCreated {
			t.Fatalf("registration %d = %d %s, want 201", created+1, r.Status, r.Raw)
		}
		created++
	}
	refilled := int(env.Clock.Now().Sub(start)/time.Second) + 1
	if created < 60 || created > 60+refilled {
		t.Fatalf("%d registrations before the first 429, want 60 (+ at most %d refilled)", created, refilled)
	}
	if refused.str("error") != "too_many_requests" || refused.Header.Get("Retry-After") == "" {
		t.Fatalf("refused registration = %d %s (Retry-After %q), want 429 JSON", refused.Status, refused.Raw, refused.Header.Get("Retry-After"))
	}
	if n := countRows(t, env, `SELECT count(*) FROM clients WHERE origin = 'registration'`); n != created {
		t.Errorf("clients = %d, want %d", n, created)
	}
}

// manage sends an RFC 7592 request to the registration's URI with the bearer token.
func manage(t *testing.T, method, uri, token, body string) tokenResult {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	} else {
		rd = strings.NewReader("")
	}
	req, err := http.NewRequest(method, uri, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

func wantTokenError(t *testing.T, r tokenResult) {
	t.Helper()
	if r.Status != http.StatusUnauthorized || r.str("error") != "invalid_token" ||
		!strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer ") {
		t.Fatalf("response = %d %s (WWW-Authenticate %q), want 401 invalid_token", r.Status, r.Raw, r.Header.Get("WWW-Authenticate"))
	}
}

func TestRegistrationManagement_ReadUpdateDeleteNeedTheToken(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	reg := mustRegister(t, env, claudeDCR)
	other := mustRegister(t, env, claudeDCR)

	// Read.
	wantTokenError(t, manage(t, http.MethodGet, reg.URI, "", ""))
	wantTokenError(t, manage(t, http.MethodGet, reg.URI, other.Token, ""))
	wantTokenError(t, manage(t, http.MethodGet, reg.URI, "agreg_"+randomString(20), ""))
	r := manage(t, http.MethodGet, reg.URI, reg.Token, "")
	if r.Status != http.StatusOK || r.str("client_id") != reg.ClientID || r.str("client_name") != "claudeai" ||
		r.str("registration_client_uri") != reg.URI {
		t.Fatalf("read = %d %s", r.Status, r.Raw)
	}
	noEmptyFields(t, r.Raw)

	// Update: the body replaces the metadata.
	update := `{"client_id":"` + reg.ClientID + `","client_name":"Claude (renamed)","token_endpoint_auth_method":"none",` +
		`"redirect_uris":["https://claude.com/api/mcp/auth_callback"],"grant_types":["authorization_code","refresh_token"]}`
	wantTokenError(t, manage(t, http.MethodPut, reg.URI, "", update))
	wantTokenError(t, manage(t, http.MethodPut, reg.URI, other.Token, update))
	wantError(t, manage(t, http.MethodPut, reg.URI, reg.Token, strings.Replace(update, `"client_name"`, `"registration_access_token":"x","client_name"`, 1)),
		http.StatusBadRequest, "invalid_request")
	wantError(t, manage(t, http.MethodPut, reg.URI, reg.Token, strings.Replace(update, reg.ClientID, other.ClientID, 1)),
		http.StatusBadRequest, "invalid_request")
	wantError(t, manage(t, http.MethodPut, reg.URI, reg.Token, strings.Replace(update, `"none"`, `"client_secret_basic"`, 1)),
		http.StatusBadRequest, "invalid_client_metadata")
	wantError(t, manage(t, http.MethodPut, reg.URI, reg.Token, strings.Replace(update, "https://claude.com", "http://claude.com", 1)),
		http.StatusBadRequest, "invalid_redirect_uri")
	if row, _ := readClient(t, env, reg.ClientID); row.Name != "claudeai" || row.Redirects != "https://claude.ai/api/mcp/auth_callback" {
		t.Fatalf("refused updates changed the row: %+v", row)
	}
	r = manage(t, http.MethodPut, reg.URI, reg.Token, update)
	if r.Status != http.StatusOK || r.str("client_name") != "Claude (renamed)" {
		t.Fatalf("update = %d %s", r.Status, r.Raw)
	}
	if row, _ := readClient(t, env, reg.ClientID); row.Name != "Claude (renamed)" || row.Redirects != "https://claude.com/api/mcp/auth_callback" {
		t.Errorf("row after update = %+v", row)
	}
	// The update rotated the registration access token: the answer holds the new one,
	// the one presented stops working for every method.
	rotated := r.str("registration_access_token")
	if !strings.HasPrefix(rotated, "agreg_") || rotated == reg.Token || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("update answered registration_access_token %q (Cache-Control %q), want a new token, not stored by caches",
			rotated, r.Header.Get("Cache-Control"))
	}
	wantTokenError(t, manage(t, http.MethodGet, reg.URI, reg.Token, ""))
	wantTokenError(t, manage(t, http.MethodPut, reg.URI, reg.Token, update))
	wantTokenError(t, manage(t, http.MethodDelete, reg.URI, reg.Token, ""))
	if r := manage(t, http.MethodGet, reg.URI, rotated, ""); r.Status != http.StatusOK || r.str("client_name") != "Claude (renamed)" {
		t.Fatalf("read with the rotated token = %d %s", r.Status, r.Raw)
	}
	if n := countRows(t, env, `SELECT count(*) FROM clients WHERE id = $1 AND registration_token_hash = $2`, reg.ClientID, env.Hasher().Hash(rotated)); n != 1 {
		t.Errorf("the stored hash is not the rotated token's keyed hash")
	}
	reg.Token = rotated

	// Delete.
	wantTokenError(t, manage(t, http.MethodDelete, reg.URI, "", ""))
	wantTokenError(t, manage(t, http.MethodDelete, reg.URI, other.Token, ""))
	if _, ok := readClient(t, env, reg.ClientID); !ok {
		t.Fatal("a refused delete removed the client")
	}
	if r := manage(t, http.MethodDelete, reg.URI, reg.Token, ""); r.Status != http.StatusNoContent {
		t.Fatalf("delete = %d %s, want 204", r.Status, r.Raw)
	}
	if _, ok := readClient(t, env, reg.ClientID); ok {
		t.Error("the client is still there after DELETE")
	}
	wantTokenError(t, manage(t, http.MethodGet, reg.URI, reg.Token, ""))
	if _, ok := readClient(t, env, other.ClientID); !ok {
		t.Error("deleting one registration removed another")
	}
	if n := countRows(t, env, `SELECT count(*) FROM audit_log WHERE action IN ('client.registration_updated', 'client.registration_deleted') AND target_id = $1`, reg.ClientID); n != 2 {
		t.Errorf("audit entries = %d, want 2", n)
	}
}

// TestJanitor_RemovesUnusedAndIdleRegistrations: a registration nobody used within a day
// goes, one in use stays until it has been idle for 90 days; portal clients never go.
func TestJanitor_RemovesUnusedAndIdleRegistrations(t *testing.T) {
	t.Parallel()
	w := newMCPWorld(t) // w.reg: registered, never used
	used := mustRegister(t, w.env, claudeDCR)
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	verifier, challenge := pkcePair()
	code := w.code(t, user, w.query(w.resource("/mcp"), challenge, "client_id", used.ClientID))
	wantOK(t, w.exchangeAs(t, used.ClientID, code, verifier))
	ctx := context.Background()
	now := w.env.Clock.Now()

	// Within the first day nothing goes.
	if r, err := authserver.Sweep(ctx, w.env.Store, now.Add(23*time.Hour)); err != nil || r.Registrations != 0 {
		t.Fatalf("Sweep at 23 h = %+v, %v; want nothing removed", r, err)
	}
	// After a day the unused one goes, with a revocation signal; the used one stays.
	r, err := authserver.Sweep(ctx, w.env.Store, now.Add(25*time.Hour))
	if err != nil || r.Registrations != 1 {
		t.Fatalf("Sweep at 25 h = %+v, %v; want 1 registration removed", r, err)
	}
	if _, ok := readClient(t, w.env, w.reg.ClientID); ok {
		t.Error("the unused registration is still there")
	}
	if _, ok := readClient(t, w.env, used.ClientID); !ok {
		t.Fatal("the used registration was removed")
	}
	// Idle for 90 days: it goes with its grant.
	if r, _ := authserver.Sweep(ctx, w.env.Store, now.Add(89*24*time.Hour)); r.Registrations != 0 {
		t.Errorf("Sweep at 89 days removed %d", r.Registrations)
	}
	if r, _ := authserver.Sweep(ctx, w.env.Store, now.Add(91*24*time.Hour)); r.Registrations != 1 {
		t.Errorf("Sweep at 91 days removed %d, want 1", r.Registrations)
	}
	if _, ok := readClient(t, w.env, used.ClientID); ok {
		t.Error("the idle registration is still there")
	}
	if n := countRows(t, w.env, `SELECT count(*) FROM grants WHERE client_id = $1`, used.ClientID); n != 0 {
		t.Errorf("%d grants of the removed client remain", n)
	}
	if _, ok := readClient(t, w.env, w.app.Client.ID); !ok {
		t.Error("the janitor removed a portal client")
	}
}
