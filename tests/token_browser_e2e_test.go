package tests

// The token page in headless Chromium against the real binary: alice requests a token narrowed to
// one scope from the page's checklist and it appears in the list without a reload, as the server
// lists it; an HTTP client uses it (an allowed call and refused ones), she revokes it and the table
// gives way to "No API tokens" without a reload; the token no longer works. The page is checked for
// horizontal overflow at 1280×800 and 390×844.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestBrowserTokenPageE2E(t *testing.T) {
	chromium := Require(t, "chromium")
	dir := t.TempDir()
	shots := screenshotDir(t)
	public, hubAPI, proxyAPI := FreePort(t), FreePort(t), FreePort(t)
	// No server is started here: the spawner's command is never run. The hub is branded: its name
	// and an announcement (branding: the header's logo, the title, the banner).
	cf := strings.Replace(browserCaddyfile(dir, public, hubAPI, proxyAPI, "/bin/false", ""), "cleanup_servers",
		"cleanup_servers\n\t\thub_title \"Physics Hub\"\n\t\tannouncement \"Maintenance on Sunday from 10:00 to 12:00: save your work\"", 1)
	Start(t, dir, cf)
	base := URL(public, "")

	ctx := newChromium(t, chromium)
	step := browserStep(t, ctx, shots, "token-failure", nil)
	// Evaluated again and again rather than chromedp.Poll, which fails when the page navigates.
	waitFor := browserWaitFor(t, ctx, shots, "token-failure")
	poll := func(what, cond string) {
		t.Helper()
		waitFor(what, cond, false, 30*time.Second)
	}
	step("log in",
		chromedp.Navigate(base+"/hub/login?next=%2Fhub%2Ftoken"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), browserPassword),
		chromedp.Click(chromedp.CSS(`form[action*="/hub/login"] button[type="submit"]`)),
	)
	poll("the token page", `location.pathname === "/hub/token" && document.readyState === "complete"`)
	empty, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.querySelector("#api-tokens .empty").hidden && document.querySelector("#api-tokens table").hidden`))
	if !empty {
		t.Error(`the token page of a user without tokens does not say "No API tokens"`)
	}
	branded, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.title === "Tokens — Physics Hub" &&
		document.querySelector('header img[src="/hub/logo"][alt="Physics Hub"]').naturalWidth > 0 &&
		document.querySelector(".announcement").textContent.startsWith("Maintenance on Sunday") &&
		document.querySelector('link[rel="icon"]').href.endsWith("/hub/favicon.ico")`))
	if !branded {
		t.Error("the token page does not show the hub's title, logo, favicon link and announcement")
	}
	checkLayout(t, ctx, shots, "token-page")

	const narrow = "read:users!user=alice"
	step("mark the document", chromedp.Evaluate[chromedp.Void](`window.e2eSame = true`))
	step("request a token narrowed to "+narrow,
		chromedp.SendKeys(chromedp.ID("token-note"), "narrow e2e"),
		chromedp.Click(chromedp.CSS(`#token-scopes input[value="`+narrow+`"]`)),
		chromedp.Click(chromedp.CSS(`#new-token button[type="submit"]`)),
	)
	poll("the new token shown", `document.getElementById("token-value").textContent.length > 0 || !document.getElementById("token-error").hidden`)
	token, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("token-value")))
	if err != nil || token == "" {
		msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("token-error")))
		t.Fatalf("no token shown (%v): %s", err, msg)
	}
	// The new token is in the list at once, without a reload.
	rowCells := `[...document.querySelectorAll("#api-tokens tbody tr td[data-label]")].map(td => td.dataset.label + "=" + td.textContent)`
	poll("the new token listed without a reload", `window.e2eSame === true && !document.querySelector("#api-tokens table").hidden &&
		document.querySelector("#api-tokens .empty").hidden && document.querySelectorAll("#api-tokens tbody tr").length === 1 &&
		document.querySelector("#api-tokens tbody tr").textContent.includes("narrow e2e") &&
		document.querySelector("#api-tokens tbody tr").textContent.includes("`+narrow+`")`)
	added, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](rowCells))
	if err != nil {
		t.Fatal(err)
	}
	checkLayout(t, ctx, shots, "token-created")

	// The HTTP client: the narrowed token reads alice's model, and nothing more.
	if st, b := GetJSON(t, base+"/hub/api/users/alice", token); st != http.StatusOK || !strings.Contains(string(b), `"name":"alice"`) {
		t.Errorf("GET /hub/api/users/alice with the narrowed token: %d %s, want 200", st, b)
	}
	if st, b := GetJSON(t, base+"/hub/api/users/alice/tokens", token); st != http.StatusForbidden {
		t.Errorf("GET alice's tokens with a token without read:tokens: %d %s, want 403", st, b)
	}
	if st, b := Do(t, "POST", base+"/hub/api/users/alice/server", token, nil); st != http.StatusForbidden {
		t.Errorf("POST alice's server with a token without servers: %d %s, want 403", st, b)
	}

	step("reload the token page", chromedp.Navigate(base+"/hub/token"))
	poll("the token listed", `document.querySelectorAll("#api-tokens tbody tr").length === 1 && document.querySelector("#api-tokens tbody tr").textContent.includes("`+narrow+`")`)
	checkLayout(t, ctx, shots, "token-listed")
	// The row the page added says what the server's own row says (but "Last used": the HTTP
	// client has used the token since).
	listed, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](rowCells))
	if err != nil {
		t.Fatal(err)
	}
	withoutLastUsed := func(cells []string) string {
		var keep []string
		for _, c := range cells {
			if !strings.HasPrefix(c, "Last used=") {
				keep = append(keep, c)
			}
		}
		return strings.Join(keep, " | ")
	}
	if a, l := withoutLastUsed(added), withoutLastUsed(listed); a != l || len(added) != 5 {
		t.Errorf("the row added without a reload\n %s\ndiffers from the server's\n %s", a, l)
	}
	step("mark the reloaded document", chromedp.Evaluate[chromedp.Void](`window.e2eSame = true`))
	step("revoke", chromedp.Click(chromedp.CSS(`#api-tokens button[data-revoke]`)))
	poll(`"No API tokens" after the revoke, without a reload`, `window.e2eSame === true && document.querySelector("#api-tokens table").hidden && !document.querySelector("#api-tokens .empty").hidden`)
	checkLayout(t, ctx, shots, "token-revoked")
	if st, _ := GetJSON(t, base+"/hub/api/users/alice", token); st != http.StatusForbidden {
		t.Errorf("GET /hub/api/users/alice with the revoked token: %d, want 403", st)
	}
}
