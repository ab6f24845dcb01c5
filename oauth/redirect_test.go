package oauth

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateRedirectURI(t *testing.T) {
	tests := []struct {
		name    string
		uri     string
		wantErr string // substring of the description; "" means valid
	}{
		{"https", "https://chatgpt.com/aip/g-0123abcd/oauth/callback", ""},
		{"https with port and query", "https://app.example.com:8443/cb?x=1&y=2", ""},
		{"https no path", "https://app.example.com", ""},
		{"https encoded path", "https://app.example.com/a%20b", ""},
		{"https loopback", "https://localhost:1234/cb", ""},
		{"http 127.0.0.1", "http://127.0.0.1/callback", ""},
		{"http 127.0.0.1 port", "http://127.0.0.1:53682/callback", ""},
		{"http 127.255.1.2", "http://127.255.1.2:8080/cb", ""},
		{"http ::1", "http://[::1]:8080/cb", ""},
		{"http localhost", "http://localhost:3000/cb", ""},
		{"http LOCALHOST", "http://LOCALHOST:3000/cb", ""},
		{"empty", "", "empty"},
		{"too long", "https://app.example.com/" + strings.Repeat("a", 2000), "2000"},
		{"relative", "/callback", "https://"},
		{"no scheme", "app.example.com/cb", "https://"},
		{"http public host", "http://app.example.com/cb", "https"},
		{"http private address", "http://192.168.1.10/cb", "https"},
		{"http 0.0.0.0", "http://0.0.0.0/cb", "https"},
		{"http short loopback form", "http://127.1/cb", "https"},
		{"http mapped loopback", "http://[::ffff:127.0.0.1]/cb", "https"},
		{"http zoned ::1", "http://[::1%25lo]/cb", "zone"},
		{"http localhost lookalike", "http://localhost.evil.com/cb", "https"},
		{"http localhost trailing dot", "http://localhost./cb", "https"},
		{"custom scheme", "com.example.app:/oauth2redirect", "https://"},
		{"javascript", "javascript:alert(1)", "https://"},
		{"data", "data:text/html,hi", "https://"},
		{"uppercase scheme", "HTTPS://app.example.com/cb", "https://"},
		{"single slash", "https:/app.example.com/cb", "https://"},
		{"opaque", "https:app.example.com", "https://"},
		{"fragment", "https://app.example.com/cb#x", "fragment"},
		{"empty fragment", "https://app.example.com/cb#", "fragment"},
		{"wildcard host", "https://*.example.com/cb", "wildcard"},
		{"wildcard path", "https://chatgpt.com/aip/*/oauth/callback", "wildcard"},
		{"userinfo", "https://good.com@evil.com/cb", "user name"},
		{"userinfo with password", "https://user:pass@app.example.com/cb", "user name"},
		{"no host", "https:///cb", "host"},
		{"port only", "https://:443/cb", "host"},
		{"space", "https://app.example.com/a b", "percent-encoded"},
		{"backslash", `https://good.com\@evil.com/cb`, "percent-encoded"},
		{"non-ascii", "https://bücher.example/cb", "percent-encoded"},
		{"control char", "https://app.example.com/\x00", "percent-encoded"},
		{"bad escape", "https://app.example.com/%zz", "valid URL"},
		{"bad port", "https://app.example.com:port/cb", "valid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateRedirectURI(tt.uri)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateRedirectURI(%q) = %v, want nil", tt.uri, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateRedirectURI(%q) = nil, want error containing %q", tt.uri, tt.wantErr)
			}
			var oe Error
			if !errors.As(err, &oe) || oe.Code != "invalid_redirect_uri" {
				t.Fatalf("ValidateRedirectURI(%q) = %#v, want an invalid_redirect_uri Error", tt.uri, err)
			}
			if !strings.Contains(oe.Description, tt.wantErr) {
				t.Errorf("ValidateRedirectURI(%q) description = %q, want it to contain %q", tt.uri, oe.Description, tt.wantErr)
			}
		})
	}
}

func TestMatchRedirectURI(t *testing.T) {
	const gpt = "https://chatgpt.com/aip/g-0123abcd/oauth/callback"
	tests := []struct {
		name       string
		registered []string
		requested  string
		want       bool
	}{
		{"exact", []string{gpt}, gpt, true},
		{"second of several", []string{"https://claude.ai/api/mcp/auth_callback", gpt}, gpt, true},
		{"nothing registered", nil, gpt, false},
		{"empty requested", []string{gpt}, "", false},
		{"trailing slash added", []string{gpt}, gpt + "/", false},
		{"trailing slash removed", []string{"https://app.example.com/cb/"}, "https://app.example.com/cb", false},
		{"host case", []string{gpt}, "https://ChatGPT.com/aip/g-0123abcd/oauth/callback", false},
		{"path case", []string{gpt}, "https://chatgpt.com/aip/G-0123abcd/oauth/callback", false},
		{"scheme case", []string{gpt}, "HTTPS://chatgpt.com/aip/g-0123abcd/oauth/callback", false},
		{"extra query", []string{gpt}, gpt + "?x=1", false},
		{"extra query on existing", []string{"https://app.example.com/cb?a=1"}, "https://app.example.com/cb?a=1&b=2", false},
		{"query order", []string{"https://app.example.com/cb?a=1&b=2"}, "https://app.example.com/cb?b=2&a=1", false},
		{"userinfo trick", []string{"https://good.com/cb"}, "https://good.com@evil.com/cb", false},
		{"suffix domain", []string{"https://good.com/cb"}, "https://good.com.evil.com/cb", false},
		{"prefix path", []string{"https://good.com/cb"}, "https://good.com/cb/../evil", false},
		{"encoded slash", []string{"https://good.com/a/b"}, "https://good.com/a%2Fb", false},
		{"encoded letter", []string{"https://good.com/cb"}, "https://good.com/%63b", false},
		{"encoded exact", []string{"https://good.com/a%20b"}, "https://good.com/a%20b", true},
		{"fragment added", []string{gpt}, gpt + "#x", false},
		{"default port added", []string{"https://good.com/cb"}, "https://good.com:443/cb", false},
		{"http vs https", []string{"https://good.com/cb"}, "http://good.com/cb", false},
		{"chat.openai.com vs chatgpt.com", []string{gpt}, "https://chat.openai.com/aip/g-0123abcd/oauth/callback", false},

		// RFC 8252 §7.3: loopback http redirect URIs match with any port.
		{"loopback v4 any port", []string{"http://127.0.0.1/callback"}, "http://127.0.0.1:53682/callback", true},
		{"loopback v4 port changed", []string{"http://127.0.0.1:8080/callback"}, "http://127.0.0.1:9090/callback", true},
		{"loopback v4 port removed", []string{"http://127.0.0.1:8080/callback"}, "http://127.0.0.1/callback", true},
		{"loopback v6 any port", []string{"http://[::1]/callback"}, "http://[::1]:61000/callback", true},
		{"localhost any port", []string{"http://localhost:3000/callback"}, "http://localhost:4000/callback", true},
		{"localhost any port with query", []string{"http://localhost/cb?a=1"}, "http://localhost:4000/cb?a=1", true},
		{"loopback path must match", []string{"http://127.0.0.1/callback"}, "http://127.0.0.1:5000/callback/", false},
		{"loopback query must match", []string{"http://127.0.0.1/callback"}, "http://127.0.0.1:5000/callback?x=1", false},
		{"loopback host must match", []string{"http://127.0.0.1/callback"}, "http://localhost:5000/callback", false},
		{"loopback v4 vs v6", []string{"http://127.0.0.1/callback"}, "http://[::1]:5000/callback", false},
		{"loopback other 127 address", []string{"http://127.0.0.1/callback"}, "http://127.0.0.2:5000/callback", false},
		{"loopback scheme must match", []string{"http://127.0.0.1/callback"}, "https://127.0.0.1:5000/callback", false},
		{"loopback fragment", []string{"http://127.0.0.1/callback"}, "http://127.0.0.1:5000/callback#x", false},
		{"loopback userinfo", []string{"http://127.0.0.1/callback"}, "http://127.0.0.1:5000@evil.com/callback", false},
		{"loopback userinfo 2", []string{"http://localhost/callback"}, "http://localhost@evil.com:80/callback", false},
		{"loopback bad port", []string{"http://127.0.0.1/callback"}, "http://127.0.0.1:abc/callback", false},
		{"loopback huge port", []string{"http://127.0.0.1/callback"}, "http://127.0.0.1:1234567/callback", false},
		{"https localhost gets no any-port", []string{"https://localhost:1234/cb"}, "https://localhost:4321/cb", false},
		{"https localhost exact", []string{"https://localhost:1234/cb"}, "https://localhost:1234/cb", true},
		{"https 127.0.0.1 gets no any-port", []string{"https://127.0.0.1:1234/cb"}, "https://127.0.0.1:4321/cb", false},
		{"public host gets no any-port", []string{"https://good.com:8443/cb"}, "https://good.com:9443/cb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MatchRedirectURI(tt.registered, tt.requested); got != tt.want {
				t.Errorf("MatchRedirectURI(%q, %q) = %v, want %v", tt.registered, tt.requested, got, tt.want)
			}
		})
	}
}

func TestIsLoopbackURI(t *testing.T) {
	tests := []struct {
		uri  string
		want bool
	}{
		{"http://127.0.0.1/cb", true},
		{"http://127.0.0.1:8080/cb", true},
		{"http://127.9.9.9/cb", true},
		{"http://[::1]:8080/cb", true},
		{"http://localhost/cb", true},
		{"https://localhost:1234/cb", true},
		{"http://example.com/cb", false},
		{"http://localhost.example.com/cb", false},
		{"http://128.0.0.1/cb", false},
		{"http://[::2]/cb", false},
		{"http://user@localhost/cb", false},
		{"ftp://localhost/cb", false},
		{"localhost", false},
		{"", false},
		{"http://%zz", false},
	}
	for _, tt := range tests {
		if got := IsLoopbackURI(tt.uri); got != tt.want {
			t.Errorf("IsLoopbackURI(%q) = %v, want %v", tt.uri, got, tt.want)
		}
	}
}
