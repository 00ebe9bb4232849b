package docker

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddyhub/caddyhub/spawners"
)

// Profile is one choice of the spawn form (KubeSpawner's profile_list; DockerSpawner's
// allowed_images as a map of names to images): a named image and limits the user picks on the
// spawn page or in the API request ({"profile": "<slug>"}). Unset fields keep the spawner's values.
type Profile struct {
	// ProfileInfo: slug (letters, digits, '-', '_' and '.'), display_name, description, default.
	spawners.ProfileInfo
	// Image replaces the spawner's image. Default: image.
	Image string `json:"image,omitempty"`
	// MemLimit replaces mem_limit (bytes, or with a K, M, G or T suffix). Default: mem_limit.
	MemLimit string `json:"mem_limit,omitempty"`
	// CPULimit replaces cpu_limit, in cores. Default: cpu_limit.
	CPULimit float64 `json:"cpu_limit,omitempty"`

	memLimit int64
}

var slugRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// setupProfiles validates the profiles; no I/O.
func (s *Spawner) setupProfiles() error {
	seen := map[string]bool{}
	defaults := 0
	for i := range s.ProfileList {
		p := &s.ProfileList[i]
		if !slugRE.MatchString(p.Slug) {
			return fmt.Errorf("spawner docker: profile %d: slug %q: want letters, digits, '-', '_' and '.'", i, p.Slug)
		}
		if seen[p.Slug] {
			return fmt.Errorf("spawner docker: profile %q is defined twice", p.Slug)
		}
		seen[p.Slug] = true
		if p.Default {
			defaults++
		}
		if p.Image != "" && strings.ContainsAny(p.Image, " \t\n\x00") {
			return fmt.Errorf("spawner docker: profile %q: %q is not an image reference", p.Slug, p.Image)
		}
		if p.MemLimit != "" {
			n, err := spawners.ParseByteSize(p.MemLimit)
			if err != nil {
				return fmt.Errorf("spawner docker: profile %q: mem_limit: %w", p.Slug, err)
			}
			p.memLimit = n
		}
		if p.CPULimit < 0 || math.IsNaN(p.CPULimit) || math.IsInf(p.CPULimit, 0) {
			return fmt.Errorf("spawner docker: profile %q: cpu_limit: %v is not a positive number of cores", p.Slug, p.CPULimit)
		}
	}
	if defaults > 1 {
		return fmt.Errorf("spawner docker: %d profiles are marked default; mark at most one", defaults)
	}
	return nil
}

// Profiles returns the spawn form's choices (spawners.OptionsSpawner).
func (s *Spawner) Profiles() []spawners.Profile {
	out := make([]spawners.Profile, len(s.ProfileList))
	for i, p := range s.ProfileList {
		out[i] = p.Profile()
		if p.Image != "" && p.Description == "" {
			out[i].Description = "Image " + p.Image
		}
	}
	return out
}

// choice is what one start runs: the image and the limits, after the user's options.
type choice struct {
	image    string
	profile  string
	memLimit int64
	cpuLimit float64
}

// oneString reads an option that is a string or a list of one string (an HTML form's field).
func oneString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case []any:
		if len(x) == 1 {
			s, ok := x[0].(string)
			return s, ok
		}
	case []string:
		if len(x) == 1 {
			return x[0], true
		}
	}
	return "", false
}

// choose applies the user options "profile" and "image" to the spawner's image and limits. The
// profile must be one of profiles (the default one when none is named); the image option, when
// set, must be one of allowed_images and wins over the profile's image. Its errors are for the
// user.
func (s *Spawner) choose(opts map[string]any) (choice, error) {
	c := choice{image: s.Image, memLimit: s.memLimit, cpuLimit: s.CPULimit}
	if len(s.ProfileList) > 0 {
		name := ""
		if v, ok := opts["profile"]; ok && v != nil {
			n, ok := oneString(v)
			if !ok {
				return c, fmt.Errorf("the profile option must be the name of one profile, got %v", v)
			}
			name = n
		}
		var p *Profile
		for i := range s.ProfileList {
			q := &s.ProfileList[i]
			if (name == "" && q.Default) || (name != "" && q.Slug == name) {
				p = q
				break
			}
		}
		if p == nil && name == "" {
			p = &s.ProfileList[0]
		}
		if p == nil {
			slugs := make([]string, len(s.ProfileList))
			for i, q := range s.ProfileList {
				slugs[i] = q.Slug
			}
			return c, fmt.Errorf("no such profile: %q; choose one of: %s", name, strings.Join(slugs, ", "))
		}
		c.profile = p.Slug
		if p.Image != "" {
			c.image = p.Image
		}
		if p.MemLimit != "" {
			c.memLimit = p.memLimit
		}
		if p.CPULimit > 0 {
			c.cpuLimit = p.CPULimit
		}
	}
	v, ok := opts["image"]
	if !ok || v == nil {
		return c, nil
	}
	want, ok := oneString(v)
	if !ok || want == "" {
		return c, fmt.Errorf("the image option must be the name of one image, got %v", v)
	}
	if want == c.image && len(s.AllowedImages) == 0 {
		return c, nil
	}
	if !slices.Contains(s.AllowedImages, want) {
		if len(s.AllowedImages) == 0 {
			return c, fmt.Errorf("image %q is not allowed: this hub runs %s for everyone", want, c.image)
		}
		return c, fmt.Errorf("image %q is not allowed; choose one of: %s", want, strings.Join(s.AllowedImages, ", "))
	}
	c.image = want
	return c, nil
}

// ImageFor returns the image a start with these user options runs (see choose). An image the user
// may not pick is an error whose text is for the user.
func (s *Spawner) ImageFor(userOptions map[string]any) (string, error) {
	c, err := s.choose(userOptions)
	return c.image, err
}

// ValidateUserOptions checks the options of a start request (spawners.OptionsSpawner) and returns
// them normalized: "profile" and "image" as plain strings, the other options as they came (this
// spawner does not read them). A profile or image the user may not pick is refused with a
// sentence for the user.
func (s *Spawner) ValidateUserOptions(userOptions map[string]any) (map[string]any, error) {
	c, err := s.choose(userOptions)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(userOptions))
	for k, v := range userOptions {
		out[k] = v
	}
	if c.profile != "" {
		out["profile"] = c.profile
	}
	if v, ok := userOptions["image"]; ok && v != nil {
		out["image"] = c.image
	}
	return out, nil
}

// unmarshalProfile parses `profile <slug> { ... }`, the dispenser at "profile".
func (s *Spawner) unmarshalProfile(d *caddyfile.Dispenser) error {
	var p Profile
	if !d.AllArgs(&p.Slug) {
		return d.Errf("profile: want <slug> { display_name|description|image|mem_limit|cpu_limit <value>; default }")
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if handled, err := p.ProfileInfo.UnmarshalOption(d); handled {
			if err != nil {
				return err
			}
			continue
		}
		if handled, err := spawners.UnmarshalProfileLimit(d, p.Slug, &p.MemLimit, &p.CPULimit); handled {
			if err != nil {
				return err
			}
			continue
		}
		if name := d.Val(); name != "image" {
			return d.Errf("profile %s: unrecognized option %q", p.Slug, name)
		}
		if !d.AllArgs(&p.Image) {
			return d.Errf("profile %s: image wants one value", p.Slug)
		}
	}
	s.ProfileList = append(s.ProfileList, p)
	return nil
}

// RunsElsewhere reports whether the servers run outside the hub's network namespace
// (spawners.RemoteSpawner): true on a bridge or other engine network, where 127.0.0.1 inside the
// container is the container itself and the server cannot reach a hub API on loopback; false with
// network host. The hub reaches the servers on 127.0.0.1 either way (ports are published there),
// so only the hub's address given to the servers matters.
func (s *Spawner) RunsElsewhere() bool { return s.Network != "host" }

var (
	_ spawners.OptionsSpawner = (*Spawner)(nil)
	_ spawners.RemoteSpawner  = (*Spawner)(nil)
)
