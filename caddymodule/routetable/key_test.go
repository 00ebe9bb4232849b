package routetable

import (
	"errors"
	"testing"
)

func TestNormalizeKey(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		wantErr  bool
	}{
		{in: "", want: "/"},
		{in: "/", want: "/"},
		{in: "user/alice", want: "/user/alice"},
		{in: "/user/alice/", want: "/user/alice"},
		{in: "/user/alice", want: "/user/alice"},
		{in: "/user/zoë/", want: "/user/zoë"},
		{in: "/alice.hub.example.org/user/alice/", want: "/alice.hub.example.org/user/alice"},
		{in: "/user/a@b.org", want: "/user/a@b.org"},
		{in: "/user/alice//", wantErr: true},
		{in: "//", want: "/"},
		{in: "/user//alice", wantErr: true},
		{in: "/user/../alice", wantErr: true},
		{in: "/user/./alice", wantErr: true},
		{in: "/user/al\x00ice", wantErr: true},
		{in: "/user/al\nice", wantErr: true},
		{in: "/user/\xff", wantErr: true},
		{in: "/" + string(make([]byte, MaxKeyLen)), wantErr: true},
	} {
		got, err := NormalizeKey(tc.in)
		if tc.wantErr {
			if !errors.Is(err, ErrInvalidKey) {
				t.Errorf("NormalizeKey(%q) = %q, %v; want ErrInvalidKey", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("NormalizeKey(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/user/alice", "/user/alice"},
		{"/user/alice/", "/user/alice/"},
		{"/user//alice", "/user//alice"},
		{"/user/alice/../bob/x", "/user/bob/x"},
		{"/user/alice/..", "/user/"},
		{"/user/./alice", "/user/alice"},
		{"/../../etc", "/etc"},
		{"/..", "/"},
		{"/user/.alice/..x", "/user/.alice/..x"},
		{"user/alice", "/user/alice"},
	} {
		if got := cleanPath(tc.in); got != tc.want {
			t.Errorf("cleanPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		target, dial, scheme, path, raw string
		wantErr                         bool
	}{
		{target: "http://127.0.0.1:54321", dial: "127.0.0.1:54321", scheme: "http"},
		{target: "http://localhost", dial: "localhost:80", scheme: "http"},
		{target: "https://[::1]", dial: "[::1]:443", scheme: "https"},
		{target: "http://127.0.0.1:8000/base/", dial: "127.0.0.1:8000", scheme: "http", path: "/base", raw: "/base"},
		{target: "http://127.0.0.1:8000/a%2Fb", dial: "127.0.0.1:8000", scheme: "http", path: "/a/b", raw: "/a%2Fb"},
		{target: "http+unix://%2Frun%2Fhub%2Falice.sock", dial: "unix//run/hub/alice.sock", scheme: "http"},
		{target: "unix+http://%2Ftmp%2Fs.sock/base/", dial: "unix//tmp/s.sock", scheme: "http", path: "/base", raw: "/base"},
		{target: "http+unix://relative.sock", wantErr: true},
		{target: "http+unix://%zz", wantErr: true},
		{target: "ftp://127.0.0.1", wantErr: true},
		{target: "127.0.0.1:8000", wantErr: true},
		{target: "/relative", wantErr: true},
		{target: "http://", wantErr: true},
		{target: "http://%zz", wantErr: true},
		{target: "", wantErr: true},
	} {
		var r Route
		err := parseTarget(&r, tc.target)
		if tc.wantErr {
			if !errors.Is(err, ErrInvalidTarget) {
				t.Errorf("parseTarget(%q): err = %v, want ErrInvalidTarget", tc.target, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseTarget(%q): %v", tc.target, err)
			continue
		}
		p, raw := r.PrependPath()
		if r.Dial() != tc.dial || r.Scheme() != tc.scheme || p != tc.path || raw != tc.raw {
			t.Errorf("parseTarget(%q) = dial %q scheme %q path %q raw %q; want %q %q %q %q",
				tc.target, r.Dial(), r.Scheme(), p, raw, tc.dial, tc.scheme, tc.path, tc.raw)
		}
	}
}
