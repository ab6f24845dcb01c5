package safefetch

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestIsPublic(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"8.8.8.8", true},
		{"2606:4700:4700::1111", true},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"127.0.0.1", false},
		{"127.9.9.9", false},
		{"169.254.169.254", false}, // cloud metadata
		{"100.64.0.1", false},
		{"0.0.0.0", false},
		{"::1", false},
		{"fe80::1", false},
		{"fd00::1", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"64:ff9b::a00:1", false},
		{"224.0.0.1", false},
		{"192.0.2.10", false},
	}
	for _, tt := range tests {
		if got := IsPublic(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("IsPublic(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func localTLS(t *testing.T, h http.HandlerFunc) (*httptest.Server, *Fetcher) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv, New(Options{AllowAddrs: []string{srv.Listener.Addr().String()}, RootCAs: pool, MaxBytes: 1024})
}

func TestGet_AllowListedLocalServer(t *testing.T) {
	srv, f := localTLS(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write([]byte(`{"ok":true}`))
	})
	resp, err := f.Get(context.Background(), srv.URL+"/doc.json")
	if err != nil || string(resp.Body) != `{"ok":true}` || resp.CacheControl != "max-age=600" {
		t.Fatalf("Get() = %q, %q, %v", resp.Body, resp.CacheControl, err)
	}
}

func TestGet_RefusesSSRFTargets(t *testing.T) {
	srv, _ := localTLS(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("secret")) })
	port := srv.Listener.Addr().(interface{ String() string }).String()
	port = port[strings.LastIndex(port, ":")+1:]
	// A fetcher without the test's allow-list: the production policy.
	f := New(Options{})
	tests := []struct {
		url  string
		want error
	}{
		{"http://example.com/doc.json", ErrNotHTTPS},
		{"https://127.0.0.1:" + port + "/doc.json", ErrForbiddenAddr},
		{"https://10.0.0.1/doc.json", ErrForbiddenAddr},
		{"https://169.254.169.254/latest/meta-data/", ErrForbiddenAddr},
		{"https://[::1]:" + port + "/", ErrForbiddenAddr},
		{"https://[::ffff:127.0.0.1]:" + port + "/", ErrForbiddenAddr},
		// A name is checked on the address it resolves to, at connect time: the same check
		// that defeats DNS rebinding between validation and fetch.
		{"https://localhost:" + port + "/doc.json", ErrForbiddenAddr},
		{"https://user:pass@example.com/", ErrInvalidURL},
		{"not a url", ErrInvalidURL},
	}
	for _, tt := range tests {
		if _, err := f.Get(context.Background(), tt.url); !errors.Is(err, tt.want) {
			t.Errorf("Get(%s) error = %v, want %v", tt.url, err, tt.want)
		}
	}
}

func TestGet_NoRedirects(t *testing.T) {
	srv, f := localTLS(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://169.254.169.254/latest/meta-data/", http.StatusFound)
	})
	if _, err := f.Get(context.Background(), srv.URL+"/doc.json"); !errors.Is(err, ErrRedirect) {
		t.Fatalf("Get() error = %v, want ErrRedirect", err)
	}
}

func TestGet_SizeLimit(t *testing.T) {
	srv, f := localTLS(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 2048))) // over the 1 KiB test limit, no Content-Length trust
	})
	if _, err := f.Get(context.Background(), srv.URL+"/big.json"); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Get() error = %v, want ErrTooLarge", err)
	}
}

func TestGet_Non200(t *testing.T) {
	srv, f := localTLS(t, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	if _, err := f.Get(context.Background(), srv.URL+"/missing.json"); !errors.Is(err, ErrBadStatus) {
		t.Fatalf("Get() error = %v, want ErrBadStatus", err)
	}
}
