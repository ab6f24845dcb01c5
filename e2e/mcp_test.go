package e2e

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/gateway"
	"github.com/authgpts/authgpts/handlers/handlertest"

	"github.com/authgpts/authgpts/oauth/safefetch"
)

// The MCP journey (DESIGN.md journey 5) with the official MCP Go SDK on both sides: a
// real MCP server (streamable HTTP) is the app's upstream behind the gateway, and the
// SDK's client with its OAuth support (AuthorizationCodeHandler) connects to
// <base>/gw/<slug>/mcp: 401 with resource_metadata → protected resource metadata →
// authorization server metadata → registration (dynamic, or a client ID metadata
// document) → PKCE S256 authorization with resource (the user consents over HTTP with a
// signed-in session) → token with resource → a tool call that streams progress
// through the gateway.

const mcpRedirect = "http://127.0.0.1:33418/callback" // a native client's loopback callback

// mcpEnv is a full server with the real key manager, a started gateway and an SSRF
// allow-list naming only the test's metadata-document host.
type mcpEnv struct {
	*handlertest.Env
	docs     *httptest.Server
	doc      string // the metadata document served at docs/client.json
	upstream *upstreamMCP
	mu       sync.Mutex
}

func newMCPEnv(t *testing.T) *mcpEnv {
	t.Helper()
	e := &mcpEnv{}
	e.docs = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		doc := e.doc
		e.mu.Unlock()
		if r.URL.Path != "/client.json" || doc == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = io.WriteString(w, doc)
	}))
	t.Cleanup(e.docs.Close)
	pool := x509.NewCertPool()
	pool.AddCert(e.docs.Certificate())
	e.Env = handlertest.New(t, func(c *handlers.Config) {
		c.Fetcher = safefetch.New(safefetch.Options{AllowAddrs: []string{e.docs.Listener.Addr().String()}, RootCAs: pool})
	})
	return e
}

// upstreamMCP is the developer's MCP server: one tool, "count", that reports progress
// and waits, after the first report, until the client has received it. If anything on
// the way buffered the response, the client would never see that report before the
// result and the tool would give up: the call passes only when the gateway streams.
type upstreamMCP struct {
	*httptest.Server
	seen chan struct{} // the client received the first progress report
	mu   sync.Mutex
	user string // X-AuthGPTs-User of the last call
}

func newUpstreamMCP(t *testing.T) *upstreamMCP {
	t.Helper()
	u := &upstreamMCP{seen: make(chan struct{}, 16)}
	server := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: "1.0.0"}, nil)
	type countArgs struct {
		N int `json:"n"`
	}
	mcp.AddTool(server, &mcp.Tool{Name: "count", Description: "Counts to n, reporting progress."},
		func(ctx context.Context, req *mcp.CallToolRequest, args countArgs) (*mcp.CallToolResult, any, error) {
			if req.Extra != nil && req.Extra.Header != nil {
				u.mu.Lock()
				u.user = req.Extra.Header.Get(gateway.HeaderUser)
				if req.Extra.Header.Get("Authorization") != "" {
					u.user = "LEAKED-AUTHORIZATION"
				}
				u.mu.Unlock()
			}
			token := req.Params.GetProgressToken()
			for i := 1; i <= args.N; i++ {
				if err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
					ProgressToken: token, Progress: float64(i), Total: float64(args.N), Message: fmt.Sprintf("step %d", i),
				}); err != nil {
					return nil, nil, err
				}
				if i == 1 {
					select {
					case <-u.seen:
					case <-time.After(10 * time.Second):
						return nil, nil, errors.New("the client never saw the first progress report: the response is buffered")
					case <-ctx.Done():
						return nil, nil, ctx.Err()
					}
				}
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("counted to %d", args.N)}}}, nil, nil
		})
	u.Server = httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	t.Cleanup(u.Close)
	return u
}

// consentingUser answers the SDK's authorization requests as a signed-in user in a
// browser would: it opens the URL, allows on the consent page, and hands the code back.
type consentingUser struct {
	t      *testing.T
	env    *mcpEnv
	client *http.Client
	mu     sync.Mutex
	pages  []string // consent pages shown
	asked  []url.Values
}

var (
	mcpTicketField = regexp.MustCompile(`name="ticket" value="([^"]+)"`)
	mcpScopeField  = regexp.MustCompile(`name="scope" value="([^"]+)"`)
)

func (u *consentingUser) fetch(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
	au, err := url.Parse(args.URL)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	u.asked = append(u.asked, au.Query())
	u.mu.Unlock()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, args.URL, nil)
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK { // the consent page
		u.mu.Lock()
		u.pages = append(u.pages, string(body))
		u.mu.Unlock()
		m := mcpTicketField.FindStringSubmatch(string(body))
		if m == nil {
			return nil, fmt.Errorf("no consent form: %.300s", body)
		}
		form := url.Values{"ticket": {html.UnescapeString(m[1])}, "decision": {"allow"}}
		for _, s := range mcpScopeField.FindAllStringSubmatch(string(body), -1) {
			form.Add("scope", html.UnescapeString(s[1]))
		}
		resp, err = u.client.PostForm(u.env.BaseURL+"/oauth/consent", form)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
	}
	if resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("authorization answered %d, want a redirect", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), mcpRedirect) {
		return nil, fmt.Errorf("redirected to %q, want the client's callback", resp.Header.Get("Location"))
	}
	q := loc.Query()
	if e := q.Get("error"); e != "" {
		return nil, fmt.Errorf("authorization error %s: %s", e, q.Get("error_description"))
	}
	return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
}

// connect runs the SDK client against the app's MCP endpoint with the handler config
// and calls the tool; it returns the session's access token claims and the result text.
func connect(t *testing.T, e *mcpEnv, endpoint string, user *consentingUser, cfg *auth.AuthorizationCodeHandlerConfig) (map[string]any, string, []float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg.AuthorizationCodeFetcher = user.fetch
	cfg.RedirectURL = mcpRedirect
	handler, err := auth.NewAuthorizationCodeHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	up := e.upstream
	var mu sync.Mutex
	var progress []float64
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e-client", Version: "1.0.0"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			progress = append(progress, req.Params.Progress)
			first := len(progress) == 1
			mu.Unlock()
			if first {
				up.seen <- struct{}{}
			}
		},
	})
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, OAuthHandler: handler}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer session.Close()
	params := &mcp.CallToolParams{Name: "count", Arguments: map[string]any{"n": 3}}
	params.SetProgressToken("progress-1")
	res, err := session.CallTool(ctx, params)
	if err != nil {
		t.Fatalf("CallTool: %v", err)
	}
	if res.IsError {
		t.Fatalf("tool error: %+v", res.Content)
	}
	text := ""
	if len(res.Content) == 1 {
		if tc, ok := res.Content[0].(*mcp.TextContent); ok {
			text = tc.Text
		}
	}
	// Notification handlers run concurrently with the call: the reports were sent before
	// the result, but may be handled a moment after it.
	waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(progress) >= 3 })
	ts, err := handler.TokenSource(ctx)
	if err != nil || ts == nil {
		t.Fatalf("token source: %v", err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return jwtClaims(t, tok.AccessToken), text, progress
}

func jwtClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// mcpApp creates the app behind the MCP server and returns its MCP endpoint.
func (e *mcpEnv) mcpApp(t *testing.T) (handlertest.AppFixture, string) {
	t.Helper()
	e.upstream = newUpstreamMCP(t)
	app := e.NewMCPApp(t, handlertest.UniqueEmail(t, "dev"), e.upstream.URL)
	return app, e.BaseURL + "/gw/" + app.App.Slug + gateway.MCPPath
}

// wantDiscoveryChain checks by hand what the SDK relies on: the 401 names the exact
// path-suffixed metadata URL, whose resource is the MCP URL, whose authorization
// server publishes registration and metadata-document support.
func wantDiscoveryChain(t *testing.T, e *mcpEnv, endpoint string) {
	t.Helper()
	resp, err := http.Post(endpoint, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantMeta := strings.Replace(endpoint, "/gw/", "/.well-known/oauth-protected-resource/gw/", 1)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `resource_metadata="`+wantMeta+`"`) {
		t.Fatalf("unauthenticated call = %d, WWW-Authenticate %q; want 401 naming %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), wantMeta)
	}
	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
	}
	getJSON(t, wantMeta, &prm)
	if prm.Resource != endpoint || len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != e.BaseURL {
		t.Fatalf("protected resource metadata = %+v", prm)
	}
	var root struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
	}
	getJSON(t, e.BaseURL+"/.well-known/oauth-protected-resource", &root)
	if root.Resource != e.BaseURL || len(root.AuthorizationServers) != 1 || root.AuthorizationServers[0] != e.BaseURL {
		t.Fatalf("root protected resource metadata = %+v", root)
	}
	var asm map[string]any
	getJSON(t, e.BaseURL+"/.well-known/oauth-authorization-server", &asm)
	if asm["registration_endpoint"] != e.BaseURL+"/oauth/register" || asm["client_id_metadata_document_supported"] != true ||
		asm["authorization_response_iss_parameter_supported"] != true {
		t.Fatalf("server metadata = %v", asm)
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

func wantStreamedCall(t *testing.T, e *mcpEnv, claims map[string]any, endpoint, text string, progress []float64) {
	t.Helper()
	if aud := claims["aud"]; aud != endpoint && !(fmt.Sprint(aud) == "["+endpoint+"]") {
		t.Errorf("access token aud = %v, want %q", aud, endpoint)
	}
	if text != "counted to 3" || len(progress) != 3 {
		t.Errorf("tool result %q with progress %v, want 3 reports then the result", text, progress)
	}
	e.upstream.mu.Lock()
	defer e.upstream.mu.Unlock()
	if e.upstream.user != claims["sub"] {
		t.Errorf("upstream saw user %q, want the token's subject %v", e.upstream.user, claims["sub"])
	}
}

func TestMCP_SDKClientWithDynamicRegistration(t *testing.T) {
	e := newMCPEnv(t)
	app, endpoint := e.mcpApp(t)
	wantDiscoveryChain(t, e, endpoint)
	user := &consentingUser{t: t, env: e, client: e.SignIn(t, handlertest.UniqueEmail(t, "user"))}

	claims, text, progress := connect(t, e, endpoint, user, &auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: "E2E MCP client", RedirectURIs: []string{mcpRedirect}, TokenEndpointAuthMethod: "none",
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"}, Scope: "claudeai",
		}},
	})
	wantStreamedCall(t, e, claims, endpoint, text, progress)

	if len(user.asked) != 1 || user.asked[0].Get("resource") != endpoint || user.asked[0].Get("code_challenge_method") != "S256" {
		t.Fatalf("authorization requests = %v, want one with resource and S256", user.asked)
	}
	if len(user.pages) != 1 || !strings.Contains(user.pages[0], `data-origin="registration"`) || !strings.Contains(user.pages[0], "E2E MCP client") {
		t.Error("the consent page does not show the anonymous registration")
	}
	// Rows: one registered client without an app, bound through its grant to this app.
	var row struct {
		ID     string  `db:"id"`
		AppID  *string `db:"app_id"`
		Origin string  `db:"origin"`
		Grant  string  `db:"grant_app"`
	}
	if err := e.Store.DB().Get(&row, `SELECT c.id, c.app_id::text AS app_id, c.origin, g.app_id::text AS grant_app
		FROM clients c JOIN grants g ON g.client_id = c.id WHERE c.origin = 'registration'`); err != nil {
		t.Fatal(err)
	}
	if row.AppID != nil || row.Grant != app.App.ID || claims["client_id"] != row.ID {
		t.Errorf("client %+v, token client_id %v; want an app-less registration bound by its grant to %s", row, claims["client_id"], app.App.ID)
	}
	var calls int
	waitUntil(t, func() bool {
		_ = e.Gateway.Flush(context.Background())
		_ = e.Store.DB().Get(&calls, `SELECT count(*) FROM usage_events WHERE app_id = $1 AND client_id = $2 AND status = 200`, app.App.ID, row.ID)
		return calls > 0
	})
	if logs := e.Logs.String(); strings.Contains(logs, "agreg_") || strings.Contains(logs, "agr_") || strings.Contains(logs, "agc_") {
		t.Error("a registration token, refresh token or code reached the logs")
	}
}

func TestMCP_SDKClientWithMetadataDocument(t *testing.T) {
	e := newMCPEnv(t)
	_, endpoint := e.mcpApp(t)
	docURL := e.docs.URL + "/client.json"
	e.mu.Lock()
	e.doc = fmt.Sprintf(`{"client_id":%q,"client_name":"E2E CIMD client","redirect_uris":["http://127.0.0.1/callback"],`+
		`"grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"none"}`, docURL)
	e.mu.Unlock()
	user := &consentingUser{t: t, env: e, client: e.SignIn(t, handlertest.UniqueEmail(t, "user"))}

	claims, text, progress := connect(t, e, endpoint, user, &auth.AuthorizationCodeHandlerConfig{
		ClientIDMetadataDocumentConfig: &auth.ClientIDMetadataDocumentConfig{URL: docURL},
	})
	wantStreamedCall(t, e, claims, endpoint, text, progress)
	if claims["client_id"] != docURL {
		t.Errorf("client_id claim = %v, want the document URL", claims["client_id"])
	}
	if len(user.pages) != 1 || !strings.Contains(user.pages[0], `data-origin="metadata_document"`) ||
		!strings.Contains(user.pages[0], "E2E CIMD client") || !strings.Contains(user.pages[0], `data-testid="localhost-warning"`) {
		t.Error("the consent page does not show the document's client, its host and the localhost warning")
	}
	var origin string
	if err := e.Store.DB().Get(&origin, `SELECT origin FROM clients WHERE id = $1 AND app_id IS NULL`, docURL); err != nil || origin != "metadata_document" {
		t.Errorf("document client row: %q, %v", origin, err)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBrowser_MCPConsentAndAppPage: in Chromium, the consent page an anonymous
// registration gets (its warning, the resource) at desktop and phone widths, and the
// developer's app page with the MCP server URL and the connected client.
func TestBrowser_MCPConsentAndAppPage(t *testing.T) {
	e := newMCPEnv(t)
	app, endpoint := e.mcpApp(t)
	resp, err := http.Post(e.BaseURL+"/oauth/register", "application/json", strings.NewReader(
		`{"client_name":"claudeai","redirect_uris":["https://claude.ai/api/mcp/auth_callback"],"token_endpoint_auth_method":"none","scope":"claudeai"}`))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		ClientID string `json:"client_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()

	ctx := NewBrowser(t, 1280, 900)
	signInBrowser(t, ctx, e.Env, handlertest.UniqueEmail(t, "enduser"))
	q := url.Values{"response_type": {"code"}, "client_id": {reg.ClientID}, "redirect_uri": {"https://claude.ai/api/mcp/auth_callback"},
		"state": {"s1"}, "scope": {"openid email"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
		"code_challenge_method": {"S256"}, "resource": {endpoint}}
	err = chromedp.Do(ctx,
		chromedp.Navigate(e.BaseURL+"/oauth/authorize?"+q.Encode()),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="consent"]`)),
	)
	if err != nil {
		t.Fatalf("consent page: %v", err)
	}
	warning, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-origin="registration"]`)))
	res, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="resource"]`)))
	if !strings.Contains(warning, "Unverified app") || res != endpoint {
		t.Errorf("consent page: warning %q, resource %q", warning, res)
	}
	Screenshot(t, ctx, "mcp-consent-registration-desktop")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(375, 740, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	Screenshot(t, ctx, "mcp-consent-registration-phone")

	// An MCP client connects (the SDK, another user), then the developer looks.
	user := &consentingUser{t: t, env: e, client: e.SignIn(t, handlertest.UniqueEmail(t, "user"))}
	connect(t, e, endpoint, user, &auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: "Claude", RedirectURIs: []string{mcpRedirect}, TokenEndpointAuthMethod: "none",
			GrantTypes: []string{"authorization_code", "refresh_token"},
		}},
	})
	dev := NewBrowser(t, 1280, 900)
	signInBrowser(t, dev, e.Env, app.Owner.Email)
	err = chromedp.Do(dev,
		chromedp.Navigate(e.BaseURL+"/dashboard/apps/"+app.App.Slug),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="mcp-panel"]`)),
		chromedp.ScrollIntoView(chromedp.CSS(`[data-testid="mcp-panel"]`)),
	)
	if err != nil {
		t.Fatalf("app page: %v", err)
	}
	shown, _ := chromedp.Run(dev, chromedp.Value(chromedp.CSS(`#mcp-server-url`)))
	row, _ := chromedp.Run(dev, chromedp.Text(chromedp.CSS(`[data-testid="mcp-client-row"]`)))
	if shown != endpoint || !strings.Contains(row, "Claude") || !strings.Contains(row, "Registration (unverified)") {
		t.Errorf("MCP panel: URL %q, row %q", shown, row)
	}
	Screenshot(t, dev, "mcp-app-page")
}
