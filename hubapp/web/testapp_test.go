package web

import (
	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/auth/authstate"
	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/hubapp/servers"
	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/spawners"
)

// testApp is, in these tests, what the jupyterhub app (hubapp.App) hands a hub: its options and
// its dependencies, set by each test before newHub builds the hub without Caddy.
type testApp struct {
	Config
	EnableAuthState bool

	authenticator auth.Authenticator
	crypter       *authstate.Crypter
	spawner       spawners.Spawner
	ctx           caddy.Context
	logger        *zap.Logger
	shared        *reloadState
	hub           *Hub
}

// reloadState is the state a data_dir's config generations share (hubapp's reload pool holds it).
type reloadState struct {
	store   *store.Store
	table   *routetable.Table
	runtime *servers.Runtime
	logger  *zap.Logger
}

// newHub builds a's hub as the app's Start does.
func newHub(a *testApp) (*Hub, error) {
	return New(&a.Config, Deps{
		Store: a.shared.store, Table: a.shared.table, Runtime: a.shared.runtime,
		Authenticator: a.authenticator, Spawner: a.spawner, Crypter: a.crypter,
		Ctx: a.ctx, Logger: a.logger,
	})
}
