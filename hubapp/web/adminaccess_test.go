package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestAdminAccess: with admin_access an admin may open another user's server through the OAuth
// flow (consent page, then a code), and each time the log says who opened whose server and when;
// without it the admin is refused (TestOAuthAuthorizeRefusals, "admin is refused without admin_access"), and
// the deprecated admin-access endpoint says so.
func TestAdminAccess(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	f := newOAuthFixtureWith(t, func(a *testApp) {
		a.AdminAccess = true
		a.logger = zap.New(core)
	})
	root, sess := login(t, f.h, "root")
	rec := browserDo(t, f.h, "GET", authorizeURL(nil), root, nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Authorize") {
		t.Fatalf("admin authorizing alice's server with admin_access: %d %.300s", rec.Code, rec.Body)
	}
	if n := logs.FilterMessage("admin opened another user's server").Len(); n != 0 {
		t.Fatalf("logged %d admin accesses before the admin consented", n)
	}
	if rec := browserDo(t, f.h, "POST", authorizeURL(nil), root, url.Values{}); rec.Code != http.StatusForbidden {
		t.Fatalf("consent POST without _xsrf: %d", rec.Code)
	}
	form := url.Values{"_xsrf": {f.h.xsrfToken(httptest.NewRequest("GET", "/", nil), sess)}}
	for i := range 2 {
		rec = browserDo(t, f.h, "POST", authorizeURL(nil), root, form)
		if rec.Code != http.StatusFound || !strings.Contains(rec.Header().Get("Location"), "code=") {
			t.Fatalf("consent POST: %d %q %.300s", rec.Code, rec.Header().Get("Location"), rec.Body)
		}
		got := logs.FilterMessage("admin opened another user's server").All()
		if len(got) != i+1 {
			t.Fatalf("after %d openings, %d log lines", i+1, len(got))
		}
		m := got[i].ContextMap()
		if got[i].Level != zap.InfoLevel || m["admin"] != "root" || m["user"] != "alice" || m["server"] != "" || m["at"] == nil {
			t.Fatalf("log line %v %v", got[i].Level, m)
		}
	}
	// The owner opening her own server is not an admin access.
	f.authorize(t, nil)
	if n := logs.FilterMessage("admin opened another user's server").Len(); n != 2 {
		t.Fatalf("alice opening her own server logged an admin access (%d lines)", n)
	}
	// The deprecated endpoint follows the option.
	tok := userToken(t, f.h, "root")
	if rec := apiDo(t, f.h, "POST", "/hub/api/users/alice/admin-access", tok, ""); rec.Code != http.StatusOK {
		t.Fatalf("admin-access with admin_access on: %d %s", rec.Code, rec.Body)
	}
	off := newOAuthFixture(t)
	if rec := apiDo(t, off.h, "POST", "/hub/api/users/alice/admin-access", userToken(t, off.h, "root"), ""); rec.Code != http.StatusForbidden {
		t.Fatalf("admin-access with admin_access off: %d %s", rec.Code, rec.Body)
	}
}
