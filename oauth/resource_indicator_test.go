package oauth

import (
	"errors"
	"testing"
)

func TestCanonicalResource(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"https://api.example.com/gw/weather/mcp", "https://api.example.com/gw/weather/mcp", true},
		{"HTTPS://API.Example.COM/gw/weather/mcp", "https://api.example.com/gw/weather/mcp", true}, // path case kept
		{"https://api.example.com/gw/weather/mcp/", "https://api.example.com/gw/weather/mcp", true},
		{"https://api.example.com:443/gw/w", "https://api.example.com/gw/w", true},
		{"http://127.0.0.1:8080/gw/w", "http://127.0.0.1:8080/gw/w", true},
		{"http://[::1]:8080/gw/w", "http://[::1]:8080/gw/w", true},
		{"https://api.example.com/gw/w#frag", "", false},
		{"https://api.example.com/gw/w?x=1", "", false},
		{"/gw/w", "", false},
		{"urn:example:resource", "", false},
		{"ftp://api.example.com/gw/w", "", false},
		{"https://user@api.example.com/gw/w", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := CanonicalResource(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("CanonicalResource(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidTarget) {
			t.Errorf("CanonicalResource(%q) error %v, want invalid_target", tt.in, err)
		}
	}
}

func TestGatewayResource(t *testing.T) {
	const issuer = "https://auth.example.com"
	tests := []struct {
		in, slug, sub string
		ok            bool
	}{
		{"https://auth.example.com/gw/weather", "weather", "", true},
		{"https://auth.example.com/gw/weather/mcp", "weather", "/mcp", true},
		{"https://auth.example.com/gw/weather/v1/x", "weather", "/v1/x", true},
		{"https://auth.example.com/gw/", "", "", false},
		{"https://auth.example.com/gw", "", "", false},
		{"https://auth.example.com/oauth/token", "", "", false},
		{"https://evil.example.com/gw/weather", "", "", false},
		{"https://auth.example.com.evil.example/gw/weather", "", "", false},
		{"https://auth.example.com/gw/weather/../other", "", "", false},
		{"https://auth.example.com/gw/weather//mcp", "", "", false},
	}
	for _, tt := range tests {
		slug, sub, ok := GatewayResource(issuer, tt.in)
		if ok != tt.ok || slug != tt.slug || sub != tt.sub {
			t.Errorf("GatewayResource(%q) = %q, %q, %v; want %q, %q, %v", tt.in, slug, sub, ok, tt.slug, tt.sub, tt.ok)
		}
	}
}

func TestResourceCovers(t *testing.T) {
	const b = "https://a.example/gw/w/mcp"
	for in, want := range map[string]bool{b: true, b + "/tools": true, "https://a.example/gw/w": false, b + "x": false} {
		if ResourceCovers(b, in) != want {
			t.Errorf("ResourceCovers(%q) = %v, want %v", in, !want, want)
		}
	}
}
