package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"os/user"
	"strings"
)

// useraddPath is the program EnsureSystemUser runs; a variable for tests.
var useraddPath = "useradd"

// DefaultAddUserCmd is add_user_cmd's default: `useradd -m`, the user's name appended.
var DefaultAddUserCmd = []string{"useradd", "-m"}

// EnsureSystemUser creates the local system account name with a home
// directory (`useradd -m`) unless it exists, for create_system_users
// (JupyterHub's LocalAuthenticator.add_system_user). It needs root. name
// must be a normalized username; it is validated again here because it
// becomes an argument of a command run as root.
func EnsureSystemUser(ctx context.Context, name string) error {
	return EnsureSystemUserWith(ctx, []string{useraddPath, "-m"}, name)
}

// EnsureSystemUser creates the system account of a hub user with the
// configured add_user_cmd, unless the account exists (see
// EnsureSystemUserWith).
func (o *Options) EnsureSystemUser(ctx context.Context, name string) error {
	cmd := o.AddUserCmd
	if len(cmd) == 0 {
		cmd = DefaultAddUserCmd
	}
	return EnsureSystemUserWith(ctx, cmd, name)
}

// EnsureSystemUserWith creates the local system account name unless it
// exists, by running command as JupyterHub's add_user_cmd does: USERNAME
// in any argument is replaced by the name, and the name is appended as the
// last argument. The error says why the command failed, with its output.
func EnsureSystemUserWith(ctx context.Context, command []string, name string) error {
	if n, err := NormalizeUsername(name); err != nil {
		return fmt.Errorf("creating system user: %w", err)
	} else if n != name {
		return fmt.Errorf("creating system user %q: %w: it is not normalized", Truncate(name, 32), ErrInvalidUsername)
	}
	if len(command) == 0 {
		return fmt.Errorf("creating system user %q: add_user_cmd is empty", name)
	}
	exists, err := systemUserExists(name)
	if err != nil || exists {
		return err
	}
	prog, err := exec.LookPath(command[0])
	if err != nil {
		return fmt.Errorf("creating system user %q: %w (install the passwd package, set add_user_cmd, or create the account yourself)", name, err)
	}
	args := make([]string, 0, len(command))
	for _, a := range command[1:] {
		args = append(args, strings.ReplaceAll(a, "USERNAME", name))
	}
	args = append(args, name)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		// Another login may have created the account meanwhile
		// (useradd exits 9, "username already in use").
		if ok, _ := systemUserExists(name); ok {
			return nil
		}
		msg := strings.TrimSpace(out.String())
		if msg == "" {
			msg = "no output"
		}
		return fmt.Errorf("creating system user %q with %s: %w: %s", name, strings.Join(command, " "), err, Truncate(msg, 500))
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
