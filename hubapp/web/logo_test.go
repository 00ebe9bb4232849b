package web

import (
	"net/http"
	"strings"
	"testing"
)

func TestLogo(t *testing.T) {
	h := newAPIHub(t, nil)
	rec := apiDo(t, h.Hub, "GET", "/hub/logo", "", "")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(rec.Body.String(), "<svg") {
		t.Fatalf("GET /hub/logo: %d %q %.40s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
}
