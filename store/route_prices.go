package store

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"
)

const (
	qRoutePricesByApp = `
		SELECT app_id, method, pattern, credits FROM route_prices WHERE app_id = $1 ORDER BY pattern, method`
	qInsertOwnerRoutePrice = `
		INSERT INTO route_prices (app_id, method, pattern, credits, created_at)
		SELECT a.id, $3, $4, $5, $6 FROM apps a WHERE a.id = $1 AND a.owner_id = $2`
	qDeleteOwnerRoutePrice = `
		DELETE FROM route_prices p USING apps a
		 WHERE a.id = p.app_id AND a.id = $1 AND a.owner_id = $2 AND p.method = $3 AND p.pattern = $4`
)

// MaxRoutePrices bounds the price rules of one app.
const MaxRoutePrices = 100

// MaxRouteCredits is the largest price of one call.
const MaxRouteCredits = 1_000_000_000

// RoutePrice prices the calls whose method is Method ("*" for any) and whose path below
// /gw/<slug> matches Pattern.
//
// A pattern is a path of segments: a literal segment matches itself, "*" matches any one
// segment and a final "**" matches whatever follows (zero or more segments). So
// "/v1/chat/completions", "/v1/models/*" and "/v1/**" are patterns.
type RoutePrice struct {
	AppID   string `db:"app_id"`
	Method  string `db:"method"`
	Pattern string `db:"pattern"`
	Credits int64  `db:"credits"`
}

// Errors of CheckRoutePattern and CheckRouteMethod, worded for the portal's field errors.
var (
	ErrPatternSlash    = errors.New("A pattern starts with / (the path after /gw/<slug>).")
	ErrPatternLong     = errors.New("A pattern has at most 200 characters.")
	ErrPatternSegment  = errors.New("A pattern may not have empty, “.” or “..” segments, nor spaces, “?” or “#”.")
	ErrPatternWildcard = errors.New("Use * for one whole segment and ** only as the last segment.")
	ErrMethod          = errors.New("Choose a method such as GET or POST, or * for any.")
)

// CheckRoutePattern reports what is wrong with a pattern, or nil.
func CheckRoutePattern(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return ErrPatternSlash
	case len(p) > 200:
		return ErrPatternLong
	case p == "/":
		return nil
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		switch {
		case s == "" && i == len(segs)-1 && i > 0:
			// a trailing slash is allowed ("/v1/"), and matches that path exactly
		case s == "", s == ".", s == "..", strings.ContainsAny(s, " \t?#\\\x00"):
			return ErrPatternSegment
		case s == "**" && i != len(segs)-1:
			return ErrPatternWildcard
		case s != "*" && s != "**" && strings.Contains(s, "*"):
			return ErrPatternWildcard
		}
	}
	return nil
}

// NormalizeRouteMethod upper-cases a method ("" is "*") and reports whether it is valid.
func NormalizeRouteMethod(m string) (string, error) {
	m = strings.ToUpper(strings.TrimSpace(m))
	if m == "" || m == "*" {
		return "*", nil
	}
	if len(m) > 16 {
		return "", ErrMethod
	}
	for _, r := range m {
		if r < 'A' || r > 'Z' {
			return "", ErrMethod
		}
	}
	return m, nil
}

// PriceTable is an app's price rules compiled for matching: Price answers with the
// most specific matching rule, else the default.
type PriceTable struct {
	rules []compiledPrice
}

type compiledPrice struct {
	RoutePrice
	segs []string
	rest bool // ends in "**"
}

// NewPriceTable compiles rules (already valid) ordered most specific first:
//  1. segment by segment, a literal beats "*", which beats a "**" rest;
//  2. then more segments beat fewer (a longer literal path is more specific);
//  3. then a named method beats "*".
func NewPriceTable(rules []RoutePrice) *PriceTable {
	t := &PriceTable{rules: make([]compiledPrice, 0, len(rules))}
	for _, r := range rules {
		c := compiledPrice{RoutePrice: r}
		if r.Pattern != "/" {
			c.segs = strings.Split(r.Pattern[1:], "/")
		}
		if n := len(c.segs); n > 0 && c.segs[n-1] == "**" {
			c.rest, c.segs = true, c.segs[:n-1]
		}
		t.rules = append(t.rules, c)
	}
	sort.SliceStable(t.rules, func(i, j int) bool { return moreSpecific(t.rules[i], t.rules[j]) })
	return t
}

// segRank orders what a pattern has at segment position i: a literal (4) is more
// specific than "*" (3), a pattern that ends there (2) than one going on with "**" (1).
// Comparing patterns position by position from the left with this order is a total
// order, so sorting by it is well defined.
func segRank(c compiledPrice, i int) int {
	switch {
	case i < len(c.segs) && c.segs[i] == "*":
		return 3
	case i < len(c.segs):
		return 4
	case i == len(c.segs) && c.rest:
		return 1
	}
	return 2
}

func moreSpecific(a, b compiledPrice) bool {
	for i := 0; i <= max(len(a.segs), len(b.segs)); i++ {
		if ra, rb := segRank(a, i), segRank(b, i); ra != rb {
			return ra > rb
		}
	}
	if (a.Method == "*") != (b.Method == "*") {
		return b.Method == "*"
	}
	return a.Pattern < b.Pattern || a.Pattern == b.Pattern && a.Method < b.Method
}

// Len is the number of rules.
func (t *PriceTable) Len() int {
	if t == nil {
		return 0
	}
	return len(t.rules)
}

// Price returns the credits of a call: those of the most specific rule matching method
// and path (the path below /gw/<slug>, "" meaning "/"), else def. matched reports
// whether a rule applied.
func (t *PriceTable) Price(method, path string, def int64) (credits int64, matched bool) {
	if t == nil || len(t.rules) == 0 {
		return def, false
	}
	if path == "" {
		path = "/"
	}
	for i := range t.rules {
		r := &t.rules[i]
		if r.Method != "*" && r.Method != method {
			continue
		}
		if r.match(path) {
			return r.Credits, true
		}
	}
	return def, false
}

// match walks path segment by segment without allocating.
func (c *compiledPrice) match(path string) bool {
	rest, done := path[1:], path == "/" // path starts with "/"; "/" has no segment
	for _, seg := range c.segs {
		if done {
			return false
		}
		part := rest
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			part, rest = rest[:j], rest[j+1:]
		} else {
			done = true
		}
		if seg == "*" && part == "" || seg != "*" && part != seg {
			return false
		}
	}
	return c.rest || done
}

// RoutePricesByApp lists an app's price rules.
func (s *Store) RoutePricesByApp(ctx context.Context, appID string) ([]RoutePrice, error) {
	out := []RoutePrice{}
	err := s.selectContext(ctx, &out, qRoutePricesByApp, appID)
	return out, wrap("route prices by app", err)
}

// AddRoutePrice adds a price rule to the owner's app; a rule for the same method and
// pattern is ErrConflict, another developer's app ErrNotFound. The gateways hear of it
// at once (ChannelAppChanged).
func (s *Store) AddRoutePrice(ctx context.Context, ownerID, appID string, p RoutePrice, now time.Time) error {
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.execOne(ctx, "add route price", qInsertOwnerRoutePrice, appID, ownerID, p.Method, p.Pattern, p.Credits, now); err != nil {
			return err
		}
		return tx.notifyChange(ctx, ChannelAppChanged, appID)
	})
	return wrap("add route price", err)
}

// DeleteRoutePrice removes one price rule of the owner's app (ErrNotFound when none).
func (s *Store) DeleteRoutePrice(ctx context.Context, ownerID, appID, method, pattern string) error {
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.execOne(ctx, "delete route price", qDeleteOwnerRoutePrice, appID, ownerID, method, pattern); err != nil {
			return err
		}
		return tx.notifyChange(ctx, ChannelAppChanged, appID)
	})
	return wrap("delete route price", err)
}
