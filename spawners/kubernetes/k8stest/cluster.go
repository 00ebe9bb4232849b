// Package k8stest runs a real Kubernetes control plane for tests — kube-apiserver and etcd, built by
// tests/k8s/build-binaries.sh — on loopback ports with token authentication, and plays the kubelet:
// it binds new pods to a node, gives each its own loopback address as pod IP, serves a stand-in
// notebook server there (HTTP and a websocket echo) and sets the pod Running and Ready.
package k8stest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/caddyhub/caddyhub/internal/testport"
)

// Version is the Kubernetes version the binaries are built at.
const Version = "v1.36.3"

// BinDir is where the binaries are: $CADDYHUB_K8S_BIN, else the build script's cache directory.
func BinDir() string {
	if d := os.Getenv("CADDYHUB_K8S_BIN"); d != "" {
		return d
	}
	root := os.Getenv("CADDYHUB_K8S_CACHE")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".cache", "caddyhub-k8s")
	}
	return filepath.Join(root, Version)
}

// Cluster is a running kube-apiserver with its etcd.
type Cluster struct {
	// URL is the API server's https URL; its certificate is self-signed (use Insecure).
	URL string
	// Token is a bearer token of a system:masters user.
	Token  string
	Client kubernetes.Interface
	dir    string
	mu     sync.Mutex
	procs  []*exec.Cmd
	logs   []string
	notes  []string // what the kubelet stand-in could not do, for Logs
}

// Require skips the test when the binaries are missing, or fails it under HUB_REQUIRE_K8S=1.
//
// This tier has its own switch instead of HUB_REQUIRE_E2E, because its binaries take half an hour
// to build the first time: .ci/run builds them (tests/k8s/build-binaries.sh) and then sets
// HUB_REQUIRE_K8S=1 for the tier; elsewhere set it once the script has run.
func Require(t testing.TB) (apiserver, etcd string) {
	t.Helper()
	dir := BinDir()
	apiserver, etcd = filepath.Join(dir, "kube-apiserver"), filepath.Join(dir, "etcd")
	for _, p := range []string{apiserver, etcd} {
		if _, err := os.Stat(p); err != nil {
			msg := fmt.Sprintf("%s missing (build it with tests/k8s/build-binaries.sh): %v", p, err)
			if os.Getenv("HUB_REQUIRE_K8S") == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	return apiserver, etcd
}

func freePort(t testing.TB) int {
	t.Helper()
	return testport.Free(t)
}

// Start runs etcd and kube-apiserver in a temporary directory and waits until the API server is
// ready; both are stopped (by PID) when the test ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	apiserver, etcd := Require(t)
	dir := t.TempDir()
	c := &Cluster{dir: dir, Token: randomHex(16)}
	t.Cleanup(c.stop)

	etcdPort, peerPort := freePort(t), freePort(t)
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	c.run(t, etcd, "--name=test", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls=http://127.0.0.1:"+strconv.Itoa(peerPort),
		"--initial-advertise-peer-urls=http://127.0.0.1:"+strconv.Itoa(peerPort),
		"--initial-cluster=test=http://127.0.0.1:"+strconv.Itoa(peerPort),
		"--unsafe-no-fsync", "--log-level=error")

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	saKey := write("sa.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	saPub := write("sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	tokens := write("tokens.csv", []byte(c.Token+`,hub-admin,1,"system:masters"`+"\n"))
	port := freePort(t)
	c.URL = "https://127.0.0.1:" + strconv.Itoa(port)
	c.run(t, apiserver, "--etcd-servers="+etcdURL, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port), "--cert-dir="+filepath.Join(dir, "certs"),
		"--token-auth-file="+tokens, "--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file="+saPub,
		"--service-account-signing-key-file="+saKey, "--service-cluster-ip-range=10.96.0.0/24",
		"--disable-admission-plugins=ServiceAccount", "--endpoint-reconciler-type=none", "-v=0")

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for {
		req, _ := http.NewRequest("GET", c.URL+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+c.Token)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-apiserver not ready within 90s: %v\n%s", err, c.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cs, err := kubernetes.NewForConfig(c.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	c.Client = cs
	return c
}

// RestConfig is a client configuration for the cluster.
func (c *Cluster) RestConfig() *rest.Config {
	return &rest.Config{Host: c.URL, BearerToken: c.Token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 500, Burst: 1000}
}

// CreateNamespace creates a namespace.
func (c *Cluster) CreateNamespace(t testing.TB, name string) {
	t.Helper()
	_, err := c.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func (c *Cluster) run(t testing.TB, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(c.dir, filepath.Base(bin)+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	f.Close()
	c.mu.Lock()
	c.procs = append(c.procs, cmd)
	c.logs = append(c.logs, logPath)
	c.mu.Unlock()
}

// Logs returns the tail of the processes' logs.
func (c *Cluster) Logs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := ""
	for _, p := range c.logs {
		b, _ := os.ReadFile(p)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		out += "== " + filepath.Base(p) + "\n" + string(b) + "\n"
	}
	if len(c.notes) > 0 {
		out += "== kubelet stand-in\n" + strings.Join(c.notes, "\n") + "\n"
	}
	return out
}

// note records something the kubelet stand-in could not do (Logs shows it).
func (c *Cluster) note(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notes = append(c.notes, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

// StopAPIServer kills the API server (etcd keeps running): the cluster becomes unreachable.
func (c *Cluster) StopAPIServer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.procs) > 1 {
		p := c.procs[1]
		if p.ProcessState == nil {
			_ = p.Process.Signal(syscall.SIGKILL)
			_ = p.Wait()
		}
	}
}

// stop kills the processes this cluster started, by PID, API server first.
func (c *Cluster) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		if p.ProcessState != nil {
			continue
		}
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
