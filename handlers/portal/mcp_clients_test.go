package portal_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth"
)

// connectMCPClient registers a client as Claude does and connects a user to the app's
// MCP server with it; it returns the client ID and the refresh token.
func connectMCPClient(t *testing.T, env *handlertest.Env, slug string) (string, string) {
	t.Helper()
	const callback = "https://claude.ai/api/mcp/auth_callback"
	resp, err := http.Post(env.BaseURL+oauth.PathRegister, "application/json", strings.NewReader(
		`{"client_name":"claudeai","redirect_uris":["`+callback+`"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		ClientID string `json:"client_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register = %d", resp.StatusCode)
	}
	user := env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	verifier := oauth.NewToken("") + "-verifier"
	q := url.Values{"response_type": {"code"}, "client_id": {reg.ClientID}, "redirect_uri": {callback}, "state": {"s"},
		"scope": {"openid"}, "code_challenge": {oauth.S256Challenge(verifier)}, "code_challenge_method": {"S256"},
		"resource": {env.BaseURL + "/gw/" + slug + "/mcp"}}
	resp, page := env.Get(t, user, oauth.PathAuthorize+"?"+q.Encode())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authorize = %d", resp.StatusCode)
	}
	m := regexp.MustCompile(`name="ticket" value="([^"]+)"`).FindStringSubmatch(page)
	resp, _ = env.PostForm(t, user, "/oauth/consent", url.Values{"ticket": {html.UnescapeString(m[1])}, "decision": {"allow"}})
	loc, _ := url.Parse(resp.Header.Get("Location"))
	resp, err = http.PostForm(env.BaseURL+oauth.PathToken, url.Values{"grant_type": {"authorization_code"}, "client_id": {reg.ClientID},
		"code": {loc.Query().Get("code")}, "redirect_uri": {callback}, "code_verifier": {verifier}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || tok.RefreshToken == "" {
		t.Fatalf("token = %d", resp.StatusCode)
	}
	return reg.ClientID, tok.RefreshToken
}

func TestAppPage_MCPSectionListsAndRevokesConnectedClients(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	dev := signIn(t, env, "dev")
	app := env.NewMCPApp(t, dev.user.Email, "")
	clientID, refresh := connectMCPClient(t, env, app.App.Slug)

	_, page := do(t, env, dev, http.MethodGet, appURL(app.App), nil, false)
	for _, want := range []string{env.BaseURL + "/gw/" + app.App.Slug + "/mcp", `data-testid="mcp-client-row"`, clientID,
		"claudeai", "Registration (unverified)", "1 user"} {
		if !strings.Contains(page, want) {
			t.Errorf("app page lacks %q", want)
		}
	}

	// Another developer cannot revoke it, nor can a portal client be "revoked" here.
	other := signIn(t, env, "other")
	if resp, _ := hxPost(t, env, other, appURL(app.App)+"/mcp-clients/revoke", url.Values{"client_id": {clientID}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another developer's revoke = %d, want 404", resp.StatusCode)
	}
	if resp, _ := hxPost(t, env, dev, appURL(app.App)+"/mcp-clients/revoke", url.Values{"client_id": {app.Client.ID}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("revoking a portal client here = %d, want 404", resp.StatusCode)
	}
	if n := countRows(t, env, `SELECT count(*) FROM grants WHERE client_id = $1 AND revoked_at IS NULL`, clientID); n != 1 {
		t.Fatalf("live grants = %d after refused revokes, want 1", n)
	}

	resp, body := hxPost(t, env, dev, appURL(app.App)+"/mcp-clients/revoke", url.Values{"client_id": {clientID}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-testid="mcp-revoked"`) || strings.Contains(body, `data-testid="mcp-client-row"`) {
		t.Fatalf("revoke = %d; body %.300s", resp.StatusCode, body)
	}
	if n := countRows(t, env, `SELECT count(*) FROM grants WHERE client_id = $1 AND revoked_at IS NULL`, clientID); n != 0 {
		t.Errorf("live grants after revoke = %d", n)
	}
	if n := countRows(t, env, `SELECT count(*) FROM refresh_tokens WHERE client_id = $1 AND revoked_at IS NULL`, clientID); n != 0 {
		t.Errorf("live refresh tokens after revoke = %d", n)
	}
	if n := countRows(t, env, `SELECT count(*) FROM audit_log WHERE action = 'app.mcp_client_revoked' AND target_id = $1 AND actor_id = $2`, clientID, dev.user.ID); n != 1 {
		t.Errorf("audit entries = %d, want 1", n)
	}
	if n := countRows(t, env, `SELECT count(*) FROM clients WHERE id = $1`, clientID); n != 1 {
		t.Error("revoking on one app deleted the client")
	}
	resp, err := http.PostForm(env.BaseURL+oauth.PathToken, url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {refresh}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("refresh after revoke = %d, want 400 invalid_grant", resp.StatusCode)
	}
}

// mcpSection cuts the MCP section out of an answer ("" when it holds none).
func mcpSection(body string) string {
	i := strings.Index(body, `<section id="mcp-panel"`)
	if i < 0 {
		return ""
	}
	j := strings.Index(body[i:], "</section>")
	if j < 0 {
		return body[i:]
	}
	return body[i : i+j]
}

// Saving the settings refreshes the MCP section in place (out of band): switching MCP on
// shows its server URL without a reload, switching it off takes the URL away.
func TestAppSettings_SaveRefreshesTheMCPSection(t *testing.T) {
	env := handlertest.New(t)
	d := signIn(t, env, "mcpswitch")
	ca := createApp(t, env, d, "Notes", "")
	form := settingsForm(ca.app)

	form.Set("mcp_enabled", "on")
	resp, body := hxPost(t, env, d, appURL(ca.app)+"/settings", form)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("save = %d; body %.300s", resp.StatusCode, body)
	}
	sec := mcpSection(body)
	if !strings.Contains(sec, `hx-swap-oob="true"`) || inputValue(sec, "mcp-server-url") != env.BaseURL+"/gw/notes/mcp" {
		t.Errorf("switching MCP on: the answer's MCP section is %.400q, want it out of band with the MCP server URL", sec)
	}

	form.Del("mcp_enabled")
	_, body = hxPost(t, env, d, appURL(ca.app)+"/settings", form)
	sec = mcpSection(body)
	if !strings.Contains(sec, `hx-swap-oob="true"`) || strings.Contains(sec, "/gw/notes/mcp") || !strings.Contains(sec, "not open to MCP clients") {
		t.Errorf("switching MCP off: the answer's MCP section is %.400q, want it out of band without the URL", sec)
	}
}
