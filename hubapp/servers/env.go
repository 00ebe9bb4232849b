package servers

// Names and environment of a server: its URL prefix, OAuth client, access scopes and the
// JUPYTERHUB_* variables (docs/protocols.md, "Environment of a spawned server").

import (
	"encoding/json"
	"strings"
)

// PyQuote is Python's urllib.parse.quote(s, safe): every byte but letters, digits, "_.-~" and safe
// is %XX-escaped (upper-case hex).
func PyQuote(s, safe string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.-~", c) >= 0 ||
			strings.IndexByte(safe, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// EscapePath is JupyterHub's url_escape_path: quote(value, safe='@~').
func EscapePath(s string) string { return PyQuote(s, "@~") }

// Prefix is a server's base URL path under base: <base>user/<name>/[<server>/]
// (JUPYTERHUB_SERVICE_PREFIX).
func Prefix(base, user, server string) string {
	p := base + "user/" + EscapePath(user) + "/"
	if server != "" {
		p += EscapePath(server) + "/"
	}
	return p
}

// ServerPrefix is Prefix under the engine's base_url.
func (e *Engine) ServerPrefix(user, server string) string { return Prefix(e.cfg.BaseURL, user, server) }

// ServerURL is where users reach a server: its origin under subdomain_host, then its prefix.
func (e *Engine) ServerURL(user, server string) string {
	return e.site.UserOrigin(user) + e.ServerPrefix(user, server)
}

// OAuthClientID is the server's OAuth client id, also the cookie name the server uses
// (user.py _new_spawner: quote() with its default safe "/").
func OAuthClientID(user, server string) string {
	id := "jupyterhub-user-" + PyQuote(user, "/")
	if server != "" {
		id += "-" + PyQuote(server, "/")
	}
	return id
}

// AccessScopes are the scopes a visitor of the server must hold (spawner.py _default_access_scopes).
func AccessScopes(user, server string) []string {
	return []string{"access:servers!server=" + Key(user, server), "access:servers!user=" + user}
}

// pyJSONList renders a list of strings as Python's json.dumps does (", " separators).
func pyJSONList(list []string) string {
	parts := make([]string, len(list))
	for i, s := range list {
		b, _ := json.Marshal(s)
		parts[i] = string(b)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Env builds the JUPYTERHUB_* variables (JupyterHub's Spawner.get_env) for one server; the spawner
// adds JUPYTERHUB_SERVICE_URL, env_keep, the options' environment and the account.
func (e *Engine) Env(user, server, apiToken string) map[string]string {
	apiURL := e.site.APIURL()
	access := pyJSONList(AccessScopes(user, server))
	return map[string]string{
		"JUPYTERHUB_API_TOKEN":                   apiToken,
		"JPY_API_TOKEN":                          apiToken,
		"JUPYTERHUB_CLIENT_ID":                   OAuthClientID(user, server),
		"JUPYTERHUB_HOST":                        e.site.HubOrigin(),
		"JUPYTERHUB_OAUTH_CALLBACK_URL":          e.oauthCallbackURL(user, server),
		"JUPYTERHUB_OAUTH_SCOPES":                access,
		"JUPYTERHUB_OAUTH_ACCESS_SCOPES":         access,
		"JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": "[]",
		"JUPYTERHUB_USER":                        user,
		"JUPYTERHUB_SERVER_NAME":                 server,
		"JUPYTERHUB_API_URL":                     apiURL,
		"JUPYTERHUB_ACTIVITY_URL":                apiURL + "/users/" + EscapePath(user) + "/activity",
		"JUPYTERHUB_BASE_URL":                    e.cfg.BaseURL,
		"JUPYTERHUB_SERVICE_PREFIX":              e.ServerPrefix(user, server),
	}
}

// mergeEnv adds the authenticator's variables to the server's; the hub's own (JUPYTERHUB_*) win.
func mergeEnv(env, extra map[string]string) map[string]string {
	for k, v := range extra {
		if _, ok := env[k]; !ok {
			env[k] = v
		}
	}
	return env
}

// oauthCallbackURL is the server's registered redirect_uri: its URL + "oauth_callback" (user.url).
func (e *Engine) oauthCallbackURL(user, server string) string {
	return e.ServerURL(user, server) + "oauth_callback"
}

// description is the server's OAuth client and token description, "Server at /user/alice/".
func (e *Engine) description(user, server string) string {
	return "Server at " + e.ServerPrefix(user, server)
}
