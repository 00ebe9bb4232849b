package store

import (
	"fmt"
	"time"
)

const (
	tokenPrefix        = "token/"
	tokenIDPrefix      = "tokenid/"
	ownerTokenPrefix   = "ownertoken/"
	sessionTokenPrefix = "sessiontoken/"
	oauthClientPrefix  = "oauth_client/"
	oauthCodePrefix    = "oauth_code/"
)

// OwnerUser and OwnerService name a token's owner in the owner index.
func OwnerUser(name string) string    { return "u:" + name }
func OwnerService(name string) string { return "s:" + name }

func (t *Token) owner() string {
	if t.Service != "" {
		return OwnerService(t.Service)
	}
	return OwnerUser(t.User)
}

// NewToken returns a fresh random token (32 hex characters, like JupyterHub's uuid4().hex).
func NewToken() string { return NewSecret(16) }

// CreateToken stores t under the hash of secret, filling Hash, ID, Prefix and Created. The secret is
// not kept. A secret shorter than 8 characters is refused (docs/protocols.md, "Tokens at rest").
func (tx *Txn) CreateToken(t *Token, secret string) error {
	if len(secret) < 8 {
		return fmt.Errorf("token must be at least 8 characters")
	}
	t.Hash = Hash(secret)
	if ok, err := tx.exists(tokenPrefix + t.Hash); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("token collides with an existing one: %w", ErrExists)
	}
	if t.ID == "" {
		t.ID = "a" + NewSecret(6)
	}
	t.Prefix = secret[:4]
	if t.Created.IsZero() {
		t.Created = time.Now().UTC()
	}
	return tx.putToken(t)
}

func (tx *Txn) putToken(t *Token) error {
	var ttl time.Duration
	if !t.ExpiresAt.IsZero() {
		if ttl = time.Until(t.ExpiresAt); ttl <= 0 {
			return fmt.Errorf("token already expired")
		}
	}
	if err := tx.putJSON(tokenPrefix+t.Hash, t, ttl); err != nil {
		return err
	}
	if err := tx.putRaw(tokenIDPrefix+t.ID, []byte(t.Hash), ttl); err != nil {
		return err
	}
	if err := tx.putRaw(ownerTokenPrefix+t.owner()+"/"+t.ID, []byte(t.Hash), ttl); err != nil {
		return err
	}
	if t.SessionHash != "" {
		return tx.putRaw(sessionTokenPrefix+t.SessionHash+"/"+t.ID, []byte(t.Hash), ttl)
	}
	return nil
}

// TokenBySecret looks a presented token up; expired tokens are ErrNotFound. The lookup is by hash, so
// no comparison of secrets happens at all.
func (tx *Txn) TokenBySecret(secret string, now time.Time) (*Token, error) {
	return tx.tokenByHash(Hash(secret), now)
}

func (tx *Txn) tokenByHash(hash string, now time.Time) (*Token, error) {
	var t Token
	if err := tx.getJSON(tokenPrefix+hash, &t); err != nil {
		return nil, err
	}
	if t.Expired(now) {
		return nil, ErrNotFound
	}
	return &t, nil
}

// TokenByID returns a token by its public id.
func (tx *Txn) TokenByID(id string, now time.Time) (*Token, error) {
	var hash string
	item, err := tx.txn.Get([]byte(tokenIDPrefix + id))
	if err != nil {
		return nil, ErrNotFound
	}
	if err := item.Value(func(b []byte) error { hash = string(b); return nil }); err != nil {
		return nil, fmt.Errorf("reading token id %s: %w", id, err)
	}
	return tx.tokenByHash(hash, now)
}

// TouchToken records use of a token.
func (tx *Txn) TouchToken(t *Token, now time.Time) error {
	t.LastActivity = now.UTC()
	return tx.putJSON(tokenPrefix+t.Hash, t, ttlUntil(t.ExpiresAt))
}

// OwnerTokens lists the tokens of an owner (OwnerUser/OwnerService), oldest id first.
func (tx *Txn) OwnerTokens(owner string, now time.Time) ([]*Token, error) {
	var out []*Token
	err := tx.scan(ownerTokenPrefix+owner+"/", "", true, func(_ string, val []byte) (bool, error) {
		t, err := tx.tokenByHash(string(val), now)
		if err == ErrNotFound {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		out = append(out, t)
		return true, nil
	})
	return out, err
}

// DeleteToken removes one token and its index entries.
func (tx *Txn) DeleteToken(t *Token) error {
	for _, k := range []string{tokenPrefix + t.Hash, tokenIDPrefix + t.ID, ownerTokenPrefix + t.owner() + "/" + t.ID} {
		if err := tx.delete(k); err != nil {
			return err
		}
	}
	if t.SessionHash != "" {
		return tx.delete(sessionTokenPrefix + t.SessionHash + "/" + t.ID)
	}
	return nil
}

// DeleteOwnerTokens removes every token of an owner.
func (tx *Txn) DeleteOwnerTokens(owner string) error {
	return tx.deleteIndexed(ownerTokenPrefix + owner + "/")
}

// DeleteSessionTokens removes every token issued under a login session.
func (tx *Txn) DeleteSessionTokens(sessionHash string) error {
	return tx.deleteIndexed(sessionTokenPrefix + sessionHash + "/")
}

// DeleteServerTokens removes a server's own tokens (kind "server") of user's server name.
func (tx *Txn) DeleteServerTokens(user, server string) error {
	toks, err := tx.OwnerTokens(OwnerUser(user), time.Now())
	if err != nil {
		return err
	}
	for _, t := range toks {
		if t.Kind == "server" && t.ServerName == server {
			if err := tx.DeleteToken(t); err != nil {
				return err
			}
		}
	}
	return nil
}

func (tx *Txn) deleteIndexed(prefix string) error {
	var hashes []string
	err := tx.scan(prefix, "", true, func(_ string, val []byte) (bool, error) {
		hashes = append(hashes, string(val))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, h := range hashes {
		t, err := tx.tokenByHash(h, time.Time{})
		if err == ErrNotFound {
			continue
		} else if err != nil {
			return err
		}
		if err := tx.DeleteToken(t); err != nil {
			return err
		}
	}
	return tx.deletePrefix(prefix)
}

// OAuthClient returns a registered client, or ErrNotFound.
func (tx *Txn) OAuthClient(id string) (*OAuthClient, error) {
	var c OAuthClient
	if err := tx.getJSON(oauthClientPrefix+id, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// PutOAuthClient registers or replaces a client. Set SecretHash with Hash(secret).
func (tx *Txn) PutOAuthClient(c *OAuthClient) error {
	if c.Created.IsZero() {
		c.Created = time.Now().UTC()
	}
	return tx.putJSON(oauthClientPrefix+c.ID, c, 0)
}

// DeleteOAuthClient removes a client.
func (tx *Txn) DeleteOAuthClient(id string) error { return tx.delete(oauthClientPrefix + id) }

// CreateOAuthCode stores a code for 5 minutes (docs/protocols.md, "OAuth provider") under the hash of
// the code.
func (tx *Txn) CreateOAuthCode(code string, c *OAuthCode) error {
	c.Expires = time.Now().Add(5 * time.Minute).UTC()
	return tx.putJSON(oauthCodePrefix+Hash(code), c, 5*time.Minute)
}

// ConsumeOAuthCode returns and deletes a code: codes are single use. Two concurrent exchanges of one
// code conflict in Badger, and the retry of the loser finds the code gone.
func (tx *Txn) ConsumeOAuthCode(code string, now time.Time) (*OAuthCode, error) {
	key := oauthCodePrefix + Hash(code)
	var c OAuthCode
	if err := tx.getJSON(key, &c); err != nil {
		return nil, err
	}
	if err := tx.delete(key); err != nil {
		return nil, err
	}
	if now.After(c.Expires) {
		return nil, ErrNotFound
	}
	return &c, nil
}

func ttlUntil(t time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	if d := time.Until(t); d > 0 {
		return d
	}
	return time.Millisecond
}
