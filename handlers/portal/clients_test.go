package portal_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/handlers/portal"
	"github.com/authgpts/authgpts/store"
)

func TestClients_AddEachKindRenameDelete(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	d := signIn(t, env, "clients")
	ca := createApp(t, env, d, "Clients", "")
	ctx := context.Background()

	tests := []struct {
		kind       string
		wantSecret bool
	}{
		{store.ClientKindGPT, true},
		{store.ClientKindPublic, false},
		{store.ClientKindService, true},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			resp, body := hxPost(t, env, d, appURL(ca.app)+"/clients", url.Values{"name": {"New " + tt.kind}, "kind": {tt.kind}})
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="client-list"`) {
				t.Fatalf("add %s client = %d", tt.kind, resp.StatusCode)
			}
			id, secret := inputValue(body, "created-client-id"), inputValue(body, "created-client-secret")
			cl, err := env.Store.ClientByID(ctx, id)
			if err != nil || cl.Kind != tt.kind || cl.AppID != ca.app.ID || cl.Name != "New "+tt.kind || cl.Origin != store.ClientOriginPortal {
				t.Fatalf("client row = %+v, %v", cl, err)
			}
			secrets, _ := env.Store.ActiveSecrets(ctx, id, env.Clock.Now())
			if tt.wantSecret {
				if len(secrets) != 1 || !env.Hasher().Equal(secret, secrets[0].Hash) {
					t.Errorf("%s client: %d secrets; want one, the keyed hash of the secret shown", tt.kind, len(secrets))
				}
			} else if secret != "" || len(secrets) != 0 {
				t.Errorf("public client got a secret (%d stored)", len(secrets))
			}
		})
	}

	resp, body := hxPost(t, env, d, appURL(ca.app)+"/clients", url.Values{"name": {"x"}, "kind": {"admin"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Choose GPT action") {
		t.Errorf("unknown kind = %d, want 422", resp.StatusCode)
	}
	if n := countRows(t, env, `SELECT count(*) FROM clients WHERE app_id = $1`, ca.app.ID); n != 4 {
		t.Errorf("clients = %d, want 4", n)
	}

	// Rename: a blank name is refused next to the field, a good one saved.
	resp, body = hxPost(t, env, d, clientURL(ca.app, ca.client)+"/name", url.Values{"name": {" "}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="client-name"`) {
		t.Errorf("blank rename = %d, want 422 with the #client-name region", resp.StatusCode)
	}
	resp, body = hxPost(t, env, d, clientURL(ca.app, ca.client)+"/name", url.Values{"name": {"Production GPT"}})
	if cl, _ := env.Store.ClientByID(ctx, ca.client.ID); resp.StatusCode != http.StatusOK || cl.Name != "Production GPT" || !strings.Contains(body, "Production GPT") {
		t.Errorf("rename = %d, name %q", resp.StatusCode, cl.Name)
	}

	// Delete: the client, its secrets and its grants go; the page moves to the app.
	resp, _ = hxPost(t, env, d, clientURL(ca.app, ca.client)+"/delete", nil)
	if resp.StatusCode != http.StatusNoContent || !strings.HasPrefix(resp.Header.Get("HX-Redirect"), appURL(ca.app)) {
		t.Fatalf("delete = %d, HX-Redirect %q", resp.StatusCode, resp.Header.Get("HX-Redirect"))
	}
	if n := countRows(t, env, `SELECT count(*) FROM client_secrets WHERE client_id = $1`, ca.client.ID); n != 0 {
		t.Errorf("%d secrets of the deleted client remain", n)
	}
	if _, err := env.Store.ClientByID(ctx, ca.client.ID); err == nil {
		t.Error("the deleted client still exists")
	}
	got := auditActions(t, env, d.user.ID)
	want := []string{"user.signed_up", "app.created", "client.created", "client.created", "client.created", "client.renamed", "client.deleted"}
	if !slices.Equal(got, want) {
		t.Errorf("audit = %v, want %v", got, want)
	}
}

func TestRedirectURIs_AddValidateOneClickRemove(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	d := signIn(t, env, "redirects")
	ca := createApp(t, env, d, "Redirects", "")
	base := clientURL(ca.app, ca.client)
	ctx := context.Background()
	uris := func() []string {
		cl, err := env.Store.ClientByID(ctx, ca.client.ID)
		if err != nil {
			t.Fatal(err)
		}
		return cl.RedirectURIs
	}

	refused := []struct{ uri, want string }{
		{"http://app.example.com/cb", "must use https"},
		{"https://app.example.com/cb#frag", "fragment"},
		{"https://*.example.com/cb", "wildcard"},
		{"/oauth/callback", "https://"},
		{"https://user@app.example.com/cb", "user name"},
		{"javascript:alert(1)", "https://"},
	}
	for _, tt := range refused {
		resp, body := hxPost(t, env, d, base+"/redirect-uris", url.Values{"redirect_uri": {tt.uri}})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, tt.want) || inputValue(body, "redirect-uri") != tt.uri {
			t.Errorf("add %q = %d, want 422 with %q and the value kept", tt.uri, resp.StatusCode, tt.want)
		}
	}
	if len(uris()) != 0 {
		t.Fatalf("refused URIs were stored: %v", uris())
	}

	for _, u := range []string{"https://app.example.com/cb", "http://127.0.0.1/callback", "http://localhost:8765/cb"} {
		if resp, _ := hxPost(t, env, d, base+"/redirect-uris", url.Values{"redirect_uri": {u}}); resp.StatusCode != http.StatusOK {
			t.Errorf("add %q = %d, want 200", u, resp.StatusCode)
		}
	}
	if resp, body := hxPost(t, env, d, base+"/redirect-uris", url.Values{"redirect_uri": {"https://app.example.com/cb"}}); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "already registered") {
		t.Errorf("duplicate = %d, want 422", resp.StatusCode)
	}

	// One click: a GPT ID (or its whole callback URL) gives both ChatGPT forms.
	if resp, body := hxPost(t, env, d, base+"/redirect-uris/presets", url.Values{"preset": {"gpt"}, "gpt_id": {"g-abc/../evil"}}); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Enter the GPT ID") || inputValue(body, "gpt-id") != "g-abc/../evil" {
		t.Errorf("bad GPT ID = %d, want 422 with the value kept", resp.StatusCode)
	}
	resp, body := hxPost(t, env, d, base+"/redirect-uris/presets", url.Values{"preset": {"gpt"}, "gpt_id": {"https://chat.openai.com/aip/g-9f8e7d/oauth/callback"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Added 2 redirect URIs.") {
		t.Errorf("GPT preset = %d, want both callbacks added", resp.StatusCode)
	}
	hxPost(t, env, d, base+"/redirect-uris/presets", url.Values{"preset": {"claude"}})
	hxPost(t, env, d, base+"/redirect-uris/presets", url.Values{"preset": {"chatgpt_platform"}})
	hxPost(t, env, d, base+"/redirect-uris/presets", url.Values{"preset": {"chatgpt_connector"}, "connector_id": {"conn_123"}})
	if resp, _ := hxPost(t, env, d, base+"/redirect-uris/presets", url.Values{"preset": {"evil"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown preset = %d, want 400", resp.StatusCode)
	}
	want := []string{
		"https://app.example.com/cb", "http://127.0.0.1/callback", "http://localhost:8765/cb",
		"https://chatgpt.com/aip/g-9f8e7d/oauth/callback", "https://chat.openai.com/aip/g-9f8e7d/oauth/callback",
		"https://claude.ai/api/mcp/auth_callback", "https://claude.com/api/mcp/auth_callback",
		"https://chatgpt.com/connector_platform_oauth_redirect", "https://chatgpt.com/connector/oauth/conn_123",
	}
	if got := uris(); !slices.Equal(got, want) {
		t.Errorf("redirect URIs = %v\nwant %v", got, want)
	}

	resp, _ = hxPost(t, env, d, base+"/redirect-uris/delete", url.Values{"redirect_uri": {"http://127.0.0.1/callback"}})
	if resp.StatusCode != http.StatusOK || slices.Contains(uris(), "http://127.0.0.1/callback") {
		t.Errorf("remove = %d; URIs %v", resp.StatusCode, uris())
	}
	got := auditActions(t, env, d.user.ID)
	if n := strings.Count(strings.Join(got, " "), "client.redirect_uris_added"); n != 7 || got[len(got)-1] != "client.redirect_uri_removed" {
		t.Errorf("audit = %v, want 7 additions then a removal", got)
	}
}

// TestRedirectURIs_LimitLeavesNothingHalfAdded: the one-click GPT helper adds two URIs in
// one change; when the second would pass the limit, neither is stored nor audited.
func TestRedirectURIs_LimitLeavesNothingHalfAdded(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	d := signIn(t, env, "limit")
	ca := createApp(t, env, d, "Limit", "")
	base := clientURL(ca.app, ca.client)
	for i := range store.MaxRedirectURIs - 1 {
		if resp, _ := hxPost(t, env, d, base+"/redirect-uris", url.Values{"redirect_uri": {fmt.Sprintf("https://app.example.com/cb/%d", i)}}); resp.StatusCode != http.StatusOK {
			t.Fatalf("add #%d = %d", i, resp.StatusCode)
		}
	}
	before := auditActions(t, env, d.user.ID)
	resp, body := hxPost(t, env, d, base+"/redirect-uris/presets", url.Values{"preset": {"gpt"}, "gpt_id": {"g-full"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "at most 20 redirect URIs") || inputValue(body, "gpt-id") != "g-full" {
		t.Fatalf("over the limit = %d, want 422 with the message and the ID kept", resp.StatusCode)
	}
	cl, _ := env.Store.ClientByID(context.Background(), ca.client.ID)
	if len(cl.RedirectURIs) != store.MaxRedirectURIs-1 || slices.Contains(cl.RedirectURIs, "https://chatgpt.com/aip/g-full/oauth/callback") {
		t.Errorf("redirect URIs = %d, want the %d from before and neither GPT callback", len(cl.RedirectURIs), store.MaxRedirectURIs-1)
	}
	if after := auditActions(t, env, d.user.ID); len(after) != len(before) {
		t.Errorf("the refused change was audited: %v", after[len(before):])
	}
}

func TestRedirectURIs_ServiceClientHasNone(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	d := signIn(t, env, "service")
	ca := createApp(t, env, d, "Svc", "")
	_, body := hxPost(t, env, d, appURL(ca.app)+"/clients", url.Values{"name": {"Backend"}, "kind": {"service"}})
	svc, err := env.Store.ClientByID(context.Background(), inputValue(body, "created-client-id"))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := hxPost(t, env, d, clientURL(ca.app, svc)+"/redirect-uris", url.Values{"redirect_uri": {"https://a.example/cb"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"detail"`) {
		t.Errorf("redirect URI on a service client = %d %s, want 400 in the portal JSON shape", resp.StatusCode, body)
	}
	_, page := do(t, env, d, http.MethodGet, clientURL(ca.app, svc), nil, false)
	if strings.Contains(page, `id="redirect-uris"`) || !strings.Contains(page, "client_credentials") {
		t.Error("the service client's page must not offer redirect URIs")
	}
}

func TestRotateSecret_OverlapWindows(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	d := signIn(t, env, "rotate")
	ctx := context.Background()
	tests := []struct {
		overlap  string
		window   time.Duration
		wantNote string
	}{
		{"0", 0, "The old secret stopped working now."},
		{"1h", time.Hour, "The old secret works until"},
		{"24h", 24 * time.Hour, "The old secret works until"},
	}
	for _, tt := range tests {
		t.Run(tt.overlap, func(t *testing.T) {
			ca := createApp(t, env, d, "Rotate "+tt.overlap, "")
			resp, body := hxPost(t, env, d, clientURL(ca.app, ca.client)+"/secret", url.Values{"overlap": {tt.overlap}})
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="client-secret"`) || resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("rotate = %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
			}
			if !strings.Contains(body, tt.wantNote) {
				t.Errorf("answer lacks %q", tt.wantNote)
			}
			fresh := inputValue(body, "rotated-secret")
			if !strings.HasPrefix(fresh, "agsec_") || fresh == ca.secret {
				t.Fatal("no new secret shown")
			}
			now := env.Clock.Now()
			works := func(at time.Time, secret string) bool {
				secrets, err := env.Store.ActiveSecrets(ctx, ca.client.ID, at)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range secrets {
					if env.Hasher().Equal(secret, s.Hash) {
						return true
					}
				}
				return false
			}
			if !works(now.Add(tt.window+time.Minute), fresh) {
				t.Error("the new secret does not work")
			}
			if tt.window > 0 && !works(now.Add(tt.window-time.Minute), ca.secret) {
				t.Error("the old secret stopped inside its overlap window")
			}
			if works(now.Add(tt.window+time.Minute), ca.secret) {
				t.Error("the old secret works after its overlap window")
			}
			if strings.Contains(auditText(t, env), fresh) || strings.Contains(env.Logs.String(), fresh) {
				t.Error("the new secret is in the audit log or the server log")
			}
		})
	}

	ca := createApp(t, env, d, "Rotate bad", "")
	before := countRows(t, env, `SELECT count(*) FROM client_secrets WHERE client_id = $1`, ca.client.ID)
	resp, body := hxPost(t, env, d, clientURL(ca.app, ca.client)+"/secret", url.Values{"overlap": {"forever"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Choose how long") {
		t.Errorf("bad overlap = %d, want 422", resp.StatusCode)
	}
	if after := countRows(t, env, `SELECT count(*) FROM client_secrets WHERE client_id = $1`, ca.client.ID); after != before {
		t.Errorf("secrets %d → %d after a refused rotation", before, after)
	}
	_, created := hxPost(t, env, d, appURL(ca.app)+"/clients", url.Values{"name": {"MCP"}, "kind": {"public"}})
	pub, _ := env.Store.ClientByID(ctx, inputValue(created, "created-client-id"))
	if resp, _ := hxPost(t, env, d, clientURL(ca.app, pub)+"/secret", url.Values{"overlap": {"0"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("rotate a public client = %d, want 400", resp.StatusCode)
	}
	var overlaps []int
	_ = env.Store.DB().Select(&overlaps, `SELECT (details->>'overlap_seconds')::int FROM audit_log WHERE action = 'client.secret_rotated' ORDER BY id`)
	if !slices.Equal(overlaps, []int{0, 3600, 86400}) {
		t.Errorf("audited overlaps = %v", overlaps)
	}
}

func TestClientRef_URLClientIDsGetAPathSafeForm(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"agpt_abcDEF-123_x", "https://app.example.com/oauth/client.json", "has space", "~tilde"} {
		ref := portal.ClientRef(id)
		if strings.ContainsAny(ref, "/ ?#%") {
			t.Errorf("ClientRef(%q) = %q, not a plain path segment", id, ref)
		}
	}
	if portal.ClientRef("agpt_x") != "agpt_x" {
		t.Error("plain client IDs must stay readable")
	}
	// A client whose ID is a metadata document URL has a working page.
	env := handlertest.New(t)
	d := signIn(t, env, "cimd")
	ca := createApp(t, env, d, "CIMD", "")
	id := "https://app.example.com/oauth/client.json"
	if _, err := env.Store.CreateClient(context.Background(), store.NewClient{ID: id, AppID: ca.app.ID, Name: "Example MCP", Kind: store.ClientKindPublic, Origin: store.ClientOriginMetadataDocument}, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, env, d, http.MethodGet, portal.ClientURL(ca.app.Slug, id), nil, false)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Example MCP") || !strings.Contains(body, "Metadata document") {
		t.Errorf("GET %s = %d", portal.ClientURL(ca.app.Slug, id), resp.StatusCode)
	}
}
