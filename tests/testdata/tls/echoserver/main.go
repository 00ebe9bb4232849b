// Command echoserver is the single-user server of the TLS end-to-end tests
// (tests/tls_e2e_test.go). It listens where JUPYTERHUB_SERVICE_URL says and,
// under JUPYTERHUB_SERVICE_PREFIX, serves:
//
//   - ws: a websocket that echoes every message;
//   - login: starts the hub's OAuth flow as jupyterhub-singleuser does
//     (redirect to $JUPYTERHUB_HOST<hub>/api/oauth2/authorize);
//   - oauth_callback: exchanges the code for a token at $JUPYTERHUB_API_URL,
//     asks the hub who the token belongs to and sets its own cookie;
//   - anything else: a JSON report of the request as the server saw it (host,
//     forwarded headers, cookie names, the visitor its cookie identifies).
//
// It exists to observe, from the user server's side, what crosses the edge.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/gorilla/websocket"
)

// Report is what the server answers for any other path.
type Report struct {
	User        string            `json:"user"` // JUPYTERHUB_USER
	Host        string            `json:"host"`
	Path        string            `json:"path"`
	Forwarded   map[string]string `json:"forwarded"`
	CookieNames []string          `json:"cookie_names"`
	Visitor     string            `json:"visitor,omitempty"` // who logged in through OAuth
	TLSEnv      map[string]string `json:"env"`
}

const cookieName = "echo-session"

var (
	mu       sync.Mutex
	sessions = map[string]string{} // cookie value → visitor name
	states   = map[string]bool{}
)

func main() {
	addr, prefix := "127.0.0.1:8888", "/"
	if s := os.Getenv("JUPYTERHUB_SERVICE_URL"); s != "" {
		u, err := url.Parse(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "echoserver: bad JUPYTERHUB_SERVICE_URL:", err)
			os.Exit(4)
		}
		addr = u.Host
	}
	if p := os.Getenv("JUPYTERHUB_SERVICE_PREFIX"); p != "" {
		prefix = p
	}
	mux := http.NewServeMux()
	mux.HandleFunc(prefix+"ws", serveWS)
	mux.HandleFunc(prefix+"login", serveLogin)
	mux.HandleFunc(prefix+"oauth_callback", serveCallback)
	mux.HandleFunc(prefix, serveReport)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echoserver:", err)
		os.Exit(1)
	}
	fmt.Println("echoserver: listening on", ln.Addr())
	_ = http.Serve(ln, mux)
}

func serveReport(w http.ResponseWriter, r *http.Request) {
	rep := Report{
		User: os.Getenv("JUPYTERHUB_USER"), Host: r.Host, Path: r.URL.Path,
		Forwarded: map[string]string{},
		TLSEnv:    map[string]string{},
	}
	for _, h := range []string{"X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-For"} {
		rep.Forwarded[h] = r.Header.Get(h)
	}
	for _, c := range r.Cookies() {
		rep.CookieNames = append(rep.CookieNames, c.Name)
		if c.Name == cookieName {
			mu.Lock()
			rep.Visitor = sessions[c.Value]
			mu.Unlock()
		}
	}
	for _, k := range []string{"JUPYTERHUB_HOST", "JUPYTERHUB_OAUTH_CALLBACK_URL", "JUPYTERHUB_SERVICE_PREFIX", "JUPYTERHUB_API_URL"} {
		rep.TLSEnv[k] = os.Getenv(k)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(rep)
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func serveWS(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	for {
		t, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(t, msg); err != nil {
			return
		}
	}
}

func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// serveLogin redirects to the hub's authorize endpoint, as HubOAuth does.
func serveLogin(w http.ResponseWriter, r *http.Request) {
	state := randomHex()
	mu.Lock()
	states[state] = true
	mu.Unlock()
	base := os.Getenv("JUPYTERHUB_BASE_URL")
	if base == "" {
		base = "/"
	}
	q := url.Values{
		"client_id":     {os.Getenv("JUPYTERHUB_CLIENT_ID")},
		"redirect_uri":  {os.Getenv("JUPYTERHUB_OAUTH_CALLBACK_URL")},
		"response_type": {"code"},
		"state":         {state},
	}
	http.Redirect(w, r, os.Getenv("JUPYTERHUB_HOST")+base+"hub/api/oauth2/authorize?"+q.Encode(), http.StatusFound)
}

// serveCallback exchanges the code and sets this origin's own cookie.
func serveCallback(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	mu.Lock()
	ok := states[state]
	delete(states, state)
	mu.Unlock()
	if !ok {
		http.Error(w, "bad state", http.StatusBadRequest)
		return
	}
	api := os.Getenv("JUPYTERHUB_API_URL")
	resp, err := http.PostForm(api+"/oauth2/token", url.Values{
		"client_id":     {os.Getenv("JUPYTERHUB_CLIENT_ID")},
		"client_secret": {os.Getenv("JUPYTERHUB_API_TOKEN")},
		"grant_type":    {"authorization_code"},
		"code":          {r.URL.Query().Get("code")},
		"redirect_uri":  {os.Getenv("JUPYTERHUB_OAUTH_CALLBACK_URL")},
	})
	if err != nil {
		http.Error(w, "token exchange: "+err.Error(), http.StatusBadGateway)
		return
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		http.Error(w, fmt.Sprintf("token exchange: status %d, %v", resp.StatusCode, err), http.StatusBadGateway)
		return
	}
	req, _ := http.NewRequest(http.MethodGet, api+"/user", nil)
	req.Header.Set("Authorization", "token "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, "whoami: "+err.Error(), http.StatusBadGateway)
		return
	}
	var who struct {
		Name string `json:"name"`
	}
	err = json.NewDecoder(resp.Body).Decode(&who)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || who.Name == "" {
		http.Error(w, fmt.Sprintf("whoami: status %d, %v", resp.StatusCode, err), http.StatusBadGateway)
		return
	}
	sid := randomHex()
	mu.Lock()
	sessions[sid] = who.Name
	mu.Unlock()
	prefix := os.Getenv("JUPYTERHUB_SERVICE_PREFIX")
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: sid, Path: prefix, HttpOnly: true,
		Secure: strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")})
	http.Redirect(w, r, prefix, http.StatusFound)
}
