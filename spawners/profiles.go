package spawners

import (
	"math"
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// ProfileInfo is what every spawner's profile says about itself: its name in user options, its
// label and sentence on the spawn page, and whether it is the default. Spawners that offer
// profiles embed it in their own profile type, beside the settings a profile overrides, so that in
// JSON these fields sit at the top level of each profile object.
type ProfileInfo struct {
	// Slug identifies the profile in user options ({"profile": "<slug>"}); unique, not empty. Each
	// spawner says which characters it allows. Required.
	Slug string `json:"slug"`
	// DisplayName is the label on the spawn page. Default: the slug.
	DisplayName string `json:"display_name,omitempty"`
	// Description is a sentence under the label. Default: none.
	Description string `json:"description,omitempty"`
	// Default marks the profile used when the user names none (at most one). Default: the first
	// profile.
	Default bool `json:"default,omitempty"`
}

// Profile returns the profile as the spawn page shows it (spawners.OptionsSpawner).
func (p ProfileInfo) Profile() Profile {
	out := Profile{Name: p.Slug, DisplayName: p.DisplayName, Description: p.Description, Default: p.Default}
	if out.DisplayName == "" {
		out.DisplayName = p.Slug
	}
	return out
}

// UnmarshalOption parses one line of a `profile <slug> { ... }` block that belongs to
// ProfileInfo, the dispenser at the option's name; handled is false for other names:
//
//	display_name <text>
//	description <text>
//	default
func (p *ProfileInfo) UnmarshalOption(d *caddyfile.Dispenser) (handled bool, err error) {
	switch name := d.Val(); name {
	case "default":
		if d.NextArg() {
			return true, d.Errf("profile %s: default takes no argument", p.Slug)
		}
		p.Default = true
	case "display_name", "description":
		var v string
		if !d.AllArgs(&v) {
			return true, d.Errf("profile %s: %s wants one value", p.Slug, name)
		}
		if name == "display_name" {
			p.DisplayName = v
		} else {
			p.Description = v
		}
	default:
		return false, nil
	}
	return true, nil
}

// UnmarshalProfileLimit parses one `mem_limit <size>` or `cpu_limit <cores>` line of the profile
// slug's block into mem or cpu, the dispenser at the option's name; handled is false for other
// names. A size is bytes or a number with a K, M, G or T suffix (ParseByteSize); cores are a
// number not below zero.
func UnmarshalProfileLimit(d *caddyfile.Dispenser, slug string, mem *string, cpu *float64) (handled bool, err error) {
	name := d.Val()
	if name != "mem_limit" && name != "cpu_limit" {
		return false, nil
	}
	var v string
	if !d.AllArgs(&v) {
		return true, d.Errf("profile %s: %s wants one value", slug, name)
	}
	if name == "mem_limit" {
		if _, err := ParseByteSize(v); err != nil {
			return true, d.Errf("profile %s: mem_limit: %v", slug, err)
		}
		*mem = v
		return true, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return true, d.Errf("profile %s: cpu_limit: %q is not a positive number of cores", slug, v)
	}
	*cpu = f
	return true, nil
}
