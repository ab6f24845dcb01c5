// Package safefetch fetches documents from URLs that other people gave us (client ID
// metadata documents, a client's jwks_uri) without becoming an SSRF tool: HTTPS only, no
// redirects, size and time limits, and no connection to a private, loopback, link-local
// or otherwise non-public address. The address check runs on the IP actually dialled,
// after DNS resolution, so a name that resolves to a public address at validation time
// and to 127.0.0.1 at connect time (DNS rebinding) is still refused.
package safefetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Errors callers can tell apart; their messages are safe to show to a developer.
var (
	ErrNotHTTPS      = errors.New("safefetch: only https URLs are fetched")
	ErrForbiddenAddr = errors.New("safefetch: the host resolves to a private, loopback or reserved address")
	ErrRedirect      = errors.New("safefetch: redirects are not followed")
	ErrTooLarge      = errors.New("safefetch: the document is larger than allowed")
	ErrBadStatus     = errors.New("safefetch: the server did not answer 200 OK")
	ErrInvalidURL    = errors.New("safefetch: the URL is not valid")
)

// Options tune a Fetcher. The zero value is the production policy.
type Options struct {
	Timeout  time.Duration // whole request; default 5 s
	MaxBytes int64         // body limit; default 64 KiB
	// AllowAddrs lets tests reach their own local HTTPS server: exact "ip:port" pairs
	// that pass the address check. Never set in production.
	AllowAddrs []string
	// RootCAs replaces the system roots (tests with a local TLS server).
	RootCAs *x509.CertPool
	// AllowLoopback lets loopback addresses pass (development mode only: a webhook
	// receiver on the developer's own machine).
	AllowLoopback bool
}

// Fetcher is an HTTP client bound to the SSRF policy. It is safe for concurrent use.
type Fetcher struct {
	client   *http.Client
	maxBytes int64
	allowed  map[string]bool // "ip:port" exempt from the address check (tests only)
}

// New builds a Fetcher.
func New(o Options) *Fetcher {
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = 64 << 10
	}
	allowed := allowList(o)
	return &Fetcher{
		client: &http.Client{
			Transport: NewTransport(o),
			Timeout:   o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return ErrRedirect
			},
		},
		maxBytes: o.MaxBytes,
		allowed:  allowed,
	}
}

func allowList(o Options) map[string]bool {
	allowed := make(map[string]bool, len(o.AllowAddrs))
	for _, a := range o.AllowAddrs {
		allowed[a] = true
	}
	return allowed
}

// NewTransport is the Fetcher's transport for other requests to URLs we were given
// (webhook deliveries): every dialled address must be public (or allow-listed), no
// proxy, TLS 1.2 or later, o.Timeout (default 5 s) to connect and to the response
// headers. The caller's client must refuse redirects.
func NewTransport(o Options) *http.Transport {
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	allowed := allowList(o)
	dialer := &net.Dialer{
		Timeout: o.Timeout,
		// Control runs for every address the dialer tries, after resolution.
		Control: func(network, address string, _ syscall.RawConn) error {
			if allowed[address] {
				return nil
			}
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return ErrForbiddenAddr
			}
			if o.AllowLoopback && ap.Addr().Unmap().IsLoopback() {
				return nil
			}
			if !IsPublic(ap.Addr()) {
				return ErrForbiddenAddr
			}
			return nil
		},
	}
	return &http.Transport{
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs},
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConns:          10,
		IdleConnTimeout:       30 * time.Second,
		Proxy:                 nil, // a proxy would hide the real destination from the check
		ForceAttemptHTTP2:     true,
	}
}

// Response is a fetched document and the caching headers that came with it.
type Response struct {
	Body         []byte
	ContentType  string
	CacheControl string
	Expires      string
}

// Get fetches rawURL under the policy and returns the body.
func (f *Fetcher) Get(ctx context.Context, rawURL string) (Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return Response{}, ErrInvalidURL
	}
	if u.Scheme != "https" {
		return Response{}, ErrNotHTTPS
	}
	if u.User != nil {
		return Response{}, ErrInvalidURL
	}
	// Literal addresses are checked here too, so the error is clear before any dial.
	if addr, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && !IsPublic(addr) {
		if !f.allowedLiteral(u) {
			return Response{}, ErrForbiddenAddr
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Response{}, ErrInvalidURL
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "AuthGPTs/1 (+metadata fetch)")
	resp, err := f.client.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, ErrForbiddenAddr):
			return Response{}, ErrForbiddenAddr
		case errors.Is(err, ErrRedirect):
			return Response{}, ErrRedirect
		}
		return Response{}, fmt.Errorf("safefetch: fetch failed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Response{}, fmt.Errorf("%w (got %d)", ErrBadStatus, resp.StatusCode)
	}
	if resp.ContentLength > f.maxBytes {
		return Response{}, ErrTooLarge
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return Response{}, fmt.Errorf("safefetch: read failed: %w", err)
	}
	if int64(len(body)) > f.maxBytes {
		return Response{}, ErrTooLarge
	}
	return Response{
		Body:         body,
		ContentType:  resp.Header.Get("Content-Type"),
		CacheControl: resp.Header.Get("Cache-Control"),
		Expires:      resp.Header.Get("Expires"),
	}, nil
}

func (f *Fetcher) allowedLiteral(u *url.URL) bool {
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return f.allowed[net.JoinHostPort(strings.Trim(u.Hostname(), "[]"), port)]
}

// IsPublic reports whether addr is a globally routable unicast address: not loopback,
// private (RFC 1918, fc00::/7), link-local (169.254/16, fe80::/10, cloud metadata),
// CGNAT (100.64/10), unspecified, multicast, documentation or benchmarking ranges.
func IsPublic(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.IsValid() || addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() ||
		addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast() || addr.IsMulticast() ||
		addr.IsUnspecified() || !addr.IsGlobalUnicast() {
		return false
	}
	for _, p := range reserved {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),  // documentation
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach IPv4 private space
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"), // 6to4 embeds arbitrary IPv4
}
