package localprocess

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/caddyhub/caddyhub/spawners"
)

// account is a system account from the passwd and group databases.
type account struct {
	name     string
	uid, gid uint32
	groups   []uint32
	home     string
	shell    string
}

// lookupAccount finds the system account named like a hub user, with its
// supplementary groups (NSS via os/user, so LDAP and sssd accounts work
// when the hub is built with cgo).
func lookupAccount(name string) (*account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return nil, &spawners.StartError{Kind: spawners.ErrNoAccount, Cause: err,
				Msg: fmt.Sprintf("there is no system account named %s: the localprocess spawner runs each server as the user's own account (create it, e.g. useradd -m %s, or use another spawner)", name, name)}
		}
		return nil, fmt.Errorf("looking up system account %s: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("system account %s has a non-numeric uid %q or gid %q", name, u.Uid, u.Gid)
	}
	if uid == 0 {
		return nil, &spawners.StartError{Kind: spawners.ErrNoAccount, Cause: errRoot,
			Msg: fmt.Sprintf("refusing to run a server as %s: the account has uid 0", name)}
	}
	a := &account{name: u.Username, uid: uint32(uid), gid: uint32(gid), home: u.HomeDir}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("looking up groups of %s: %w", name, err)
	}
	for _, g := range gids {
		n, err := strconv.ParseUint(g, 10, 32)
		if err == nil {
			a.groups = append(a.groups, uint32(n))
		}
	}
	a.shell = loginShell(name)
	return a, nil
}

// loginShell returns the account's login shell, or "" if unknown. os/user
// does not expose it: ask getent (NSS), else read /etc/passwd.
func loginShell(name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "getent", "passwd", name).Output(); err == nil {
		if shell, ok := passwdShell(strings.TrimSpace(string(out)), name); ok {
			return shell
		}
	}
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if shell, ok := passwdShell(sc.Text(), name); ok {
			return shell
		}
	}
	return ""
}

// passwdShell returns field 7 of a passwd(5) line for name.
func passwdShell(line, name string) (string, bool) {
	f := strings.Split(line, ":")
	if len(f) != 7 || f[0] != name {
		return "", false
	}
	return f[6], true
}
