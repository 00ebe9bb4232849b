package web

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBrandingDefaults: without options the pages are titled with the default name, the header
// shows /hub/logo, whose default SVG is drawn with the same name, and every page links a favicon
// that is served.
func TestBrandingDefaults(t *testing.T) {
	wh := newWebHub(t, false)
	c := wh.client(t)
	page := wh.do(t, c, "GET", "/hub/login", nil)
	for _, want := range []string{"<title>Sign in — CaddyHub</title>", `<link rel="icon" href="/hub/favicon.ico">`, `<img src="/hub/logo" alt="CaddyHub">`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	if strings.Contains(page.body, `class="announcement"`) {
		t.Error("login page shows an announcement nobody configured")
	}
	logo := wh.do(t, c, "GET", "/hub/logo", nil)
	if logo.status != http.StatusOK || logo.header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(logo.body, ">CaddyHub</text>") {
		t.Errorf("GET /hub/logo: %d %q %s", logo.status, logo.header.Get("Content-Type"), logo.body)
	}
	fav := wh.do(t, c, "GET", "/hub/favicon.ico", nil)
	if fav.status != http.StatusOK || fav.header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(fav.body, "<svg") {
		t.Errorf("GET /hub/favicon.ico: %d %q", fav.status, fav.header.Get("Content-Type"))
	}
}

// TestBranding: hub_title names the pages and the drawn logo (escaped); logo_file and
// favicon_file are served with their types; the announcement shows on every page, replaced by a
// page's own (announcement_home "" hides it on home), as plain text.
func TestBranding(t *testing.T) {
	dir := t.TempDir()
	png := []byte("\x89PNG\r\n\x1a\nfake")
	if err := os.WriteFile(filepath.Join(dir, "fav.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	empty, login := "", "Use your <b>campus</b> account"
	wh := newWebHub(t, false, func(a *testApp) {
		a.Branding = Branding{
			HubTitle: "Physics & Co", FaviconFile: filepath.Join(dir, "fav.png"),
			Announcement: "Maintenance Sunday", AnnouncementLogin: &login, AnnouncementHome: &empty,
		}
	})
	c := wh.client(t)
	page := wh.do(t, c, "GET", "/hub/login", nil)
	for _, want := range []string{"— Physics &amp; Co</title>", `alt="Physics &amp; Co"`, `<div class="announcement" role="note">Use your &lt;b&gt;campus&lt;/b&gt; account</div>`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	if logo := wh.do(t, c, "GET", "/hub/logo", nil); !strings.Contains(logo.body, ">Physics &amp; Co</text>") {
		t.Errorf("drawn logo lacks the escaped hub title: %s", logo.body)
	}
	if fav := wh.do(t, c, "GET", "/hub/favicon.ico", nil); fav.header.Get("Content-Type") != "image/png" || fav.body != string(png) {
		t.Errorf("favicon_file: %q %q", fav.header.Get("Content-Type"), fav.body)
	}
	wh.mustLogin(t, c, "alice")
	if home := wh.do(t, c, "GET", "/hub/home", nil); strings.Contains(home.body, `class="announcement"`) {
		t.Error(`announcement_home "" still shows a banner on home`)
	}
	if tok := wh.do(t, c, "GET", "/hub/token", nil); !strings.Contains(tok.body, `<div class="announcement" role="note">Maintenance Sunday</div>`) {
		t.Error("the general announcement is missing on the token page")
	}
}

// TestBrandingLogoFile: logo_file is served as /hub/logo; a missing file stops the start and a
// file of another kind is refused by Validate.
func TestBrandingLogoFile(t *testing.T) {
	dir := t.TempDir()
	svg := `<svg xmlns="http://www.w3.org/2000/svg"/>`
	if err := os.WriteFile(filepath.Join(dir, "logo.svg"), []byte(svg), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := loadBrandAssets(Branding{LogoFile: filepath.Join(dir, "logo.svg")})
	if err != nil || string(a.logo) != svg || a.logoType != "image/svg+xml" {
		t.Fatalf("loadBrandAssets: %v %q %q", err, a.logo, a.logoType)
	}
	if _, err := loadBrandAssets(Branding{LogoFile: filepath.Join(dir, "missing.png")}); err == nil || !strings.Contains(err.Error(), "logo_file") {
		t.Errorf("missing logo_file: %v, want an error naming logo_file", err)
	}
	if err := (&Branding{LogoFile: "/etc/passwd"}).Validate(); err == nil {
		t.Error("logo_file /etc/passwd passed validation")
	}
	if err := (&Branding{FaviconFile: "x.ico", LogoFile: "x.PNG"}).Validate(); err != nil {
		t.Errorf("valid branding refused: %v", err)
	}
}
