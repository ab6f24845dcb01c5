package main

import (
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfig_DevelopmentDefaults(t *testing.T) {
	c, err := LoadConfig(env(map[string]string{"DATABASE_URL": "postgres://x/y"}))
	if err != nil {
		t.Fatalf("LoadConfig() error = %v", err)
	}
	if c.BaseURL.String() != "http://localhost:8080" || c.Addr != ":8080" || !c.DevMode || c.SMTP != nil {
		t.Errorf("LoadConfig() = base %s addr %s dev %v smtp %v, want the development defaults", c.BaseURL, c.Addr, c.DevMode, c.SMTP)
	}
}

func TestLoadConfig_ProductionReportsEveryProblemAtOnce(t *testing.T) {
	secret := "short-secret-value"
	_, err := LoadConfig(env(map[string]string{
		"AUTHGPTS_BASE_URL":     "http://auth.example.com",
		"AUTHGPTS_SECRET":       secret,
		"AUTHGPTS_ADMIN_EMAILS": "ok@example.com, nope",
	}))
	if err == nil {
		t.Fatal("LoadConfig() accepted a broken production configuration")
	}
	msg := err.Error()
	for _, want := range []string{"DATABASE_URL is required", "must be https", "at least 32 characters", "SMTP_URL is required", `"nope" is not an email`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, secret) {
		t.Error("the error message contains the secret")
	}
}

func TestLoadConfig_SMTPPasswordNeverInMessages(t *testing.T) {
	_, err := LoadConfig(env(map[string]string{
		"DATABASE_URL": "postgres://x/y", "AUTHGPTS_BASE_URL": "https://auth.example.com",
		"AUTHGPTS_SECRET": strings.Repeat("s", 40), "SMTP_URL": "smtp://user:hunter2-password@mail.example.com:587",
	}))
	if err == nil || !strings.Contains(err.Error(), "MAIL_FROM is required") {
		t.Fatalf("LoadConfig() error = %v, want MAIL_FROM required", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Error("the error message contains the SMTP password")
	}
}

func TestLoadConfig_Production(t *testing.T) {
	c, err := LoadConfig(env(map[string]string{
		"DATABASE_URL": "postgres://x/y", "AUTHGPTS_BASE_URL": "https://auth.example.com",
		"AUTHGPTS_SECRET": strings.Repeat("s", 40), "SMTP_URL": "smtps://u:p@mail.example.com",
		"MAIL_FROM": "AuthGPTs <auth@example.com>", "AUTHGPTS_ADMIN_EMAILS": " Boss@Example.com ",
	}))
	if err != nil {
		t.Fatalf("LoadConfig() error = %v", err)
	}
	if c.DevMode || len(c.AdminEmails) != 1 || c.AdminEmails[0] != "boss@example.com" {
		t.Errorf("LoadConfig() dev %v admins %v", c.DevMode, c.AdminEmails)
	}
}

func TestLoadConfig_LoopbackIsDevelopment(t *testing.T) {
	for _, base := range []string{"http://127.0.0.1:9000", "http://[::1]:8080", "http://localhost"} {
		c, err := LoadConfig(env(map[string]string{"DATABASE_URL": "postgres://x/y", "AUTHGPTS_BASE_URL": base}))
		if err != nil || !c.DevMode {
			t.Errorf("LoadConfig(%s) dev = %v, err = %v; want development mode", base, c.DevMode, err)
		}
	}
	if _, err := LoadConfig(env(map[string]string{"DATABASE_URL": "postgres://x/y", "AUTHGPTS_BASE_URL": "https://auth.example.com/"})); err == nil {
		t.Error("a base URL with a trailing slash was accepted; it would make iss differ from the issuer")
	}
}

func TestLoadConfig_TrustedProxies(t *testing.T) {
	c, err := LoadConfig(env(map[string]string{"DATABASE_URL": "postgres://x/y", "AUTHGPTS_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7"}))
	if err != nil || len(c.TrustedProxies) != 2 {
		t.Fatalf("LoadConfig() = %v, %v; want two trusted proxies", c.TrustedProxies, err)
	}
	if _, err := LoadConfig(env(map[string]string{"DATABASE_URL": "postgres://x/y", "AUTHGPTS_TRUSTED_PROXIES": "the-load-balancer"})); err == nil || !strings.Contains(err.Error(), "AUTHGPTS_TRUSTED_PROXIES") {
		t.Errorf("a host name was accepted as a trusted proxy (err = %v)", err)
	}
}

func TestLoadConfig_PortalLoginProviders(t *testing.T) {
	base := map[string]string{"DATABASE_URL": "postgres://x/y"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	secret := "oidc-client-secret-value"
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		oidc    bool
		github  bool
	}{
		{"none", with(), "", false, false},
		{"oidc", with("AUTHGPTS_LOGIN_OIDC_ISSUER", "https://id.example.com", "AUTHGPTS_LOGIN_OIDC_CLIENT_ID", "c", "AUTHGPTS_LOGIN_OIDC_CLIENT_SECRET", secret), "", true, false},
		{"github", with("AUTHGPTS_LOGIN_GITHUB_CLIENT_ID", "Iv1.x", "AUTHGPTS_LOGIN_GITHUB_CLIENT_SECRET", secret), "", false, true},
		{"oidc incomplete", with("AUTHGPTS_LOGIN_OIDC_ISSUER", "https://id.example.com", "AUTHGPTS_LOGIN_OIDC_CLIENT_SECRET", secret), "set all three or none", false, false},
		{"oidc http issuer", with("AUTHGPTS_LOGIN_OIDC_ISSUER", "http://id.example.com", "AUTHGPTS_LOGIN_OIDC_CLIENT_ID", "c", "AUTHGPTS_LOGIN_OIDC_CLIENT_SECRET", secret), "must be an https URL", false, false},
		{"github without secret", with("AUTHGPTS_LOGIN_GITHUB_CLIENT_ID", "Iv1.x"), "set both or neither", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig(env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadConfig() = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Error("the error message contains the client secret")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (c.LoginOIDC != nil) != tt.oidc || (c.LoginGitHub != nil) != tt.github {
				t.Errorf("LoginOIDC %v LoginGitHub %v, want %v %v", c.LoginOIDC != nil, c.LoginGitHub != nil, tt.oidc, tt.github)
			}
		})
	}
}
