package hubapp

import (
	"fmt"
	"maps"
	"net/http"
	"strings"

	"github.com/caddyhub/caddyhub/spawners"
)

// profiles returns the spawner's profiles (spawners.OptionsSpawner), or none.
func (h *Hub) profiles() []spawners.Profile {
	if os, ok := h.spawner.(spawners.OptionsSpawner); ok {
		return os.Profiles()
	}
	return nil
}

// validateUserOptions checks a start request's user options against the spawner's options form
// (spawners.OptionsSpawner) and returns the ones to store and pass to Start. The profile is the
// named one (a string, or a one-element list from the spawn form), or the default one; an unknown
// profile or options the spawner refuses are a 400 refusal. Spawners without a form get opts as
// they are.
func (h *Hub) validateUserOptions(opts map[string]any) (map[string]any, error) {
	os, ok := h.spawner.(spawners.OptionsSpawner)
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
			return nil, &serverError{Status: http.StatusBadRequest, Msg: "profile must be a string"}
		}
		p, found := findProfile(profiles, name)
		if !found {
			names := make([]string, len(profiles))
			for i, p := range profiles {
				names[i] = p.Name
			}
			return nil, &serverError{Status: http.StatusBadRequest, Msg: fmt.Sprintf(
				"No such profile: %q. Choose one of: %s", name, strings.Join(names, ", "))}
		}
		opts["profile"] = p.Name
	}
	out, err := os.ValidateUserOptions(opts)
	if err != nil {
		return nil, &serverError{Status: http.StatusBadRequest, Msg: "Invalid user options: " + err.Error()}
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
