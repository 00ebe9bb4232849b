package hubapp

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/caddyhub/caddyhub/hubapp/web"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("jupyterhub", parseGlobalOption)
}

// parseGlobalOption parses the `jupyterhub { … }` global option block into the app's JSON.
//
//	jupyterhub {
//		proxy_only
//		data_dir <dir>
//		proxy_api <host:port>|off
//		proxy_auth_token <token>
//		error_target <url>
//		base_url <path>
//		hub_api <host:port>
//		hub_connect_url <url>
//		cookie_secret <hex>
//		cookie_secret_file <path>
//		cookie_max_age <duration>
//		authenticator <name> { … }
//		spawner <name> { … }
//		service <name> { … }
//		role <name> { … }
//		group <name> { … }
//		api_token <token> <user>
//		concurrent_spawn_limit <n>
//		active_server_limit <n>
//		allow_named_servers
//		named_server_limit_per_user <n>
//		redirect_to_server true|false
//		implicit_spawn_seconds <n>
//		cleanup_servers
//		culler { … }
//		subdomain_host <host>
//		api_page_default_limit <n>
//		api_page_max_limit <n>
//		admin_access
//	}
func parseGlobalOption(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	var warnings []caddyconfig.Warning
	d.Next() // "jupyterhub"
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		var err error
		switch opt {
		case "proxy_only":
			app.ProxyOnly, err = noArgs(d, true)
		case "data_dir":
			err = oneArg(d, &app.DataDir)
		case "proxy_api":
			err = oneArg(d, &app.ProxyAPI)
		case "proxy_auth_token":
			err = oneArg(d, &app.ProxyAuthToken)
		case "error_target":
			err = oneArg(d, &app.ErrorTargetURL)
		case "base_url":
			err = oneArg(d, &app.BaseURL)
		case "hub_api":
			err = oneArg(d, &app.HubAPI)
		case "hub_connect_url":
			err = oneArg(d, &app.HubConnectURL)
		case "cookie_secret":
			err = oneArg(d, &app.CookieSecret)
		case "cookie_secret_file":
			err = oneArg(d, &app.CookieSecretFile)
		case "cookie_max_age":
			err = durationArg(d, &app.CookieMaxAge)
		case "authenticator":
			app.AuthenticatorRaw, err = guestModule(d, "jupyterhub.authenticators", "authenticator", &warnings)
		case "enable_auth_state":
			app.EnableAuthState, err = noArgs(d, true)
		case "crypt_key":
			err = oneArg(d, &app.CryptKey)
		case "spawner":
			app.SpawnerRaw, err = guestModule(d, "jupyterhub.spawners", "spawner", &warnings)
		case "service":
			var s *web.Service
			if s, err = parseService(d); err == nil {
				app.Services = append(app.Services, s)
			}
		case "role":
			var r *web.Role
			if r, err = parseRole(d); err == nil {
				app.Roles = append(app.Roles, r)
			}
		case "group":
			var g *web.GroupConfig
			if g, err = parseGroup(d); err == nil {
				app.Groups = append(app.Groups, g)
			}
		case "api_token":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Errf("api_token wants <token> <user>")
			}
			if app.APITokens == nil {
				app.APITokens = map[string]string{}
			}
			app.APITokens[args[0]] = args[1]
		case "concurrent_spawn_limit":
			err = intArg(d, &app.ConcurrentSpawnLimit)
		case "active_server_limit":
			err = intArg(d, &app.ActiveServerLimit)
		case "allow_named_servers":
			app.AllowNamedServers, err = noArgs(d, true)
		case "named_server_limit_per_user":
			err = intArg(d, &app.NamedServerLimitPerUser)
		case "redirect_to_server":
			var b bool
			if b, err = boolArg(d); err == nil {
				app.RedirectToServer = &b
			}
		case "implicit_spawn_seconds":
			err = intArg(d, &app.ImplicitSpawnSeconds)
		case "cleanup_servers":
			app.CleanupServers, err = noArgs(d, true)
		case "culler":
			app.Culler, err = parseCuller(d)
		case "subdomain_host":
			err = oneArg(d, &app.SubdomainHost)
		case "api_page_default_limit":
			err = intArg(d, &app.APIPageDefaultLimit)
		case "api_page_max_limit":
			err = intArg(d, &app.APIPageMaxLimit)
		case "admin_access":
			app.AdminAccess, err = boolArg(d)
		default:
			var ok bool
			if ok, err = parseBrandingOption(d, &app.Branding, opt); !ok {
				return nil, d.Errf("unrecognized jupyterhub option %q", opt)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return httpcaddyfile.App{Name: "jupyterhub", Value: caddyconfig.JSON(app, &warnings)}, nil
}

// guestModule parses `<option> <name> { … }` with the named module's own Caddyfile unmarshaler.
func guestModule(d *caddyfile.Dispenser, namespace, inlineKey string, warnings *[]caddyconfig.Warning) (json.RawMessage, error) {
	if !d.NextArg() {
		return nil, d.Errf("%s wants a module name, e.g. %s dummy", inlineKey, inlineKey)
	}
	name := d.Val()
	unm, err := caddyfile.UnmarshalModule(d, namespace+"."+name)
	if err != nil {
		return nil, err
	}
	return caddyconfig.JSONModuleObject(unm, inlineKey, name, warnings), nil
}

func noArgs(d *caddyfile.Dispenser, v bool) (bool, error) {
	opt := d.Val()
	if d.NextArg() {
		return false, d.Errf("%s takes no arguments", opt)
	}
	return v, nil
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	opt := d.Val()
	if !d.NextArg() {
		return d.Errf("%s wants one argument", opt)
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.Errf("%s wants one argument, got another: %q", opt, d.Val())
	}
	return nil
}

func intArg(d *caddyfile.Dispenser, dst *int) error {
	var s string
	opt := d.Val()
	if err := oneArg(d, &s); err != nil {
		return err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return d.Errf("%s: %q is not a whole number", opt, s)
	}
	*dst = n
	return nil
}

func boolArg(d *caddyfile.Dispenser) (bool, error) {
	opt := d.Val()
	if !d.NextArg() {
		return true, nil
	}
	b, err := strconv.ParseBool(d.Val())
	if err != nil {
		return false, d.Errf("%s: %q is not true or false", opt, d.Val())
	}
	if d.NextArg() {
		return false, d.ArgErr()
	}
	return b, nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	var s string
	opt := d.Val()
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s: %v", opt, err)
	}
	if dur < 0 {
		return d.Errf("%s must not be negative", opt)
	}
	*dst = caddy.Duration(dur)
	return nil
}

func parseService(d *caddyfile.Dispenser) (*web.Service, error) {
	s := &web.Service{}
	if err := oneArgNoBlockCheck(d, &s.Name); err != nil {
		return nil, err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		var err error
		switch opt {
		case "api_token":
			err = oneArg(d, &s.APIToken)
		case "admin":
			s.Admin, err = boolArg(d)
		case "roles":
			s.Roles = append(s.Roles, d.RemainingArgs()...)
		case "url":
			err = oneArg(d, &s.URL)
		case "command":
			if s.Command = d.RemainingArgs(); len(s.Command) == 0 {
				err = d.Errf("command wants the program and its arguments")
			}
		case "environment":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Errf("environment wants <NAME> <value>")
			}
			if s.Environment == nil {
				s.Environment = map[string]string{}
			}
			s.Environment[args[0]] = args[1]
		case "cwd":
			err = oneArg(d, &s.Cwd)
		case "oauth_client_id":
			err = oneArg(d, &s.OAuthClientID)
		case "oauth_redirect_uri":
			err = oneArg(d, &s.OAuthRedirectURI)
		case "oauth_no_confirm":
			s.OAuthNoConfirm, err = boolArg(d)
		case "oauth_roles":
			s.OAuthRoles = append(s.OAuthRoles, d.RemainingArgs()...)
		case "display":
			var b bool
			if b, err = boolArg(d); err == nil {
				s.Display = &b
			}
		case "info":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Errf("info wants <key> <value>")
			}
			if s.Info == nil {
				s.Info = map[string]any{}
			}
			s.Info[args[0]] = args[1]
		default:
			return nil, d.Errf("unrecognized service option %q", opt)
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// oneArgNoBlockCheck reads the single argument that names a block (`service NAME {`).
func oneArgNoBlockCheck(d *caddyfile.Dispenser, dst *string) error {
	opt := d.Val()
	if !d.NextArg() {
		return d.Errf("%s wants a name", opt)
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.Errf("%s wants one name, got another: %q", opt, d.Val())
	}
	return nil
}

func parseRole(d *caddyfile.Dispenser) (*web.Role, error) {
	r := &web.Role{}
	if err := oneArgNoBlockCheck(d, &r.Name); err != nil {
		return nil, err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "description":
			r.Description = strings.Join(d.RemainingArgs(), " ")
		case "scopes":
			r.Scopes = append(r.Scopes, d.RemainingArgs()...)
		case "users":
			r.Users = append(r.Users, d.RemainingArgs()...)
		case "groups":
			r.Groups = append(r.Groups, d.RemainingArgs()...)
		case "services":
			r.Services = append(r.Services, d.RemainingArgs()...)
		default:
			return nil, d.Errf("unrecognized role option %q", opt)
		}
	}
	return r, nil
}

func parseGroup(d *caddyfile.Dispenser) (*web.GroupConfig, error) {
	g := &web.GroupConfig{}
	if err := oneArgNoBlockCheck(d, &g.Name); err != nil {
		return nil, err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "users":
			g.Users = append(g.Users, d.RemainingArgs()...)
		case "property":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Errf("property wants <key> <value>")
			}
			if g.Properties == nil {
				g.Properties = map[string]any{}
			}
			g.Properties[args[0]] = args[1]
		default:
			return nil, d.Errf("unrecognized group option %q", opt)
		}
	}
	return g, nil
}

func parseCuller(d *caddyfile.Dispenser) (*web.CullerConfig, error) {
	c := &web.CullerConfig{}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		var err error
		switch opt {
		case "timeout":
			err = durationArg(d, &c.Timeout)
		case "every":
			err = durationArg(d, &c.Every)
		case "max_age":
			err = durationArg(d, &c.MaxAge)
		case "cull_users":
			c.CullUsers, err = boolArg(d)
		case "cull_admin_users":
			var b bool
			if b, err = boolArg(d); err == nil {
				c.CullAdminUsers = &b
			}
		case "remove_named_servers":
			c.RemoveNamedServers, err = boolArg(d)
		case "concurrency":
			err = intArg(d, &c.Concurrency)
		default:
			return nil, d.Errf("unrecognized culler option %q", opt)
		}
		if err != nil {
			return nil, err
		}
	}
	if c.Timeout == 0 {
		c.Timeout = caddy.Duration(time.Hour)
	}
	return c, nil
}

// parseBrandingOption reads one branding option of the jupyterhub Caddyfile block; ok is false
// when opt is not one.
func parseBrandingOption(d *caddyfile.Dispenser, b *web.Branding, opt string) (ok bool, err error) {
	var dst **string
	switch opt {
	case "hub_title":
		return true, oneArg(d, &b.HubTitle)
	case "logo_file":
		return true, oneArg(d, &b.LogoFile)
	case "favicon_file":
		return true, oneArg(d, &b.FaviconFile)
	case "announcement":
		return true, oneArg(d, &b.Announcement)
	case "announcement_login":
		dst = &b.AnnouncementLogin
	case "announcement_home":
		dst = &b.AnnouncementHome
	case "announcement_spawn":
		dst = &b.AnnouncementSpawn
	default:
		return false, nil
	}
	var s string
	if err := oneArg(d, &s); err != nil {
		return true, err
	}
	*dst = &s
	return true, nil
}
