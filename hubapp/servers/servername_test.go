package servers

import (
	"strings"
	"testing"
)

func TestCheckNewServerName(t *testing.T) {
	for _, ok := range []string{"a", "gpu", "lab-2", "x" + strings.Repeat("9", 29)} {
		if err := checkNewServerName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for name, why := range map[string]string{
		"GPU":                         "lowercase letter",
		"2lab":                        "lowercase letter",
		"-lab":                        "lowercase letter",
		"lab_2":                       "only lowercase letters, digits and '-'",
		"lab.2":                       "only lowercase letters, digits and '-'",
		"läb":                         "only lowercase letters, digits and '-'",
		"a" + strings.Repeat("b", 30): "at most 30 characters",
	} {
		err := checkNewServerName(name)
		se, _ := err.(*Refusal)
		if se == nil || se.Code != Invalid || !strings.Contains(se.Msg, why) || !strings.Contains(se.Msg, "Invalid server_name") {
			t.Errorf("%q: %v, want a 400 saying %q", name, err, why)
		}
	}
}
