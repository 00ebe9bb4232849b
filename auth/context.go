package auth

import "context"

type remoteIPKey struct{}

// WithRemoteIP returns a context that carries the address of the client
// that is logging in, for the hub to pass to Authenticate. Authenticators
// may hand it on: PAM sets PAM_RHOST, which pam_access, pam_faillock and
// the system's auth log use.
func WithRemoteIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, remoteIPKey{}, ip)
}

// RemoteIP returns the client address stored by WithRemoteIP, or "".
func RemoteIP(ctx context.Context) string {
	ip, _ := ctx.Value(remoteIPKey{}).(string)
	return ip
}
