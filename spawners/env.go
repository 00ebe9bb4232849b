package spawners

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// Expand expands a notebook_dir, default_url or environment value for one
// server: {username} and {servername} become the request's names, and
// Caddy's global placeholders ({env.VAR}, {system.hostname}...) their
// values; unknown placeholders are left as written. When home is not empty
// (the local spawners pass the account's home), a leading ~ (alone or before
// a slash) becomes home first; other spawners pass "".
func Expand(s string, req *StartRequest, home string) string {
	if home != "" && (s == "~" || strings.HasPrefix(s, "~/")) {
		s = home + s[1:]
	}
	if !strings.Contains(s, "{") {
		return s
	}
	repl := caddy.NewReplacer()
	repl.Set("username", req.User)
	repl.Set("servername", req.ServerName)
	return repl.ReplaceKnown(s, "")
}

// RootDir returns the expanded notebook_dir as a clean absolute path, or ""
// when notebook_dir is not set. A relative notebook_dir is taken relative
// to home, as Jupyter does.
func (o *Options) RootDir(req *StartRequest, home string) string {
	if o.NotebookDir == "" {
		return ""
	}
	dir := Expand(o.NotebookDir, req, home)
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(home, dir)
	}
	return filepath.Clean(dir)
}

// Env returns the environment every spawner gives a server, in JupyterHub's
// order (spawner.py Spawner.get_env), later entries winning: the hub's
// req.Env; JUPYTERHUB_USER, JUPYTERHUB_SERVER_NAME and
// JUPYTERHUB_SERVICE_PREFIX from req when the hub did not set them;
// JUPYTERHUB_SERVICE_URL=serviceURL (where the server listens, as it sees
// it); MEM_LIMIT, CPU_LIMIT, JUPYTERHUB_ROOT_DIR and JUPYTERHUB_DEFAULT_URL
// from the options; and the options' environment. home is passed to Expand
// and RootDir. A spawner adds its own below (the local spawners' env_keep)
// and above (the account's USER, HOME...).
func (o *Options) Env(req *StartRequest, serviceURL, home string) map[string]string {
	env := make(map[string]string, len(req.Env)+len(o.Environment)+8)
	for k, v := range req.Env {
		env[k] = v
	}
	for k, v := range map[string]string{
		"JUPYTERHUB_USER":           req.User,
		"JUPYTERHUB_SERVER_NAME":    req.ServerName,
		"JUPYTERHUB_SERVICE_PREFIX": req.ServicePrefix,
	} {
		if _, ok := env[k]; !ok {
			env[k] = v
		}
	}
	env["JUPYTERHUB_SERVICE_URL"] = serviceURL
	if o.memLimit > 0 {
		env["MEM_LIMIT"] = strconv.FormatInt(o.memLimit, 10)
	}
	if o.CPULimit > 0 {
		env["CPU_LIMIT"] = pythonFloat(o.CPULimit)
	}
	if dir := o.RootDir(req, home); dir != "" {
		env["JUPYTERHUB_ROOT_DIR"] = dir
	}
	if o.DefaultURL != "" {
		env["JUPYTERHUB_DEFAULT_URL"] = Expand(o.DefaultURL, req, home)
	}
	for k, v := range o.Environment {
		env[k] = Expand(v, req, home)
	}
	return env
}

// pythonFloat formats f as Python's str(float) does for ordinary values:
// JupyterHub sends CPU_LIMIT as "2.0", not "2".
func pythonFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

// EnvList turns an environment map into the sorted KEY=value list that
// os/exec wants.
func EnvList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	return list
}

// CheckNames rejects a user or server name that cannot safely stand in a
// path (notebook_dir "/srv/{username}"): empty user, ".", "..", a slash or a
// NUL byte. JupyterHub's validate_username already refuses slashes and
// empty names; spawners check again before touching the file system.
func (r *StartRequest) CheckNames() error {
	bad := func(s string) bool {
		return s == "." || s == ".." || strings.ContainsAny(s, "/\x00")
	}
	if r.User == "" || bad(r.User) {
		return fmt.Errorf("invalid username %q", r.User)
	}
	if bad(r.ServerName) {
		return fmt.Errorf("invalid server name %q", r.ServerName)
	}
	return nil
}
