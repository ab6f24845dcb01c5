package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

// TestBrowser_Webhooks adds an endpoint in Chromium, reads its secret off the page once,
// sends test events (one refused by the receiver, one accepted) and opens the
// deliveries view, at desktop and phone widths.
func TestBrowser_Webhooks(t *testing.T) {
	for _, width := range []int{1280, 375} {
		t.Run(strconv.Itoa(width), func(t *testing.T) { webhooksJourney(t, width) })
	}
}

func webhooksJourney(t *testing.T, width int) {
	rc := handlertest.NewWebhookReceiver(t)
	env := handlertest.New(t, rc.Option())
	ctx := NewBrowser(t, width, 900)
	email := handlertest.UniqueEmail(t, "hooks")
	bg := context.Background()
	signInBrowser(t, ctx, env, email)
	owner, err := env.Store.UserByEmail(bg, email)
	if err != nil {
		t.Fatal(err)
	}
	app, _, err := env.Store.CreateApp(bg, store.NewApp{OwnerID: owner.ID, Name: "Weather API",
		Client: store.NewClient{ID: "agpt_" + strings.ReplaceAll(store.NewUUID(), "-", ""), Name: "GPT", Kind: store.ClientKindPublic}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	suffix := "-" + strconv.Itoa(width)
	appURL := env.BaseURL + "/dashboard/apps/" + app.Slug

	// A refused URL comes back next to its field (422), then a good one.
	err = chromedp.Do(ctx,
		chromedp.Navigate(appURL+"#webhooks-panel"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="webhook-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`#webhook-url`), "http://10.0.0.7/hooks"),
		chromedp.Click(chromedp.CSS(`#webhook-event-user\.connected`)),
		chromedp.Click(chromedp.CSS(`[data-testid="webhook-add"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#webhook_url-error, #webhook-url-error`)),
	)
	if err != nil {
		t.Fatalf("refused URL: %v", err)
	}
	err = chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#webhook-url").value = `+strconv.Quote(rc.URL)),
		chromedp.Click(chromedp.CSS(`#webhook-event-credits\.low`)),
		chromedp.Click(chromedp.CSS(`#webhook-event-user\.disconnected`)),
		chromedp.Click(chromedp.CSS(`[data-testid="webhook-add"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#webhook-secret`)),
	)
	if err != nil {
		t.Fatalf("add endpoint: %v", err)
	}
	secret, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#webhook-secret`)))
	if err != nil || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret on the page = %q, %v", secret, err)
	}
	elementShot(t, ctx, `#webhooks-panel`, "webhooks-1-added"+suffix)

	// A refused test event (500), then an accepted one.
	rc.SetStatus(http.StatusInternalServerError)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="webhook-test"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="webhook-notice"]`))); err != nil {
		t.Fatalf("send test event: %v", err)
	}
	first := rc.Wait(t)
	wh, _ := standardwebhooks.NewWebhook(secret)
	if err := wh.Verify(first.Body, first.Header); err != nil {
		t.Fatalf("the secret read off the page does not verify the test event: %v", err)
	}
	waitAttempts(t, env, 1)
	rc.SetStatus(http.StatusOK)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="webhook-test"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="webhook-notice"]`))); err != nil {
		t.Fatalf("send test event: %v", err)
	}
	rc.Wait(t)
	waitAttempts(t, env, 2)
	elementShot(t, ctx, `#webhooks-panel`, "webhooks-2-section"+suffix)

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid="webhook-deliveries-link"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="webhook-deliveries-page"]`)),
		chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("details").forEach(d => d.open = true)`),
	)
	if err != nil {
		t.Fatalf("deliveries page: %v", err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="delivery-attempt"]').length`))
	if err != nil || rows != 2 {
		t.Fatalf("attempts on the deliveries page = %d, %v; want 2", rows, err)
	}
	Screenshot(t, ctx, "webhooks-3-deliveries"+suffix)
	if overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)); err == nil && overflow {
		t.Errorf("the deliveries page scrolls sideways at %d px", width)
	}

	// Resend swaps the region and sends the event again.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="delivery-resend"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="deliveries-notice"]`))); err != nil {
		t.Fatalf("resend: %v", err)
	}
	rc.Wait(t)
}

func waitAttempts(t *testing.T, env *handlertest.Env, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got int
		if err := env.Store.DB().Get(&got, `SELECT count(*) FROM webhook_attempts`); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d webhook attempts recorded", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// elementShot saves a PNG of one element as e2e/screenshots/<name>.png.
func elementShot(t *testing.T, ctx context.Context, sel, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll("screenshots", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("screenshots", name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
