package hubapp

import (
	"strings"
	"testing"
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
		a := &App{HubAPI: "127.0.0.1:8081", Roles: []*Role{{Name: "monitor", Scopes: c.scopes}}}
		err := a.validateHub()
		if c.wantErr == "" && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: error %v, want one naming %q", c.name, err, c.wantErr)
		}
	}
}
