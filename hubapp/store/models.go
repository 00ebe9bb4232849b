package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// User is a hub user (`user/<name>`).
type User struct {
	Name         string    `json:"name"`
	Admin        bool      `json:"admin"`
	Roles        []string  `json:"roles,omitempty"`
	Groups       []string  `json:"groups,omitempty"`
	Created      time.Time `json:"created"`
	LastActivity time.Time `json:"last_activity,omitzero"`
	// EncryptedAuthState is the user's auth_state (what the authenticator kept about the login),
	// sealed by auth/authstate with the hub's crypt_key; never stored in clear. Empty when
	// enable_auth_state is off or the authenticator keeps nothing.
	EncryptedAuthState []byte `json:"encrypted_auth_state,omitempty"`
	// CookieID changes when all of the user's sessions are revoked ("log out everywhere").
	CookieID string `json:"cookie_id"`
}

// Server is one of a user's servers (`server/<user>/<name>`); Name "" is the default server.
type Server struct {
	User    string `json:"user"`
	Name    string `json:"name"`
	Pending string `json:"pending,omitempty"` // "spawn", "stop" or ""
	Ready   bool   `json:"ready"`
	// Target is where the server listens (http://127.0.0.1:54321): what its route points at.
	Target       string          `json:"target,omitempty"`
	Started      time.Time       `json:"started,omitzero"`
	LastActivity time.Time       `json:"last_activity,omitzero"`
	State        json.RawMessage `json:"state,omitempty"` // the spawner's, opaque
	UserOptions  map[string]any  `json:"user_options,omitempty"`
	// Failure is the last spawn failure in words, shown to the user; "" when the last spawn worked.
	Failure string `json:"failure,omitempty"`
}

// Active reports whether the server is running or on its way up or down.
func (s *Server) Active() bool { return s.Ready || s.Pending != "" }

// Token is an API token (`token/<sha256 of the token>`). The token itself is never stored.
type Token struct {
	Hash string `json:"hash"`
	// ID is the public identifier shown by the API ("a1b2c3d4").
	ID      string `json:"id"`
	Prefix  string `json:"prefix"` // first 4 characters, shown to help people recognise a token
	User    string `json:"user,omitempty"`
	Service string `json:"service,omitempty"`
	// Kind is "api_token", "server" (a server's own JUPYTERHUB_API_TOKEN) or "oauth" (issued through OAuth).
	Kind         string    `json:"kind"`
	Note         string    `json:"note,omitempty"`
	Roles        []string  `json:"roles,omitempty"`
	Scopes       []string  `json:"scopes,omitempty"`
	Created      time.Time `json:"created"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	LastActivity time.Time `json:"last_activity,omitzero"`
	// SessionHash ties OAuth tokens to the login session that issued them: logout revokes them.
	SessionHash string `json:"session_hash,omitempty"`
	OAuthClient string `json:"oauth_client,omitempty"`
	ServerName  string `json:"server_name,omitempty"` // server tokens: which of the user's servers
}

// Expired reports whether the token has an expiry that has passed.
func (t *Token) Expired(now time.Time) bool { return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) }

// Session is a browser login (`session/<sha256 of the session id>`).
type Session struct {
	Hash     string    `json:"hash"`
	User     string    `json:"user"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
	CookieID string    `json:"cookie_id"` // the user's CookieID when the session began
}

// OAuthClient is a registered OAuth client (`oauth_client/<id>`): a user's server or a service.
type OAuthClient struct {
	ID          string    `json:"id"`
	SecretHash  string    `json:"secret_hash"`
	RedirectURI string    `json:"redirect_uri"`
	Description string    `json:"description"`
	Scopes      []string  `json:"scopes,omitempty"`
	User        string    `json:"user,omitempty"`
	ServerName  string    `json:"server_name,omitempty"`
	Service     string    `json:"service,omitempty"`
	Created     time.Time `json:"created"`
}

// OAuthCode is a single-use authorization code (`oauth_code/<sha256 of the code>`), kept 5 minutes.
type OAuthCode struct {
	ClientID            string    `json:"client_id"`
	RedirectURI         string    `json:"redirect_uri"`
	User                string    `json:"user"`
	SessionHash         string    `json:"session_hash"`
	Scopes              []string  `json:"scopes,omitempty"`
	CodeChallenge       string    `json:"code_challenge,omitempty"`
	CodeChallengeMethod string    `json:"code_challenge_method,omitempty"`
	Expires             time.Time `json:"expires"`
}

// Group is a group of users (`group/<name>`).
type Group struct {
	Name       string         `json:"name"`
	Users      []string       `json:"users"`
	Roles      []string       `json:"roles,omitempty"`
	Properties map[string]any `json:"properties"`
}

// Hash returns the hex SHA-256 of a high-entropy secret: the key under which tokens, sessions and
// codes are stored. Generated secrets carry 128+ bits, so a fast hash is enough (JupyterHub uses one
// round of salted SHA-512 for the same reason; docs/protocols.md, "Tokens at rest").
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// NewSecret returns n random bytes, hex encoded.
func NewSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails: Go crashes the program rather than return an error
	return hex.EncodeToString(b)
}
