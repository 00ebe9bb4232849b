package web

import (
	"net/http"
	"testing"
)

// TestInfoCertificatesForAdminsOnly: /hub/api/info lists certificate state (issue #5) to admins, and
// not to a token that may read the hub but not administer users.
func TestInfoCertificatesForAdminsOnly(t *testing.T) {
	h := newAPIHub(t, nil)
	h.user("root", true)
	h.user("watcher", false)
	for _, c := range []struct {
		name  string
		token string
		want  bool
	}{
		{"admin", h.token("root"), true},
		{"read:hub only", h.token("root", "read:hub"), false},
	} {
		var info map[string]any
		if code := h.call("GET", "/hub/api/info", c.token, "", &info); code != http.StatusOK {
			t.Fatalf("%s: GET /hub/api/info = %d", c.name, code)
		}
		if _, got := info["certificates"]; got != c.want {
			t.Errorf("%s: certificates present = %v, want %v (%v)", c.name, got, c.want, info)
		}
	}
}
