//go:build !nokubernetes

package caddyhub

// The Kubernetes spawner brings client-go, about a sixth of the executable; build with
// -tags nokubernetes to leave it out (README, "Build").
import _ "github.com/caddyhub/caddyhub/spawners/kubernetes"
