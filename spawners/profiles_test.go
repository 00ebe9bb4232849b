package spawners

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalProfileLimit(t *testing.T) {
	for _, tc := range []struct {
		line    string
		handled bool
		mem     string
		cpu     float64
		err     string
	}{
		{line: "mem_limit 2G", handled: true, mem: "2G"},
		{line: "cpu_limit 1.5", handled: true, cpu: 1.5},
		{line: "image x", handled: false},
		{line: "mem_limit lots", handled: true, err: "profile p: mem_limit:"},
		{line: "mem_limit", handled: true, err: "mem_limit wants one value"},
		{line: "cpu_limit 1 2", handled: true, err: "cpu_limit wants one value"},
		{line: "cpu_limit -1", handled: true, err: `cpu_limit: "-1" is not a positive number of cores`},
		{line: "cpu_limit NaN", handled: true, err: "is not a positive number of cores"},
		{line: "cpu_limit Inf", handled: true, err: "is not a positive number of cores"},
	} {
		d := caddyfile.NewTestDispenser(tc.line)
		d.Next()
		var mem string
		var cpu float64
		handled, err := UnmarshalProfileLimit(d, "p", &mem, &cpu)
		if handled != tc.handled {
			t.Errorf("%q: handled %v, want %v", tc.line, handled, tc.handled)
		}
		if tc.err == "" && err != nil {
			t.Errorf("%q: %v", tc.line, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: error %v, want one containing %q", tc.line, err, tc.err)
		}
		if mem != tc.mem || cpu != tc.cpu {
			t.Errorf("%q: mem %q cpu %v, want %q %v", tc.line, mem, cpu, tc.mem, tc.cpu)
		}
	}
}
