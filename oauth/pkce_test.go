package oauth

import (
	"strings"
	"testing"
)

// RFC 7636 Appendix B.
const (
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func TestS256Challenge(t *testing.T) {
	if got := S256Challenge(rfcVerifier); got != rfcChallenge {
		t.Errorf("S256Challenge(%q) = %q, want %q", rfcVerifier, got, rfcChallenge)
	}
}

func TestVerifyPKCE(t *testing.T) {
	otherVerifier := strings.Repeat("a", 43)
	tests := []struct {
		name      string
		challenge string
		method    string
		verifier  string
		want      bool
	}{
		{"RFC 7636 appendix B", rfcChallenge, "S256", rfcVerifier, true},
		{"long verifier", S256Challenge(strings.Repeat("~", 128)), "S256", strings.Repeat("~", 128), true},
		{"wrong verifier", rfcChallenge, "S256", otherVerifier, false},
		{"plain refused", rfcVerifier, "plain", rfcVerifier, false},
		{"plain refused even when equal", otherVerifier, "plain", otherVerifier, false},
		{"missing method refused", rfcChallenge, "", rfcVerifier, false},
		{"method is case-sensitive", rfcChallenge, "s256", rfcVerifier, false},
		{"empty verifier", rfcChallenge, "S256", "", false},
		{"empty challenge", "", "S256", rfcVerifier, false},
		{"verifier too short", S256Challenge(strings.Repeat("a", 42)), "S256", strings.Repeat("a", 42), false},
		{"verifier too long", S256Challenge(strings.Repeat("a", 129)), "S256", strings.Repeat("a", 129), false},
		{"verifier bad char", S256Challenge(strings.Repeat("a", 42) + "+"), "S256", strings.Repeat("a", 42) + "+", false},
		{"padded challenge", rfcChallenge + "=", "S256", rfcVerifier, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifyPKCE(tt.challenge, tt.method, tt.verifier); got != tt.want {
				t.Errorf("VerifyPKCE(%q, %q, %q) = %v, want %v", tt.challenge, tt.method, tt.verifier, got, tt.want)
			}
		})
	}
}

func TestValidChallenge(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{rfcChallenge, true},
		{S256Challenge("anything at all"), true},
		{"", false},
		{rfcChallenge[:42], false},
		{rfcChallenge + "A", false},
		{rfcChallenge + "=", false},
		{strings.Replace(rfcChallenge, "-", "+", 1), false}, // standard, not URL, alphabet
		{strings.Repeat("A", 42) + "B", false},              // non-canonical trailing bits
		{strings.Repeat("A", 42) + "E", true},
		{strings.Repeat("!", 43), false},
	}
	for _, tt := range tests {
		if got := ValidChallenge(tt.in); got != tt.want {
			t.Errorf("ValidChallenge(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestValidVerifier(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{rfcVerifier, true},
		{strings.Repeat("a", 43), true},
		{strings.Repeat("Z", 128), true},
		{"abcXYZ019-._~" + strings.Repeat("0", 30), true},
		{strings.Repeat("a", 42), false},
		{strings.Repeat("a", 129), false},
		{"", false},
		{strings.Repeat("a", 42) + "/", false},
		{strings.Repeat("a", 42) + " ", false},
		{strings.Repeat("a", 42) + "=", false},
		{strings.Repeat("a", 41) + "é", false},
	}
	for _, tt := range tests {
		if got := ValidVerifier(tt.in); got != tt.want {
			t.Errorf("ValidVerifier(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
