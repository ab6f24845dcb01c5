package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/authgpts/authgpts/handlers/signin"
	"github.com/authgpts/authgpts/oauth/upstream"
	"github.com/authgpts/authgpts/store"
)

// Config is everything the server reads from the environment (DESIGN.md, "Contract").
type Config struct {
	DatabaseURL string
	BaseURL     *url.URL
	Addr        string
	Secret      []byte
	SMTP        *url.URL // nil: mail is logged and shown at /dev/mail (development only)
	MailFrom    string
	AdminEmails []string
	DevMode     bool
	// TrustedProxies are the load balancers (IPs or CIDRs) whose X-Forwarded-For is
	// believed; without them every client would share the balancer's address in the
	// per-IP limits.
	TrustedProxies []string
	// LoginOIDC and LoginGitHub are the upstream providers the portal's own sign-in
	// offers besides the email code (AUTHGPTS_LOGIN_OIDC_*, AUTHGPTS_LOGIN_GITHUB_*).
	LoginOIDC   *signin.PortalProvider
	LoginGitHub *signin.PortalProvider
}

const minSecretLen = 32

// LoadConfig reads and validates the configuration, reporting every problem at once.
// No message ever contains a secret value.
func LoadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL: getenv("DATABASE_URL"),
		Addr:        orDefault(getenv("AUTHGPTS_ADDR"), ":8080"),
		Secret:      []byte(getenv("AUTHGPTS_SECRET")),
		MailFrom:    getenv("MAIL_FROM"),
	}
	var problems []string
	base, err := url.Parse(orDefault(getenv("AUTHGPTS_BASE_URL"), "http://localhost:8080"))
	baseOK := err == nil && (base.Scheme == "http" || base.Scheme == "https") && base.Host != "" &&
		base.RawQuery == "" && base.Fragment == "" && base.User == nil && !strings.HasSuffix(base.Path, "/")
	if !baseOK {
		problems = append(problems, "AUTHGPTS_BASE_URL must be an absolute http(s) URL without query, fragment, credentials or trailing slash, e.g. https://auth.example.com")
	} else {
		c.BaseURL = base
		c.DevMode = base.Scheme == "http" && isLoopbackHost(base.Hostname())
	}
	if raw := getenv("SMTP_URL"); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
			problems = append(problems, "SMTP_URL must look like smtp://user:pass@host:port or smtps://user:pass@host:port")
		} else {
			c.SMTP = u
		}
	}
	for _, e := range strings.Split(getenv("AUTHGPTS_ADMIN_EMAILS"), ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		norm, ok := store.NormalizeEmail(e)
		if !ok {
			problems = append(problems, fmt.Sprintf("AUTHGPTS_ADMIN_EMAILS: %q is not an email address", e))
			continue
		}
		c.AdminEmails = append(c.AdminEmails, norm)
	}

	for _, p := range strings.Split(getenv("AUTHGPTS_TRUSTED_PROXIES"), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			problems = append(problems, fmt.Sprintf("AUTHGPTS_TRUSTED_PROXIES: %q is not an IP address or CIDR range", p))
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}

	// The portal's upstream sign-in: all of a provider's variables, or none.
	oidcIssuer, oidcID, oidcSecret := getenv("AUTHGPTS_LOGIN_OIDC_ISSUER"), getenv("AUTHGPTS_LOGIN_OIDC_CLIENT_ID"), getenv("AUTHGPTS_LOGIN_OIDC_CLIENT_SECRET")
	switch {
	case oidcIssuer == "" && oidcID == "" && oidcSecret == "":
	case oidcIssuer == "" || oidcID == "" || oidcSecret == "":
		problems = append(problems, "AUTHGPTS_LOGIN_OIDC_ISSUER, AUTHGPTS_LOGIN_OIDC_CLIENT_ID and AUTHGPTS_LOGIN_OIDC_CLIENT_SECRET go together: set all three or none")
	default:
		if err := upstream.ValidIssuerURL(oidcIssuer); err != nil {
			problems = append(problems, "AUTHGPTS_LOGIN_OIDC_ISSUER: "+err.Error())
		} else {
			c.LoginOIDC = &signin.PortalProvider{Issuer: oidcIssuer, ClientID: oidcID, ClientSecret: oidcSecret}
		}
	}
	ghID, ghSecret := getenv("AUTHGPTS_LOGIN_GITHUB_CLIENT_ID"), getenv("AUTHGPTS_LOGIN_GITHUB_CLIENT_SECRET")
	switch {
	case ghID == "" && ghSecret == "":
	case ghID == "" || ghSecret == "":
		problems = append(problems, "AUTHGPTS_LOGIN_GITHUB_CLIENT_ID and AUTHGPTS_LOGIN_GITHUB_CLIENT_SECRET go together: set both or neither")
	default:
		c.LoginGitHub = &signin.PortalProvider{ClientID: ghID, ClientSecret: ghSecret}
	}

	checks := []struct {
		bad bool
		msg string
	}{
		{c.DatabaseURL == "", "DATABASE_URL is required (make run starts a local PostgreSQL when it is unset)"},
		{baseOK && !c.DevMode && base.Scheme != "https", "AUTHGPTS_BASE_URL must be https outside development (http is only for localhost)"},
		{baseOK && !c.DevMode && len(c.Secret) == 0, "AUTHGPTS_SECRET is required in production"},
		{len(c.Secret) > 0 && len(c.Secret) < minSecretLen, fmt.Sprintf("AUTHGPTS_SECRET must be at least %d characters", minSecretLen)},
		{baseOK && !c.DevMode && c.SMTP == nil && getenv("SMTP_URL") == "", "SMTP_URL is required in production"},
		{c.SMTP != nil && c.MailFrom == "", "MAIL_FROM is required when SMTP_URL is set"},
		{c.MailFrom != "" && !validFrom(c.MailFrom), "MAIL_FROM must be an email address, optionally with a name"},
	}
	for _, chk := range checks {
		if chk.bad {
			problems = append(problems, chk.msg)
		}
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("invalid configuration:\n  - %s", strings.Join(problems, "\n  - "))
	}
	return c, nil
}

// devSecret returns the development root secret, generating it into dir on first use.
func devSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, "secret")
	if b, err := os.ReadFile(path); err == nil && len(b) >= minSecretLen {
		return b, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	secret := []byte(base64.RawURLEncoding.EncodeToString(raw))
	if err := os.WriteFile(path, secret, 0o600); err != nil {
		return nil, fmt.Errorf("write development secret: %w", err)
	}
	return secret, nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validFrom(s string) bool {
	_, err := mail.ParseAddress(s)
	return err == nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// errUsage marks command-line mistakes, printed with the usage text.
var errUsage = errors.New("usage")
