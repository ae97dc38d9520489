package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/chromedp/chromedp"

	"github.com/bedrock-gateway/gateway/internal/cli"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/browser"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

const viewerToken = "viewer-token-0123456789abcdef"

// consoleGateway starts a gateway with an admin token (name test) and a
// viewer token (name finance), and returns it with the console's origin and
// whether it has the daily usage API.
func consoleGateway(t *testing.T) (g *gateway, origin string, daily bool) {
	t.Helper()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	sum := sha256.Sum256([]byte(viewerToken))
	tokenFile := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokenFile, []byte("finance viewer sha256:"+hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g = startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: baseState + `
entitlements:
  - name: customer-support-llm
    model: ` + haiku + `
    scope: [o-testorg0001]
    limits: {monthly_tokens: 50000000, account_monthly_tokens: 10000000}
    shares: [{target: ou-ab12-dev00001}, {target: "444444444444", monthly_tokens: 2000000}]
`,
		args: []string{"--admin-token-file", tokenFile, "--prices-file", "../../deploy/examples/prices.yaml"}})
	// The daily chart needs the per-day usage API.
	return g, "http://" + g.OpsAddr(), g.admin(t, http.MethodGet, "/admin/v1/usage/daily", nil, nil) != http.StatusNotFound
}

// clearField empties the input the XPath names, as a user deleting its text
// would (an input event follows).
func clearField(xpath string) chromedp.Action[chromedp.Void] {
	js := fmt.Sprintf(`(() => {
		const e = document.evaluate(%q, document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
		if (!e) return false;
		e.value = '';
		e.dispatchEvent(new Event('input', {bubbles: true}));
		return true;
	})()`, xpath)
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		ok, err := chromedp.Evaluate[bool](js)(ctx, t)
		if err == nil && !ok {
			err = fmt.Errorf("no element at %s", xpath)
		}
		return err
	})
}

// TestConsoleInBrowser drives the console in headless Chromium through the
// product's whole flow: sign in, create an entitlement (the form shows the
// API's validation message by its field), share it by pasting a CSV with one
// bad row (the preview refuses that row), call the model with the Go SDK as
// the shared account, see the usage, revoke, see the call denied; then a
// viewer sees no change control and the API refuses a change anyway.
// Screenshots of each page are written as artifacts (BROWSER_ARTIFACTS).
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	br := browser.Start(t)
	g, origin, daily := consoleGateway(t)
	shots := browser.NewShots(t, filepath.Join("..", ".."))
	t.Logf("screenshots in %s", shots.Dir())
	ctx := br.Tab(t, 3*time.Minute)
	defer func() {
		for _, e := range br.Errors() {
			t.Errorf("the page reported: %s", e)
		}
	}()
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		stepCtx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := chromedp.Do(stepCtx, actions...); err != nil {
			png, _ := chromedp.Run(ctx, chromedp.CaptureScreenshot())
			_ = os.WriteFile(filepath.Join(shots.Dir(), "failure.png"), png, 0o644)
			t.Fatalf("%s: %v (screenshot: %s)", what, err, filepath.Join(shots.Dir(), "failure.png"))
		}
	}
	btn := func(text string) string { return `//button[normalize-space()="` + text + `"]` }
	input := func(label, tag string) string {
		return `//label[normalize-space()="` + label + `"]/following-sibling::` + tag
	}

	// Sign in: a wrong token first, then the admin token.
	run("sign-in page",
		chromedp.Navigate(origin+"/console/"),
		chromedp.WaitVisible(chromedp.CSS(`form.signin`)),
		shots.Take("signin"),
		chromedp.SendKeys(chromedp.CSS(`input[name=token]`), "not-a-token"),
		chromedp.Click(btn("Sign in")),
		chromedp.WaitVisible(`//p[contains(@class,"field-error")][normalize-space()!=""]`),
		clearField(`//input[@name="token"]`),
		chromedp.SendKeys(chromedp.CSS(`input[name=token]`), adminToken),
		chromedp.Click(btn("Sign in")),
		chromedp.WaitVisible(`//h1[normalize-space()="Entitlements"]`),
		chromedp.WaitVisible(`//tr[@data-key="customer-support-llm"]`),
		chromedp.WaitVisible(`//tr[@data-key="customer-support-llm"]//span[@class="gauge-text"]`),
		shots.Doc("entitlements"),
	)

	// Create: the API's own validation message lands by the field it is about.
	run("create entitlement",
		chromedp.Click(btn("Create managed entitlement")),
		chromedp.WaitVisible(`//dialog//h2[normalize-space()="Create managed entitlement"]`),
		chromedp.SendKeys(input("Name", "input"), "Team Chat"),
		chromedp.SendKeys(input("Upstream model", "input"), haiku),
		chromedp.SendKeys(input("Region (optional)", "input"), "US East"),
		chromedp.SendKeys(input("Monthly tokens, whole entitlement", "input"), "1000000"),
		chromedp.Click(btn("Create")),
		chromedp.WaitVisible(`//p[contains(@class,"field-error")][contains(.,"must be 1 to 63 lowercase letters")]`),
		clearField(input("Name", "input")),
		chromedp.SendKeys(input("Name", "input"), "team-chat"),
		chromedp.Click(btn("Create")),
		chromedp.WaitVisible(`//p[contains(@class,"field-error")][contains(.,"is not a region name")]`),
		shots.Doc("entitlement-form"),
		clearField(input("Region (optional)", "input")),
		chromedp.Click(btn("Create")),
		chromedp.WaitVisible(`//h1[starts-with(normalize-space(),"team-chat")]`),
	)

	// Share by CSV with one bad row: the preview refuses it, the rest is applied.
	run("share by CSV",
		chromedp.Click(btn("Share")),
		chromedp.WaitVisible(`//dialog//h2[normalize-space()="Share team-chat"]`),
		chromedp.Click(`//dialog//button[@class="twisty"][@aria-label="Platform"]`),
		shots.Take("share-tree"),
		chromedp.Click(`//button[@role="tab"][normalize-space()="Paste a CSV"]`),
		chromedp.SendKeys(`//dialog//textarea`, "account_id\n222222222222\n999999999999\n"),
		chromedp.Click(btn("Preview")),
		chromedp.WaitVisible(`//tr[@data-verdict="refused"][@data-target="999999999999"]`),
		chromedp.WaitVisible(`//tr[@data-verdict="accepted"][@data-target="222222222222"]`),
		chromedp.ScrollIntoView(`//dialog//button[starts-with(normalize-space(),"Share with")]`),
		shots.Doc("share-preview"),
		chromedp.Click(btn("Share with 1 accepted target")),
		chromedp.WaitVisible(`//tr[@data-key="222222222222"]`),
		shots.Take("entitlement"),
	)

	// The shared account calls the model through the gateway with the Go SDK.
	client := g.client(t, devAKID, devSecret)
	callCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := converse(callCtx, client, "team-chat", 64); err != nil {
		t.Fatalf("the shared account's call: %v", err)
	}
	if err := g.Limiter().Flush(callCtx); err != nil {
		t.Fatal(err)
	}

	// Usage shows it, by entitlement.
	var total string
	var chart bool
	run("usage",
		chromedp.Navigate(origin+"/console/#/usage?by=entitlement"),
		chromedp.WaitVisible(`//table[contains(@class,"data")]//th[normalize-space()="team-chat"]`),
		browser.Into(&total, chromedp.Text(chromedp.CSS(`#total-tokens`))),
		browser.Into(&chart, chromedp.Poll[bool](`document.querySelector('#daily-chart .uplot') !== null || document.querySelector('#daily-chart p.muted') !== null`)),
		browser.Into(&chart, chromedp.Evaluate[bool](`document.querySelector('#daily-chart .uplot') !== null`)),
		chromedp.ScrollIntoView(chromedp.CSS(`#daily-chart`)),
		shots.Doc("usage"),
	)
	// The CSV download is what `gateway usage -o csv` prints, byte for byte.
	var href, downloaded string
	run("usage CSV",
		browser.Into(&href, chromedp.Evaluate[string](`document.getElementById('csv-download').getAttribute('href')`)),
		browser.Into(&downloaded, chromedp.Evaluate[string](`fetch(document.getElementById('csv-download').href).then(r => r.text())`, chromedp.EvalAwaitPromise)))
	u, err := url.Parse(href)
	if err != nil {
		t.Fatal(err)
	}
	var cliOut, cliErr bytes.Buffer
	cliEnv := cli.Env{Stdout: &cliOut, Stderr: &cliErr, Getenv: func(k string) string {
		return map[string]string{"GATEWAY_ADMIN_TOKEN": adminToken, "GATEWAY_ADMIN_URL": "http://" + g.OpsAddr()}[k]
	}}
	if err := cli.Run(context.Background(), []string{"usage", "--month", u.Query().Get("month"), "--by", u.Query().Get("group_by"), "-o", "csv"}, cliEnv); err != nil {
		t.Fatalf("gateway usage: %v\n%s", err, cliErr.String())
	}
	if downloaded != cliOut.String() || !strings.Contains(downloaded, "team-chat") {
		t.Errorf("the console's CSV download:\n%s\ngateway usage -o csv:\n%s", downloaded, cliOut.String())
	}
	if total == "0" || total == "" {
		t.Errorf("usage total tokens = %q, want the call's tokens", total)
	}
	if daily && !chart {
		t.Errorf("no daily chart on the usage page")
	}

	// Revoke, with a confirmation; the page says when it is in force.
	run("revoke",
		chromedp.Navigate(origin+"/console/#/entitlements/team-chat"),
		chromedp.Click(`//tr[@data-key="222222222222"]//button[normalize-space()="Revoke"]`),
		chromedp.WaitVisible(`//dialog//h2[starts-with(normalize-space(),"Revoke team-chat")]`),
		shots.Take("revoke-confirm"),
		chromedp.Click(btn("Revoke share")),
		// Every replica's heartbeat (GET /admin/v1/replicas) serves the change.
		chromedp.WaitVisible(`//p[@id="inforce"][@data-inforce="all"]`),
		shots.Doc("revoked"),
	)
	_, err = converse(callCtx, client, "team-chat", 64)
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
		t.Fatalf("call after revoke: %v, want AccessDeniedException", err)
	}

	// Credentials: issue one; its secret is shown once with the SDK lines.
	var env string
	run("credentials",
		chromedp.Navigate(origin+"/console/#/credentials"),
		chromedp.Click(btn("Issue credential")),
		chromedp.SendKeys(input("Account", "input"), "333333333333"),
		chromedp.SendKeys(input("Label", "input"), "notebook"),
		chromedp.Click(btn("Issue")),
		chromedp.WaitVisible(chromedp.CSS(`#new-secret`)),
		browser.Into(&env, chromedp.Text(chromedp.CSS(`#new-env`))),
		shots.Doc("credential-issued"),
		chromedp.Click(btn("I have copied it")),
		chromedp.WaitVisible(`//td[normalize-space()="notebook"]`),
		shots.Take("credentials"),
	)
	if !strings.Contains(env, "AWS_SECRET_ACCESS_KEY=") || !strings.Contains(env, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME="+g.endpoint()) {
		t.Errorf("environment lines:\n%s\nwant the secret and the endpoint %s", env, g.endpoint())
	}

	run("organization and audit",
		chromedp.Navigate(origin+"/console/#/organization"),
		chromedp.WaitVisible(`//h1[normalize-space()="Organization"]`),
		chromedp.Click(`//button[@class="twisty"][@aria-label="Platform"]`),
		shots.Take("organization"),
		chromedp.Navigate(origin+"/console/#/audit?action=share.remove"),
		chromedp.WaitVisible(`//td[normalize-space()="entitlement/team-chat"]`),
		shots.Take("audit"),
		chromedp.Click(btn("Sign out")),
		chromedp.WaitVisible(chromedp.CSS(`form.signin`)),
	)

	// A viewer: no change control anywhere, and the API refuses a change.
	var controls, controls2, status int
	run("viewer",
		chromedp.SendKeys(chromedp.CSS(`input[name=token]`), viewerToken),
		chromedp.Click(btn("Sign in")),
		chromedp.WaitVisible(`//tr[@data-key="customer-support-llm"]`),
		shots.Take("viewer"),
		browser.Into(&controls, chromedp.Evaluate[int](`document.querySelectorAll('main button.primary, main button.danger').length`)),
		chromedp.Navigate(origin+"/console/#/entitlements/customer-support-llm"),
		chromedp.WaitVisible(`//h2[normalize-space()="Shares"]`),
		browser.Into(&controls2, chromedp.Evaluate[int](`document.querySelectorAll('main button.primary, main button.danger').length`)),
		browser.Into(&status, chromedp.Evaluate[int](`fetch('/console/api/session').then(r => r.json()).then(s => fetch('/admin/v1/entitlements/customer-support-llm/shares/444444444444', {method: 'DELETE', headers: {'X-CSRF-Token': s.csrf_token}})).then(r => r.status)`,
			chromedp.EvalAwaitPromise)),
	)
	if controls != 0 || controls2 != 0 {
		t.Errorf("a viewer sees %d change buttons on the list, %d on an entitlement", controls, controls2)
	}
	if status != http.StatusForbidden {
		t.Errorf("a viewer's DELETE through the session: status %v, want 403", status)
	}
	{
		req, _ := http.NewRequest(http.MethodDelete, "http://"+g.OpsAddr()+"/admin/v1/entitlements/customer-support-llm", nil)
		req.Header.Set("Authorization", "Bearer "+viewerToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("a viewer token's DELETE: status %d, want 403", resp.StatusCode)
		}
	}
}

// largeOrgState is an organization of 5,000 accounts in 100 OUs and 200
// capped entitlements, each shared with one OU.
func largeOrgState() string {
	var b strings.Builder
	b.WriteString("organization:\n  id: o-largeorg0001\n  root: r-ab12\n  hub_account: \"100000000000\"\n  units:\n")
	for i := range 100 {
		fmt.Fprintf(&b, "    - {id: ou-ab12-u%07d, name: unit-%03d}\n", i, i)
	}
	b.WriteString("  accounts:\n    - {id: \"100000000000\", name: hub}\n")
	for i := 1; i <= 5000; i++ {
		fmt.Fprintf(&b, "    - {id: \"%012d\", name: acct-%04d, unit: ou-ab12-u%07d, team: team-%02d}\n", 100000000000+i, i, i%100, i%20)
	}
	b.WriteString("entitlements:\n")
	for i := range 200 {
		fmt.Fprintf(&b, "  - {name: model-%03d, model: %s, scope: [o-largeorg0001], limits: {monthly_tokens: 1000000000}, shares: [{target: ou-ab12-u%07d}]}\n", i, haiku, i%100)
	}
	return b.String()
}

// TestConsoleLargeOrganization opens the pages of an organization of 5,000
// accounts and 200 entitlements and logs how long each took (measured, not
// asserted: this machine's load decides the numbers).
func TestConsoleLargeOrganization(t *testing.T) {
	t.Parallel()
	br := browser.Start(t)
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: largeOrgState()})
	origin := "http://" + g.OpsAddr()
	shots := browser.NewShots(t, filepath.Join("..", ".."))
	ctx := br.Tab(t, 3*time.Minute)
	defer func() {
		for _, e := range br.Errors() {
			t.Errorf("the page reported: %s", e)
		}
	}()
	timed := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		start := time.Now()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
	}
	timed("sign in",
		chromedp.Navigate(origin+"/console/"),
		chromedp.SendKeys(chromedp.CSS(`input[name=token]`), adminToken),
		chromedp.Click(`//button[normalize-space()="Sign in"]`),
		chromedp.WaitVisible(`//tr[@data-key="model-000"]`))
	var full bool
	timed("entitlements list, first page of 50 with their used %",
		chromedp.Navigate(origin+"/console/#/entitlements"),
		chromedp.WaitVisible(`//span[@class="count"][normalize-space()="200"]`),
		browser.Into(&full, chromedp.Poll[bool](`document.querySelectorAll('main .gauge').length === 50`)),
		shots.Take("large-entitlements"))
	timed("filter the list",
		chromedp.SendKeys(chromedp.CSS(`input.filter`), "model-19"),
		chromedp.WaitVisible(`//span[@class="count"][normalize-space()="10 of 200"]`))
	timed("an entitlement's page",
		chromedp.Navigate(origin+"/console/#/entitlements/model-042"),
		chromedp.WaitVisible(`//tr[@data-key="ou-ab12-u0000042"]`))
	timed("share dialog: search 5,000 accounts",
		chromedp.Click(`//button[normalize-space()="Share"]`),
		chromedp.SendKeys(chromedp.CSS(`dialog input[type=search]`), "acct-4999"),
		chromedp.WaitVisible(`//dialog//li[contains(@class,"account")]//code[normalize-space()="100000004999"]`),
		shots.Take("large-share-search"))
	timed("tick the account, preview, share",
		chromedp.Click(`//dialog//input[@data-target="100000004999"]`),
		chromedp.Click(`//button[normalize-space()="Preview"]`),
		chromedp.WaitVisible(`//tr[@data-verdict="accepted"][@data-target="100000004999"]`),
		chromedp.Click(`//button[normalize-space()="Share with 1 accepted target"]`),
		chromedp.WaitVisible(`//tr[@data-key="100000004999"]`))
	timed("organization page",
		chromedp.Navigate(origin+"/console/#/organization"),
		chromedp.WaitVisible(`//h1[normalize-space()="Organization"]`),
		chromedp.Click(`//button[@class="twisty"][@aria-label="unit-007"]`),
		chromedp.WaitVisible(`//code[normalize-space()="100000000007"]`))
}
