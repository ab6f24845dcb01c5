package webhook

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/authgpts/authgpts/oauth/safefetch"
)

// URL errors; their messages are the portal's field errors.
var (
	ErrInvalidURL  = errors.New("Enter a full URL, such as https://api.example.com/webhooks.")
	ErrNotHTTPS    = errors.New("The URL must start with https://.")
	ErrPrivateAddr = errors.New("The host is a private, loopback or reserved address; webhooks go to public addresses only.")
)

// Policy is where webhooks may go: the SSRF rules of metadata documents
// (oauth/safefetch), HTTPS only outside development mode.
type Policy struct {
	// DevMode (development mode) allows http:// URLs and loopback receivers.
	DevMode bool
	// AllowAddrs are "ip:port" pairs exempt from the address check: tests' local
	// receivers only, never set in production.
	AllowAddrs []string
	// RootCAs replaces the system roots (tests with a local TLS receiver).
	RootCAs *x509.CertPool
}

// CheckURL validates an endpoint URL: absolute, no credentials, https (http too in
// development mode), and a host that is not (and does not resolve to) a private,
// loopback or reserved address. A name that does not resolve now is accepted: the
// dialer checks every address again at delivery.
func (p Policy) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || len(raw) > 2048 {
		return ErrInvalidURL
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.DevMode:
	case u.Scheme == "http":
		return ErrNotHTTPS
	default:
		return ErrInvalidURL
	}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if !p.addrAllowed(addr, port) {
			return ErrPrivateAddr
		}
		return nil
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		if p.DevMode {
			return nil
		}
		return ErrPrivateAddr
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(lctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if !p.addrAllowed(a, port) {
			return ErrPrivateAddr
		}
	}
	return nil
}

func (p Policy) addrAllowed(a netip.Addr, port string) bool {
	a = a.Unmap()
	if safefetch.IsPublic(a) || (p.DevMode && a.IsLoopback()) {
		return true
	}
	for _, allowed := range p.AllowAddrs {
		if allowed == net.JoinHostPort(a.String(), port) {
			return true
		}
	}
	return false
}

// Client returns the HTTP client deliveries use: safefetch's guarded transport, no
// redirects followed (a 3xx is recorded as the answer), timeout per attempt.
func (p Policy) Client(timeout time.Duration) *http.Client {
	t := safefetch.NewTransport(safefetch.Options{Timeout: timeout, AllowAddrs: p.AllowAddrs, RootCAs: p.RootCAs,
		AllowLoopback: p.DevMode})
	// Keep-alive for every delivery in flight, however many endpoints share a host: a
	// connection closed for lack of an idle slot costs a TLS handshake on the next one.
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	return &http.Client{
		Transport: t,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
