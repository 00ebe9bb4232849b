// Package docker is the jupyterhub.spawners.docker module, JupyterHub's
// DockerSpawner built in: each user's server runs in its own container on a
// Docker Engine API (dockerd, or Podman's Docker-compatible service), with
// the memory and CPU limits enforced by the engine. It talks to the engine
// with the official Docker client and negotiates the API version, so both
// engines work.
//
// Containers carry labels (org.caddyhub.hub, .user, .server) so that a
// restarted hub finds the ones it started: the hub polls the State it
// stored (the container's ID) and adopts the running ones, and Orphans
// lists labelled containers no record claims. Containers without this
// hub's labels are never stopped or removed.
package docker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/spawners"
)

func init() {
	caddy.RegisterModule(Spawner{})
}

// Defaults of the docker spawner's own options.
const (
	// DefaultImage is the image run when image is not set: JupyterHub's
	// single-user image (DockerSpawner's default).
	DefaultImage = "quay.io/jupyterhub/singleuser:latest"
	// DefaultNameTemplate names the container of a default server; a named
	// server gets "--{servername}" appended unless the template uses
	// {servername} itself.
	DefaultNameTemplate = "jupyter-{username}"
	// DefaultContainerPort is the port the server listens on inside its
	// container (not on host networking).
	DefaultContainerPort = 8888
	// DefaultHubID is the value of the org.caddyhub.hub label.
	DefaultHubID = "caddyhub"
)

// Pull policies.
const (
	PullAlways       = "always"
	PullIfNotPresent = "if-not-present"
	PullNever        = "never"
)

// Labels put on every container and named volume the spawner creates.
const (
	LabelHub    = "org.caddyhub.hub"
	LabelUser   = "org.caddyhub.user"
	LabelServer = "org.caddyhub.server"
	// LabelImage names the image a container was created for (with remove
	// false, a container runs an image that keeps its predecessor's files).
	LabelImage = "org.caddyhub.image"
)

// Spawner runs each server in a container. The shared options apply with
// these differences: cmd unset means the image's own command (args are then
// appended to it); mem_limit and cpu_limit are enforced by the engine. No
// variable of the hub's own environment is passed on (the hub's PATH means
// nothing inside an image). Its own ip, port and term_timeout say where
// ports are published and how long a stop waits.
type Spawner struct {
	spawners.Options

	// Host is the engine's API address, e.g. unix:///run/podman/podman.sock
	// or tcp://10.0.0.5:2376. Default: $DOCKER_HOST, else
	// unix:///var/run/docker.sock. TLS settings come from DOCKER_TLS_VERIFY
	// and DOCKER_CERT_PATH as for the docker CLI.
	Host string `json:"host,omitempty"`

	// Image is the image a server runs unless the user picks one of
	// allowed_images. Default: quay.io/jupyterhub/singleuser:latest.
	Image string `json:"image,omitempty"`

	// AllowedImages lists the images a user may pick with the user option
	// "image" (spawn form or API body). The hub checks the choice: any
	// other image is refused. Empty: users cannot pick; image is used.
	// Default: empty.
	AllowedImages []string `json:"allowed_images,omitempty"`

	// PullPolicy says when to pull the image: "always" (at every start),
	// "if-not-present" (when the engine does not have it) or "never" (a
	// missing image fails the start). Default: if-not-present.
	PullPolicy string `json:"pull_policy,omitempty"`

	// Network is the network the container joins: "host" (the server
	// listens on the host's ip and port), or the name of an engine network
	// ("bridge", a user-defined network). The server must reach the hub's
	// API from there: set the hub's hub_connect_url to an address the
	// container can reach. Default: the engine's default network.
	Network string `json:"network,omitempty"`

	// UseInternalIP makes the hub connect to the container's address on its
	// network instead of publishing a port on the host; for a hub that runs
	// on the same network itself. Default: false.
	UseInternalIP bool `json:"use_internal_ip,omitempty"`

	// ContainerPort is the port the server listens on inside its container
	// (ignored on host networking). Default: 8888.
	ContainerPort int `json:"container_port,omitempty"`

	// Volumes are mounted into every container. {username} and
	// {servername} in source and target are replaced by the escaped names
	// (letters and digits kept, any other byte as -xx in hex). A source that
	// is not an absolute path is a named volume: created with the hub's
	// labels if missing and kept when the container is removed, so a
	// volume "jupyterhub-user-{username}" holds a user's files across
	// servers. Default: none.
	Volumes []Volume `json:"volumes,omitempty"`

	// ExtraCreateArgs are merged into the create request, as the engine's
	// API spells them: {"config": {...}, "host_config": {...}}, e.g.
	// {"host_config": {"ShmSize": 268435456, "Init": true}}. Fields given
	// here replace the spawner's; the org.caddyhub labels cannot be
	// replaced. Default: none.
	ExtraCreateArgs json.RawMessage `json:"extra_create_args,omitempty"`

	// Remove removes the container when its server stops. With false the
	// stopped container stays (for its logs) until the server's next start,
	// which replaces it: the API token in its environment is per start.
	// Named volumes are never removed. Default: true.
	Remove *bool `json:"remove,omitempty"`

	// NameTemplate names the container; {username} and {servername} are
	// replaced by the escaped names. A named server gets "--{servername}"
	// appended when the template does not contain {servername}.
	// Default: jupyter-{username}.
	NameTemplate string `json:"name_template,omitempty"`

	// HubID is the value of the org.caddyhub.hub label: it tells this hub's
	// containers from those of other hubs on the same engine. Default:
	// caddyhub.
	HubID string `json:"hub_id,omitempty"`

	// IP is the host address container ports are published on (and, with
	// host networking, the address the server listens on). Default:
	// 127.0.0.1.
	IP string `json:"ip,omitempty"`

	// Port is the host port to publish the server on (with host
	// networking: to listen on). Default: 0, one the engine picks.
	Port int `json:"port,omitempty"`

	// ProfileList are the choices of the spawn form (KubeSpawner's
	// profile_list; DockerSpawner's allowed_images as a map): each may set
	// the image and the limits. A user picks one with the user option
	// "profile"; an unknown one is refused. Default: none.
	ProfileList []Profile `json:"profiles,omitempty"`

	// TermTimeout is the grace period of a stop: the engine sends SIGTERM,
	// then SIGKILL after it. Default: 5s.
	TermTimeout caddy.Duration `json:"term_timeout,omitempty"`

	cli      *client.Client
	extra    extraArgs
	memLimit int64
	logger   *zap.Logger
	orphans  *orphanLog
	running  *runningCache
}

// Volume is one mount of a container.
type Volume struct {
	// Source is a named volume, or an absolute host path for a bind mount.
	// Templates {username} and {servername} as for name_template.
	Source string `json:"source"`
	// Target is the absolute path inside the container.
	Target string `json:"target"`
	// ReadOnly mounts it read-only. Default: false.
	ReadOnly bool `json:"read_only,omitempty"`
}

// extraArgs is ExtraCreateArgs decoded.
type extraArgs struct {
	Config     json.RawMessage `json:"config,omitempty"`
	HostConfig json.RawMessage `json:"host_config,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Spawner) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "jupyterhub.spawners.docker",
		New: func() caddy.Module { return new(Spawner) },
	}
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Provision applies defaults, validates the options and makes the engine
// client (it does not connect: an engine that is down fails the starts, not
// the config).
func (s *Spawner) Provision(ctx caddy.Context) error {
	s.logger = ctx.Logger()
	if err := s.setup(); err != nil {
		return err
	}
	return s.connect()
}

// connect makes the engine client.
func (s *Spawner) connect() error {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if s.Host != "" {
		opts = append(opts, client.WithHost(s.Host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return fmt.Errorf("spawner docker: engine client for %s: %w", s.hostName(), err)
	}
	s.cli = cli
	return nil
}

// setup applies defaults and validates; no I/O.
func (s *Spawner) setup() error {
	if s.logger == nil {
		s.logger = zap.NewNop()
	}
	s.orphans = new(orphanLog)
	s.running = new(runningCache)
	ownCmd := len(s.Cmd) > 0
	if err := s.Options.Provision(); err != nil {
		return fmt.Errorf("spawner docker: %w", err)
	}
	if s.IP == "" {
		s.IP = "127.0.0.1"
	}
	if net.ParseIP(s.IP) == nil {
		return fmt.Errorf("spawner docker: ip: %q is not an IP address", s.IP)
	}
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("spawner docker: port: %d is not in 0..65535", s.Port)
	}
	if s.TermTimeout < 0 {
		return fmt.Errorf("spawner docker: term_timeout: must not be negative, got %s", time.Duration(s.TermTimeout))
	}
	if s.TermTimeout == 0 {
		s.TermTimeout = caddy.Duration(5 * time.Second)
	}
	if !ownCmd {
		s.Cmd = nil // the image's command
	}
	if s.MemLimit != "" {
		n, err := spawners.ParseByteSize(s.MemLimit)
		if err != nil {
			return fmt.Errorf("spawner docker: mem_limit: %w", err)
		}
		s.memLimit = n
	}
	if s.Image == "" {
		s.Image = DefaultImage
	}
	for _, img := range append([]string{s.Image}, s.AllowedImages...) {
		if img == "" || strings.ContainsAny(img, " \t\n\x00") {
			return fmt.Errorf("spawner docker: %q is not an image reference", img)
		}
	}
	switch s.PullPolicy {
	case "":
		s.PullPolicy = PullIfNotPresent
	case PullAlways, PullIfNotPresent, PullNever:
	default:
		return fmt.Errorf("spawner docker: pull_policy: %q is not always, if-not-present or never", s.PullPolicy)
	}
	if err := s.setupProfiles(); err != nil {
		return err
	}
	if s.ContainerPort == 0 {
		s.ContainerPort = DefaultContainerPort
	}
	if s.ContainerPort < 1 || s.ContainerPort > 65535 {
		return fmt.Errorf("spawner docker: container_port: %d is not in 1..65535", s.ContainerPort)
	}
	if s.UseInternalIP && s.Network == "host" {
		return errors.New("spawner docker: use_internal_ip makes no sense with network host")
	}
	if s.NameTemplate == "" {
		s.NameTemplate = DefaultNameTemplate
	}
	if n := expandTemplate(s.NameTemplate, "u", "s"); !nameRE.MatchString(n) {
		return fmt.Errorf("spawner docker: name_template %q gives %q, not a valid container name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)", s.NameTemplate, n)
	}
	if s.HubID == "" {
		s.HubID = DefaultHubID
	}
	if s.Remove == nil {
		t := true
		s.Remove = &t
	}
	for i, v := range s.Volumes {
		if v.Source == "" || !strings.HasPrefix(v.Target, "/") {
			return fmt.Errorf("spawner docker: volume %d: want a source and an absolute target, got %q → %q", i, v.Source, v.Target)
		}
		if !strings.HasPrefix(v.Source, "/") {
			if n := expandTemplate(v.Source, "u", "s"); !nameRE.MatchString(n) {
				return fmt.Errorf("spawner docker: volume %d: %q is neither an absolute path nor a valid volume name", i, v.Source)
			}
		}
	}
	if len(s.ExtraCreateArgs) > 0 {
		if err := strictDecode(s.ExtraCreateArgs, &s.extra); err != nil {
			return fmt.Errorf("spawner docker: extra_create_args: want {\"config\": {...}, \"host_config\": {...}}: %w", err)
		}
		// Check the engine's field names now, not at the first spawn.
		if len(s.extra.Config) > 0 {
			if err := strictDecode(s.extra.Config, new(container.Config)); err != nil {
				return fmt.Errorf("spawner docker: extra_create_args: config: %w", err)
			}
		}
		if len(s.extra.HostConfig) > 0 {
			if err := strictDecode(s.extra.HostConfig, new(container.HostConfig)); err != nil {
				return fmt.Errorf("spawner docker: extra_create_args: host_config: %w", err)
			}
		}
	}
	return nil
}

func strictDecode(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// Cleanup closes the engine client.
func (s *Spawner) Cleanup() error {
	if s.cli != nil {
		return s.cli.Close()
	}
	return nil
}

// Common returns the shared options.
func (s *Spawner) Common() *spawners.Options { return &s.Options }

// hostName is the engine address for messages.
func (s *Spawner) hostName() string {
	if s.cli != nil {
		return s.cli.DaemonHost()
	}
	if s.Host != "" {
		return s.Host
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return client.DefaultDockerHost
}

// removeOnStop reports the remove option.
func (s *Spawner) removeOnStop() bool { return s.Remove == nil || *s.Remove }

// escapeName makes a user or server name safe in a container or volume name
// and a path: ASCII letters and digits stay, every other byte becomes -xx
// (lower-case hex), as DockerSpawner's escapism does. Distinct names stay
// distinct.
func escapeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "-%02x", c)
		}
	}
	return b.String()
}

// expandTemplate replaces {username} and {servername} by already escaped values.
func expandTemplate(t, user, server string) string {
	return strings.NewReplacer("{username}", user, "{servername}", server).Replace(t)
}

// containerName is the name of user's server's container.
func (s *Spawner) containerName(user, server string) string {
	t := s.NameTemplate
	if server != "" && !strings.Contains(t, "{servername}") {
		t += "--{servername}"
	}
	return expandTemplate(t, escapeName(user), escapeName(server))
}

// UnmarshalCaddyfile sets up the spawner from Caddyfile tokens, the
// dispenser at the module name. Syntax (plus the shared options of the
// simple spawner: cmd, args, environment, mem_limit, cpu_limit, ...):
//
//	docker {
//		host <address>
//		image <image>
//		allowed_images <image>...
//		pull_policy always|if-not-present|never
//		network <host|name>
//		use_internal_ip
//		container_port <port>
//		volume <source> <target> [ro]
//		extra_create_args <json>
//		remove <true|false>
//		name_template <template>
//		hub_id <id>
//		ip <address>
//		port <port>
//		term_timeout <duration>
//		profile <slug> {
//			display_name <text>
//			description <text>
//			image <image>
//			mem_limit <size>
//			cpu_limit <cores>
//			default
//		}
//	}
func (s *Spawner) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return spawners.UnmarshalCaddyfile(d, &s.Options, s.unmarshalOwn)
}

func (s *Spawner) unmarshalOwn(d *caddyfile.Dispenser) (bool, error) {
	name := d.Val()
	one := func(dst *string) error {
		if !d.AllArgs(dst) {
			return d.ArgErr()
		}
		return nil
	}
	switch name {
	case "host":
		return true, one(&s.Host)
	case "image":
		return true, one(&s.Image)
	case "network":
		return true, one(&s.Network)
	case "name_template":
		return true, one(&s.NameTemplate)
	case "hub_id":
		return true, one(&s.HubID)
	case "ip":
		if err := one(&s.IP); err != nil {
			return true, err
		}
		if net.ParseIP(s.IP) == nil {
			return true, d.Errf("ip: %q is not an IP address", s.IP)
		}
	case "port":
		var v string
		if err := one(&v); err != nil {
			return true, err
		}
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 65535 {
			return true, d.Errf("port: %q is not a port number in 0..65535", v)
		}
		s.Port = p
	case "term_timeout":
		dur, err := spawners.ParseDurationOption(d)
		if err != nil {
			return true, err
		}
		s.TermTimeout = dur
	case "profile":
		return true, s.unmarshalProfile(d)
	case "allowed_images":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return true, d.ArgErr()
		}
		s.AllowedImages = append(s.AllowedImages, args...)
	case "pull_policy":
		var v string
		if err := one(&v); err != nil {
			return true, err
		}
		if v != PullAlways && v != PullIfNotPresent && v != PullNever {
			return true, d.Errf("pull_policy: %q is not always, if-not-present or never", v)
		}
		s.PullPolicy = v
	case "use_internal_ip":
		if d.NextArg() {
			b, err := strconv.ParseBool(d.Val())
			if err != nil || d.NextArg() {
				return true, d.Errf("use_internal_ip: want no argument, true or false")
			}
			s.UseInternalIP = b
		} else {
			s.UseInternalIP = true
		}
	case "remove":
		var v string
		if err := one(&v); err != nil {
			return true, err
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return true, d.Errf("remove: %q is not true or false", v)
		}
		s.Remove = &b
	case "container_port":
		var v string
		if err := one(&v); err != nil {
			return true, err
		}
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return true, d.Errf("container_port: %q is not a port number in 1..65535", v)
		}
		s.ContainerPort = p
	case "volume":
		args := d.RemainingArgs()
		if len(args) < 2 || len(args) > 3 || (len(args) == 3 && args[2] != "ro" && args[2] != "rw") {
			return true, d.Errf("volume: want <source> <target> [ro|rw]")
		}
		s.Volumes = append(s.Volumes, Volume{Source: args[0], Target: args[1], ReadOnly: len(args) == 3 && args[2] == "ro"})
	case "extra_create_args":
		var v string
		if err := one(&v); err != nil {
			return true, err
		}
		var e extraArgs
		if err := strictDecode(json.RawMessage(v), &e); err != nil {
			return true, d.Errf("extra_create_args: want a JSON object {\"config\": {...}, \"host_config\": {...}}: %v", err)
		}
		s.ExtraCreateArgs = json.RawMessage(v)
	default:
		return false, nil
	}
	return true, nil
}

// cpuNanos converts cpu_limit to the engine's NanoCPUs.
func cpuNanos(cores float64) int64 {
	return int64(math.Round(cores * 1e9))
}

// Interface guards
var (
	_ spawners.Spawner      = (*Spawner)(nil)
	_ caddy.Provisioner     = (*Spawner)(nil)
	_ caddy.CleanerUpper    = (*Spawner)(nil)
	_ caddyfile.Unmarshaler = (*Spawner)(nil)
)
