package rbac

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestAgainstJupyterHub replays random cases answered by JupyterHub 5.5.1's
// own scopes.py (testdata/gen_jupyterhub_cases.py): expansion for a user, a
// service and no owner, intersection without group resolution, and
// has_scope checks. start:servers (6.0, absent from 5.5.1) is ignored.
func TestAgainstJupyterHub(t *testing.T) {
	b, err := os.ReadFile("testdata/jupyterhub-5.5.1.json")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Expand []struct {
			Raw   []string
			Owner string
			Want  []string
		}
		Intersect []struct{ L, R, Want []string }
		Has       []struct {
			Have               []string
			Scope, Kind, Value string
			Want               bool
		}
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Expand) == 0 || len(c.Intersect) == 0 || len(c.Has) == 0 {
		t.Fatal("no cases")
	}
	without6 := func(s []string) []string {
		return slices.DeleteFunc(slices.Clone(s), func(x string) bool { return strings.HasPrefix(x, "start:servers") })
	}
	owners := map[string]Owner{"none": {}, "user": UserOwner("alice"), "service": ServiceOwner("svc")}
	for i, e := range c.Expand {
		s, err := Builtin().ExpandFor(e.Raw, owners[e.Owner], Client{})
		if err != nil {
			t.Fatalf("expand case %d %q: %v", i, e.Raw, err)
		}
		if got, want := without6(s.Strings()), without6(e.Want); !slices.Equal(got, want) {
			t.Errorf("expand case %d: %q for %s owner\n got %q\n JupyterHub %q", i, e.Raw, e.Owner, got, want)
		}
	}
	for i, x := range c.Intersect {
		got := Intersect(parsed(t, x.L...), parsed(t, x.R...), nil).Strings()
		if !slices.Equal(without6(got), without6(x.Want)) {
			t.Errorf("intersect case %d: %q ∩ %q\n got %q\n JupyterHub %q", i, x.L, x.R, got, x.Want)
		}
	}
	for i, h := range c.Has {
		var res Resource
		switch h.Kind {
		case "user":
			res.User = h.Value
		case "server":
			res.Server = h.Value
		case "group":
			res.Group = h.Value
		case "service":
			res.Service = h.Value
		}
		if got := parsed(t, h.Have...).Allows(h.Scope, res, nil); got != h.Want {
			t.Errorf("has case %d: %q allows %s on %+v = %v, JupyterHub %v", i, h.Have, h.Scope, res, got, h.Want)
		}
	}
}
