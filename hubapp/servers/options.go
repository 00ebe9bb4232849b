package servers

import (
	"fmt"
	"maps"
	"strings"

	"github.com/caddyhub/caddyhub/spawners"
)

// Profiles returns the spawner's profiles (spawners.OptionsSpawner), or none.
func (e *Engine) Profiles() []spawners.Profile {
	if os, ok := e.spawner.(spawners.OptionsSpawner); ok {
		return os.Profiles()
	}
	return nil
}

// ValidateUserOptions checks a start request's user options against the spawner's options form
// (spawners.OptionsSpawner) and returns the ones to store and pass to Start. The profile is the
// named one (a string, or a one-element list from the spawn form), or the default one; an unknown
// profile or options the spawner refuses are an Invalid refusal. Spawners without a form get opts
// as they are.
func (e *Engine) ValidateUserOptions(opts map[string]any) (map[string]any, error) {
	os, ok := e.spawner.(spawners.OptionsSpawner)
	if !ok {
		return opts, nil
	}
	opts = maps.Clone(opts)
	if profiles := os.Profiles(); len(profiles) > 0 {
		if opts == nil {
			opts = map[string]any{}
		}
		name, ok := profileName(opts["profile"])
		if !ok {
			return nil, refuse(Invalid, "profile must be a string")
		}
		p, found := findProfile(profiles, name)
		if !found {
			names := make([]string, len(profiles))
			for i, p := range profiles {
				names[i] = p.Name
			}
			return nil, refuse(Invalid, fmt.Sprintf("No such profile: %q. Choose one of: %s", name, strings.Join(names, ", ")))
		}
		opts["profile"] = p.Name
	}
	out, err := os.ValidateUserOptions(opts)
	if err != nil {
		return nil, refuse(Invalid, "Invalid user options: "+err.Error())
	}
	return out, nil
}

// profileName reads the "profile" option: absent or "" (the default), a string, or a list of one
// string (a form field).
func profileName(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case []string:
		if len(x) == 1 {
			return x[0], true
		}
	case []any:
		if len(x) == 1 {
			s, ok := x[0].(string)
			return s, ok
		}
	}
	return "", false
}

// findProfile finds the named profile, or the default one (marked, else the first) for "".
func findProfile(profiles []spawners.Profile, name string) (spawners.Profile, bool) {
	for _, p := range profiles {
		if (name == "" && p.Default) || (name != "" && p.Name == name) {
			return p, true
		}
	}
	if name == "" {
		return profiles[0], true
	}
	return spawners.Profile{}, false
}

// DefaultProfile is the profile a start without one gets: the one marked default, else the first.
// list must not be empty.
func DefaultProfile(list []spawners.Profile) spawners.Profile {
	p, _ := findProfile(list, "")
	return p
}
