package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"os/user"
)

// useraddPath is the program EnsureSystemUser runs; a variable for tests.
var useraddPath = "useradd"

// EnsureSystemUser creates the local system account name with a home
// directory (`useradd -m`) unless it exists, for create_system_users
// (JupyterHub's LocalAuthenticator.add_system_user). It needs root. The hub
// calls it after a successful login, never from Provision. name must be a
// normalized username; it is validated again here because it becomes an
// argument of a command run as root.
func EnsureSystemUser(ctx context.Context, name string) error {
	if n, err := NormalizeUsername(name); err != nil {
		return fmt.Errorf("creating system user: %w", err)
	} else if n != name {
		return fmt.Errorf("creating system user %q: %w: it is not normalized", Truncate(name, 32), ErrInvalidUsername)
	}
	exists, err := systemUserExists(name)
	if err != nil || exists {
		return err
	}
	prog, err := exec.LookPath(useraddPath)
	if err != nil {
		return fmt.Errorf("creating system user %q: %w (install the passwd package or create the account yourself)", name, err)
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, prog, "-m", "--", name)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		// Another login may have created the account meanwhile
		// (useradd exits 9, "username already in use").
		if ok, _ := systemUserExists(name); ok {
			return nil
		}
		return fmt.Errorf("creating system user %q with useradd: %w: %s", name, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// systemUserExists reports whether the system knows an account name.
func systemUserExists(name string) (bool, error) {
	_, err := user.Lookup(name)
	if err == nil {
		return true, nil
	}
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		return false, nil
	}
	return false, fmt.Errorf("looking up system user %q: %w", name, err)
}
