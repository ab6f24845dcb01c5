package gateway_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/authgpts/authgpts/store"
)

func TestResourceMetadata_AppRootAndSubPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindPublic, "mcp_enabled = true")
	for _, sub := range []string{"", "/mcp", "/v2/tools"} {
		resp, body := e.call(t, "GET", "/.well-known/oauth-protected-resource/gw/"+f.App.Slug+sub, "", nil, "Origin", "https://claude.ai")
		if resp.StatusCode != 200 {
			t.Fatalf("%q: %d %s", sub, resp.StatusCode, body)
		}
		m := jsonBody(t, body)
		// RFC 9728 §3.3: resource is exactly the URL the well-known URL was built from.
		if m["resource"] != e.BaseURL+"/gw/"+f.App.Slug+sub {
			t.Errorf("%q: resource = %v", sub, m["resource"])
		}
		as, _ := m["authorization_servers"].([]any)
		bm, _ := m["bearer_methods_supported"].([]any)
		var scopes []string
		for _, s := range m["scopes_supported"].([]any) {
			scopes = append(scopes, s.(string))
		}
		if len(as) != 1 || as[0] != e.BaseURL || len(bm) != 1 || bm[0] != "header" || m["resource_name"] != f.App.Name ||
			!slices.Contains(scopes, "openid") || !slices.Contains(scopes, "email") {
			t.Errorf("%q: document %s", sub, body)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Set-Cookie") != "" ||
			resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%q: headers %v", sub, resp.Header)
		}
	}
	resp, _ := e.call(t, "OPTIONS", "/.well-known/oauth-protected-resource/gw/"+f.App.Slug+"/mcp", "", nil,
		"Origin", "https://claude.ai", "Access-Control-Request-Method", "GET")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, body := e.call(t, "GET", "/.well-known/oauth-protected-resource/gw/nope", "", nil); resp.StatusCode != 404 {
		t.Errorf("unknown app: %d %s", resp.StatusCode, body)
	}
}
