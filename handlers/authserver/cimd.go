package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/singleflight"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/oauth/safefetch"
	"github.com/authgpts/authgpts/store"
)

// Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document; MCP
// authorization 2025-11-25): a client_id that is an https URL with a path names a JSON
// document describing the client. It is fetched through safefetch (https only, public
// addresses only, checked on the dialled IP; no redirects; 5 s; 64 KiB), validated
// (its client_id must equal the URL; redirect URIs, auth method none or private_key_jwt),
// and cached in the clients table (origin metadata_document, no app), shared by every
// instance, until it expires: HTTP caching headers, clamped to [documentTTLFloor,
// documentTTLCeiling].
const (
	documentTTLFloor   = 5 * time.Minute
	documentTTLCeiling = 24 * time.Hour
)

// documentError is a metadata document that could not be fetched or used. Its message
// is safe to show; the cause is logged.
type documentError struct{ cause error }

func (e *documentError) Error() string { return "client metadata document: " + e.cause.Error() }
func (e *documentError) Unwrap() error { return e.cause }

// documentClients fetches metadata documents and the JWKS of private_key_jwt clients.
type documentClients struct {
	fetch    *safefetch.Fetcher
	group    singleflight.Group
	jwks     jwksCache
	failures failureCache
}

// documentFailureTTL is how long a document that could not be fetched or used is not
// fetched again: without it, anyone could make the server fetch a URL of their choice on
// every authorization request.
const documentFailureTTL = time.Minute

// failureCache remembers recent document failures per URL, bounded in size.
type failureCache struct {
	mu    sync.Mutex
	until map[string]failure
}

type failure struct {
	err   error
	until time.Time
}

const maxRememberedFailures = 10_000

func (f *failureCache) get(url string, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.until[url]; ok && now.Before(e.until) {
		return e.err
	}
	return nil
}

func (f *failureCache) put(url string, err error, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.until == nil || len(f.until) >= maxRememberedFailures {
		f.until = make(map[string]failure) // forgetting only costs a refetch
	}
	f.until[url] = failure{err: err, until: now.Add(documentFailureTTL)}
}

// lookupClient returns the client with this ID. A metadata-document client is fetched
// when it is unknown or its cached document has expired; a document that cannot be
// fetched or is invalid is a *documentError.
func (h *Handler) lookupClient(ctx context.Context, id string) (*clientEntry, error) {
	e, err := h.clients.get(ctx, id)
	if err != nil || !oauth.IsMetadataDocumentURL(id) {
		return e, err
	}
	now := h.now()
	if e.found && (e.oc.Client.Origin != store.ClientOriginMetadataDocument ||
		(e.oc.Client.MetadataExpiresAt != nil && now.Before(*e.oc.Client.MetadataExpiresAt))) {
		return e, nil
	}
	if err := h.cimd.failures.get(id, now); err != nil {
		return nil, err
	}
	_, err, _ = h.cimd.group.Do(id, func() (any, error) {
		return nil, h.refreshDocument(context.WithoutCancel(ctx), id, now)
	})
	var docErr *documentError
	if errors.As(err, &docErr) {
		h.cimd.failures.put(id, err, now)
	}
	if err != nil {
		return nil, err
	}
	return h.clients.load(ctx, id, false)
}

// refreshDocument fetches, validates and stores the document at docURL.
func (h *Handler) refreshDocument(ctx context.Context, docURL string, now time.Time) error {
	resp, err := h.cimd.fetch.Get(ctx, docURL)
	if err != nil {
		h.log.Warn("client metadata document: fetch refused or failed", "client_id", docURL, "err", err)
		return &documentError{err}
	}
	m, err := oauth.ParseMetadataDocument(docURL, resp.Body, oauth.BuiltinScopes)
	if err != nil {
		h.log.Warn("client metadata document: invalid", "client_id", docURL, "err", err)
		return &documentError{err}
	}
	metadata, err := json.Marshal(m)
	if err != nil {
		return err
	}
	kind := store.ClientKindPublic
	if m.TokenEndpointAuthMethod == oauth.AuthMethodPrivateKeyJWT {
		kind = store.ClientKindGPT // confidential: it authenticates with an assertion
	}
	_, err = h.store.SaveDocumentClient(ctx, store.NewDocumentClient{
		ID: docURL, Name: documentName(m, docURL), Kind: kind, RedirectURIs: m.RedirectURIs,
		AuthMethod: m.TokenEndpointAuthMethod, Metadata: metadata,
		ExpiresAt: now.Add(safefetch.CacheTTL(resp, now, documentTTLFloor, documentTTLCeiling)),
	}, now)
	if errors.Is(err, store.ErrConflict) {
		return &documentError{errors.New("the client_id belongs to another client")}
	}
	return err
}

// documentName is the client's client_name, else the document's host (the consent page
// shows the host anyway); at most 100 characters (clients.name).
func documentName(m oauth.ClientMetadata, docURL string) string {
	name := strings.TrimSpace(m.ClientName)
	if name == "" {
		if u, err := url.Parse(docURL); err == nil {
			name = u.Hostname()
		}
	}
	for utf8.RuneCountInString(name) > 100 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name
}

// jwksCache keeps the JWKS of private_key_jwt clients, per jwks_uri, for the HTTP
// caching lifetime clamped like documents. A key ID missing from a cached set triggers
// one refetch (the client rotated its key), at most every jwksRefetchGap.
type jwksCache struct {
	mu sync.Mutex
	m  map[string]jwksEntry
}

type jwksEntry struct {
	body      []byte
	expires   time.Time
	fetchedAt time.Time
}

const jwksRefetchGap = 30 * time.Second

func (h *Handler) clientJWKS(ctx context.Context, uri string, refetch bool, now time.Time) ([]byte, error) {
	c := &h.cimd.jwks
	c.mu.Lock()
	e, ok := c.m[uri]
	c.mu.Unlock()
	if ok && now.Before(e.expires) && !(refetch && now.Sub(e.fetchedAt) > jwksRefetchGap) {
		return e.body, nil
	}
	v, err, _ := h.cimd.group.Do("jwks\x00"+uri, func() (any, error) {
		resp, err := h.cimd.fetch.Get(context.WithoutCancel(ctx), uri)
		if err != nil {
			return nil, &documentError{fmt.Errorf("jwks_uri: %w", err)}
		}
		e := jwksEntry{body: resp.Body, fetchedAt: now,
			expires: now.Add(safefetch.CacheTTL(resp, now, documentTTLFloor, documentTTLCeiling))}
		c.mu.Lock()
		if c.m == nil || len(c.m) >= maxCachedClients {
			c.m = make(map[string]jwksEntry)
		}
		c.m[uri] = e
		c.mu.Unlock()
		return resp.Body, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// authenticateAssertion authenticates a private_key_jwt client (RFC 7523 §2.2): the
// client's document names its jwks_uri; the assertion must verify with one of those keys
// and its jti is accepted once.
func (h *Handler) authenticateAssertion(ctx context.Context, form url.Values, log *slog.Logger) (*clientEntry, oauth.ClientCredentials, error) {
	creds := oauth.ClientCredentials{Method: oauth.AuthMethodPrivateKeyJWT}
	if form.Get("client_assertion_type") != oauth.ClientAssertionType {
		return nil, creds, oauth.ErrInvalidClient.WithDescription("client_assertion_type must be " + oauth.ClientAssertionType + ".")
	}
	if form.Get("client_secret") != "" {
		return nil, creds, oauth.ErrInvalidRequest.WithDescription("Use one client authentication method.")
	}
	assertion := form.Get("client_assertion")
	creds.ID = form.Get("client_id")
	if creds.ID == "" {
		creds.ID = oauth.UnverifiedIssuer(assertion) // RFC 7523 §3: iss names the client
	}
	if creds.ID == "" {
		return nil, creds, errClientAuth
	}
	e, err := h.lookupClient(ctx, creds.ID)
	var de *documentError
	switch {
	case errors.As(err, &de):
		return nil, creds, oauth.ErrInvalidClient.WithDescription("The client's metadata document could not be used.")
	case err != nil:
		return nil, creds, err
	case !e.found:
		return nil, creds, errClientAuth
	case !e.usable():
		return nil, creds, oauth.ErrInvalidClient.WithDescription("This client or its app is suspended.")
	case e.oc.Client.AuthMethod != oauth.AuthMethodPrivateKeyJWT || e.jwksURI == "":
		return nil, creds, oauth.ErrInvalidClient.WithDescription("This client does not authenticate with private_key_jwt.")
	}
	now := h.now()
	audiences := []string{h.issuer + oauth.PathToken, h.issuer}
	jwks, err := h.clientJWKS(ctx, e.jwksURI, false, now)
	if err != nil {
		log.Warn("private_key_jwt: jwks_uri fetch failed", "client_id", creds.ID, "err", err)
		return nil, creds, oauth.ErrInvalidClient.WithDescription("The client's jwks_uri could not be fetched.")
	}
	a, err := oauth.VerifyClientAssertion(assertion, jwks, creds.ID, audiences, now)
	if err != nil && oauth.ClientAssertionKeyID(assertion) != "" {
		// The client may have rotated its key: look at its JWKS once more.
		if fresh, ferr := h.clientJWKS(ctx, e.jwksURI, true, now); ferr == nil {
			a, err = oauth.VerifyClientAssertion(assertion, fresh, creds.ID, audiences, now)
		}
	}
	if err != nil {
		return nil, creds, err
	}
	fresh, err := h.store.UseAssertionJTI(ctx, creds.ID, a.JTI, a.Expiry)
	if err != nil {
		return nil, creds, err
	}
	if !fresh {
		return nil, creds, oauth.ErrInvalidClient.WithDescription("The client assertion was already used (jti).")
	}
	return e, creds, nil
}
