package hubapp

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/caddyhub/caddyhub/hubapp/web"
	"github.com/caddyhub/caddyhub/spawners"
)

// TestValidateHubRoles: a role with an unknown scope fails validation (so `caddy validate` says so),
// naming the scope; a good role passes.
func TestValidateHubRoles(t *testing.T) {
	for _, c := range []struct {
		name    string
		scopes  []string
		wantErr string
	}{
		{"good", []string{"read:users!group=class"}, ""},
		{"unknown scope", []string{"read:nonsense"}, "read:nonsense"},
		{"bad filter", []string{"read:users!nope=x"}, "read:users!nope=x"},
	} {
		a := &App{Config: web.Config{HubAPI: "127.0.0.1:8081", Roles: []*web.Role{{Name: "monitor", Scopes: c.scopes}}}}
		err := a.validateHub()
		if c.wantErr == "" && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: error %v, want one naming %q", c.name, err, c.wantErr)
		}
	}
}

// localSpawner is a spawner that starts nothing, for checks of the configuration.
type localSpawner struct{}

func (localSpawner) Start(context.Context, *spawners.StartRequest, func(spawners.Event)) (*spawners.Server, error) {
	return nil, errors.New("not in this test")
}
func (localSpawner) Poll(context.Context, json.RawMessage) (bool, error) { return false, nil }
func (localSpawner) Stop(context.Context, json.RawMessage) error         { return nil }
func (localSpawner) Common() *spawners.Options                           { return &spawners.Options{} }

// remoteSpawner is a fake spawner whose servers run elsewhere.
type remoteSpawner struct{ localSpawner }

func (remoteSpawner) RunsElsewhere() bool { return true }

func TestRemoteSpawnerNeedsReachableHub(t *testing.T) {
	for _, c := range []struct {
		hubAPI, connect string
		wantErr         string
	}{
		{hubAPI: "127.0.0.1:8081", wantErr: "hub_api 127.0.0.1:8081 is not the hub: set hub_connect_url"},
		{hubAPI: "0.0.0.0:8081", wantErr: "hub_api 0.0.0.0:8081"},
		{hubAPI: "0.0.0.0:8081", connect: "http://localhost:8081", wantErr: "hub_connect_url http://localhost:8081"},
		{hubAPI: "0.0.0.0:8081", connect: "http://[::1]:8081", wantErr: "hub_connect_url"},
		{hubAPI: "0.0.0.0:8081", connect: "http://10.0.0.5:8081"},
		{hubAPI: "172.17.0.1:8081"},
		{hubAPI: "0.0.0.0:8081", connect: "hub:8081", wantErr: "want an absolute URL"},
	} {
		a := &App{Config: web.Config{HubAPI: c.hubAPI, HubConnectURL: c.connect}, spawner: remoteSpawner{}}
		err := a.validateHubReachable()
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("hub_api %s hub_connect_url %q: got %v, want %q", c.hubAPI, c.connect, err, c.wantErr)
		}
	}
	// A local spawner never refuses.
	a := &App{Config: web.Config{HubAPI: "127.0.0.1:8081"}, spawner: localSpawner{}}
	if err := a.validateHubReachable(); err != nil {
		t.Fatal(err)
	}
}
