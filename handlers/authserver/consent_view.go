package authserver

import (
	"context"
	"net/url"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/views/components"
	views "github.com/authgpts/authgpts/views/oauth"
)

// priceList is the consent page's price list of a metered app (nil otherwise): the
// default cost, the route prices and the plan, as the developer set them.
func (h *Handler) priceList(ctx context.Context, a store.App) (*components.PriceListProps, error) {
	if !a.MeteringEnabled {
		return nil, nil
	}
	rules, err := h.store.RoutePricesByApp(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	plan, err := h.store.PlanByApp(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	p := &components.PriceListProps{ID: "consent-price-list", DefaultCost: a.CreditsPerCall, FreeCredits: a.FreeCredits,
		MonthlyAllowance: plan.MonthlyAllowance, TopUpURL: plan.TopUpURL, Upstream: true}
	for _, r := range rules {
		p.Rules = append(p.Rules, components.PriceRule{Method: r.Method, Pattern: r.Pattern, Credits: r.Credits})
	}
	return p, nil
}

// consentVM is what the consent page says about the client and the app it asks for: the
// app and its developer, the client's name, the host the user returns to and, for MCP
// clients, who vouches for the client (a metadata document's host, or nobody for an
// anonymous registration) and the resource (MCP server) the access is for.
func consentVM(client *clientEntry, b binding, redirectURI string) views.ConsentVM {
	vm := views.ConsentVM{
		AppName:        b.app.oa.App.Name,
		DeveloperEmail: b.app.oa.OwnerEmail,
		ClientName:     client.oc.Client.Name,
		RedirectHost:   redirectHost(redirectURI),
	}
	switch client.oc.Client.Origin {
	case store.ClientOriginMetadataDocument:
		vm.ClientOrigin = views.OriginMetadataDocument
		if u, err := url.Parse(client.oc.Client.ID); err == nil {
			vm.DocumentHost = u.Host
		}
	case store.ClientOriginRegistration:
		vm.ClientOrigin = views.OriginRegistration
	}
	if client.oc.Client.IsMCP() {
		vm.Resource = b.resource
		vm.LocalhostOnly = len(client.oc.Client.RedirectURIs) > 0
		for _, u := range client.oc.Client.RedirectURIs {
			if !oauth.IsLoopbackURI(u) {
				vm.LocalhostOnly = false
			}
		}
	}
	return vm
}
