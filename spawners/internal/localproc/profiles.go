package localproc

import (
	"fmt"
	"maps"
	"regexp"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddyhub/caddyhub/spawners"
)

// Profile is one choice of the spawn form of a local spawner (KubeSpawner's profile_list entry with
// its kubespawner_override): a name shown on the spawn page and the options it overrides. Unset
// fields keep the spawner's own values.
type Profile struct {
	// ProfileInfo: slug (letters, digits, '-', '_' and '.'), display_name, description, default.
	spawners.ProfileInfo
	// Cmd replaces the spawner's cmd. Default: cmd.
	Cmd []string `json:"cmd,omitempty"`
	// Args replace the spawner's args. Default: args.
	Args []string `json:"args,omitempty"`
	// Environment is merged over the spawner's environment (a name set here wins). Placeholders
	// and ~ as for environment. Default: none.
	Environment map[string]string `json:"environment,omitempty"`
	// DefaultURL replaces default_url. Default: default_url.
	DefaultURL string `json:"default_url,omitempty"`
	// MemLimit replaces mem_limit (MEM_LIMIT; bytes, or with a K, M, G or T suffix). Default:
	// mem_limit.
	MemLimit string `json:"mem_limit,omitempty"`
	// CPULimit replaces cpu_limit (CPU_LIMIT), in cores. Default: cpu_limit.
	CPULimit float64 `json:"cpu_limit,omitempty"`

	// opts are the spawner's options with this profile's overrides, provisioned.
	opts *spawners.Options
}

var slugRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ProvisionProfiles validates the profiles and works out each one's options: common (the
// spawner's provisioned shared options) with the profile's overrides. It does no I/O.
func (o *ProcessOptions) ProvisionProfiles(common *spawners.Options) error {
	seen := map[string]bool{}
	defaults := 0
	for i := range o.ProfileList {
		p := &o.ProfileList[i]
		if !slugRE.MatchString(p.Slug) {
			return fmt.Errorf("profile %d: slug %q: use letters, digits, '-', '_' and '.'", i, p.Slug)
		}
		if seen[p.Slug] {
			return fmt.Errorf("profile %q is defined twice", p.Slug)
		}
		seen[p.Slug] = true
		if p.Default {
			defaults++
		}
		eff := *common
		eff.Environment = maps.Clone(common.Environment)
		if len(p.Cmd) > 0 {
			eff.Cmd = p.Cmd
		}
		if len(p.Args) > 0 {
			eff.Args = p.Args
		}
		if len(p.Environment) > 0 {
			if eff.Environment == nil {
				eff.Environment = make(map[string]string, len(p.Environment))
			}
			maps.Copy(eff.Environment, p.Environment)
		}
		if p.DefaultURL != "" {
			eff.DefaultURL = p.DefaultURL
		}
		if p.MemLimit != "" {
			eff.MemLimit = p.MemLimit
		}
		if p.CPULimit != 0 {
			eff.CPULimit = p.CPULimit
		}
		if err := eff.Provision(); err != nil {
			return fmt.Errorf("profile %q: %w", p.Slug, err)
		}
		p.opts = &eff
	}
	if defaults > 1 {
		return fmt.Errorf("profiles: %d are marked default, at most one may be", defaults)
	}
	return nil
}

// Profiles returns the spawn page's choices (spawners.OptionsSpawner); none without profiles.
func (o *ProcessOptions) Profiles() []spawners.Profile {
	out := make([]spawners.Profile, len(o.ProfileList))
	for i, p := range o.ProfileList {
		out[i] = p.Profile()
	}
	return out
}

// profileFor finds the profile named by opts["profile"] (a string, or a list of one string from a
// form), or the default one (marked, else the first) when it names none; nil when there are no
// profiles. Its errors are for the user.
func (o *ProcessOptions) profileFor(opts map[string]any) (*Profile, error) {
	raw, named := opts["profile"]
	if list, ok := raw.([]any); ok && len(list) == 1 {
		raw = list[0]
	}
	if list, ok := raw.([]string); ok && len(list) == 1 {
		raw = list[0]
	}
	name := ""
	if named && raw != nil {
		s, ok := raw.(string)
		if !ok {
			return nil, fmt.Errorf("the profile option must be the name of one profile, got %v", raw)
		}
		name = s
	}
	if len(o.ProfileList) == 0 {
		if name != "" {
			return nil, fmt.Errorf("there are no profiles to choose from, got profile %q", name)
		}
		return nil, nil
	}
	for i := range o.ProfileList {
		if p := &o.ProfileList[i]; (name == "" && p.Default) || (name != "" && p.Slug == name) {
			return p, nil
		}
	}
	if name == "" {
		return &o.ProfileList[0], nil
	}
	slugs := make([]string, len(o.ProfileList))
	for i, p := range o.ProfileList {
		slugs[i] = p.Slug
	}
	return nil, fmt.Errorf("unknown profile %q; choose one of: %s", name, strings.Join(slugs, ", "))
}

// ValidateUserOptions checks a start's user options (spawners.OptionsSpawner). With profiles the
// only option is "profile", which must name one of them (the default one when absent): any other
// option is refused, so a request cannot carry a value no profile offers; it returns
// {"profile": "<slug>"}. Without profiles a "profile" option is refused and the others are
// returned as they came (the local spawners do not read them).
func (o *ProcessOptions) ValidateUserOptions(options map[string]any) (map[string]any, error) {
	p, err := o.profileFor(options)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return options, nil
	}
	for k := range options {
		if k != "profile" {
			return nil, fmt.Errorf("unknown option %q: the only option is profile", k)
		}
	}
	return map[string]any{"profile": p.Slug}, nil
}

// OptionsFor returns the options a start with these user options runs with: common with the
// chosen profile's overrides (the default profile when none is named), or common itself when there
// are no profiles. A profile that is not (or no longer) offered is an error for the user.
func (o *ProcessOptions) OptionsFor(common *spawners.Options, userOptions map[string]any) (*spawners.Options, error) {
	p, err := o.profileFor(userOptions)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return common, nil
	}
	if p.opts == nil {
		return nil, fmt.Errorf("profile %q is not provisioned", p.Slug)
	}
	return p.opts, nil
}

// unmarshalProfile parses one `profile <slug> { ... }` block, the dispenser at "profile":
//
//	profile <slug> {
//		display_name <text>
//		description <text>
//		default
//		cmd <command> [<args>...]
//		args <args>...                 (repeatable, appends)
//		environment <name> <value>     (repeatable)
//		default_url <url>
//		mem_limit <size>
//		cpu_limit <cores>
//	}
func (o *ProcessOptions) unmarshalProfile(d *caddyfile.Dispenser) error {
	var p Profile
	if !d.AllArgs(&p.Slug) {
		return d.Errf("profile: want <slug> { display_name|description|cmd|args|environment|default_url|mem_limit|cpu_limit ...; default }")
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if handled, err := p.ProfileInfo.UnmarshalOption(d); handled {
			if err != nil {
				return err
			}
			continue
		}
		name := d.Val()
		switch name {
		case "cmd", "args":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("profile %s: %s needs at least one value", p.Slug, name)
			}
			if name == "cmd" {
				p.Cmd = args
			} else {
				p.Args = append(p.Args, args...)
			}
		case "environment":
			var k, v string
			if !d.AllArgs(&k, &v) {
				return d.Errf("profile %s: environment wants <name> <value>", p.Slug)
			}
			if err := spawners.CheckEnvName(k); err != nil {
				return d.Errf("profile %s: environment: %v", p.Slug, err)
			}
			if p.Environment == nil {
				p.Environment = map[string]string{}
			}
			p.Environment[k] = v
		case "default_url":
			if !d.AllArgs(&p.DefaultURL) {
				return d.Errf("profile %s: default_url wants one value", p.Slug)
			}
		case "mem_limit", "cpu_limit":
			if _, err := spawners.UnmarshalProfileLimit(d, p.Slug, &p.MemLimit, &p.CPULimit); err != nil {
				return err
			}
		default:
			return d.Errf("profile %s: unrecognized option %q", p.Slug, name)
		}
	}
	o.ProfileList = append(o.ProfileList, p)
	return nil
}
