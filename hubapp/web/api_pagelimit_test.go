package web

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// TestAPIPageLimits: api_page_max_limit raised lets one call list every user (what clients that
// list all users in one call depend on); api_page_default_limit sets a paginating client's page.
func TestAPIPageLimits(t *testing.T) {
	h := newAPIHub(t, func(a *testApp) {
		a.APIPageMaxLimit = 1000
		a.APIPageDefaultLimit = 20
	})
	h.user("admin", true)
	err := h.store.Update(func(tx *store.Txn) error {
		for i := range 300 {
			if err := tx.CreateUser(&store.User{Name: fmt.Sprintf("u%03d", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	admin := h.token("admin")
	var list []map[string]any
	if code := h.call("GET", "/hub/api/users?limit=1000", admin, "", &list); code != 200 || len(list) != 301 {
		t.Fatalf("one call with limit=1000: %d, %d users, want all 301", code, len(list))
	}
	if code := h.call("GET", "/hub/api/users", admin, "", &list); code != 200 || len(list) != 301 {
		t.Fatalf("legacy call without limit: %d, %d users, want all 301 (the maximum)", code, len(list))
	}
	rec := h.do(apiCall{method: "GET", path: "/hub/api/users", token: admin,
		header: map[string]string{"Accept": "application/jupyterhub-pagination+json"}})
	var page struct {
		Items      []any                      `json:"items"`
		Pagination struct{ Limit, Total int } `json:"_pagination"`
	}
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &page) != nil || len(page.Items) != 20 || page.Pagination.Limit != 20 || page.Pagination.Total != 301 {
		t.Fatalf("paginated default page: %d %.300s", rec.Code, rec.Body)
	}
	// limit above the maximum is capped at it.
	h2 := newAPIHub(t, func(a *testApp) { a.APIPageMaxLimit = 5 })
	h2.user("admin", true)
	for i := range 8 {
		h2.user(fmt.Sprintf("v%d", i), false)
	}
	if code := h2.call("GET", "/hub/api/users?limit=100", h2.token("admin"), "", &list); code != 200 || len(list) != 5 {
		t.Fatalf("api_page_max_limit 5: %d, %d users", code, len(list))
	}
}
