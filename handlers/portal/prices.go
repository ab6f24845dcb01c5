package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/views/components"
	view "github.com/authgpts/authgpts/views/portal"
)

// PriceRules converts store rules for the price list components.
func PriceRules(rules []store.RoutePrice) []components.PriceRule {
	out := make([]components.PriceRule, 0, len(rules))
	for _, r := range rules {
		out = append(out, components.PriceRule{Method: r.Method, Pattern: r.Pattern, Credits: r.Credits})
	}
	return out
}

// PriceList is what calls of the app cost, for the GPT setup panel and the consent
// page; nil when the app is not metered.
func PriceList(ctx context.Context, st *store.Store, a store.App) (*components.PriceListProps, error) {
	if !a.MeteringEnabled {
		return nil, nil
	}
	rules, err := st.RoutePricesByApp(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	plan, err := st.PlanByApp(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	return &components.PriceListProps{
		ID: "price-list", DefaultCost: a.CreditsPerCall, Rules: PriceRules(rules), FreeCredits: a.FreeCredits,
		MonthlyAllowance: plan.MonthlyAllowance, TopUpURL: plan.TopUpURL, Upstream: true,
	}, nil
}

func (h *Handler) pricesVM(ctx context.Context, a store.App) (view.PricesVM, error) {
	rules, err := h.Store.RoutePricesByApp(ctx, a.ID)
	if err != nil {
		return view.PricesVM{}, err
	}
	plan, err := h.Store.PlanByApp(ctx, a.ID)
	if err != nil {
		return view.PricesVM{}, err
	}
	return view.PricesVM{
		AppURL: AppURL(a.Slug), Metering: a.MeteringEnabled, DefaultCost: a.CreditsPerCall, Rules: PriceRules(rules),
		Plan: view.PlanFormVM{Allowance: strconv.FormatInt(plan.MonthlyAllowance, 10), TopUpURL: plan.TopUpURL},
	}, nil
}

// connectPanel builds the GPT setup panel, whose price list follows the prices.
func (h *Handler) connectPanel(ctx context.Context, a store.App) (view.ConnectPanelVM, error) {
	d, err := h.loadAppPageData(ctx, a)
	if err != nil {
		return view.ConnectPanelVM{}, err
	}
	return h.connectPanelVM(ctx, a, d.clients, d.scopes)
}

// pricesAnswer re-renders the prices section after adjust, and the GPT setup panel.
func (h *Handler) pricesAnswer(c *gin.Context, status int, u store.User, a store.App, adjust func(*view.PricesVM)) {
	vm, err := h.pricesVM(c.Request.Context(), a)
	if err != nil {
		web.Fail(c, err)
		return
	}
	if adjust != nil {
		adjust(&vm)
	}
	connect, err := h.connectPanel(c.Request.Context(), a)
	if err != nil {
		web.Fail(c, err)
		return
	}
	h.region(c, status, u, AppURL(a.Slug), view.PricesSection(vm), view.ConnectPanel(connect, true))
}

// priceForm is the "Add a price" form.
type priceForm struct {
	store.RoutePrice
	raw view.NewPriceFormVM
}

func parsePriceForm(c *gin.Context) (priceForm, view.Errors) {
	errs := view.Errors{}
	f := priceForm{raw: view.NewPriceFormVM{
		Method:  strings.TrimSpace(c.PostForm("method")),
		Pattern: strings.TrimSpace(c.PostForm("pattern")),
		Credits: strings.TrimSpace(c.PostForm("credits")),
	}}
	method, err := store.NormalizeRouteMethod(f.raw.Method)
	if err != nil {
		errs["method"] = err.Error()
	}
	f.Method = method
	f.Pattern = f.raw.Pattern
	if f.Pattern == "" {
		errs["pattern"] = "Enter a path pattern such as /v1/chat/completions."
	} else if err := store.CheckRoutePattern(f.Pattern); err != nil {
		errs["pattern"] = err.Error()
	}
	n, ok := intIn(f.raw.Credits, 0, store.MaxRouteCredits)
	if !ok {
		errs["credits"] = fmt.Sprintf("Enter a whole number of credits from 0 to %d.", store.MaxRouteCredits)
	}
	f.Credits = n
	return f, errs
}

func (h *Handler) addRoutePrice(c *gin.Context) {
	u, a, ok := h.loadApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	f, errs := parsePriceForm(c)
	keep := func(errs view.Errors) func(*view.PricesVM) {
		return func(vm *view.PricesVM) { vm.Form = f.raw; vm.Form.Errors = errs }
	}
	if len(errs) > 0 {
		h.pricesAnswer(c, unprocessable, u, a, keep(errs))
		return
	}
	rules, err := h.Store.RoutePricesByApp(ctx, a.ID)
	if err != nil {
		web.Fail(c, err)
		return
	}
	if len(rules) >= store.MaxRoutePrices {
		h.pricesAnswer(c, unprocessable, u, a, keep(view.Errors{"pattern": fmt.Sprintf("An app can have at most %d prices. Delete one first.", store.MaxRoutePrices)}))
		return
	}
	now := h.Now()
	err = h.Store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.AddRoutePrice(ctx, u.ID, a.ID, f.RoutePrice, now); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "price.added", "app", a.ID, map[string]any{
			"method": f.Method, "pattern": f.Pattern, "credits": f.Credits,
		}))
	})
	if errors.Is(err, store.ErrConflict) {
		h.pricesAnswer(c, unprocessable, u, a, keep(view.Errors{"pattern": "There is already a price for " + components.MethodLabel(f.Method) + " " + f.Pattern + ". Delete it first."}))
		return
	}
	if err != nil {
		web.Fail(c, err)
		return
	}
	h.pricesAnswer(c, http.StatusOK, u, a, func(vm *view.PricesVM) { vm.Saved = "Price added." })
}

func (h *Handler) deleteRoutePrice(c *gin.Context) {
	u, a, ok := h.loadApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	method, pattern := c.PostForm("method"), c.PostForm("pattern")
	now := h.Now()
	err := h.Store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteRoutePrice(ctx, u.ID, a.ID, method, pattern); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "price.deleted", "app", a.ID, map[string]any{"method": method, "pattern": pattern}))
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	h.pricesAnswer(c, http.StatusOK, u, a, func(vm *view.PricesVM) { vm.Saved = "Price deleted." })
}

func (h *Handler) updatePlan(c *gin.Context) {
	u, a, ok := h.loadApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	raw := view.PlanFormVM{
		Allowance: strings.TrimSpace(c.PostForm("monthly_allowance")),
		TopUpURL:  strings.TrimSpace(c.PostForm("top_up_url")),
	}
	errs := view.Errors{}
	if raw.Allowance == "" {
		raw.Allowance = "0"
	}
	allowance, ok := intIn(raw.Allowance, 0, store.MaxMonthlyAllowance)
	if !ok {
		errs["monthly_allowance"] = fmt.Sprintf("Enter a whole number of credits from 0 to %d.", int64(store.MaxMonthlyAllowance))
	}
	if raw.TopUpURL != "" {
		if msg := CheckUpstreamURL(raw.TopUpURL, h.DevMode); msg != "" {
			errs["top_up_url"] = msg
		}
	}
	if len(errs) > 0 {
		raw.Errors = errs
		h.pricesAnswer(c, unprocessable, u, a, func(vm *view.PricesVM) { vm.Plan = raw })
		return
	}
	plan := store.Plan{MonthlyAllowance: allowance, TopUpURL: raw.TopUpURL}
	now := h.Now()
	err := h.Store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.SetPlan(ctx, u.ID, a.ID, plan, now); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "plan.updated", "app", a.ID, map[string]any{
			"monthly_allowance": allowance, "top_up_url": raw.TopUpURL,
		}))
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	h.pricesAnswer(c, http.StatusOK, u, a, func(vm *view.PricesVM) { vm.Saved = "Plan saved." })
}
