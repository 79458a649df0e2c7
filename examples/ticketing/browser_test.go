package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser returns a headless Chromium tab, closed when the test ends. It
// skips the test when no Chromium is installed, or fails it when
// ES_REQUIRE_BROWSER=1 (as in CI, which installs Debian's chromium).
func browser(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("ES_CHROMIUM")
	if path == "" {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		if os.Getenv("ES_REQUIRE_BROWSER") == "1" {
			t.Fatal("no Chromium found and ES_REQUIRE_BROWSER=1: install Debian's chromium package or set ES_CHROMIUM")
		}
		t.Skip("no Chromium found (set ES_CHROMIUM, or ES_REQUIRE_BROWSER=1 to fail)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.WindowSize(1280, 900))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser; no timeout on this first call
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTimeout)
	return ctx
}

// artifacts is where screenshots go: ES_ARTIFACTS if set (CI keeps
// .ci/artifacts), else a folder in the system's temporary directory.
func artifacts(t *testing.T) string {
	dir := os.Getenv("ES_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "ticketing-browser-test")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot saves the page as <name>.png among the artifacts.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(artifacts(t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Error(err)
		return
	}
	t.Logf("screenshot: %s", path)
}

// The session cookie (Secure, __Host-) works over http://127.0.0.1 in a
// real browser, as it does for someone trying the app on their machine.
func TestBrowserKeepsTheSessionOverLocalHTTP(t *testing.T) {
	ctx := browser(t)
	r := startServe(t, testOptions(t))
	if err := chromedp.Do(ctx, chromedp.Navigate(r.url+"/healthz")); err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/api/session", {method: "POST", headers: {"Content-Type": "application/json"},
		body: JSON.stringify({email: "ala@ticketing.example", password: "`+demoPassword+`"})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || status != 200 {
		t.Fatalf("log in from the page: %d, %v", status, err)
	}
	who, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch("/api/session").then(r => r.json()).then(v => v.email)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "session")
	if who != "ala@ticketing.example" {
		t.Fatalf("after logging in, the browser's session is %q", who)
	}
}
