package portal_test

import (
	"testing"

	"github.com/authgpts/authgpts/handlers/portal"
)

func TestCheckUpstreamURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw     string
		devMode bool
		ok      bool
	}{
		{"https://api.example.com", false, true},
		{"https://api.example.com/v1/", false, true},
		{"https://api.example.com:8443/base", false, true},
		{"http://api.example.com", false, false},
		{"http://api.example.com", true, false},
		{"http://127.0.0.1:9000", false, false},
		{"http://127.0.0.1:9000", true, true},
		{"http://localhost:3000/api", true, true},
		{"http://[::1]:3000", true, true},
		{"https://user:pass@api.example.com", false, false},
		{"https://api.example.com/?key=1", false, false},
		{"https://api.example.com/#x", false, false},
		{"https:api.example.com", false, false},
		{"//api.example.com", false, false},
		{"api.example.com", false, false},
		{"ftp://api.example.com", false, false},
		{"https://api.example.com/a b", false, false},
		{"https://", false, false},
	}
	for _, tt := range tests {
		msg := portal.CheckUpstreamURL(tt.raw, tt.devMode)
		if (msg == "") != tt.ok {
			t.Errorf("CheckUpstreamURL(%q, dev=%v) = %q, want ok=%v", tt.raw, tt.devMode, msg, tt.ok)
		}
	}
}
