package localprocess_test

import (
	"testing"

	_ "github.com/caddyhub/caddyhub/hubapp" // the jupyterhub app and directive
	"github.com/caddyhub/caddyhub/internal/caddyfiletest"
	_ "github.com/caddyhub/caddyhub/spawners/localprocess"
)

// TestCaddyfileAdapt runs the golden adapt tests of the localprocess spawner in testdata/caddyfile
// (internal/caddyfiletest says the layout).
func TestCaddyfileAdapt(t *testing.T) {
	caddyfiletest.Run(t, "testdata/caddyfile")
}
