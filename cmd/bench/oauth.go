package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// The OAuth server's scenarios (issue 4): client_credentials issuance, the full code
// flow for a signed-in user with remembered consent, refresh, introspection and JWKS.
func init() {
	Register(Scenario{Name: "client_credentials", Order: 10, Setup: setupClientCredentials})
	Register(Scenario{Name: "code_flow", Order: 20, Setup: setupCodeFlow})
	Register(Scenario{Name: "refresh", Order: 30, Setup: setupRefresh})
	Register(Scenario{Name: "introspection", Order: 40, Setup: setupIntrospection})
	Register(Scenario{Name: "jwks", Order: 50, Setup: setupJWKS})
}

const benchCallback = "http://127.0.0.1/callback"

// oauthSeeds is one app with a GPT client (code flow, refresh) and a service client
// (client_credentials, introspection), shared by the OAuth scenarios.
type oauthSeeds struct {
	gpt, service AppSeed
}

var seeds struct {
	done bool
	oauthSeeds
}

func oauthApp(ctx context.Context, env *Env) (oauthSeeds, error) {
	env.mu.Lock()
	done := seeds.done
	env.mu.Unlock()
	if done {
		return seeds.oauthSeeds, nil
	}
	gpt, err := env.NewApp(ctx, "Bench API", store.ClientKindGPT, benchCallback)
	if err != nil {
		return oauthSeeds{}, err
	}
	service, err := env.AddClient(ctx, gpt.App, store.ClientKindService)
	if err != nil {
		return oauthSeeds{}, err
	}
	env.mu.Lock()
	seeds.done, seeds.gpt, seeds.service = true, gpt, service
	env.mu.Unlock()
	return seeds.oauthSeeds, nil
}

// basicPost builds a POST with Basic client authentication.
func basicPost(ctx context.Context, env *Env, path string, seed AppSeed, form string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, env.BaseURL+path, strings.NewReader(form))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(seed.Client.ID, seed.Secret)
	return req, nil
}

func expect(resp *http.Response, body string, err error, status int, contains string) error {
	if err != nil {
		return err
	}
	if resp.StatusCode != status || !strings.Contains(body, contains) {
		return fmt.Errorf("answer %d %.120s", resp.StatusCode, body)
	}
	return nil
}

func setupClientCredentials(ctx context.Context, env *Env) (NewWorker, error) {
	s, err := oauthApp(ctx, env)
	if err != nil {
		return nil, err
	}
	return func(int) (Op, error) {
		c := env.Client(nil)
		return func(ctx context.Context) error {
			req, err := basicPost(ctx, env, oauth.PathToken, s.service, "grant_type=client_credentials")
			if err != nil {
				return err
			}
			resp, body, err := send(c, req)
			return expect(resp, body, err, http.StatusOK, `"access_token"`)
		}, nil
	}, nil
}

// setupCodeFlow: one operation is the whole flow a client runs for a signed-in user
// whose consent is remembered: GET /oauth/authorize (session, grant check, code) →
// 303 → POST /oauth/token (code redeemed, refresh token stored, access and ID tokens
// signed).
func setupCodeFlow(ctx context.Context, env *Env) (NewWorker, error) {
	s, err := oauthApp(ctx, env)
	if err != nil {
		return nil, err
	}
	if _, err := env.CodeFlowTokens(ctx, s.gpt, "openid email", 1); err != nil { // consents once
		return nil, err
	}
	user, err := env.SignedInClient(ctx)
	if err != nil {
		return nil, err
	}
	return func(int) (Op, error) {
		c := env.Client(user.Jar)
		return func(ctx context.Context) error {
			code, err := env.Authorize(ctx, c, s.gpt, "openid email")
			if err != nil {
				return err
			}
			_, err = env.Token(ctx, c, s.gpt, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {benchCallback}})
			return err
		}, nil
	}, nil
}

// setupRefresh: each worker keeps its own refresh-token chain and rotates it.
func setupRefresh(ctx context.Context, env *Env) (NewWorker, error) {
	s, err := oauthApp(ctx, env)
	if err != nil {
		return nil, err
	}
	return func(int) (Op, error) {
		first, err := env.CodeFlowTokens(ctx, s.gpt, "openid email", 1)
		if err != nil {
			return nil, err
		}
		token := first[0].RefreshToken
		c := env.Client(nil)
		return func(ctx context.Context) error {
			tr, err := env.Token(ctx, c, s.gpt, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}})
			if err != nil {
				return err
			}
			if tr.RefreshToken == "" {
				return errors.New("no refresh token")
			}
			token = tr.RefreshToken
			return nil
		}, nil
	}, nil
}

// setupIntrospection: a resource server (the app's service client, Basic auth)
// introspects user access tokens, 256 distinct ones in turn.
func setupIntrospection(ctx context.Context, env *Env) (NewWorker, error) {
	s, err := oauthApp(ctx, env)
	if err != nil {
		return nil, err
	}
	tokens, err := env.CodeFlowTokens(ctx, s.gpt, "openid email", 256)
	if err != nil {
		return nil, err
	}
	return func(id int) (Op, error) {
		c := env.Client(nil)
		i := id * 7
		return func(ctx context.Context) error {
			i++
			form := "token=" + url.QueryEscape(tokens[i%len(tokens)].AccessToken)
			req, err := basicPost(ctx, env, oauth.PathIntrospect, s.service, form)
			if err != nil {
				return err
			}
			resp, body, err := send(c, req)
			return expect(resp, body, err, http.StatusOK, `"active":true`)
		}, nil
	}, nil
}

func setupJWKS(ctx context.Context, env *Env) (NewWorker, error) {
	return func(int) (Op, error) {
		c := env.Client(nil)
		return func(ctx context.Context) error {
			resp, body, err := env.get(ctx, c, oauth.PathJWKS)
			if err == nil && !bytes.Contains([]byte(body), []byte(`"keys"`)) {
				err = errors.New("no keys")
			}
			return expect(resp, body, err, http.StatusOK, `"kid"`)
		}, nil
	}, nil
}
