package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/authgpts/authgpts/store"
)

func TestPriceTable_MostSpecificWins(t *testing.T) {
	t.Parallel()
	rules := []store.RoutePrice{
		{Method: "*", Pattern: "/**", Credits: 1},
		{Method: "*", Pattern: "/v1/**", Credits: 2},
		{Method: "POST", Pattern: "/v1/**", Credits: 3},
		{Method: "*", Pattern: "/v1/models/*", Credits: 4},
		{Method: "*", Pattern: "/v1/models/gpt-5", Credits: 5},
		{Method: "POST", Pattern: "/v1/chat/completions", Credits: 50},
		{Method: "*", Pattern: "/v1/chat/completions", Credits: 40},
		{Method: "*", Pattern: "/v1/*/search", Credits: 7},
		{Method: "*", Pattern: "/v1/files/**", Credits: 8},
		{Method: "GET", Pattern: "/", Credits: 9},
		{Method: "*", Pattern: "/v2", Credits: 10},
		{Method: "*", Pattern: "/v2/", Credits: 11},
	}
	table := store.NewPriceTable(rules)
	cases := []struct {
		method, path string
		want         int64
		matched      bool
	}{
		{"POST", "/v1/chat/completions", 50, true}, // literal path and named method
		{"GET", "/v1/chat/completions", 40, true},  // literal path, any method
		{"GET", "/v1/models/gpt-5", 5, true},       // literal beats "*"
		{"GET", "/v1/models/other", 4, true},       // "*" beats "**"
		{"GET", "/v1/models", 2, true},             // "*" needs a segment: falls to /v1/**
		{"GET", "/v1/models/a/b", 2, true},         // "*" is one segment only
		{"GET", "/v1/news/search", 7, true},        // inner "*"
		{"GET", "/v1/files/search", 8, true},       // the leftmost difference decides: "files" beats "*" at segment 2
		{"GET", "/v1/files/a/b", 8, true},          // "/v1/files/**" beats "/v1/**"
		{"GET", "/v1/files", 8, true},              // "**" matches zero segments
		{"POST", "/v1/anything", 3, true},          // named method beats "*" for the same pattern
		{"DELETE", "/v1/anything", 2, true},
		{"GET", "/v1", 2, true},
		{"GET", "/", 9, true},
		{"GET", "", 9, true}, // the app's root
		{"POST", "/", 1, true},
		{"GET", "/v2", 10, true},
		{"GET", "/v2/", 11, true}, // a trailing slash is another path
		{"GET", "/v3/x", 1, true},
	}
	for _, c := range cases {
		got, matched := table.Price(c.method, c.path, 99)
		if got != c.want || matched != c.matched {
			t.Errorf("Price(%s %q) = %d, %v; want %d, %v", c.method, c.path, got, matched, c.want, c.matched)
		}
	}
	// No rule matching: the default cost.
	narrow := store.NewPriceTable([]store.RoutePrice{{Method: "POST", Pattern: "/v1/chat/completions", Credits: 50}})
	for _, c := range []struct{ method, path string }{{"GET", "/v1/chat/completions"}, {"POST", "/v1/chat"}, {"POST", "/v1/chat/completions/x"}, {"POST", "/"}} {
		if got, matched := narrow.Price(c.method, c.path, 3); got != 3 || matched {
			t.Errorf("narrow Price(%s %q) = %d, %v; want the default 3", c.method, c.path, got, matched)
		}
	}
	var none *store.PriceTable
	if got, _ := none.Price("GET", "/", 6); got != 6 {
		t.Errorf("nil table: %d, want 6", got)
	}
}

func TestCheckRoutePattern(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		p    string
		want error
	}{
		{"/", nil}, {"/v1/chat/completions", nil}, {"/v1/*", nil}, {"/v1/**", nil}, {"/**", nil}, {"/v1/", nil}, {"/*/x", nil},
		{"v1", store.ErrPatternSlash}, {"", store.ErrPatternSlash},
		{"/v1//x", store.ErrPatternSegment}, {"/v1/../x", store.ErrPatternSegment}, {"/a b", store.ErrPatternSegment},
		{"/v1?x=1", store.ErrPatternSegment}, {"/./x", store.ErrPatternSegment},
		{"/v1/**/x", store.ErrPatternWildcard}, {"/v1/a*", store.ErrPatternWildcard}, {"/***", store.ErrPatternWildcard},
		{"/" + string(make([]byte, 200)), store.ErrPatternLong},
	} {
		if got := store.CheckRoutePattern(c.p); !errors.Is(got, c.want) {
			t.Errorf("CheckRoutePattern(%q) = %v, want %v", c.p, got, c.want)
		}
	}
	for in, want := range map[string]string{"": "*", "*": "*", "get": "GET", " Post ": "POST"} {
		if got, err := store.NormalizeRouteMethod(in); err != nil || got != want {
			t.Errorf("NormalizeRouteMethod(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"G E T", "GET1", "ÄÖ", "ABCDEFGHIJKLMNOPQ"} {
		if _, err := store.NormalizeRouteMethod(in); err == nil {
			t.Errorf("NormalizeRouteMethod(%q) accepted", in)
		}
	}
}

func TestRoutePrices_OwnerScopedAndUnique(t *testing.T) {
	t.Parallel()
	f := newPortalFixture(t)
	ctx := context.Background()
	p := store.RoutePrice{Method: "POST", Pattern: "/v1/chat/completions", Credits: 5}
	if err := f.s.AddRoutePrice(ctx, f.owner.ID, f.app.ID, p, f.now); err != nil {
		t.Fatal(err)
	}
	if err := f.s.AddRoutePrice(ctx, f.owner.ID, f.app.ID, p, f.now); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate rule: %v, want ErrConflict", err)
	}
	if err := f.s.AddRoutePrice(ctx, f.intruder.ID, f.app.ID, store.RoutePrice{Method: "*", Pattern: "/x", Credits: 1}, f.now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another developer's app: %v, want ErrNotFound", err)
	}
	if err := f.s.DeleteRoutePrice(ctx, f.intruder.ID, f.app.ID, "POST", "/v1/chat/completions"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("intruder delete: %v", err)
	}
	got, err := f.s.RoutePricesByApp(ctx, f.app.ID)
	if err != nil || len(got) != 1 || got[0].Credits != 5 {
		t.Fatalf("prices = %+v, %v", got, err)
	}
	if err := f.s.DeleteRoutePrice(ctx, f.owner.ID, f.app.ID, "POST", "/v1/chat/completions"); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.s.RoutePricesByApp(ctx, f.app.ID); len(got) != 0 {
		t.Errorf("after delete: %+v", got)
	}
}
