// Package browser starts headless Chromium for end-to-end tests of the web
// console, driven over the DevTools protocol with chromedp, and collects
// what the page reports as broken (uncaught exceptions, console errors, CSP
// violations) so a test can fail on them. Without Chromium the test is
// skipped, or fails under CI=true (prereq).
package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/bedrock-gateway/gateway/internal/testutil/prereq"
)

// Path returns Chromium's path: $CHROMIUM, else chromium or chromium-browser on PATH.
func Path(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	prereq.Unavailable(tb, "chromium not found on PATH; install it (apt-get install chromium) or set CHROMIUM to run the browser tests")
	return ""
}

// Browser is one headless Chromium with a fresh profile.
type Browser struct {
	alloc  context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	errs   []string
}

// Start launches Chromium; it is closed when the test ends. The network is
// closed here, so everything that could reach out is off.
func Start(tb testing.TB) *Browser {
	tb.Helper()
	path := Path(tb)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &Browser{alloc: alloc, cancel: cancel}
	tb.Cleanup(cancel)
	return b
}

// Tab opens a page context bounded by timeout; its errors are recorded.
func (b *Browser) Tab(tb testing.TB, timeout time.Duration) context.Context {
	tb.Helper()
	ctx, cancel := chromedp.NewContext(b.alloc, chromedp.WithErrorf(tb.Logf))
	tb.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		prereq.Unavailable(tb, "starting chromium: "+err.Error())
	}
	// The listener runs in the tab's read loop: it only records.
	err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			b.record(fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
				}
				b.record("console.error: " + strings.Join(parts, " "))
			}
		}
	})
	if err != nil {
		tb.Fatalf("listening to the page: %v", err)
	}
	ctx, cancelT := context.WithTimeout(ctx, timeout)
	tb.Cleanup(cancelT)
	return ctx
}

func (b *Browser) record(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs = append(b.errs, s)
}

// Errors returns what the pages reported as broken so far.
func (b *Browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// Shots writes screenshots into a directory: $BROWSER_ARTIFACTS/<test name>
// when set (CI keeps it), else a temporary one; with UPDATE_SCREENSHOTS=1
// those taken with Doc are also copied into the repository's
// docs/screenshots (for the README).
type Shots struct {
	dir, docs string
}

// NewShots prepares the directories; repoRoot is the repository's root.
func NewShots(tb testing.TB, repoRoot string) *Shots {
	tb.Helper()
	dir := tb.TempDir()
	if base := os.Getenv("BROWSER_ARTIFACTS"); base != "" {
		dir = filepath.Join(base, strings.ReplaceAll(tb.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	s := &Shots{dir: dir}
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		s.docs = filepath.Join(repoRoot, "docs", "screenshots")
		if err := os.MkdirAll(s.docs, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

// Take returns an action saving the viewport as name.png in the artifacts.
func (s *Shots) Take(name string) chromedp.Action[chromedp.Void] { return s.take(name, false) }

// Doc is Take for the screenshots the README shows: with
// UPDATE_SCREENSHOTS=1 they are also written to docs/screenshots.
func (s *Shots) Doc(name string) chromedp.Action[chromedp.Void] { return s.take(name, true) }

func (s *Shots) take(name string, doc bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		png, err := chromedp.CaptureScreenshot()(ctx, t)
		if err != nil {
			return fmt.Errorf("screenshot %s: %w", name, err)
		}
		for _, d := range []string{s.dir, s.docs} {
			if d == "" || (d == s.docs && !doc) {
				continue
			}
			if err := os.WriteFile(filepath.Join(d, name+".png"), png, 0o644); err != nil {
				return fmt.Errorf("writing screenshot %s: %w", name, err)
			}
		}
		return nil
	})
}

// Into runs a in a sequence of steps, storing its value in dst.
func Into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		v, err := a(ctx, t)
		*dst = v
		return err
	})
}

// Dir is where this run's screenshots are.
func (s *Shots) Dir() string { return s.dir }
