package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"esgo.dev/es"
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

// screenshot saves the page as <name>.png among the artifacts. A page
// still loading has no size yet: it waits for the load and tries again.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var (
		png []byte
		err error
	)
	for range 50 {
		var ready bool
		if ready, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.readyState === "complete"`)); err == nil && ready {
			if png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil { // 100: PNG; below, JPEG
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
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

// The purchase a workshop attendee clicks through: register, log in, put
// two standing tickets of the demo concert into the cart, check out with
// e-mail delivery, watch the order complete, see the tickets with their QR
// codes, and, as the admin, open the purchase's timeline in the event
// explorer.
func TestBrowserBuysATicketAndFollowsItInTheExplorer(t *testing.T) {
	ctx := browser(t)
	r := startServe(t, testOptions(t))
	email := "fan-" + es.NewID()[28:] + "@example.com"
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			screenshot(t, ctx, "failed-"+name)
			t.Fatalf("%s: %v", name, err)
		}
	}
	// until evaluates js every 50 ms until it is true. An evaluation can
	// fail while the page navigates (a form's script moves on); that is
	// waited out too.
	until := func(name, js string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				screenshot(t, ctx, "failed-"+name)
				t.Fatalf("%s: waiting for %s: last %v, %v", name, js, ok, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	step("register",
		chromedp.Navigate(r.url+"/register"),
		chromedp.WaitVisible(chromedp.ID("register-form")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("name"), "Fan"),
		chromedp.SendKeys(chromedp.ID("password"), "correct horse battery"),
		chromedp.Click(chromedp.CSS("#register-form button[type=submit]")))
	// Registering logs in; log out and in again, as the path goes.
	until("registered", `document.querySelector("#viewer-name") !== null`)
	screenshot(t, ctx, "1-registered")
	step("log out", chromedp.Click(chromedp.ID("logout")))
	until("logged out", `document.querySelector("#nav-login") !== null`)
	step("log in",
		chromedp.Navigate(r.url+"/login"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), "correct horse battery"),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	until("logged in", `document.querySelector("#viewer-name") !== null`)

	step("choose a concert",
		chromedp.Navigate(r.url+"/"),
		chromedp.Click(chromedp.CSS(`a[data-concert-id="summer-night"]`)),
		chromedp.WaitVisible(chromedp.ID("add-to-cart-standing")),
		chromedp.SetValue(chromedp.ID("quantity-standing"), "2"),
		chromedp.Click(chromedp.CSS("#add-to-cart-standing button[type=submit]")))
	until("added to the cart", `/Added/.test(document.querySelector("#status").textContent)`)
	screenshot(t, ctx, "2-concert")

	step("check out",
		chromedp.Navigate(r.url+"/cart"),
		chromedp.WaitVisible(chromedp.ID("cart-lines")),
		chromedp.Click(chromedp.ID("delivery-email")),
		chromedp.SetValue(chromedp.ID("delivery-address"), email))
	screenshot(t, ctx, "3-cart")
	step("pay", chromedp.Click(chromedp.ID("checkout")))
	until("order page", `location.pathname.startsWith("/orders/")`)
	until("order completed", `(document.querySelector("#order-status")?.textContent ?? "").trim() === "completed"`)
	screenshot(t, ctx, "4-order-completed")
	orderURL, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}

	// The tickets' read model follows the order: reload until it has them,
	// as a person would.
	reloadUntil := func(name, url, js string) {
		t.Helper()
		for i := 0; ; i++ {
			step(name, chromedp.Navigate(url))
			if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js)); err == nil && ok {
				return
			}
			if i == 300 {
				screenshot(t, ctx, "failed-"+name)
				t.Fatalf("%s: %s never held at %s", name, js, url)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	reloadUntil("tickets", r.url+"/tickets", `document.querySelectorAll("#tickets > li img.qr").length === 2`)
	screenshot(t, ctx, "5-tickets")

	// The explorer is the admin's: the events hold password hashes.
	step("log in as the admin",
		chromedp.Click(chromedp.ID("logout")))
	until("logged out again", `document.querySelector("#nav-login") !== null`)
	step("admin log-in",
		chromedp.Navigate(r.url+"/login"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("email"), "admin@ticketing.example"),
		chromedp.SendKeys(chromedp.ID("password"), demoPassword),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	until("admin logged in", `document.querySelector("#viewer-name") !== null`)
	orderID := orderURL[strings.LastIndexByte(orderURL, '/')+1:]
	step("explorer search",
		chromedp.Navigate(r.url+"/explorer"),
		chromedp.WaitVisible(chromedp.ID("explorer-q")),
		chromedp.SendKeys(chromedp.ID("explorer-q"), orderID),
		chromedp.Click(chromedp.ID("explorer-search-go")))
	until("timeline page", `document.querySelector("#timeline") !== null`)
	timelineURL, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	// The purchase's timeline reaches every module it went through (the
	// explorer's read model may be a moment behind: reload).
	reloadUntil("timeline", timelineURL, `(() => {
		const types = [...document.querySelectorAll("#timeline li[data-type]")].map(li => li.dataset.type);
		return ["orders.", "reservations.", "finance.", "tickets."].every(m => types.some(t => t.startsWith(m)));
	})()`)
	screenshot(t, ctx, "6-explorer-timeline")
}
