package authserver_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// In-process benchmarks of the token endpoint's hot paths, for profiling
// (go test -bench . -cpuprofile). `make bench` measures the real server from a
// separate process.

func benchWorld(b *testing.B, kind string) (*handlertest.Env, handlertest.AppFixture) {
	env := handlertest.New(b)
	redirects := []string{gptCallback}
	if kind == store.ClientKindService {
		redirects = nil
	}
	return env, env.NewApp(b, handlertest.UniqueEmail(b, "dev"), kind, redirects...)
}

func benchPost(b *testing.B, c *http.Client, u string, form url.Values, id, secret string) *http.Response {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(id, secret)
	}
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	return resp
}

func BenchmarkToken_ClientCredentials(b *testing.B) {
	env, app := benchWorld(b, store.ClientKindService)
	c := &http.Client{}
	form := url.Values{"grant_type": {"client_credentials"}}
	for b.Loop() {
		resp := benchPost(b, c, env.BaseURL+oauth.PathToken, form, app.Client.ID, app.Secret)
		drain(resp)
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
}

func BenchmarkCodeFlow_RememberedConsent(b *testing.B) {
	env, app := benchWorld(b, store.ClientKindGPT)
	user := env.SignIn(b, handlertest.UniqueEmail(b, "user"))
	q := url.Values{"response_type": {"code"}, "client_id": {app.Client.ID}, "redirect_uri": {gptCallback}, "scope": {"openid email"}, "state": {"s"}}
	// Consent once.
	resp, body := env.Get(b, user, oauth.PathAuthorize+"?"+q.Encode())
	if resp.StatusCode == http.StatusOK {
		m := ticketRE.FindStringSubmatch(body)
		resp, _ = env.PostForm(b, user, "/oauth/consent", url.Values{"ticket": {m[1]}, "decision": {"allow"}, "scope": {"email"}})
	}
	if resp.StatusCode != http.StatusSeeOther {
		b.Fatalf("consent = %d", resp.StatusCode)
	}
	c := &http.Client{}
	for b.Loop() {
		resp, err := user.Get(env.BaseURL + oauth.PathAuthorize + "?" + q.Encode())
		if err != nil {
			b.Fatal(err)
		}
		drain(resp)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		code := loc.Query().Get("code")
		tr := benchPost(b, c, env.BaseURL+oauth.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {gptCallback}, "client_id": {app.Client.ID}, "client_secret": {app.Secret}}, "", "")
		drain(tr)
		if tr.StatusCode != 200 {
			b.Fatal(tr.Status)
		}
	}
}

func drain(resp *http.Response) {
	buf := make([]byte, 4096)
	for {
		if _, err := resp.Body.Read(buf); err != nil {
			break
		}
	}
	resp.Body.Close()
}
