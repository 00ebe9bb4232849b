package kubernetes

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/caddyhub/caddyhub/spawners"
)

// Defaults of the Kubernetes options.
const (
	DefaultImage           = "quay.io/jupyter/base-notebook:latest"
	DefaultPort            = 8888
	DefaultUID             = 1000
	DefaultFSGID           = 100
	DefaultHubName         = "caddyhub"
	DefaultStorageSize     = "10Gi"
	DefaultMountPath       = "/home/jovyan"
	defaultResync          = 5 * time.Minute
	defaultDeleteGrace     = time.Second
	defaultWatchStall      = 3 * time.Minute
	defaultAPIQPS          = 50
	defaultAPIBurst        = 100
	defaultNamespace       = "default"
	inClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)

// Storage is a persistent volume per user: a PersistentVolumeClaim created
// at the user's first start, whose name is stored then and never derived
// from the username again.
type Storage struct {
	// Class is the storage class of the claims. Default: the cluster's
	// default storage class.
	Class string `json:"class,omitempty"`

	// Capacity is the size requested, in Kubernetes quantity form ("10Gi").
	// Default: 10Gi.
	Capacity string `json:"capacity,omitempty"`

	// AccessModes of the claim. Default: ["ReadWriteOnce"].
	AccessModes []string `json:"access_modes,omitempty"`

	// MountPath is where the volume is mounted in the server's container.
	// Default: /home/jovyan.
	MountPath string `json:"mount_path,omitempty"`

	// DeleteWithUser deletes a user's claim (and so their files) when the
	// user is deleted from the hub. Default: false, the claim is kept and an
	// admin deletes it.
	DeleteWithUser bool `json:"delete_with_user,omitempty"`

	capacity resource.Quantity
}

// Profile is one choice of KubeSpawner's profile_list: a named set of
// image, resources and node selector the user picks on the spawn form or
// in the API request ({"profile": "<slug>"}). Unset fields keep the
// spawner's values.
type Profile struct {
	// ProfileInfo: slug (lowercase letters, digits and dashes), display_name, description,
	// default.
	spawners.ProfileInfo
	// Image replaces the spawner's image.
	Image string `json:"image,omitempty"`
	// MemLimit, MemGuarantee, CPULimit and CPUGuarantee replace the
	// spawner's resources.
	MemLimit     string  `json:"mem_limit,omitempty"`
	MemGuarantee string  `json:"mem_guarantee,omitempty"`
	CPULimit     float64 `json:"cpu_limit,omitempty"`
	CPUGuarantee float64 `json:"cpu_guarantee,omitempty"`
	// NodeSelector is merged over the spawner's node_selector.
	NodeSelector map[string]string `json:"node_selector,omitempty"`
}

// Config is the spawner's own configuration (besides the shared options).
type Config struct {
	// Kubeconfig is the path of a kubeconfig file, for a hub outside the
	// cluster. Default: the in-cluster service account when the hub runs
	// in a pod, else $KUBECONFIG or ~/.kube/config.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Context is the kubeconfig context to use. Default: its current one.
	Context string `json:"context,omitempty"`
	// Server is the API server URL, overriding the kubeconfig's (with Token
	// and CAFile, no kubeconfig is needed at all). Default: unset.
	Server string `json:"server,omitempty"`
	// Token is a bearer token for Server. Prefer TokenFile. Default: unset.
	Token string `json:"token,omitempty"`
	// TokenFile is a file holding the bearer token. Default: unset.
	TokenFile string `json:"token_file,omitempty"`
	// CAFile is the CA bundle that signs the API server's certificate.
	// Default: the kubeconfig's, or the system roots.
	CAFile string `json:"ca_file,omitempty"`
	// InsecureSkipTLSVerify accepts any API server certificate: for tests
	// against a throw-away apiserver only. Default: false.
	InsecureSkipTLSVerify bool `json:"insecure_skip_tls_verify,omitempty"`
	// APIQPS and APIBurst bound the rate of requests to the API server.
	// Default: 50 per second, bursts of 100.
	APIQPS   float32 `json:"api_qps,omitempty"`
	APIBurst int     `json:"api_burst,omitempty"`

	// Namespace is where the servers run. Default: the hub's own namespace
	// in a cluster, else "default".
	Namespace string `json:"namespace,omitempty"`
	// UserNamespaces gives each user a namespace of their own,
	// "<namespace>-<username>", created at their first start; its name is
	// stored like the claim's. Needs cluster-wide RBAC. Default: false.
	UserNamespaces bool `json:"user_namespaces,omitempty"`
	// HubName is the value of the hub.caddyhub.io/hub label on everything
	// the spawner creates, which tells two hubs sharing a namespace apart.
	// Default: "caddyhub".
	HubName string `json:"hub_name,omitempty"`

	// Image is the container image of the servers. Default:
	// quay.io/jupyter/base-notebook:latest.
	Image string `json:"image,omitempty"`
	// ImagePullPolicy is Always, IfNotPresent or Never. Default: the
	// cluster's (IfNotPresent unless the tag is latest).
	ImagePullPolicy string `json:"image_pull_policy,omitempty"`
	// ImagePullSecrets names secrets for a private registry. Default: none.
	ImagePullSecrets []string `json:"image_pull_secrets,omitempty"`
	// MemGuarantee is the memory request (mem_limit is the limit), bytes or
	// with a K, M, G or T suffix. Default: none.
	MemGuarantee string `json:"mem_guarantee,omitempty"`
	// CPUGuarantee is the CPU request in cores (cpu_limit is the limit).
	// Default: none.
	CPUGuarantee float64 `json:"cpu_guarantee,omitempty"`
	// NodeSelector restricts the nodes the servers run on. Default: none.
	NodeSelector map[string]string `json:"node_selector,omitempty"`
	// Tolerations let servers run on tainted nodes (Kubernetes JSON form).
	// Default: none.
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// Affinity is the pods' affinity (Kubernetes JSON form). Default: none.
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// ServiceAccount is the pods' service account. Its token is mounted
	// only when this is set. Default: none, no token.
	ServiceAccount string `json:"service_account,omitempty"`
	// UID is the user id the server's container runs as; it must not be 0.
	// Default: 1000.
	UID int64 `json:"uid,omitempty"`
	// FSGID is the group owning mounted volumes (fsGroup) and the
	// container's group. Default: 100.
	FSGID int64 `json:"fs_gid,omitempty"`
	// ExtraLabels and ExtraAnnotations are added to every pod. Default: none.
	ExtraLabels      map[string]string `json:"extra_labels,omitempty"`
	ExtraAnnotations map[string]string `json:"extra_annotations,omitempty"`
	// InitContainers run before the server (Kubernetes JSON form). Default:
	// none.
	InitContainers []corev1.Container `json:"init_containers,omitempty"`

	// Storage, when set, gives every user a persistent volume.
	Storage *Storage `json:"storage,omitempty"`
	// Profiles are the choices offered to users (KubeSpawner's
	// profile_list). Default: none.
	Profiles []Profile `json:"profiles,omitempty"`
	// Port is the port the server listens on inside its pod (it gets it in
	// JUPYTERHUB_SERVICE_URL, http://0.0.0.0:<port>/user/<name>/), the
	// container port, and the port the route (or the per-user Service)
	// targets; 1..65535. Default: 8888.
	Port int `json:"port,omitempty"`
	// PerUserService creates a ClusterIP Service per server and routes to
	// its DNS name instead of the pod IP (for a hub whose network reaches
	// services but not pods). Default: false.
	PerUserService bool `json:"per_user_service,omitempty"`

	// DeleteGracePeriod is the grace period of a stopped server's pod:
	// how long its container has after SIGTERM before it is killed.
	// Default: 1s (KubeSpawner's).
	DeleteGracePeriod caddy.Duration `json:"delete_grace_period,omitempty"`

	// Resync is how often the informers replay their cache to the spawner.
	// Default: 5m.
	Resync caddy.Duration `json:"resync,omitempty"`
	// WatchStallTimeout is how long a watch may stay silent (the API server
	// sends a bookmark about every minute) before the spawner drops it and
	// watches again. Default: 3m.
	WatchStallTimeout caddy.Duration `json:"watch_stall_timeout,omitempty"`
}

var (
	slugRE  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	dns1123 = slugRE
)

// provision applies the defaults of the Kubernetes options and validates them; no I/O.
func (c *Config) provision(o *spawners.Options) error {
	if c.DeleteGracePeriod == 0 {
		c.DeleteGracePeriod = caddy.Duration(defaultDeleteGrace)
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("port: %d is not in 1..65535", c.Port)
	}
	if c.DeleteGracePeriod < 0 {
		return fmt.Errorf("delete_grace_period must not be negative")
	}
	if c.Image == "" {
		c.Image = DefaultImage
	}
	switch c.ImagePullPolicy {
	case "", "Always", "IfNotPresent", "Never":
	default:
		return fmt.Errorf("image_pull_policy: %q is not Always, IfNotPresent or Never", c.ImagePullPolicy)
	}
	if c.HubName == "" {
		c.HubName = DefaultHubName
	}
	if !dns1123.MatchString(c.HubName) {
		return fmt.Errorf("hub_name: %q is not a DNS label", c.HubName)
	}
	if c.Namespace != "" && !dns1123.MatchString(c.Namespace) {
		return fmt.Errorf("namespace: %q is not a DNS label", c.Namespace)
	}
	if c.UID == 0 {
		c.UID = DefaultUID
	}
	if c.UID < 0 {
		return fmt.Errorf("uid: %d is not a non-root user id", c.UID)
	}
	if c.FSGID == 0 {
		c.FSGID = DefaultFSGID
	}
	if c.FSGID < 0 {
		return fmt.Errorf("fs_gid: %d is not a group id", c.FSGID)
	}
	if _, err := resourcesFor(o.MemLimit, c.MemGuarantee, o.CPULimit, c.CPUGuarantee); err != nil {
		return err
	}
	if c.APIQPS == 0 {
		c.APIQPS = defaultAPIQPS
	}
	if c.APIBurst == 0 {
		c.APIBurst = defaultAPIBurst
	}
	if c.APIQPS < 0 || c.APIBurst < 0 {
		return fmt.Errorf("api_qps/api_burst must not be negative")
	}
	if c.Resync == 0 {
		c.Resync = caddy.Duration(defaultResync)
	}
	if c.WatchStallTimeout == 0 {
		c.WatchStallTimeout = caddy.Duration(defaultWatchStall)
	}
	if c.Resync < 0 || c.WatchStallTimeout < 0 {
		return fmt.Errorf("resync/watch_stall_timeout must not be negative")
	}
	if s := c.Storage; s != nil {
		if s.Capacity == "" {
			s.Capacity = DefaultStorageSize
		}
		q, err := resource.ParseQuantity(s.Capacity)
		if err != nil {
			return fmt.Errorf("storage capacity: %q: %w", s.Capacity, err)
		}
		s.capacity = q
		if len(s.AccessModes) == 0 {
			s.AccessModes = []string{string(corev1.ReadWriteOnce)}
		}
		for _, m := range s.AccessModes {
			switch corev1.PersistentVolumeAccessMode(m) {
			case corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod:
			default:
				return fmt.Errorf("storage access_modes: %q is not an access mode", m)
			}
		}
		if s.MountPath == "" {
			s.MountPath = DefaultMountPath
		}
		if !strings.HasPrefix(s.MountPath, "/") {
			return fmt.Errorf("storage mount_path: %q is not absolute", s.MountPath)
		}
	}
	seen := map[string]bool{}
	defaults := 0
	for i := range c.Profiles {
		p := &c.Profiles[i]
		if !slugRE.MatchString(p.Slug) {
			return fmt.Errorf("profile %d: slug %q: use lowercase letters, digits and dashes", i, p.Slug)
		}
		if seen[p.Slug] {
			return fmt.Errorf("profile %q is defined twice", p.Slug)
		}
		seen[p.Slug] = true
		if p.Default {
			defaults++
		}
		if p.DisplayName == "" {
			p.DisplayName = p.Slug
		}
		mem, memG := firstNonEmpty(p.MemLimit, o.MemLimit), firstNonEmpty(p.MemGuarantee, c.MemGuarantee)
		cpu, cpuG := firstNonZero(p.CPULimit, o.CPULimit), firstNonZero(p.CPUGuarantee, c.CPUGuarantee)
		if _, err := resourcesFor(mem, memG, cpu, cpuG); err != nil {
			return fmt.Errorf("profile %q: %w", p.Slug, err)
		}
	}
	if defaults > 1 {
		return fmt.Errorf("profiles: %d are marked default, at most one may be", defaults)
	}
	return nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func firstNonZero(a, b float64) float64 {
	if a != 0 {
		return a
	}
	return b
}

// resourcesFor turns JupyterHub's mem/cpu limit and guarantee into container resources.
func resourcesFor(memLimit, memGuarantee string, cpuLimit, cpuGuarantee float64) (corev1.ResourceRequirements, error) {
	var r corev1.ResourceRequirements
	mem := func(name, v string) (*resource.Quantity, error) {
		if v == "" {
			return nil, nil
		}
		n, err := spawners.ParseByteSize(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return resource.NewQuantity(n, resource.BinarySI), nil
	}
	cpu := func(name string, f float64) (*resource.Quantity, error) {
		if f == 0 {
			return nil, nil
		}
		if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%s: %v is not a positive number of cores", name, f)
		}
		return resource.NewMilliQuantity(int64(math.Round(f*1000)), resource.DecimalSI), nil
	}
	set := func(list *corev1.ResourceList, name corev1.ResourceName, q *resource.Quantity) {
		if q == nil {
			return
		}
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		(*list)[name] = *q
	}
	ml, err := mem("mem_limit", memLimit)
	if err != nil {
		return r, err
	}
	mg, err := mem("mem_guarantee", memGuarantee)
	if err != nil {
		return r, err
	}
	cl, err := cpu("cpu_limit", cpuLimit)
	if err != nil {
		return r, err
	}
	cg, err := cpu("cpu_guarantee", cpuGuarantee)
	if err != nil {
		return r, err
	}
	if ml != nil && mg != nil && mg.Cmp(*ml) > 0 {
		return r, fmt.Errorf("mem_guarantee %s is above mem_limit %s", memGuarantee, memLimit)
	}
	if cl != nil && cg != nil && cg.Cmp(*cl) > 0 {
		return r, fmt.Errorf("cpu_guarantee %v is above cpu_limit %v", cpuGuarantee, cpuLimit)
	}
	set(&r.Limits, corev1.ResourceMemory, ml)
	set(&r.Limits, corev1.ResourceCPU, cl)
	set(&r.Requests, corev1.ResourceMemory, mg)
	set(&r.Requests, corev1.ResourceCPU, cg)
	return r, nil
}

// unmarshalOwn parses the Kubernetes options of the Caddyfile block (see Spawner.UnmarshalCaddyfile).
func (c *Config) unmarshalOwn(d *caddyfile.Dispenser) (bool, error) {
	name := d.Val()
	one := func() (string, error) {
		var v string
		if !d.AllArgs(&v) {
			return "", d.ArgErr()
		}
		return v, nil
	}
	str := map[string]*string{
		"context": &c.Context, "server": &c.Server, "token": &c.Token, "token_file": &c.TokenFile,
		"ca_file": &c.CAFile, "namespace": &c.Namespace, "hub_name": &c.HubName, "image": &c.Image,
		"image_pull_policy": &c.ImagePullPolicy, "mem_guarantee": &c.MemGuarantee,
		"service_account": &c.ServiceAccount,
	}
	if p, ok := str[name]; ok {
		v, err := one()
		if err != nil {
			return true, err
		}
		*p = v
		return true, nil
	}
	switch name {
	case "kubeconfig":
		args := d.RemainingArgs()
		if len(args) < 1 || len(args) > 2 {
			return true, d.Errf("kubeconfig: want <path> [<context>]")
		}
		c.Kubeconfig = args[0]
		if len(args) == 2 {
			c.Context = args[1]
		}
	case "insecure_skip_tls_verify", "user_namespaces", "per_user_service":
		if d.NextArg() {
			return true, d.ArgErr()
		}
		*map[string]*bool{"insecure_skip_tls_verify": &c.InsecureSkipTLSVerify,
			"user_namespaces": &c.UserNamespaces, "per_user_service": &c.PerUserService}[name] = true
	case "image_pull_secrets":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return true, d.ArgErr()
		}
		c.ImagePullSecrets = append(c.ImagePullSecrets, args...)
	case "cpu_guarantee":
		v, err := one()
		if err != nil {
			return true, err
		}
		f, err := parseCores(v)
		if err != nil {
			return true, d.Errf("cpu_guarantee: %v", err)
		}
		c.CPUGuarantee = f
	case "uid", "fs_gid":
		v, err := one()
		if err != nil {
			return true, err
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return true, d.Errf("%s: %q is not a positive id (the server never runs as root)", name, v)
		}
		if name == "uid" {
			c.UID = n
		} else {
			c.FSGID = n
		}
	case "port":
		v, err := one()
		if err != nil {
			return true, err
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return true, d.Errf("port: %q is not a port number (1..65535)", v)
		}
		c.Port = n
	case "api_qps", "api_burst":
		v, err := one()
		if err != nil {
			return true, err
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return true, d.Errf("%s: %q is not a positive number", name, v)
		}
		if name == "api_qps" {
			c.APIQPS = float32(n)
		} else {
			c.APIBurst = n
		}
	case "delete_grace_period":
		v, err := one()
		if err != nil {
			return true, err
		}
		dur, err := caddy.ParseDuration(v)
		if err != nil || dur < 0 {
			return true, d.Errf("%s: %q is not a duration", name, v)
		}
		c.DeleteGracePeriod = caddy.Duration(dur)
	case "resync", "watch_stall_timeout":
		v, err := one()
		if err != nil {
			return true, err
		}
		dur, err := caddy.ParseDuration(v)
		if err != nil || dur <= 0 {
			return true, d.Errf("%s: %q is not a positive duration", name, v)
		}
		if name == "resync" {
			c.Resync = caddy.Duration(dur)
		} else {
			c.WatchStallTimeout = caddy.Duration(dur)
		}
	case "node_selector", "label", "annotation":
		var k, v string
		if !d.AllArgs(&k, &v) {
			return true, d.Errf("%s: want <key> <value>", name)
		}
		m := map[string]*map[string]string{"node_selector": &c.NodeSelector, "label": &c.ExtraLabels, "annotation": &c.ExtraAnnotations}[name]
		if *m == nil {
			*m = map[string]string{}
		}
		(*m)[k] = v
	case "toleration":
		args := d.RemainingArgs()
		if len(args) < 1 || len(args) > 2 {
			return true, d.Errf("toleration: want <key>[=<value>]:<effect> [<seconds>]")
		}
		t, err := parseToleration(args)
		if err != nil {
			return true, d.Errf("toleration: %v", err)
		}
		c.Tolerations = append(c.Tolerations, t)
	case "affinity":
		v, err := one()
		if err != nil {
			return true, err
		}
		var a corev1.Affinity
		if err := strictJSON(v, &a); err != nil {
			return true, d.Errf("affinity: %v", err)
		}
		c.Affinity = &a
	case "init_container":
		args := d.RemainingArgs()
		if len(args) < 2 {
			return true, d.Errf("init_container: want <name> <image> [<command>...]")
		}
		c.InitContainers = append(c.InitContainers, corev1.Container{Name: args[0], Image: args[1], Command: args[2:]})
	case "storage":
		if d.NextArg() {
			return true, d.ArgErr()
		}
		if c.Storage == nil {
			c.Storage = &Storage{}
		}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			if err := c.Storage.unmarshal(d); err != nil {
				return true, err
			}
		}
	case "profile":
		var p Profile
		if !d.AllArgs(&p.Slug) {
			if p.Slug == "" {
				return true, d.Errf("profile: want <slug> { ... }")
			}
		}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			if err := p.unmarshal(d); err != nil {
				return true, err
			}
		}
		c.Profiles = append(c.Profiles, p)
	default:
		return false, nil
	}
	return true, nil
}

func (s *Storage) unmarshal(d *caddyfile.Dispenser) error {
	switch name := d.Val(); name {
	case "class", "capacity", "mount_path":
		var v string
		if !d.AllArgs(&v) {
			return d.ArgErr()
		}
		*map[string]*string{"class": &s.Class, "capacity": &s.Capacity, "mount_path": &s.MountPath}[name] = v
	case "access_modes":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.ArgErr()
		}
		s.AccessModes = args
	case "delete_with_user":
		if d.NextArg() {
			return d.ArgErr()
		}
		s.DeleteWithUser = true
	default:
		return d.Errf("storage: unrecognized option %q", name)
	}
	return nil
}

func (p *Profile) unmarshal(d *caddyfile.Dispenser) error {
	if handled, err := p.ProfileInfo.UnmarshalOption(d); handled {
		return err
	}
	switch name := d.Val(); name {
	case "image", "mem_limit", "mem_guarantee":
		var v string
		if !d.AllArgs(&v) {
			return d.ArgErr()
		}
		*map[string]*string{"image": &p.Image, "mem_limit": &p.MemLimit, "mem_guarantee": &p.MemGuarantee}[name] = v
	case "cpu_limit", "cpu_guarantee":
		var v string
		if !d.AllArgs(&v) {
			return d.ArgErr()
		}
		f, err := parseCores(v)
		if err != nil {
			return d.Errf("profile %s: %s: %v", p.Slug, name, err)
		}
		if name == "cpu_limit" {
			p.CPULimit = f
		} else {
			p.CPUGuarantee = f
		}
	case "node_selector":
		var k, v string
		if !d.AllArgs(&k, &v) {
			return d.Errf("node_selector: want <key> <value>")
		}
		if p.NodeSelector == nil {
			p.NodeSelector = map[string]string{}
		}
		p.NodeSelector[k] = v
	default:
		return d.Errf("profile %s: unrecognized option %q", p.Slug, name)
	}
	return nil
}

func parseCores(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%q is not a positive number of cores", v)
	}
	return f, nil
}

// parseToleration reads kubectl's taint syntax: key[=value]:Effect, then optional tolerationSeconds.
func parseToleration(args []string) (corev1.Toleration, error) {
	var t corev1.Toleration
	kv, effect, ok := strings.Cut(args[0], ":")
	if !ok && !strings.Contains(args[0], "=") {
		kv, effect = args[0], ""
	}
	k, v, hasValue := strings.Cut(kv, "=")
	t.Key = k
	if hasValue {
		t.Operator, t.Value = corev1.TolerationOpEqual, v
	} else {
		t.Operator = corev1.TolerationOpExists
	}
	switch corev1.TaintEffect(effect) {
	case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		t.Effect = corev1.TaintEffect(effect)
	default:
		return t, fmt.Errorf("%q is not NoSchedule, PreferNoSchedule or NoExecute", effect)
	}
	if len(args) == 2 {
		n, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil || n < 0 {
			return t, fmt.Errorf("%q is not a number of seconds", args[1])
		}
		t.TolerationSeconds = &n
	}
	return t, nil
}

func strictJSON(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("parsing JSON: %w", err)
	}
	return nil
}
