//go:build k8se2e

package tests

// End to end on Kubernetes: the real caddy binary with `spawner kubernetes` against a real
// kube-apiserver and etcd (built by tests/k8s/build-binaries.sh, started by package k8stest), whose
// kubelet stand-in runs each pod as a small server on a loopback address of its own. A user logs in
// through the form, spawns, the pod runs, the server answers through the hub's edge (HTTP and a
// websocket), the user stops it, and the pod is gone. Behind the build tag k8se2e; the binaries are
// required under HUB_REQUIRE_K8S=1.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/caddyhub/caddyhub/spawners/kubernetes"
	"github.com/caddyhub/caddyhub/spawners/kubernetes/k8stest"
)

func TestKubernetesE2E(t *testing.T) {
	c := k8stest.Start(t)
	c.CreateNamespace(t, "hub")
	c.StartKubelet(t, "hub")
	ctx := context.Background()
	claimOf := map[string]string{} // pod → the claim it mounts
	podsOf := func(user string) []string {
		list, err := c.Client.CoreV1().Pods("hub").List(ctx, metav1.ListOptions{LabelSelector: kubernetes.LabelUser + "=" + user})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range list.Items {
			out = append(out, p.Name+" "+string(p.Status.Phase))
			for _, v := range p.Spec.Volumes {
				if v.PersistentVolumeClaim != nil {
					claimOf[p.Name] = v.PersistentVolumeClaim.ClaimName
				}
			}
		}
		return out
	}
	alicePods := func() []string { return podsOf("alice") }

	dir := t.TempDir()
	public, token := FreePort(t), RandomHex(t, 16)
	cfg := fmt.Sprintf(`{
	grace_period 2s
	jupyterhub {
		data_dir %[1]s/data
		proxy_api 127.0.0.1:%[2]d
		hub_api 127.0.0.1:%[3]d
		hub_connect_url http://hub.hub.svc:8081
		cookie_secret_file %[1]s/cookie_secret
		authenticator dummy {
			password s3cret-pass
			allowed_users alice
		}
		spawner kubernetes {
			server %[4]s
			token %[5]s
			insecure_skip_tls_verify
			namespace hub
			hub_name e2e
			image example/notebook:1
			start_timeout 60s
			http_timeout 30s
			storage {
				class standard
			}
		}
		api_token %[6]s admin
		role admin {
			users admin
		}
	}
}

:%[7]d {
	bind 127.0.0.1
	jupyterhub
}
`, dir, FreePort(t), FreePort(t), c.URL, c.Token, token, public)
	inst := Start(t, dir, cfg)
	base := URL(public, "")

	// Log in through the form and start the server (GET /hub/spawn starts it: no options form).
	alice := newHubBrowser(t, base)
	alice.login("alice", "s3cret-pass")
	if resp, body := alice.do("GET", "/hub/spawn", nil, nil); resp.StatusCode >= 500 {
		t.Fatalf("spawn: %d %v %.500s\n%s", resp.StatusCode, alice.visits, body, inst.Log())
	}
	_, home := alice.do("GET", "/hub/home", nil, nil)
	xsrf := hubFormXSRF(t, home)
	waitFor(t, "alice's server to be ready", 90*time.Second, func() bool {
		resp, stream := alice.do("GET", "/hub/api/users/alice/server/progress?_xsrf="+url.QueryEscape(xsrf), nil, nil)
		if strings.Contains(stream, `"failed":true`) {
			t.Fatalf("spawn failed: %s\ncaddy log:\n%s\n%s", stream, inst.Log(), c.Logs())
		}
		return resp.StatusCode == http.StatusOK && strings.Contains(stream, `"ready":true`)
	})

	// One pod, Running; its name is in the server's state (admin view of the REST API).
	pods := alicePods()
	if len(pods) != 1 || !strings.HasSuffix(pods[0], " Running") {
		t.Fatalf("alice's pods: %v", pods)
	}
	podName, _, _ := strings.Cut(pods[0], " ")
	_, b := GetJSON(t, URL(public, "/hub/api/users/alice"), token)
	var u struct {
		Servers map[string]struct {
			Ready bool           `json:"ready"`
			URL   string         `json:"url"`
			State map[string]any `json:"state"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(b, &u); err != nil || !u.Servers[""].Ready || u.Servers[""].State["pod"] != podName {
		t.Fatalf("alice's server in the API: %s", b)
	}

	// Through the hub's edge on loopback to the pod's server: HTTP, then a websocket.
	resp, body := alice.do("GET", "/user/alice/api/status", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"pod":"`+podName+`"`) || !strings.Contains(body, `"user":"alice"`) {
		t.Fatalf("through the edge: %d %s", resp.StatusCode, body)
	}
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	ws, _, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d/user/alice/api/kernels/k/channels", public), nil)
	if err != nil {
		t.Fatalf("websocket through the edge: %v", err)
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte("hello"))
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != podName+": hello" {
		t.Fatalf("websocket echo: %q %v", msg, err)
	}
	ws.Close()

	// Stop: the pod is deleted (the kubelet stand-in finishes the graceful delete), the route goes.
	code, b := Do(t, "DELETE", URL(public, "/hub/api/users/alice/server"), token, nil)
	if code != http.StatusNoContent && code != http.StatusAccepted {
		t.Fatalf("stop: %d %s", code, b)
	}
	waitFor(t, "alice's pod to be deleted", 60*time.Second, func() bool { return len(alicePods()) == 0 })
	waitFor(t, "alice's server to be recorded stopped", 30*time.Second, func() bool {
		_, b := GetJSON(t, URL(public, "/hub/api/users/alice"), token)
		return !strings.Contains(string(b), `"ready":true`)
	})
	if resp, body := alice.do("GET", "/user/alice/api/status", nil, nil); strings.Contains(body, podName) {
		t.Fatalf("the stopped server still answers through the edge: %d %.300s", resp.StatusCode, body)
	}

	// The next start (through the REST API) mounts the same claim: the hub kept its name when the
	// server stopped and handed it back to the spawner.
	firstClaim := claimOf[podName]
	if firstClaim == "" {
		t.Fatalf("the first pod mounted no claim")
	}
	if code, b := Do(t, "POST", URL(public, "/hub/api/users/alice/server"), token, nil); code != http.StatusCreated && code != http.StatusAccepted {
		t.Fatalf("second start: %d %s", code, b)
	}
	waitFor(t, "alice's second pod to run", 90*time.Second, func() bool {
		p := alicePods()
		return len(p) == 1 && strings.HasSuffix(p[0], " Running") && !strings.HasPrefix(p[0], podName+" ")
	})
	second, _, _ := strings.Cut(alicePods()[0], " ")
	if claimOf[second] != firstClaim {
		t.Fatalf("second pod %s mounts claim %q, the first mounted %q", second, claimOf[second], firstClaim)
	}

	// Renamed, alice keeps her storage: the claim's name was stored, never derived from the username.
	if code, b := Do(t, "DELETE", URL(public, "/hub/api/users/alice/server"), token, nil); code != http.StatusNoContent && code != http.StatusAccepted {
		t.Fatalf("second stop: %d %s", code, b)
	}
	waitFor(t, "alice's second pod to be deleted", 60*time.Second, func() bool { return len(alicePods()) == 0 })
	waitFor(t, "alice's second server to be recorded stopped", 30*time.Second, func() bool {
		_, b := GetJSON(t, URL(public, "/hub/api/users/alice"), token)
		return !strings.Contains(string(b), `"ready":true`) && !strings.Contains(string(b), `"pending":"stop"`)
	})
	if code, b := Do(t, "PATCH", URL(public, "/hub/api/users/alice"), token, []byte(`{"name":"alicia"}`)); code != http.StatusOK {
		t.Fatalf("renaming alice to alicia: %d %s", code, b)
	}
	if code, b := Do(t, "POST", URL(public, "/hub/api/users/alicia/server"), token, nil); code != http.StatusCreated && code != http.StatusAccepted {
		t.Fatalf("alicia's start: %d %s", code, b)
	}
	waitFor(t, "alicia's pod to run", 90*time.Second, func() bool {
		p := podsOf("alicia")
		return len(p) == 1 && strings.HasSuffix(p[0], " Running")
	})
	third, _, _ := strings.Cut(podsOf("alicia")[0], " ")
	if claimOf[third] != firstClaim {
		t.Fatalf("after the rename, pod %s mounts claim %q; alice's claim was %q", third, claimOf[third], firstClaim)
	}
}
