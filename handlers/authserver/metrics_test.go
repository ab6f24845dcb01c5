package authserver_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

func TestMetrics_CountTokensIssuedAndRequests(t *testing.T) {
	env := handlertest.New(t)
	fx := env.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindService)
	resp, err := http.PostForm(env.BaseURL+"/oauth/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {fx.Client.ID}, "client_secret": {fx.Secret},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("client_credentials = %d", resp.StatusCode)
	}
	_, body := env.Get(t, env.Client(), "/metrics")
	for _, want := range []string{
		`authgpts_tokens_issued_total{grant_type="client_credentials"}`,
		`authgpts_http_requests_total{method="POST",route="/oauth/token",status="2xx"}`,
		`authgpts_http_request_duration_seconds_bucket{route="/oauth/token",le=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, fx.Secret) {
		t.Error("/metrics contains the client secret")
	}
}

func TestWrongMethodOnMachineEndpointsIsJSON405(t *testing.T) {
	env := handlertest.New(t)
	for _, tt := range []struct{ method, path string }{
		{"GET", "/oauth/token"}, {"GET", "/oauth/revoke"}, {"PUT", "/.well-known/jwks.json"}, {"DELETE", "/oauth/introspect"},
	} {
		req, _ := http.NewRequest(tt.method, env.BaseURL+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || err != nil || body["error"] != "invalid_request" || resp.Header.Get("Allow") == "" {
			t.Errorf("%s %s = %d %v (Allow %q), want a JSON 405", tt.method, tt.path, resp.StatusCode, body, resp.Header.Get("Allow"))
		}
	}
}
