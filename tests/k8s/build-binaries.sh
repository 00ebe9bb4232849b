#!/usr/bin/env bash
# Builds the real Kubernetes control plane the integration tier runs against — kube-apiserver and
# etcd — from the Go module proxy, in a throw-away module outside the repository, and keeps the
# binaries in a cache directory keyed by version. When both binaries are already there it does
# nothing. Prints the cache directory on its last line.
#
#   CADDYHUB_K8S_CACHE   cache root (default ~/.cache/caddyhub-k8s)
#   K8S_VERSION          kube-apiserver version (default v1.36.3)
#   ETCD_VERSION         etcd version (default v3.6.16)
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
CACHE=${CADDYHUB_K8S_CACHE:-$HOME/.cache/caddyhub-k8s}/$K8S_VERSION
STAGING_VERSION=v0.${K8S_VERSION#v1.}

mkdir -p "$CACHE"
if [ -x "$CACHE/kube-apiserver" ] && [ -x "$CACHE/etcd" ] && [ -f "$CACHE/.etcd-$ETCD_VERSION" ]; then
	echo "$CACHE"
	exit 0
fi

# The repository's GOFLAGS (build tags) mean nothing to these modules; module mode must be "mod".
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOWORK=off
tmp=$(mktemp -d "${TMPDIR:-/tmp}/caddyhub-k8s-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if [ ! -x "$CACHE/kube-apiserver" ]; then
	mkdir -p "$tmp/apiserver"
	cd "$tmp/apiserver"
	# kubernetes' own go.mod points every k8s.io/* staging module at ./staging: repeat those as
	# replaces onto the published versions of the same release.
	go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
	modfile=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod
	{
		echo "module kbuild"
		echo "go 1.26.0"
		echo "require k8s.io/kubernetes $K8S_VERSION"
		echo "tool k8s.io/kubernetes/cmd/kube-apiserver"
		echo "replace ("
		sed -n '/^replace (/,/^)/p' "$modfile" | grep '=> ./staging' | awk -v v="$STAGING_VERSION" '{print "\t"$1" => "$1" "v}'
		echo ")"
	} >go.mod
	go mod tidy
	minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
	go build -p "${BUILD_P:-1}" -ldflags "-s -w \
		-X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
		-X k8s.io/component-base/version.gitMajor=1 \
		-X k8s.io/component-base/version.gitMinor=$minor" \
		-o "$CACHE/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
	mv "$CACHE/kube-apiserver.tmp" "$CACHE/kube-apiserver"
fi

if [ ! -x "$CACHE/etcd" ] || [ ! -f "$CACHE/.etcd-$ETCD_VERSION" ]; then
	mkdir -p "$tmp/etcd"
	cd "$tmp/etcd"
	cat >go.mod <<MOD
module etcdbuild
go 1.26.0
require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
	cat >main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
	go mod tidy
	go build -p "${BUILD_P:-1}" -ldflags "-s -w" -o "$CACHE/etcd.tmp" .
	mv "$CACHE/etcd.tmp" "$CACHE/etcd"
	touch "$CACHE/.etcd-$ETCD_VERSION"
fi

"$CACHE/kube-apiserver" --version >&2
echo "$CACHE"
