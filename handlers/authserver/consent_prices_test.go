package authserver_test

import (
	"context"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

// A metered app's consent page lists what calls cost; an unmetered one shows no prices.
func TestConsentPage_ShowsThePriceListOfAMeteredApp(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	if _, page := w.authorize(t, user, w.authorizeQuery()); strings.Contains(page, `data-testid="price-list"`) {
		t.Fatal("an unmetered app shows a price list")
	}

	w2 := newWorld(t, store.ClientKindGPT)
	ctx := context.Background()
	if _, err := w2.env.Store.DB().Exec(`UPDATE apps SET metering_enabled = true, credits_per_call = 2 WHERE id = $1`, w2.app.App.ID); err != nil {
		t.Fatal(err)
	}
	if err := w2.env.Store.AddRoutePrice(ctx, w2.app.Owner.ID, w2.app.App.ID, store.RoutePrice{Method: "POST", Pattern: "/v1/chat/completions", Credits: 30}, w2.env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := w2.env.Store.SetPlan(ctx, w2.app.Owner.ID, w2.app.App.ID, store.Plan{MonthlyAllowance: 500, TopUpURL: "https://example.com/buy"}, w2.env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	user2 := w2.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	_, page := w2.authorize(t, user2, w2.authorizeQuery())
	for _, want := range []string{`data-testid="price-list"`, "/v1/chat/completions", "30 credits", "Any other call", "2 credits",
		"500 credits included each month", `href="https://example.com/buy"`} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
}
