package kubernetes

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"maps"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/caddyhub/caddyhub/spawners"
)

// Labels and annotations on everything the spawner creates. The informers select pods by
// LabelManagedBy and LabelHub; the user labels are for people (kubectl get pods -l ...).
const (
	LabelManagedBy       = "app.kubernetes.io/managed-by"
	ManagedByValue       = "caddyhub"
	LabelHub             = "hub.caddyhub.io/hub"
	LabelComponent       = "component"
	ComponentServer      = "singleuser-server"
	ComponentStorage     = "singleuser-storage"
	LabelUser            = "hub.caddyhub.io/user"
	LabelPod             = "hub.caddyhub.io/pod"
	AnnotationUsername   = "hub.caddyhub.io/username"
	AnnotationServerName = "hub.caddyhub.io/servername"
	containerName        = "notebook"
	volumeName           = "home"
)

// dnsSafe turns a name into a DNS label fragment: lowercase letters and digits kept, every other run of
// characters one dash, at most n characters. It is for people reading names; uniqueness comes from the
// random suffix every generated name gets.
func dnsSafe(s string, n int) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= n {
			break
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" {
		out = "x"
	}
	return out
}

// labelSafe turns a username into a label value (at most 63 characters of [A-Za-z0-9-_.], alphanumeric
// at both ends).
func labelSafe(s string) string {
	var b strings.Builder
	for _, r := range s {
		if (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		if b.Len() >= 63 {
			break
		}
	}
	return strings.Trim(b.String(), "-_.")
}

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// randomSuffix is 6 random characters valid in a DNS label.
func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return lowerBase32.EncodeToString(b[:])[:6]
}

// newName makes a fresh object name: prefix, the user's (and server's) name made DNS-safe, and a
// random suffix, so that a name is never reused by a later user who takes a renamed user's old name.
func newName(prefix, user, server string) string {
	n := prefix + "-" + dnsSafe(user, 30)
	if server != "" {
		n += "-" + dnsSafe(server, 15)
	}
	return n + "-" + randomSuffix()
}

// choice is what a start runs: the spawner's settings with the chosen profile applied.
type choice struct {
	profile      string
	image        string
	memLimit     string
	memGuarantee string
	cpuLimit     float64
	cpuGuarantee float64
	nodeSelector map[string]string
}

// choose applies the profile the user options name (or the default profile); an unknown profile is an
// error for the user.
func (s *Spawner) choose(opts map[string]any) (choice, error) {
	c := choice{image: s.Image, memLimit: s.MemLimit, memGuarantee: s.MemGuarantee, cpuLimit: s.CPULimit,
		cpuGuarantee: s.CPUGuarantee, nodeSelector: s.NodeSelector}
	p, err := s.profileFor(opts)
	if err != nil || p == nil {
		return c, err
	}
	c.profile = p.Slug
	c.image = firstNonEmpty(p.Image, c.image)
	c.memLimit = firstNonEmpty(p.MemLimit, c.memLimit)
	c.memGuarantee = firstNonEmpty(p.MemGuarantee, c.memGuarantee)
	c.cpuLimit = firstNonZero(p.CPULimit, c.cpuLimit)
	c.cpuGuarantee = firstNonZero(p.CPUGuarantee, c.cpuGuarantee)
	if len(p.NodeSelector) > 0 {
		ns := maps.Clone(c.nodeSelector)
		if ns == nil {
			ns = map[string]string{}
		}
		maps.Copy(ns, p.NodeSelector)
		c.nodeSelector = ns
	}
	return c, nil
}

// profileFor finds the profile named by opts["profile"], or the default one; nil when there are none.
func (s *Spawner) profileFor(opts map[string]any) (*Profile, error) {
	if len(s.Config.Profiles) == 0 {
		if v, ok := opts["profile"]; ok && v != "" {
			return nil, fmt.Errorf("there are no profiles to choose from, got profile %v", v)
		}
		return nil, nil
	}
	raw, ok := opts["profile"]
	if !ok || raw == "" || raw == nil {
		for i := range s.Config.Profiles {
			if s.Config.Profiles[i].Default {
				return &s.Config.Profiles[i], nil
			}
		}
		return &s.Config.Profiles[0], nil
	}
	if list, ok := raw.([]any); ok && len(list) == 1 { // a form field arrives as a list
		raw = list[0]
	}
	slug, ok := raw.(string)
	if !ok {
		return nil, fmt.Errorf("profile must be a string, got %T", raw)
	}
	for i := range s.Config.Profiles {
		if s.Config.Profiles[i].Slug == slug {
			return &s.Config.Profiles[i], nil
		}
	}
	slugs := make([]string, len(s.Config.Profiles))
	for i, p := range s.Config.Profiles {
		slugs[i] = p.Slug
	}
	return nil, fmt.Errorf("unknown profile %q; choose one of %s", slug, strings.Join(slugs, ", "))
}

// baseLabels are the labels every object of this hub carries.
func (s *Spawner) baseLabels() map[string]string {
	return map[string]string{LabelManagedBy: ManagedByValue, LabelHub: s.HubName}
}

// selector selects this hub's server pods.
func (s *Spawner) selector() string {
	return LabelManagedBy + "=" + ManagedByValue + "," + LabelHub + "=" + s.HubName + "," + LabelComponent + "=" + ComponentServer
}

// buildPod is the pod of one server.
func (s *Spawner) buildPod(req *spawners.StartRequest, ns, name, pvc string, c choice) (*corev1.Pod, error) {
	res, err := resourcesFor(c.memLimit, c.memGuarantee, c.cpuLimit, c.cpuGuarantee)
	if err != nil {
		return nil, err
	}
	home := DefaultMountPath
	if s.Storage != nil {
		home = s.Storage.MountPath
	}
	serviceURL := "http://" + net.JoinHostPort("0.0.0.0", strconv.Itoa(s.Port)) + req.ServicePrefix
	env := s.env(req, serviceURL, home)
	if q, ok := res.Limits[corev1.ResourceMemory]; ok {
		env["MEM_LIMIT"] = strconv.FormatInt(q.Value(), 10)
	}
	if c.cpuLimit > 0 {
		env["CPU_LIMIT"] = strconv.FormatFloat(c.cpuLimit, 'f', -1, 64)
		if !strings.Contains(env["CPU_LIMIT"], ".") {
			env["CPU_LIMIT"] += ".0"
		}
	}
	if c.memGuarantee != "" {
		if n, err := spawners.ParseByteSize(c.memGuarantee); err == nil {
			env["MEM_GUARANTEE"] = strconv.FormatInt(n, 10)
		}
	}
	if c.cpuGuarantee > 0 {
		env["CPU_GUARANTEE"] = strconv.FormatFloat(c.cpuGuarantee, 'f', -1, 64)
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	envVars := make([]corev1.EnvVar, 0, len(keys))
	for _, k := range keys {
		envVars = append(envVars, corev1.EnvVar{Name: k, Value: env[k]})
	}

	labels := s.baseLabels()
	maps.Copy(labels, s.ExtraLabels)
	labels[LabelManagedBy], labels[LabelHub] = ManagedByValue, s.HubName
	labels[LabelComponent] = ComponentServer
	labels[LabelUser] = labelSafe(req.User)
	labels[LabelPod] = name
	annotations := maps.Clone(s.ExtraAnnotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AnnotationUsername] = req.User
	annotations[AnnotationServerName] = req.ServerName
	if c.profile != "" {
		annotations["hub.caddyhub.io/profile"] = c.profile
	}

	uid, gid := s.UID, s.FSGID
	nonRoot, noEscalation := true, false
	automount := s.ServiceAccount != ""
	noLinks := false
	container := corev1.Container{
		Name:            containerName,
		Image:           c.image,
		ImagePullPolicy: corev1.PullPolicy(s.ImagePullPolicy),
		Args:            append(append([]string(nil), s.Cmd...), s.Args...),
		Env:             envVars,
		Ports:           []corev1.ContainerPort{{Name: "notebook-port", ContainerPort: int32(s.Port), Protocol: corev1.ProtocolTCP}},
		Resources:       res,
		SecurityContext: &corev1.SecurityContext{
			RunAsUser: &uid, RunAsGroup: &gid, RunAsNonRoot: &nonRoot, AllowPrivilegeEscalation: &noEscalation,
		},
	}
	if dir := s.RootDir(req, home); dir != "" {
		container.WorkingDir = dir
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{
			// Never: a server that dies (out of memory, crash) is reported stopped, not restarted behind
			// the user's back with their kernels gone.
			RestartPolicy:                corev1.RestartPolicyNever,
			SecurityContext:              &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &gid, FSGroup: &gid, RunAsNonRoot: &nonRoot},
			InitContainers:               append([]corev1.Container(nil), s.InitContainers...),
			Containers:                   []corev1.Container{container},
			NodeSelector:                 c.nodeSelector,
			Tolerations:                  s.Tolerations,
			Affinity:                     s.Affinity,
			ServiceAccountName:           s.ServiceAccount,
			AutomountServiceAccountToken: &automount,
			EnableServiceLinks:           &noLinks,
		},
	}
	for _, sec := range s.ImagePullSecrets {
		pod.Spec.ImagePullSecrets = append(pod.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: sec})
	}
	if pvc != "" {
		pod.Spec.Volumes = []corev1.Volume{{Name: volumeName, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc}}}}
		pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: volumeName, MountPath: s.Storage.MountPath}}
	}
	return pod, nil
}

// env is the server's environment in JupyterHub's order, later entries winning: the hub's
// variables; JUPYTERHUB_USER, JUPYTERHUB_SERVER_NAME and JUPYTERHUB_SERVICE_PREFIX when the hub did
// not set them; JUPYTERHUB_SERVICE_URL; JUPYTERHUB_ROOT_DIR and JUPYTERHUB_DEFAULT_URL from the
// options; the options' environment. Nothing of the hub's own environment: it means nothing in a
// container.
func (s *Spawner) env(req *spawners.StartRequest, serviceURL, home string) map[string]string {
	env := make(map[string]string, len(req.Env)+len(s.Environment)+8)
	maps.Copy(env, req.Env)
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
	if dir := s.RootDir(req, home); dir != "" {
		env["JUPYTERHUB_ROOT_DIR"] = dir
	}
	if s.DefaultURL != "" {
		env["JUPYTERHUB_DEFAULT_URL"] = spawners.Expand(s.DefaultURL, req, home)
	}
	for k, v := range s.Environment {
		env[k] = spawners.Expand(v, req, home)
	}
	return env
}

// buildPVC is the claim of a user's storage.
func (s *Spawner) buildPVC(user, ns, name string) *corev1.PersistentVolumeClaim {
	labels := s.baseLabels()
	labels[LabelComponent] = ComponentStorage
	labels[LabelUser] = labelSafe(user)
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels,
			Annotations: map[string]string{AnnotationUsername: user}},
		Spec: corev1.PersistentVolumeClaimSpec{
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: s.Storage.capacity}},
		},
	}
	for _, m := range s.Storage.AccessModes {
		pvc.Spec.AccessModes = append(pvc.Spec.AccessModes, corev1.PersistentVolumeAccessMode(m))
	}
	if s.Storage.Class != "" {
		class := s.Storage.Class
		pvc.Spec.StorageClassName = &class
	}
	return pvc
}

// buildService is the per-server Service (per_user_service), owned by the pod so that Kubernetes
// deletes it with the pod even if the hub does not.
func (s *Spawner) buildService(pod *corev1.Pod) *corev1.Service {
	labels := s.baseLabels()
	labels[LabelComponent] = ComponentServer + "-service"
	ctrl := false
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID, Controller: &ctrl}}},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{LabelPod: pod.Name, LabelHub: s.HubName},
			Ports:    []corev1.ServicePort{{Name: "notebook", Port: int32(s.Port), TargetPort: intstr.FromInt32(int32(s.Port))}},
		},
	}
}
