//go:build deps

// Package deps pins libraries that the project has chosen but does not import
// everywhere yet, so that `go mod tidy` keeps them in go.mod. It is never built.
package deps

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/coreos/go-oidc/v3/oidc"
	_ "github.com/dgraph-io/badger/v4"
	_ "github.com/gorilla/sessions"
	_ "github.com/gorilla/websocket"
	_ "golang.org/x/oauth2"
)
