package hubapp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/auth/authstate"
	"github.com/caddyhub/caddyhub/spawners"
)

func (a *App) provisionHub(ctx caddy.Context) error {
	if a.BaseURL == "" {
		a.BaseURL = "/"
	}
	if !strings.HasPrefix(a.BaseURL, "/") {
		a.BaseURL = "/" + a.BaseURL
	}
	if !strings.HasSuffix(a.BaseURL, "/") {
		a.BaseURL += "/"
	}
	if a.HubAPI == "" {
		a.HubAPI = "127.0.0.1:8081"
	}
	if a.CookieSecretFile == "" {
		a.CookieSecretFile = "jupyterhub_cookie_secret"
	}
	a.CookieSecret = a.repl.ReplaceKnown(a.CookieSecret, "")
	if a.ConcurrentSpawnLimit == 0 {
		a.ConcurrentSpawnLimit = 100
	}
	if a.AuthenticatorRaw == nil {
		a.AuthenticatorRaw = json.RawMessage(`{"authenticator":"pam"}`)
	}
	if a.SpawnerRaw == nil {
		a.SpawnerRaw = json.RawMessage(`{"spawner":"localprocess"}`)
	}
	mod, err := ctx.LoadModule(a, "AuthenticatorRaw")
	if err != nil {
		return fmt.Errorf("loading authenticator: %w", err)
	}
	authn, ok := mod.(auth.Authenticator)
	if !ok {
		return fmt.Errorf("module %T is not an authenticator", mod)
	}
	a.authenticator = authn
	a.crypter = nil
	if a.EnableAuthState {
		c, err := authstate.Keys(a.repl.ReplaceKnown(a.CryptKey, ""))
		if err != nil {
			return fmt.Errorf("enable_auth_state: %w", err)
		}
		a.crypter = c
	}
	mod, err = ctx.LoadModule(a, "SpawnerRaw")
	if err != nil {
		return fmt.Errorf("loading spawner: %w", err)
	}
	sp, ok := mod.(spawners.Spawner)
	if !ok {
		return fmt.Errorf("module %T is not a spawner", mod)
	}
	a.spawner = sp
	for _, s := range a.Services {
		s.APIToken = a.repl.ReplaceKnown(s.APIToken, "")
		if s.OAuthClientID == "" {
			s.OAuthClientID = "service-" + s.Name
		}
		if s.OAuthRedirectURI == "" {
			s.OAuthRedirectURI = a.BaseURL + "services/" + s.Name + "/oauth_callback"
		}
	}
	tokens := make(map[string]string, len(a.APITokens))
	for tok, user := range a.APITokens {
		tokens[a.repl.ReplaceKnown(tok, "")] = user
	}
	a.APITokens = tokens
	// Certificate events for /hub/api/info and loud failure logs (tls.go, certstatus.go).
	return a.subscribeCertEvents(ctx)
}

func (a *App) validateHub() error {
	if _, _, err := splitHostPort(a.HubAPI); err != nil {
		return fmt.Errorf("hub_api %q: want host:port: %w", a.HubAPI, err)
	}
	if err := a.Config.Validate(); err != nil {
		return err
	}
	return a.validateHubReachable()
}

// validateHubReachable refuses a spawner whose servers run elsewhere (spawners.RemoteSpawner: a
// container, a pod) when the address those servers are told to reach the hub API at is loopback:
// every server would fail to authenticate its users, after a start that looked successful.
func (a *App) validateHubReachable() error {
	rs, ok := a.spawner.(spawners.RemoteSpawner)
	if !ok || !rs.RunsElsewhere() {
		return nil
	}
	what, host := "hub_api "+a.HubAPI, ""
	if a.HubConnectURL != "" {
		u, err := url.Parse(a.HubConnectURL)
		if err != nil || u.Host == "" {
			return fmt.Errorf("hub_connect_url %q: want an absolute URL such as http://10.0.0.5:8081", a.HubConnectURL)
		}
		what, host = "hub_connect_url "+a.HubConnectURL, u.Hostname()
	} else if h, _, err := splitHostPort(a.HubAPI); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	loopback := host == "" || strings.EqualFold(host, "localhost") || (ip != nil && (ip.IsLoopback() || ip.IsUnspecified()))
	if !loopback {
		return nil
	}
	name := fmt.Sprintf("%T", a.spawner)
	if m, ok := a.spawner.(caddy.Module); ok {
		name = m.CaddyModule().ID.Name()
	}
	return fmt.Errorf("spawner %s runs servers outside the hub's host (containers or pods), where %s is not the hub: "+
		"set hub_connect_url to an address they can reach (e.g. hub_connect_url http://<the hub's address on their network>:<port>) "+
		"and hub_api to listen on that address", name, what)
}

// splitHostPort splits a listen or connect address and checks the port's range.
func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, errors.New("bad port " + p)
	}
	return host, port, nil
}
