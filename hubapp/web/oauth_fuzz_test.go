package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzOAuthParams: any authorization query (client_id, redirect_uri, response_type, state, scope,
// PKCE…) from a browser logged in as alice, bob or nobody, then any token request body. The
// authorization endpoint never answers 5xx and redirects only to the hub's login page or to the
// redirect URI registered for the client (never to one taken from the query), echoing state
// exactly; it hands a code to alice only (bob may not use her server). The token endpoint never
// answers 5xx, answers errors as OAuth JSON, and issues a token only for the code just handed out,
// with the client's genuine secret, once.
//
// Seeds name genuine values with placeholders (every fuzz worker builds its own hub): {secret} is
// the client secret of alice's server, {code} the code the authorization step handed out.
func FuzzOAuthParams(f *testing.F) {
	const cb = "/user/alice/oauth_callback"
	good := url.Values{"client_id": {"jupyterhub-user-alice"}, "redirect_uri": {cb}, "response_type": {"code"}, "state": {"st4te"}}
	form := "client_id=jupyterhub-user-alice&client_secret={secret}&grant_type=authorization_code&code={code}&redirect_uri=" + url.QueryEscape(cb)
	f.Add(good.Encode(), form, uint8(0))
	f.Add(good.Encode()+"&scope=admin%3Ausers", form, uint8(0))
	f.Add(good.Encode()+"&code_challenge="+strings.Repeat("a", 43)+"&code_challenge_method=S256", form+"&code_verifier=x", uint8(0))
	f.Add("client_id=jupyterhub-user-alice&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=code", form, uint8(0))
	f.Add("client_id=jupyterhub-user-alice&redirect_uri=%2Fuser%2Falice%2Foauth_callback%2F..%2F..%2Fbob&response_type=token&state=%0d%0a", form, uint8(0))
	f.Add(good.Encode(), form, uint8(1))
	f.Add(good.Encode(), form, uint8(2))
	f.Add("client_id=nosuch", "grant_type=authorization_code&code={code}", uint8(0))
	f.Add(good.Encode(), "client_id=jupyterhub-user-alice&client_secret=wrong&grant_type=authorization_code&code={code}", uint8(0))
	f.Add(good.Encode(), "grant_type=refresh_token", uint8(0))
	sp := newFakeSpawner()
	h := newTestHub(f, sp, nil)
	alice := mustUser(f, h, "alice", false)
	mustUser(f, h, "bob", false)
	if _, err := h.startServer(alice, "", nil); err != nil {
		f.Fatal(err)
	}
	secret := sp.lastRequest().Env["JUPYTERHUB_API_TOKEN"]
	aliceCookies, _ := login(f, h, "alice")
	bobCookies, _ := login(f, h, "bob")
	f.Fuzz(func(t *testing.T, query, tokenForm string, who uint8) {
		if strings.ContainsAny(query, "# \x00") || strings.ContainsFunc(query, func(r rune) bool { return r < 0x20 || r >= 0x7f }) {
			return // not a query a browser sends unencoded
		}
		var cookies []*http.Cookie
		switch who % 3 {
		case 0:
			cookies = aliceCookies
		case 1:
			cookies = bobCookies
		}
		rec := browserDo(t, h, "GET", "/hub/api/oauth2/authorize?"+query, cookies, nil)
		if rec.Code >= 500 {
			t.Fatalf("authorize ?%s: %d %s", query, rec.Code, rec.Body)
		}
		code := ""
		if rec.Code == http.StatusFound {
			loc, err := url.Parse(rec.Header().Get("Location"))
			if err != nil {
				t.Fatalf("authorize ?%s: Location %q: %v", query, rec.Header().Get("Location"), err)
			}
			switch {
			case loc.Host == "" && loc.Path == "/hub/login":
			case loc.Host == "" && loc.Scheme == "" && loc.Path == cb:
				q, _ := url.ParseQuery(query)
				if st := q.Get("state"); loc.Query().Get("state") != st {
					t.Fatalf("authorize ?%s: state %q came back as %q", query, st, loc.Query().Get("state"))
				}
				code = loc.Query().Get("code")
				if code != "" && who%3 != 0 {
					t.Fatalf("authorize ?%s: a code for a browser that is not alice's (%d)", query, who%3)
				}
			default:
				t.Fatalf("authorize ?%s: redirect to %q, neither the login page nor the registered redirect URI", query, loc)
			}
		}
		tokenForm = strings.ReplaceAll(strings.ReplaceAll(tokenForm, "{secret}", url.QueryEscape(secret)), "{code}", url.QueryEscape(code))
		exchange := func() *httptest.ResponseRecorder {
			req := httptest.NewRequest("POST", "http://hub.test/hub/api/oauth2/token", strings.NewReader(tokenForm))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}
		rec = exchange()
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("token %q: %d with a body that is not JSON: %q", tokenForm, rec.Code, rec.Body)
		}
		if rec.Code >= 500 {
			t.Fatalf("token %q: %d %s", tokenForm, rec.Code, rec.Body)
		}
		if rec.Code != http.StatusOK {
			if _, ok := body["error"].(string); !ok {
				t.Fatalf("token %q: %d without an OAuth error: %s", tokenForm, rec.Code, rec.Body)
			}
			return
		}
		v, _ := url.ParseQuery(tokenForm)
		if code == "" || v.Get("code") != code || v.Get("client_secret") != secret {
			t.Fatalf("token %q issued a token without the genuine code and secret: %s", tokenForm, rec.Body)
		}
		if _, ok := body["access_token"].(string); !ok {
			t.Fatalf("token %q: 200 without access_token: %s", tokenForm, rec.Body)
		}
		if again := exchange(); again.Code == http.StatusOK {
			t.Fatalf("token %q: the same code was exchanged twice", tokenForm)
		}
	})
}
