package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestTokenPageScopes: the token page offers a checklist of the scopes the user holds, each with
// its description; a token requested with some of them carries exactly those, one requested with
// a scope the user does not hold is refused (400), and the token table starts out as its empty
// state, "No API tokens".
func TestTokenPageScopes(t *testing.T) {
	wh := newWebHub(t, false)
	c := wh.client(t)
	wh.mustLogin(t, c, "alice")
	page := wh.do(t, c, "GET", "/hub/token", nil)
	if page.status != http.StatusOK {
		t.Fatalf("token page: %d %s", page.status, page.body)
	}
	for _, want := range []string{
		`name="scopes" value="read:users!user=alice"`,
		`name="scopes" value="servers!user=alice"`,
		`<p class="muted empty">No API tokens.</p>`,
	} {
		if !strings.Contains(page.body, want) {
			t.Errorf("token page lacks %s", want)
		}
	}
	if strings.Contains(page.body, `value="admin:users"`) {
		t.Error("token page offers admin:users to a user who does not hold it")
	}
	if def, _ := wh.h.scopeRegistry().Definition("servers"); def.Description == "" || !strings.Contains(page.body, def.Description) {
		t.Errorf("token page lacks the description of servers (%q)", def.Description)
	}
	tok := xsrfOf(t, wh.do(t, c, "GET", "/hub/home", nil).body)
	request := func(body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("POST", wh.srv.URL+"/hub/api/users/alice/tokens", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "webtest")
		req.Header.Set("Sec-Fetch-Mode", "cors")
		req.Header.Set("X-XSRFToken", tok)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	st, m := request(`{"note":"narrow","scopes":["read:users!user=alice"]}`)
	if st != http.StatusCreated {
		t.Fatalf("token with a held scope: %d %v", st, m)
	}
	// The model shows the expanded scopes: read:users and its subscopes, nothing more.
	if sc := fmt.Sprint(m["scopes"]); !strings.Contains(sc, "read:users!user=alice") || strings.Contains(sc, "servers") || strings.Contains(sc, "tokens") {
		t.Errorf("narrowed token's scopes %s, want read:users!user=alice and its subscopes only", sc)
	}
	if st, m := request(`{"note":"wide","scopes":["admin:users"]}`); st != http.StatusBadRequest || !strings.Contains(m["message"].(string), "not held") {
		t.Errorf("token with a scope alice does not hold: %d %v, want 400 … not held", st, m)
	}
	page = wh.do(t, c, "GET", "/hub/token", nil)
	if !strings.Contains(page.body, "<code>read:users!user=alice</code></td>") || !strings.Contains(page.body, `<p class="muted empty" hidden>No API tokens.</p>`) {
		t.Errorf("token table does not list the narrowed token with its scope:\n%s", page.body)
	}
}

// TestTokenScopesText: a token without scopes of its own is said to carry all the owner's.
func TestTokenScopesText(t *testing.T) {
	for in, want := range map[string]string{"": "all your permissions", "inherit": "all your permissions", "read:users servers": "read:users servers"} {
		if got := tokenScopesText(strings.Fields(in)); got != want {
			t.Errorf("tokenScopesText(%q) = %q, want %q", in, got, want)
		}
	}
}
