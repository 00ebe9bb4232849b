package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/spawners"
	"github.com/caddyhub/caddyhub/spawners/internal/localproc"
)

// state is what the hub stores for a server: enough for Poll and Stop after
// a hub restart.
type state struct {
	// ID is the container's ID.
	ID string `json:"id"`
	// Name is the container's name (for messages).
	Name string `json:"name"`
}

// cleanupTimeout bounds the removal of a container a failed start leaves.
const cleanupTimeout = 30 * time.Second

// Start creates and starts the server's container and returns as soon as it
// runs and its published port is known; the hub then waits for the server to
// answer (spawners.WaitUp), polling Poll meanwhile, and reads ExitError when
// the container exits first. A start that fails removes what it created.
func (s *Spawner) Start(ctx context.Context, req *spawners.StartRequest, progress func(spawners.Event)) (*spawners.Server, error) {
	if progress == nil {
		progress = func(spawners.Event) {}
	}
	if err := req.CheckNames(); err != nil {
		return nil, fmt.Errorf("spawner docker: %w", err)
	}
	ch, err := s.choose(req.UserOptions)
	if err != nil {
		return nil, &spawners.StartError{Kind: ErrImageNotAllowed, Msg: err.Error()}
	}
	img := ch.image
	prefix := req.ServicePrefix
	if prefix == "" {
		prefix = "/"
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	began := time.Now()
	name := s.containerName(req.User, req.ServerName)
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("spawner docker: name_template gives %q for %s, not a valid container name", name, req.User)
	}
	release := inflight.hold(s.HubID, name)
	defer release()

	srv, id, err := s.launch(ctx, req, ch, name, prefix, progress)
	if err != nil {
		if id != "" {
			s.removeQuietly(id, name)
		}
		return nil, err
	}
	progress(spawners.Event{Progress: 70, Message: "Container " + name + " started; waiting for the server to answer"})
	s.logger.Info("container started", zap.String("user", req.User), zap.String("server", req.ServerName),
		zap.String("container", name), zap.String("image", img), zap.String("url", srv.URL), zap.Duration("took", time.Since(began)))
	return srv, nil
}

// startAttempts bounds the create+start attempts of one Start when the engine fails to bind the
// host port it picked itself (Podman allocates a free port, then binds it at start: another
// process can take it in between).
const startAttempts = 3

// launch pulls the image if needed, replaces an old container of the same
// server (or keeps its files, with remove false), creates and starts the new
// one. It returns the container's ID as soon as one exists, also with an
// error, so the caller can remove it.
func (s *Spawner) launch(ctx context.Context, req *spawners.StartRequest, ch choice, name, prefix string, progress func(spawners.Event)) (*spawners.Server, string, error) {
	img := ch.image
	progress(spawners.Event{Progress: 5, Message: "Checking image " + img})
	imgCmd, err := s.ensureImage(ctx, img, progress)
	if err != nil {
		return nil, "", err
	}
	runImg, err := s.replaceOld(ctx, name, img, progress)
	if err != nil {
		return nil, "", err
	}
	cfg, hostCfg, hostPort, err := s.createConfig(req, ch, imgCmd, prefix)
	if err != nil {
		return nil, "", err
	}
	cfg.Image = runImg
	if err := s.ensureVolumes(ctx, hostCfg.Mounts, req.User); err != nil {
		return nil, "", err
	}
	var id string
	for attempt := 1; ; attempt++ {
		progress(spawners.Event{Progress: 50, Message: "Creating container " + name})
		resp, err := s.cli.ContainerCreate(ctx, cfg, hostCfg, nil, nil, name)
		if err != nil {
			return nil, "", s.engineErr(fmt.Sprintf("creating container %s", name), err)
		}
		id = resp.ID
		err = s.cli.ContainerStart(ctx, id, container.StartOptions{})
		if err == nil {
			break
		}
		if attempt < startAttempts && hostCfg.PortBindings != nil && s.Port == 0 && portInUse(err) {
			// The engine's own pick of a host port was taken before it bound it: a new
			// container gets a new pick.
			s.logger.Info("the engine's host port was taken before the container started; creating it again",
				zap.String("container", name), zap.Error(err))
			s.removeQuietly(id, name)
			progress(spawners.Event{Progress: 50, Message: "The host port the engine picked was taken; trying another"})
			continue
		}
		return nil, id, s.engineErr(fmt.Sprintf("starting container %s", name), err)
	}
	info, err := s.cli.ContainerInspect(ctx, id)
	if err != nil {
		return nil, id, s.engineErr(fmt.Sprintf("inspecting container %s", name), err)
	}
	if info.State != nil && !info.State.Running && s.Network != "host" {
		return nil, id, s.exitedEarly(id, hostPort)
	}
	// On host networking the URL is known without the container: a server that already exited
	// is reported by the hub's wait (ExitError), which starts it again when its port was taken.
	target, err := s.targetURL(info, hostPort)
	if err != nil {
		return nil, id, err
	}
	st, _ := json.Marshal(state{ID: id, Name: name})
	return &spawners.Server{URL: target, State: st, ExitError: func() error { return s.exitedEarly(id, hostPort) }}, id, nil
}

// portInUse reports an engine error about a host port already taken.
func portInUse(err error) bool {
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "address already in use")
}

// createConfig builds the create request for the chosen image and limits.
// hostPort is the port chosen for host networking (0 otherwise).
func (s *Spawner) createConfig(req *spawners.StartRequest, ch choice, imgCmd []string, prefix string) (*container.Config, *container.HostConfig, int, error) {
	img := ch.image
	var serviceURL string
	hostPort := 0
	cport := nat.Port(strconv.Itoa(s.ContainerPort) + "/tcp")
	hostCfg := &container.HostConfig{NetworkMode: container.NetworkMode(s.Network)}
	cfg := &container.Config{Image: img}
	if s.Network == "host" {
		hostPort = s.Port
		if hostPort == 0 {
			p, err := localproc.FreePort(s.IP)
			if err != nil {
				return nil, nil, 0, fmt.Errorf("spawner docker: %w", err)
			}
			hostPort = p
		}
		serviceURL = "http://" + net.JoinHostPort(s.IP, strconv.Itoa(hostPort)) + prefix
	} else {
		serviceURL = "http://" + net.JoinHostPort("0.0.0.0", strconv.Itoa(s.ContainerPort)) + prefix
		cfg.ExposedPorts = nat.PortSet{cport: struct{}{}}
		if !s.UseInternalIP {
			hp := ""
			if s.Port != 0 {
				hp = strconv.Itoa(s.Port)
			}
			hostCfg.PortBindings = nat.PortMap{cport: {{HostIP: s.IP, HostPort: hp}}}
		}
	}
	env := s.Env(req, serviceURL, "")
	// A profile's limits replace the spawner's.
	delete(env, "MEM_LIMIT")
	delete(env, "CPU_LIMIT")
	if ch.memLimit > 0 {
		env["MEM_LIMIT"] = strconv.FormatInt(ch.memLimit, 10)
	}
	if ch.cpuLimit > 0 {
		env["CPU_LIMIT"] = pythonFloat(ch.cpuLimit)
	}
	cfg.Env = spawners.EnvList(env)
	switch {
	case len(s.Cmd) > 0:
		cfg.Cmd = append(append([]string(nil), s.Cmd...), s.Args...)
	case len(s.Args) > 0:
		cfg.Cmd = append(append([]string(nil), imgCmd...), s.Args...)
	}
	if dir := env["JUPYTERHUB_ROOT_DIR"]; dir != "" && strings.HasPrefix(dir, "/") {
		cfg.WorkingDir = dir
	}
	hostCfg.Memory = ch.memLimit
	if ch.cpuLimit > 0 {
		hostCfg.NanoCPUs = cpuNanos(ch.cpuLimit)
	}
	user, server := escapeName(req.User), escapeName(req.ServerName)
	for _, v := range s.Volumes {
		m := mount.Mount{
			Source:   expandTemplate(v.Source, user, server),
			Target:   expandTemplate(v.Target, user, server),
			ReadOnly: v.ReadOnly,
			Type:     mount.TypeVolume,
		}
		if strings.HasPrefix(m.Source, "/") {
			m.Type = mount.TypeBind
		}
		hostCfg.Mounts = append(hostCfg.Mounts, m)
	}
	if len(s.extra.Config) > 0 {
		if err := json.Unmarshal(s.extra.Config, cfg); err != nil {
			return nil, nil, 0, fmt.Errorf("spawner docker: applying extra_create_args config: %w", err)
		}
	}
	if len(s.extra.HostConfig) > 0 {
		if err := json.Unmarshal(s.extra.HostConfig, hostCfg); err != nil {
			return nil, nil, 0, fmt.Errorf("spawner docker: applying extra_create_args host_config: %w", err)
		}
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	cfg.Labels[LabelHub] = s.HubID
	cfg.Labels[LabelUser] = req.User
	cfg.Labels[LabelServer] = req.ServerName
	cfg.Labels[LabelImage] = img
	return cfg, hostCfg, hostPort, nil
}

// targetURL is where the hub reaches the started container.
func (s *Spawner) targetURL(info container.InspectResponse, hostPort int) (string, error) {
	host := s.IP
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	if s.Network == "host" {
		return "http://" + net.JoinHostPort(host, strconv.Itoa(hostPort)), nil
	}
	if info.NetworkSettings == nil {
		return "", fmt.Errorf("spawner docker: container %s has no network settings", info.Name)
	}
	if s.UseInternalIP {
		ip := ""
		for _, n := range info.NetworkSettings.Networks {
			if ip == "" && n != nil {
				ip = n.IPAddress
			}
		}
		if ip == "" {
			return "", fmt.Errorf("spawner docker: container %s has no IP address on its network", info.Name)
		}
		return "http://" + net.JoinHostPort(ip, strconv.Itoa(s.ContainerPort)), nil
	}
	cport := nat.Port(strconv.Itoa(s.ContainerPort) + "/tcp")
	for _, b := range info.NetworkSettings.Ports[cport] {
		if b.HostPort != "" {
			return "http://" + net.JoinHostPort(host, b.HostPort), nil
		}
	}
	return "", fmt.Errorf("spawner docker: the engine published no host port for container %s's port %s", info.Name, cport)
}

// ensureImage applies pull_policy and returns the image's default command.
func (s *Spawner) ensureImage(ctx context.Context, img string, progress func(spawners.Event)) ([]string, error) {
	if s.PullPolicy != PullAlways {
		info, err := s.cli.ImageInspect(ctx, img)
		switch {
		case err == nil:
			return imageCmd(info), nil
		case !cerrdefs.IsNotFound(err):
			return nil, s.engineErr("inspecting image "+img, err)
		case s.PullPolicy == PullNever:
			return nil, &spawners.StartError{Kind: ErrImageMissing, Cause: err,
				Msg: fmt.Sprintf("image %s is not on the container engine and pull_policy is never", img)}
		}
	}
	if err := s.pull(ctx, img, progress); err != nil {
		return nil, err
	}
	info, err := s.cli.ImageInspect(ctx, img)
	if err != nil {
		return nil, s.engineErr("inspecting image "+img+" after pulling it", err)
	}
	return imageCmd(info), nil
}

func imageCmd(info image.InspectResponse) []string {
	if info.Config == nil {
		return nil
	}
	return append(append([]string(nil), info.Config.Entrypoint...), info.Config.Cmd...)
}

// pullMessage is one line of the engine's pull stream.
type pullMessage struct {
	Status   string `json:"status"`
	ID       string `json:"id"`
	Progress *struct {
		Current int64 `json:"current"`
		Total   int64 `json:"total"`
	} `json:"progressDetail"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// pullReportEvery is the least time between two pull progress events.
var pullReportEvery = 500 * time.Millisecond

// pull pulls img, reporting layers and bytes as progress 10..45.
func (s *Spawner) pull(ctx context.Context, img string, progress func(spawners.Event)) error {
	progress(spawners.Event{Progress: 10, Message: "Pulling image " + img})
	rc, err := s.cli.ImagePull(ctx, img, image.PullOptions{})
	if err != nil {
		return s.pullErr(img, err)
	}
	defer rc.Close()
	type layer struct{ cur, total int64 }
	layers := map[string]*layer{}
	done := map[string]bool{}
	last := time.Now()
	dec := json.NewDecoder(rc)
	for {
		var m pullMessage
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return s.pullErr(img, fmt.Errorf("reading the engine's pull stream: %w", err))
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			m.Error = m.ErrorDetail.Message
		}
		if m.Error != "" {
			return s.pullErr(img, errors.New(m.Error))
		}
		if m.ID != "" && m.Progress != nil && m.Progress.Total > 0 && strings.HasPrefix(m.Status, "Downloading") {
			layers[m.ID] = &layer{m.Progress.Current, m.Progress.Total}
		}
		if m.ID != "" && (m.Status == "Pull complete" || m.Status == "Already exists" || m.Status == "Download complete") {
			done[m.ID] = true
			if l := layers[m.ID]; l != nil {
				l.cur = l.total
			}
		}
		if time.Since(last) < pullReportEvery {
			continue
		}
		last = time.Now()
		var cur, total int64
		for _, l := range layers {
			cur, total = cur+l.cur, total+l.total
		}
		pct := 10
		if total > 0 {
			pct = 10 + int(35*cur/total)
		}
		progress(spawners.Event{Progress: pct, Message: fmt.Sprintf("Pulling image %s: %d layers done, %s of %s downloaded",
			img, len(done), mib(cur), mib(total))})
	}
	progress(spawners.Event{Progress: 45, Message: "Pulled image " + img})
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func (s *Spawner) pullErr(img string, err error) error {
	if client.IsErrConnectionFailed(err) {
		return s.engineErr("pulling image "+img, err)
	}
	return &spawners.StartError{Kind: ErrImageMissing, Cause: err,
		Msg: fmt.Sprintf("image %s could not be pulled: %v", img, err)}
}

// maxKeptLayers bounds the layers of an image that keeps a server's files
// (one more at every start with remove false): past it the server starts
// afresh from its image.
const maxKeptLayers = 100

// keptImage is the image reference that holds the files of a stopped
// container kept by remove false, until the server's next container is
// created from it.
func keptImage(name string) string {
	if len(name) > 120 {
		name = name[:120]
	}
	return "localhost/caddyhub-kept:" + name
}

// replaceOld deals with an old container of this hub with the server's name
// (a stopped one kept by remove false, or one a dead hub left) and returns
// the image the new container runs. With remove false and the same image as
// before (label org.caddyhub.image), the old container's file system is
// committed to keptImage and the new container runs that, so files written
// outside volumes survive a stop, as with DockerSpawner's remove=False;
// otherwise the new container runs img. The old container is removed either
// way: a container's environment cannot change, and the API token in it is
// valid for one start only. A container of that name without this hub's
// label is not touched: the start fails.
func (s *Spawner) replaceOld(ctx context.Context, name, img string, progress func(spawners.Event)) (string, error) {
	info, err := s.cli.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return img, nil
	}
	if err != nil {
		return "", s.engineErr("looking for an old container "+name, err)
	}
	if info.Config == nil || info.Config.Labels[LabelHub] != s.HubID {
		return "", fmt.Errorf("spawner docker: a container named %s exists and was not started by this hub (label %s=%s); not touching it: remove it or change name_template",
			name, LabelHub, s.HubID)
	}
	running := info.State != nil && info.State.Running
	runImg := img
	if !s.removeOnStop() {
		kept, err := s.keepFiles(ctx, info, name, img, progress)
		if err != nil {
			return "", err
		}
		if kept != "" {
			runImg = kept
		}
	}
	s.logger.Info("removing the old container of a server before starting it again", zap.String("container", name),
		zap.Bool("was_running", running), zap.Bool("files_kept", runImg != img))
	if err := s.cli.ContainerRemove(ctx, info.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return "", s.engineErr("removing old container "+name, err)
	}
	return runImg, nil
}

// keepFiles commits the old container's file system to keptImage(name) and
// returns that reference, or "" when its files are not kept: it ran another
// image than img, or its image has maxKeptLayers layers already.
func (s *Spawner) keepFiles(ctx context.Context, info container.InspectResponse, name, img string, progress func(spawners.Event)) (string, error) {
	if info.Config.Labels[LabelImage] != img {
		s.logger.Info("the old container ran another image: starting afresh from the new one",
			zap.String("container", name), zap.String("old_image", info.Config.Labels[LabelImage]), zap.String("image", img))
		return "", nil
	}
	if old, err := s.cli.ImageInspect(ctx, info.Image); err == nil && len(old.RootFS.Layers) >= maxKeptLayers {
		s.logger.Warn("the files kept from the server's earlier containers reached the layer limit: starting afresh from its image",
			zap.String("container", name), zap.Int("layers", len(old.RootFS.Layers)))
		return "", nil
	}
	if info.State != nil && info.State.Running {
		secs := int(math.Ceil(time.Duration(s.TermTimeout).Seconds()))
		if err := s.cli.ContainerStop(ctx, info.ID, container.StopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
			return "", s.engineErr("stopping old container "+name, err)
		}
	}
	progress(spawners.Event{Progress: 48, Message: "Keeping the files of the previous container " + name})
	ref := keptImage(name)
	// An empty Config (not nil): the image takes the container's, and Podman refuses a commit
	// request without a body.
	if _, err := s.cli.ContainerCommit(ctx, info.ID, container.CommitOptions{Reference: ref, Config: &container.Config{},
		Comment: "caddyhub: files of " + name + " kept across a stop (remove false)"}); err != nil {
		return "", s.engineErr("keeping the files of old container "+name, err)
	}
	return ref, nil
}

// ensureVolumes creates the named volumes of mounts that do not exist yet,
// with the hub's labels.
func (s *Spawner) ensureVolumes(ctx context.Context, mounts []mount.Mount, user string) error {
	for _, m := range mounts {
		if m.Type != mount.TypeVolume {
			continue
		}
		if _, err := s.cli.VolumeInspect(ctx, m.Source); err == nil {
			continue
		} else if !cerrdefs.IsNotFound(err) {
			return s.engineErr("inspecting volume "+m.Source, err)
		}
		_, err := s.cli.VolumeCreate(ctx, volume.CreateOptions{Name: m.Source,
			Labels: map[string]string{LabelHub: s.HubID, LabelUser: user}})
		if err != nil {
			return s.engineErr("creating volume "+m.Source, err)
		}
	}
	return nil
}

// exitedEarly is the error of a start whose container exited before it
// answered. On host networking with a port picked by the hub, a server that
// could not bind it asks to be started again (StartError.Retry).
func (s *Spawner) exitedEarly(id string, hostPort int) error {
	code, logs := s.exitReport(id)
	err := &spawners.StartError{Kind: spawners.ErrExitedEarly,
		Msg: fmt.Sprintf("the server's container exited with status %d before it answered; its last output:\n%s", code, logs)}
	if s.Network == "host" && s.Port == 0 && hostPort != 0 && strings.Contains(strings.ToLower(logs), "already in use") {
		err.Retry = fmt.Sprintf("Port %d was taken; trying another", hostPort)
	}
	return err
}

// exitReport gives an exited container's status and its last lines of output.
func (s *Spawner) exitReport(id string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code := -1
	if info, err := s.cli.ContainerInspect(ctx, id); err == nil && info.State != nil {
		code = info.State.ExitCode
	}
	// The engine may still be copying the last output when the exit is seen: try a few times.
	var out string
	for try := 0; try < 5 && out == ""; try++ {
		if try > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		o, err := s.lastOutput(ctx, id)
		if err != nil {
			return code, "(no output: " + err.Error() + ")"
		}
		out = o
	}
	return code, out
}

// lastOutput reads the container's last 20 lines of output.
func (s *Spawner) lastOutput(ctx context.Context, id string) (string, error) {
	rc, err := s.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "20"})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, io.LimitReader(rc, 64<<10)); err != nil && out.Len() == 0 {
		return "", err
	}
	return strings.TrimRight(out.String(), "\n"), nil
}

// removeQuietly force-removes a container a failed start created.
func (s *Spawner) removeQuietly(id, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := s.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		s.logger.Error("removing the container of a failed start", zap.String("container", name), zap.Error(err))
	}
}

// engineErr wraps an engine error; an engine that cannot be reached gets a
// message that says so.
func (s *Spawner) engineErr(doing string, err error) error {
	if client.IsErrConnectionFailed(err) || isDialErr(err) {
		return &spawners.StartError{Kind: ErrEngineUnreachable, Cause: err,
			Msg: fmt.Sprintf("cannot reach the container engine at %s (%s): %v", s.hostName(), doing, err)}
	}
	return fmt.Errorf("spawner docker: %s: %w", doing, err)
}

func isDialErr(err error) bool {
	var op *net.OpError
	var ue *url.Error
	return errors.As(err, &op) && op.Op == "dial" || errors.As(err, &ue) && strings.Contains(ue.Err.Error(), "connect:")
}

// Errors a docker start can fail with, for errors.Is (besides those of
// package spawners).
var (
	// ErrImageNotAllowed: the user asked for an image not in allowed_images.
	ErrImageNotAllowed = errors.New("image not allowed")
	// ErrImageMissing: the image is not on the engine and could not be pulled.
	ErrImageMissing = errors.New("image missing")
	// ErrEngineUnreachable: the engine's API did not answer.
	ErrEngineUnreachable = errors.New("container engine unreachable")
)

// pythonFloat formats f as Python's str(float) does ("2.0", "0.5"), as the
// shared options give CPU_LIMIT.
func pythonFloat(f float64) string {
	v := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(v, ".eE") {
		v += ".0"
	}
	return v
}
