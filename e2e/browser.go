// Package e2e drives the real server with headless Chromium (through chromedp) and real
// OAuth client libraries. Screenshots land in e2e/screenshots/ for people to look at.
package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/authgpts/authgpts/handlers/handlertest"
)

// chromiumPath finds Debian's chromium (or another Chrome build on PATH).
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// NewBrowser starts headless Chromium for the test and returns a tab context. Without
// Chromium the test fails under CI=true and is skipped, with the reason printed, elsewhere.
// extra adds allocator options (e.g. a flag a test needs).
func NewBrowser(t *testing.T, width, height int, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed; `make test` installs it with apt-get when run as root")
		}
		t.Skip("skipping browser test: chromium is not installed (apt-get install chromium)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
		// This machine has no network beyond loopback: keep Chromium from dialling out.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
	}
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browserCtx, cancelCtx := chromedp.NewContext(allocCtx)
	// The first Do starts the browser, which lives as long as that call's context: no
	// timeout there. Steps after it run under a per-test time limit.
	// Headless windows have a minimum width of about 500 px, so phone widths are emulated
	// through the device metrics rather than the window size.
	viewport := chromedp.EmulateViewport(int64(width), int64(height))
	if width < 600 {
		viewport = chromedp.EmulateViewport(int64(width), int64(height), chromedp.EmulateMobile)
	}
	if err := chromedp.Do(browserCtx, viewport, chromedp.Navigate("about:blank")); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(browserCtx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// Screenshot saves a full-page PNG as e2e/screenshots/<name>.png.
func Screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := "screenshots"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ScreenshotSection saves the element matched by the CSS selector as
// e2e/screenshots/<name>.png (a section of a long page).
func ScreenshotSection(t *testing.T, ctx context.Context, css, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(css)))
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

// signInBrowser runs the email-code sign-in in the browser, reading the code from SMTP.
func signInBrowser(t *testing.T, ctx context.Context, env *handlertest.Env, email string) {
	t.Helper()
	signInBrowserAt(t, ctx, env, "/login", email)
}

// signInBrowserAt is signInBrowser from the sign-in page at path (for example
// /login?reauth=… when someone is signed in already).
func signInBrowserAt(t *testing.T, ctx context.Context, env *handlertest.Env, path, email string) {
	t.Helper()
	before := env.SMTP.Count(email)
	err := chromedp.Do(ctx,
		chromedp.Navigate(env.BaseURL+path),
		chromedp.WaitVisible(chromedp.CSS(`input[name="email"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), email),
		chromedp.Click(chromedp.CSS(`[data-testid="email-form"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name="code"]`)),
	)
	if err != nil {
		t.Fatalf("sign in: email step: %v", err)
	}
	code := env.SMTP.WaitFor(t, email, before).Code()
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name="code"]`), code),
		chromedp.Click(chromedp.CSS(`[data-testid="code-form"] button[type="submit"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`[data-testid="code-form"]`)),
	)
	if err != nil {
		t.Fatalf("sign in: code step: %v", err)
	}
}
