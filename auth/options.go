package auth

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// maxUsernameBytes bounds a username. Names end up in URLs
// (/user/<name>/), cookie paths, database keys and, with PAM and the
// local-process spawner, system account names; 255 bytes is what most
// file systems allow for a home directory's name.
const maxUsernameBytes = 255

// Options are the settings every authenticator shares, with the names and
// meaning of JupyterHub's Authenticator traits (docs/protocols.md, "Authenticator options").
// Authenticator modules embed Options as an anonymous field, so that these
// keys sit at the top level of the module's JSON and in its Caddyfile block,
// and call Provision from their own Provision.
//
// Who may log in follows JupyterHub 5 (auth.py get_authenticated_user, and
// app.py, which adds admin_users to the allowed set):
//
//  1. The name is normalized and validated (Normalize).
//  2. A name in blocked_users is refused, even if it is an admin.
//  3. A name in admin_users is allowed, and is an admin.
//  4. With allow_all, every other name is allowed.
//  5. Otherwise only names in allowed_users are (or names the authenticator
//     itself allows, such as members of the PAM allowed_groups).
//
// With nothing configured nobody but admins can log in, as in JupyterHub 5;
// StartupWarning says so in the log. (The dummy authenticator, like
// JupyterHub's DummyAuthenticator, turns allow_all on when allowed_users is
// empty.)
type Options struct {
	// Users who may log in, in addition to admin_users. Names are
	// normalized like typed usernames before they are compared. Default:
	// empty.
	AllowedUsers []string `json:"allowed_users,omitempty"`

	// Users who are admins of the hub. They may always log in, unless they
	// are also in blocked_users. Like JupyterHub, this list only grants the
	// admin flag at login; removing a name does not take it away from a
	// user the hub already knows. Default: empty.
	AdminUsers []string `json:"admin_users,omitempty"`

	// Users who may never log in, whatever the other options say; this wins
	// over admin_users. Default: empty.
	BlockedUsers []string `json:"blocked_users,omitempty"`

	// Allow every user who authenticates successfully, not only those in
	// allowed_users. Default: false (JupyterHub 5), except for the dummy
	// authenticator, which turns it on when allowed_users is empty.
	AllowAll bool `json:"allow_all,omitempty"`

	// Create a local system account (add_user_cmd, `useradd -m`) for users
	// added to the hub who have none, like JupyterHub's
	// LocalAuthenticator.create_system_users: users added through the API
	// (and so the admin panel), allowed_users and admin_users at start, and
	// a first login. The hub runs Options.EnsureSystemUser before it
	// records the user, so a failure leaves no hub user; it needs root.
	// Default: false.
	CreateSystemUsers bool `json:"create_system_users,omitempty"`

	// The command that creates a system account for create_system_users
	// (JupyterHub's LocalAuthenticator.add_user_cmd): USERNAME in any
	// argument is replaced by the user's name, and the name is appended as
	// the last argument. Default: ["useradd", "-m"].
	AddUserCmd []string `json:"add_user_cmd,omitempty"`

	// A regular expression (Go RE2 syntax) that every normalized username
	// must match, as a whole: it is anchored at both ends, unlike
	// JupyterHub's re.match, which anchors only the start. Names that do
	// not match are refused before any password check. Default: empty, any
	// valid name.
	UsernamePattern string `json:"username_pattern,omitempty"`

	// Maps the name a person logs in with to the name of their JupyterHub
	// user, applied after lower-casing (JupyterHub's username_map). Keys
	// and values are normalized. Default: empty.
	UsernameMap map[string]string `json:"username_map,omitempty"`

	// Declares that the deployment has allow configuration that the hub
	// cannot see, which silences the "nobody can log in" warning at start
	// (JupyterHub's any_allow_config). Authenticators with allow options
	// of their own (PAM allowed_groups) set it when those are used.
	// Default: false.
	AnyAllowConfig bool `json:"any_allow_config,omitempty"`

	// Filled by Provision.
	pattern     *regexp.Regexp
	usernameMap map[string]string
	allowed     map[string]struct{}
	admins      map[string]struct{}
	blocked     map[string]struct{}
	provisioned bool
}

// Grant is what an authenticator itself decides about a user beyond the
// common lists: membership of a group that allowed_groups or admin_groups
// name, a claim of an identity provider. Blocked users stay blocked.
type Grant struct {
	// Allowed lets the user in even if allowed_users does not name them.
	Allowed bool
	// Admin makes the user an admin (and therefore allowed).
	Admin bool
}

// NormalizeUsername is the normalization every username goes through,
// typed into the login form or written in the configuration: surrounding
// white space is trimmed and letters are lower-cased (JupyterHub's
// normalize_username). The result is validated: a name must be valid UTF-8,
// not empty, at most 255 bytes, without '/' or control characters, and
// must not start with '.' or '-' (so that it can never be a path segment
// like "..", a hidden home directory, or an option to a command such as
// useradd). Errors wrap ErrInvalidUsername and say what is wrong in words.
func NormalizeUsername(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", invalidUsername(strings.ToValidUTF8(name, "\uFFFD"), "it is not valid UTF-8")
	}
	name = strings.ToLower(strings.TrimSpace(name))
	switch {
	case name == "":
		return "", fmt.Errorf("%w: the username is empty", ErrInvalidUsername)
	case len(name) > maxUsernameBytes:
		return "", invalidUsername(name, fmt.Sprintf("it is longer than %d bytes", maxUsernameBytes))
	case strings.ContainsRune(name, '/'):
		return "", invalidUsername(name, "it must not contain '/'")
	case strings.ContainsFunc(name, unicode.IsControl):
		return "", invalidUsername(name, "it must not contain control characters")
	case name[0] == '.':
		return "", invalidUsername(name, "it must not start with '.'")
	case name[0] == '-':
		return "", invalidUsername(name, "it must not start with '-'")
	}
	return name, nil
}

// invalidUsername builds an ErrInvalidUsername error that quotes a
// shortened form of the name, so that logs and pages stay readable.
func invalidUsername(name, why string) error {
	return fmt.Errorf("%w %q: %s", ErrInvalidUsername, Truncate(name, 32), why)
}

// Truncate shortens s to at most n runes, marking a cut with "…". Use it
// for usernames of failed logins in logs (STYLE.md).
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// Provision normalizes and validates the options and builds the lookup sets
// that Authorize uses. It does no I/O. Every authenticator module calls it
// from its own Provision. The exported fields keep what was configured.
func (o *Options) Provision() error {
	o.pattern = nil
	if o.UsernamePattern != "" {
		re, err := regexp.Compile(`^(?:` + o.UsernamePattern + `)$`)
		if err != nil {
			return fmt.Errorf("username_pattern: %w", err)
		}
		o.pattern = re
	}
	o.usernameMap = make(map[string]string, len(o.UsernameMap))
	for from, to := range o.UsernameMap {
		nf, err := NormalizeUsername(from)
		if err != nil {
			return fmt.Errorf("username_map: key: %w", err)
		}
		nt, err := NormalizeUsername(to)
		if err != nil {
			return fmt.Errorf("username_map: value for %q: %w", nf, err)
		}
		o.usernameMap[nf] = nt
	}
	var err error
	if o.allowed, err = o.nameSet("allowed_users", o.AllowedUsers, true); err != nil {
		return err
	}
	if o.admins, err = o.nameSet("admin_users", o.AdminUsers, true); err != nil {
		return err
	}
	// A blocked name that would never pass username_pattern is harmless;
	// don't make the operator remove it.
	if o.blocked, err = o.nameSet("blocked_users", o.BlockedUsers, false); err != nil {
		return err
	}
	o.provisioned = true
	return nil
}

func (o *Options) nameSet(option string, names []string, checkPattern bool) (map[string]struct{}, error) {
	set := make(map[string]struct{}, len(names))
	for _, n := range names {
		norm, err := o.normalize(n, checkPattern)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", option, err)
		}
		set[norm] = struct{}{}
	}
	return set, nil
}

// Normalize turns a name as typed or as returned by an identity provider
// into the JupyterHub user name: NormalizeUsername, then username_map, then
// the username_pattern check. Errors wrap ErrInvalidUsername. Call
// Provision first.
func (o *Options) Normalize(name string) (string, error) {
	return o.normalize(name, true)
}

func (o *Options) normalize(name string, checkPattern bool) (string, error) {
	n, err := NormalizeUsername(name)
	if err != nil {
		return "", err
	}
	if mapped, ok := o.usernameMap[n]; ok {
		n = mapped
	}
	if checkPattern && o.pattern != nil && !o.pattern.MatchString(n) {
		return "", invalidUsername(n, "it does not match the username_pattern of this hub")
	}
	return n, nil
}

// Authorize applies the allow/admin/block policy to a normalized name (the
// order is in the Options documentation). It returns whether the user is an
// admin, or an error wrapping ErrNotAllowed that says why.
func (o *Options) Authorize(name string) (admin bool, err error) {
	return o.AuthorizeWith(name, Grant{})
}

// AuthorizeWith is Authorize for authenticators that grant access or admin
// rights of their own (groups, claims); blocked_users still wins.
func (o *Options) AuthorizeWith(name string, g Grant) (admin bool, err error) {
	if o.contains(o.blocked, o.BlockedUsers, name) {
		return false, fmt.Errorf("%w: %q is in blocked_users", ErrNotAllowed, Truncate(name, 32))
	}
	admin = g.Admin || o.contains(o.admins, o.AdminUsers, name)
	if admin || g.Allowed || o.AllowAll || o.contains(o.allowed, o.AllowedUsers, name) {
		return admin, nil
	}
	if len(o.AllowedUsers) == 0 {
		return false, fmt.Errorf("%w: %q: the hub allows no users besides admin_users (set allow_all or allowed_users)",
			ErrNotAllowed, Truncate(name, 32))
	}
	return false, fmt.Errorf("%w: %q is not in allowed_users", ErrNotAllowed, Truncate(name, 32))
}

// contains looks name up in the set built by Provision, or in the raw list
// if Provision has not run (tests, tools).
func (o *Options) contains(set map[string]struct{}, list []string, name string) bool {
	if o.provisioned {
		_, ok := set[name]
		return ok
	}
	return slices.Contains(list, name)
}

// StartupWarning returns "" or sentences for the log at start: when nobody
// (or only admins) can log in, and when admin_users are blocked. Call
// Provision first.
func (o *Options) StartupWarning() string {
	var w []string
	switch {
	case o.AllowAll || len(o.AllowedUsers) > 0 || o.AnyAllowConfig:
	case len(o.AdminUsers) == 0:
		w = append(w, "No allow configuration found, so nobody can log in to this hub: "+
			"set allow_all, allowed_users or admin_users in the authenticator block.")
	default:
		w = append(w, "Only admin_users can log in to this hub: set allow_all or allowed_users to let others in.")
	}
	var blockedAdmins []string
	for name := range o.admins {
		if _, ok := o.blocked[name]; ok {
			blockedAdmins = append(blockedAdmins, name)
		}
	}
	if len(blockedAdmins) > 0 {
		sort.Strings(blockedAdmins)
		w = append(w, fmt.Sprintf("These admin_users are also in blocked_users and cannot log in: %s.",
			strings.Join(blockedAdmins, ", ")))
	}
	return strings.Join(w, " ")
}

// UnmarshalOption parses one common sub-option line inside an
// authenticator's Caddyfile block, with the dispenser on the option's name.
// It reports handled=false, and consumes nothing, for names it does not
// know, so the module can try its own options. The syntax:
//
//	allowed_users <name...>        (repeatable; lists add up)
//	admin_users   <name...>
//	blocked_users <name...>
//	allow_all [true|false]
//	create_system_users [true|false]
//	add_user_cmd <program> [args...]  (USERNAME is replaced; the name is appended)
//	any_allow_config [true|false]
//	username_pattern <regexp>
//	username_map <from> <to>       (repeatable)
func (o *Options) UnmarshalOption(d *caddyfile.Dispenser) (handled bool, err error) {
	switch opt := d.Val(); opt {
	case "allowed_users", "admin_users", "blocked_users":
		names := d.RemainingArgs()
		if len(names) == 0 {
			return true, d.Errf("%s needs at least one username", opt)
		}
		switch opt {
		case "allowed_users":
			o.AllowedUsers = append(o.AllowedUsers, names...)
		case "admin_users":
			o.AdminUsers = append(o.AdminUsers, names...)
		default:
			o.BlockedUsers = append(o.BlockedUsers, names...)
		}
	case "allow_all", "create_system_users", "any_allow_config":
		v, err := ParseFlag(d)
		if err != nil {
			return true, err
		}
		switch opt {
		case "allow_all":
			o.AllowAll = v
		case "create_system_users":
			o.CreateSystemUsers = v
		default:
			o.AnyAllowConfig = v
		}
	case "add_user_cmd":
		if o.AddUserCmd = d.RemainingArgs(); len(o.AddUserCmd) == 0 {
			return true, d.Errf("add_user_cmd needs a program, e.g. add_user_cmd useradd -m")
		}
	case "username_pattern":
		if !d.NextArg() {
			return true, d.ArgErr()
		}
		o.UsernamePattern = d.Val()
		if d.NextArg() {
			return true, d.ArgErr()
		}
	case "username_map":
		args := d.RemainingArgs()
		if len(args) != 2 {
			return true, d.Errf("username_map needs exactly two arguments, <from> <to>; got %d", len(args))
		}
		if o.UsernameMap == nil {
			o.UsernameMap = make(map[string]string)
		}
		o.UsernameMap[args[0]] = args[1]
	default:
		return false, nil
	}
	return true, nil
}

// ParseFlag parses the optional argument of a boolean sub-option with the
// dispenser on the option's name: no argument means true, otherwise
// true/false (anything strconv.ParseBool accepts).
func ParseFlag(d *caddyfile.Dispenser) (bool, error) {
	opt := d.Val()
	if !d.NextArg() {
		return true, nil
	}
	v, err := strconv.ParseBool(d.Val())
	if err != nil {
		return false, d.Errf("%s: want true or false, got %q", opt, d.Val())
	}
	if d.NextArg() {
		return false, d.ArgErr()
	}
	return v, nil
}
