package portal

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/webhook"
	view "github.com/authgpts/authgpts/views/portal"
)

// Webhooks is what the webhooks section needs beyond the store.
type Webhooks struct {
	Key    []byte         // oauth.DerivedKeys.WebhookSecrets: seals signing secrets
	Policy webhook.Policy // where endpoints may point
}

const (
	maxEndpointsPerApp = 20
	attemptsShown      = 100
)

var eventHints = map[string]string{
	store.EventUserConnected:       "A user connected (a grant was created).",
	store.EventUserDisconnected:    "A grant was revoked by the user, you or an admin.",
	store.EventUserDeleted:         "A connected user deleted their account.",
	store.EventCreditsLow:          "A balance fell below the threshold below.",
	store.EventCreditsExhausted:    "A balance can no longer pay for a call.",
	store.EventConnectionLinked:    "A user linked a third-party account.",
	store.EventConnectionRevoked:   "A linked account was disconnected.",
	store.EventClientSecretRotated: "A client secret of this app was rotated.",
}

// WebhookURL is the deliveries page of an endpoint.
func WebhookURL(slug, endpointID string) string { return AppURL(slug) + "/webhooks/" + endpointID }

func (h *Handler) webhooksPanelVM(ctx context.Context, a store.App) (view.WebhooksPanelVM, error) {
	eps, err := h.Store.WebhookEndpoints(ctx, a.ID)
	if err != nil {
		return view.WebhooksPanelVM{}, err
	}
	threshold, err := h.Store.CreditsLowThreshold(ctx, a.ID)
	if err != nil {
		return view.WebhooksPanelVM{}, err
	}
	vm := view.WebhooksPanelVM{AppURL: AppURL(a.Slug), Threshold: view.ThresholdFormVM{Value: strconv.FormatInt(threshold, 10)}}
	for _, e := range eps {
		vm.Endpoints = append(vm.Endpoints, endpointRow(a, e))
	}
	for _, t := range store.WebhookEventTypes {
		vm.EventTypes = append(vm.EventTypes, view.WebhookEventOption{Value: t, Label: t, Hint: eventHints[t]})
	}
	return vm, nil
}

func endpointRow(a store.App, e store.WebhookEndpoint) view.WebhookEndpointRow {
	return view.WebhookEndpointRow{ID: e.ID, URL: e.URL, Events: e.Events, SecretHint: e.SecretHint,
		PreviousUntil: e.PreviousUntil, CreatedAt: e.CreatedAt, FailingSince: e.FailingSince,
		DisabledAt: e.DisabledAt, DisabledReason: e.DisabledReason, DeliveriesURL: WebhookURL(a.Slug, e.ID)}
}

// webhooksPanel answers with the section, after edit adjusted its view model.
func (h *Handler) webhooksPanel(c *gin.Context, status int, u store.User, a store.App, edit func(*view.WebhooksPanelVM)) {
	vm, err := h.webhooksPanelVM(c.Request.Context(), a)
	if err != nil {
		web.Fail(c, err)
		return
	}
	if edit != nil {
		edit(&vm)
	}
	h.region(c, status, u, AppURL(a.Slug), view.WebhooksPanel(vm))
}

// createWebhookEndpoint adds an endpoint and shows its signing secret once. An invalid,
// non-https or private-address URL, or no event, is a field error (422).
func (h *Handler) createWebhookEndpoint(c *gin.Context) {
	u, a, ok := h.loadApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	form := view.WebhookFormVM{URL: strings.TrimSpace(c.PostForm("webhook_url")), Errors: view.Errors{}}
	for _, e := range c.PostFormArray("events") {
		if slices.Contains(store.WebhookEventTypes, e) && !slices.Contains(form.Events, e) {
			form.Events = append(form.Events, e)
		}
	}
	if err := h.Webhooks.Policy.CheckURL(ctx, form.URL); err != nil {
		form.Errors["webhook_url"] = err.Error()
	}
	if len(form.Events) == 0 {
		form.Errors["events"] = "Choose at least one event."
	}
	if len(form.Errors) == 0 {
		if eps, err := h.Store.WebhookEndpoints(ctx, a.ID); err != nil {
			web.Fail(c, err)
			return
		} else if len(eps) >= maxEndpointsPerApp {
			form.Errors["webhook_url"] = "An app has at most " + strconv.Itoa(maxEndpointsPerApp) + " endpoints. Delete one first."
		}
	}
	if len(form.Errors) > 0 {
		h.webhooksPanel(c, unprocessable, u, a, func(vm *view.WebhooksPanelVM) { vm.Form = form })
		return
	}
	id := store.NewUUID()
	secret := webhook.NewSecret()
	sealed, err := webhook.Seal(h.Webhooks.Key, id, secret)
	if err != nil {
		web.Fail(c, err)
		return
	}
	now := h.Now()
	err = h.Store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateWebhookEndpoint(ctx, a.ID, store.NewWebhookEndpoint{ID: id, URL: form.URL, Events: form.Events,
			SecretSealed: sealed, SecretHint: webhook.SecretHint(secret)}, now); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "webhook.endpoint_created", "app", a.ID,
			map[string]any{"endpoint_id": id, "url": form.URL, "events": form.Events}))
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	noStore(c)
	h.webhooksPanel(c, http.StatusOK, u, a, func(vm *view.WebhooksPanelVM) {
		vm.NewSecret, vm.NewSecretEndpoint = secret, id
		vm.Notice = "Endpoint added. Send a test event to check it."
	})
}

// loadEndpoint is loadApp plus the app's endpoint named by :endpoint (404 otherwise).
func (h *Handler) loadEndpoint(c *gin.Context) (store.User, store.App, store.WebhookEndpoint, bool) {
	u, a, ok := h.loadApp(c)
	if !ok {
		return u, a, store.WebhookEndpoint{}, false
	}
	e, err := h.Store.WebhookEndpoint(c.Request.Context(), a.ID, c.Param("endpoint"))
	if err != nil {
		web.Fail(c, err)
		return u, a, e, false
	}
	return u, a, e, true
}

// rotateWebhookSecret makes a new signing secret, shown once; the old one keeps signing
// (a second signature) for 24 hours.
func (h *Handler) rotateWebhookSecret(c *gin.Context) {
	u, a, e, ok := h.loadEndpoint(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	secret := webhook.NewSecret()
	sealed, err := webhook.Seal(h.Webhooks.Key, e.ID, secret)
	if err != nil {
		web.Fail(c, err)
		return
	}
	now := h.Now()
	err = h.Store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.RotateWebhookSecret(ctx, a.ID, e.ID, sealed, webhook.SecretHint(secret), now.Add(webhook.RotationOverlap), now); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "webhook.secret_rotated", "app", a.ID, map[string]any{"endpoint_id": e.ID}))
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	noStore(c)
	h.webhooksPanel(c, http.StatusOK, u, a, func(vm *view.WebhooksPanelVM) {
		vm.NewSecret, vm.NewSecretEndpoint = secret, e.ID
		vm.Notice = "New secret made. Requests carry both signatures for 24 hours: switch your receiver to the new secret within that time."
	})
}

func (h *Handler) sendTestWebhook(c *gin.Context) {
	u, a, e, ok := h.loadEndpoint(c)
	if !ok {
		return
	}
	if err := h.Store.SendTestWebhook(c.Request.Context(), a.ID, e.ID, h.Now()); err != nil {
		web.Fail(c, err)
		return
	}
	h.webhooksPanel(c, http.StatusOK, u, a, func(vm *view.WebhooksPanelVM) {
		vm.Notice = "A webhook.test event is on its way to " + e.URL + ". See Deliveries for the answer."
	})
}

func (h *Handler) enableWebhookEndpoint(c *gin.Context) {
	u, a, e, ok := h.loadEndpoint(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	now := h.Now()
	err := h.Store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.EnableWebhookEndpoint(ctx, a.ID, e.ID, now); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "webhook.endpoint_enabled", "app", a.ID, map[string]any{"endpoint_id": e.ID}))
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	h.webhooksPanel(c, http.StatusOK, u, a, func(vm *view.WebhooksPanelVM) {
		vm.Notice = "Endpoint enabled: its waiting deliveries are retried now."
	})
}

func (h *Handler) deleteWebhookEndpoint(c *gin.Context) {
	u, a, e, ok := h.loadEndpoint(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	now := h.Now()
	err := h.Store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteWebhookEndpoint(ctx, a.ID, e.ID); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "webhook.endpoint_deleted", "app", a.ID, map[string]any{"endpoint_id": e.ID, "url": e.URL}))
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	h.webhooksPanel(c, http.StatusOK, u, a, func(vm *view.WebhooksPanelVM) { vm.Notice = "Endpoint deleted." })
}

// updateCreditsLowThreshold saves the credits.low threshold (a whole number ≥ 0).
func (h *Handler) updateCreditsLowThreshold(c *gin.Context) {
	u, a, ok := h.loadApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	raw := strings.TrimSpace(c.PostForm("credits_low_threshold"))
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 || n > 1_000_000_000_000 {
		h.webhooksPanel(c, unprocessable, u, a, func(vm *view.WebhooksPanelVM) {
			vm.Threshold = view.ThresholdFormVM{Value: raw, Error: "Enter a whole number of credits, 0 or more."}
		})
		return
	}
	ctx := c.Request.Context()
	now := h.Now()
	err = h.Store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.SetCreditsLowThreshold(ctx, a.ID, n); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "webhook.credits_low_threshold", "app", a.ID, map[string]any{"threshold": n}))
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	h.webhooksPanel(c, http.StatusOK, u, a, func(vm *view.WebhooksPanelVM) { vm.Threshold.Saved = true })
}

func (h *Handler) deliveriesVM(ctx context.Context, a store.App, e store.WebhookEndpoint) (view.WebhookDeliveriesVM, error) {
	attempts, err := h.Store.WebhookAttempts(ctx, e.ID, attemptsShown, webhook.MaxBodyShown)
	if err != nil {
		return view.WebhookDeliveriesVM{}, err
	}
	queued, err := h.Store.QueuedWebhooks(ctx, e.ID, 20)
	if err != nil {
		return view.WebhookDeliveriesVM{}, err
	}
	url := WebhookURL(a.Slug, e.ID)
	vm := view.WebhookDeliveriesVM{URL: url, Limited: len(attempts) >= attemptsShown}
	for _, q := range queued {
		vm.Queued = append(vm.Queued, view.QueuedDeliveryRow{EventID: q.EventID, EventType: q.EventType, NextAttemptAt: q.NextAttemptAt, Attempts: q.Attempts})
	}
	for _, t := range attempts {
		row := view.DeliveryAttemptRow{ID: t.ID, DeliveryID: t.DeliveryID, EventID: t.EventID, EventType: t.EventType,
			At: t.At, Attempt: t.Attempt, Error: t.Error, LatencyMS: t.LatencyMS, NextRetryAt: t.NextRetryAt, State: t.State,
			RequestBody: t.RequestBody, ResponseBody: t.ResponseBody, ResendURL: url + "/deliveries/" + t.DeliveryID + "/resend"}
		if t.StatusCode != nil {
			row.StatusCode = *t.StatusCode
		}
		vm.Rows = append(vm.Rows, row)
	}
	return vm, nil
}

// webhookDeliveriesPage lists an endpoint's attempts; htmx's Refresh takes the region.
func (h *Handler) webhookDeliveriesPage(c *gin.Context) {
	u, a, e, ok := h.loadEndpoint(c)
	if !ok {
		return
	}
	list, err := h.deliveriesVM(c.Request.Context(), a, e)
	if err != nil {
		web.Fail(c, err)
		return
	}
	web.Render(c, http.StatusOK, view.WebhookDeliveriesPage(view.WebhookDeliveriesPageVM{
		Chrome: chrome(u, a.Name), AppName: a.Name, AppURL: AppURL(a.Slug), Endpoint: endpointRow(a, e), List: list,
	}))
}

// resendWebhook queues a delivery of the endpoint for an attempt now.
func (h *Handler) resendWebhook(c *gin.Context) {
	u, a, e, ok := h.loadEndpoint(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	err := h.Store.ResendWebhookDelivery(ctx, a.ID, e.ID, c.Param("delivery"), h.Now())
	if errors.Is(err, store.ErrNotFound) {
		web.NotFound(c)
		return
	}
	if err != nil {
		web.Fail(c, err)
		return
	}
	list, err := h.deliveriesVM(ctx, a, e)
	if err != nil {
		web.Fail(c, err)
		return
	}
	list.Notice = "Queued: the event is sent again now."
	h.region(c, http.StatusOK, u, WebhookURL(a.Slug, e.ID), view.WebhookDeliveries(list))
}
