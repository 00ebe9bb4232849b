package kubernetes

import (
	"fmt"

	"github.com/caddyhub/caddyhub/spawners"
)

// Profiles are the profile choices the spawn page shows (KubeSpawner's profile_list): each
// profile's slug, display name, description and default mark. None when no profile is configured.
func (s *Spawner) Profiles() []spawners.Profile {
	out := make([]spawners.Profile, 0, len(s.Config.Profiles))
	for _, p := range s.Config.Profiles {
		out = append(out, p.Profile())
	}
	return out
}

// ValidateUserOptions checks a start's user options on the server: the only option is "profile",
// which must name a configured profile (the default one when absent); any other option is refused,
// so that a request cannot smuggle settings the form does not offer. It returns the options to store
// and start with: {"profile": "<slug>"}, or none when no profile is configured.
func (s *Spawner) ValidateUserOptions(options map[string]any) (map[string]any, error) {
	for k := range options {
		if k != "profile" {
			return nil, fmt.Errorf("unknown option %q: the only option is profile", k)
		}
	}
	p, err := s.profileFor(options)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return map[string]any{}, nil
	}
	return map[string]any{"profile": p.Slug}, nil
}
