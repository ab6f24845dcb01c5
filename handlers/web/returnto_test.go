package web

import (
	"strings"
	"testing"
)

func TestSafeReturnTo(t *testing.T) {
	tests := []struct {
		raw  string
		want string
	}{
		{"/dashboard", "/dashboard"},
		{"/oauth/authorize?client_id=a&redirect_uri=https%3A%2F%2Fchatgpt.com%2Fcb", "/oauth/authorize?client_id=a&redirect_uri=https%3A%2F%2Fchatgpt.com%2Fcb"},
		{"", "/fallback"},
		{"dashboard", "/fallback"},
		{"//evil.com", "/fallback"},
		{"///evil.com", "/fallback"},
		{"https://evil.com", "/fallback"},
		{"http:evil.com", "/fallback"},
		{"/\\evil.com", "/fallback"},
		{"\\/evil.com", "/fallback"},
		{"/%2F%2Fevil.com", "/fallback"},
		{"/%2f/evil.com", "/fallback"},
		{"/%5Cevil.com", "/fallback"},
		{"/%252F%252Fevil.com", "/fallback"},
		{"/\t/evil.com", "/fallback"},
		{"/\r\nLocation: https://evil.com", "/fallback"},
		{"/%0d%0aSet-Cookie:x", "/fallback"},
		{"javascript:alert(1)", "/fallback"},
		{" /dashboard", "/fallback"},
		{"/%zz", "/fallback"},
	}
	long := "/oauth/authorize?state=" + strings.Repeat("s", 5000)
	tests = append(tests, struct {
		raw  string
		want string
	}{long, long}, struct {
		raw  string
		want string
	}{"/" + strings.Repeat("x", 9000), "/fallback"})
	for _, tt := range tests {
		if got := SafeReturnTo(tt.raw, "/fallback"); got != tt.want {
			t.Errorf("SafeReturnTo(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}
