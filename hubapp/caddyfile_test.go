package hubapp

import (
	"testing"

	_ "github.com/caddyhub/caddyhub/auth/dummy"
	_ "github.com/caddyhub/caddyhub/auth/oidc"
	_ "github.com/caddyhub/caddyhub/auth/pam"
	"github.com/caddyhub/caddyhub/internal/caddyfiletest"
	_ "github.com/caddyhub/caddyhub/spawners/standard"
)

// TestCaddyfileAdapt runs the golden adapt tests of the jupyterhub global option and site directive
// in testdata/caddyfile (internal/caddyfiletest says the layout).
func TestCaddyfileAdapt(t *testing.T) {
	caddyfiletest.Run(t, "testdata/caddyfile")
}
