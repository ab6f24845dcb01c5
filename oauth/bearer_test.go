package oauth

import (
	"testing"
	"time"
)

func TestBearerToken(t *testing.T) {
	tests := []struct {
		header, want string
		ok           bool
	}{
		{"Bearer abc.def-ghi_~+/=", "abc.def-ghi_~+/=", true},
		{"bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"Bearer  abc", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic abc", "", false},
		{"Bearer abc def", "", false},
		{`Bearer abc"`, "", false},
		{"Bearerabc", "", false},
	}
	for _, tt := range tests {
		got, ok := BearerToken(tt.header)
		if got != tt.want || ok != tt.ok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBearerChallenge(t *testing.T) {
	got := BearerChallenge{Error: "insufficient_scope", Description: `bad "quote"`, Scope: "a b", ResourceMetadata: "https://x/.well-known/oauth-protected-resource/gw/s"}.String()
	want := `Bearer realm="authgpts", error="insufficient_scope", scope="a b", resource_metadata="https://x/.well-known/oauth-protected-resource/gw/s"`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := (BearerChallenge{}).String(); got != `Bearer realm="authgpts"` {
		t.Errorf("empty challenge = %s", got)
	}
}

func TestGatewayAssertion_RoundTripAndRefusals(t *testing.T) {
	ks := mustKeySet(t, testKey(t, AlgES256, 0))
	a := GatewayAssertion{Issuer: testIssuer, Audience: "https://api.example", Subject: "u", ClientID: "c", JTI: "j",
		IssuedAt: testNow, Expiry: testNow.Add(time.Minute)}
	tok, err := ks.SignGatewayAssertion(a)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ks.VerifyGatewayAssertion(tok, testNow, testIssuer, a.Audience); err != nil || got.Subject != "u" {
		t.Fatalf("verify = %+v, %v", got, err)
	}
	long := a
	long.Expiry = testNow.Add(2 * time.Minute)
	if _, err := ks.SignGatewayAssertion(long); err == nil {
		t.Error("signed an assertion living longer than GatewayAssertionMaxTTL")
	}
	for name, check := range map[string]func() error{
		"expired": func() error {
			_, err := ks.VerifyGatewayAssertion(tok, testNow.Add(time.Minute), testIssuer, a.Audience)
			return err
		},
		"other aud": func() error {
			_, err := ks.VerifyGatewayAssertion(tok, testNow, testIssuer, "https://other")
			return err
		},
		"other issuer": func() error {
			_, err := ks.VerifyGatewayAssertion(tok, testNow, "https://evil", a.Audience)
			return err
		},
		"id token": func() error {
			id, _ := ks.SignIDToken(IDClaims{Issuer: testIssuer, Subject: "u", Audience: a.Audience, IssuedAt: testNow, Expiry: testNow.Add(time.Minute)})
			_, err := ks.VerifyGatewayAssertion(id, testNow, testIssuer, a.Audience)
			return err
		},
	} {
		if err := check(); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}
