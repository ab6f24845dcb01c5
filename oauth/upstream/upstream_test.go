package upstream_test

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth/safefetch"
	"github.com/authgpts/authgpts/oauth/upstream"
	"github.com/authgpts/authgpts/store"
)

// TestVerifyIDToken_RealProviderTokens checks go-oidc's verification as sign-in uses it
// against ID tokens minted by real AuthGPTs providers (HTTPS, own databases).
func TestVerifyIDToken_RealProviderTokens(t *testing.T) {
	up := handlertest.NewTLS(t)
	other := handlertest.NewTLS(t)
	pool := x509.NewCertPool()
	pool.AddCert(up.Server.Certificate())
	pool.AddCert(other.Server.Certificate())
	f := safefetch.New(safefetch.Options{AllowAddrs: []string{up.Server.Listener.Addr().String(), other.Server.Listener.Addr().String()}, RootCAs: pool})
	d := upstream.NewDiscovery(f, up.Clock.Now)
	ctx := context.Background()
	p, err := d.Provider(ctx, up.BaseURL)
	if err != nil {
		t.Fatalf("Provider(%s) = %v", up.BaseURL, err)
	}
	if !p.ISSParameter {
		t.Error("AuthGPTs advertises authorization_response_iss_parameter_supported; Provider did not read it")
	}
	ours := up.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindGPT, "https://rp.example/cb")
	theirs := up.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindGPT, "https://rp.example/cb")
	elsewhere := other.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindGPT, "https://rp.example/cb")
	email := handlertest.UniqueEmail(t, "person")
	mine := up.UserToken(t, ours, email, "openid email").IDToken
	forOtherClient := up.UserToken(t, theirs, handlertest.UniqueEmail(t, "person"), "openid email").IDToken
	fromOtherIssuer := other.UserToken(t, elsewhere, email, "openid email").IDToken

	tests := []struct {
		name     string
		raw      string
		clientID string
		now      func() time.Time
		want     string
	}{
		{"wrong aud", forOtherClient, ours.Client.ID, up.Clock.Now, "wrong audience"},
		{"other issuer", fromOtherIssuer, elsewhere.Client.ID, up.Clock.Now, "ID token: "},
		{"expired", mine, ours.Client.ID, func() time.Time { return up.Clock.Now().Add(2 * time.Hour) }, "expired"},
		{"tampered", mine[:len(mine)-4] + "AAAA", ours.Client.ID, up.Clock.Now, "ID token"},
		{"no nonce in the token", mine, ours.Client.ID, up.Clock.Now, upstream.ErrNonceMismatch.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := upstream.VerifyIDToken(d.Context(ctx), p, tt.clientID, tt.raw, "the-sign-ins-nonce", tt.now)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("VerifyIDToken() = %v, want an error about %q", err, tt.want)
			}
		})
	}
	if _, err := upstream.VerifyIDToken(d.Context(ctx), p, ours.Client.ID, mine, "", up.Clock.Now); !errors.Is(err, upstream.ErrNonceMismatch) {
		t.Errorf("an empty expected nonce must never match: %v", err)
	}
}
