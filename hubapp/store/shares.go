package store

// Shares and share codes (JupyterHub 5's user-initiated sharing, docs/protocols.md, "Endpoints"):
// a user grants another user or a group scopes on one of its servers (by default
// access:servers!server=<owner>/<server>), directly or through a share code the recipient accepts.
//
// Keys: `share/<owner>/<server>/<u|g>:<recipient>` holds the Share; `sharewith/<u|g>:<recipient>/<owner>/
// <server>` indexes shares by recipient (so a recipient's scopes cost O(its shares)).
// `sharecode/<sha256 of the code>` holds a ShareCode until it expires (Badger TTL) and
// `sharecodeid/<owner>/<server>/<id>` indexes codes by server and public id.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

const (
	sharePrefix       = "share/"
	shareWithPrefix   = "sharewith/"
	shareCodePrefix   = "sharecode/"
	shareCodeIDPrefix = "sharecodeid/"
)

// Share is one grant of scopes on a server to a user or a group.
type Share struct {
	// Owner is the user whose server is shared.
	Owner string `json:"owner"`
	// Server is the shared server's name ("" for the default server).
	Server string `json:"server"`
	// User is the recipient user; exactly one of User and Group is set.
	User string `json:"user,omitempty"`
	// Group is the recipient group.
	Group string `json:"group,omitempty"`
	// Scopes are the granted scopes, each filtered to the server.
	Scopes  []string  `json:"scopes"`
	Created time.Time `json:"created"`
}

// recipient returns the key part naming the recipient: "u:<user>" or "g:<group>".
func (s *Share) recipient() string {
	if s.Group != "" {
		return "g:" + s.Group
	}
	return "u:" + s.User
}

func shareKey(owner, server, recipient string) string {
	return sharePrefix + owner + "/" + server + "/" + recipient
}

// UserRecipient names a user recipient for [Txn.Share] and [Txn.SharesWith].
func UserRecipient(name string) string { return "u:" + name }

// GroupRecipient names a group recipient for [Txn.Share].
func GroupRecipient(name string) string { return "g:" + name }

// PutShare creates or replaces a share.
func (tx *Txn) PutShare(s *Share) error {
	if s.Owner == "" || strings.ContainsAny(s.Owner+s.Server+s.User+s.Group, "/") || (s.User == "") == (s.Group == "") {
		return fmt.Errorf("invalid share of %s/%s", s.Owner, s.Server)
	}
	if s.Created.IsZero() {
		s.Created = time.Now().UTC()
	}
	if err := tx.putJSON(shareKey(s.Owner, s.Server, s.recipient()), s, 0); err != nil {
		return err
	}
	return tx.putRaw(shareWithPrefix+s.recipient()+"/"+s.Owner+"/"+s.Server, nil, 0)
}

// Share returns the share of owner's server with recipient (UserRecipient or GroupRecipient), or
// ErrNotFound.
func (tx *Txn) Share(owner, server, recipient string) (*Share, error) {
	var s Share
	if err := tx.getJSON(shareKey(owner, server, recipient), &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// DeleteShare removes one share.
func (tx *Txn) DeleteShare(s *Share) error {
	if err := tx.delete(shareWithPrefix + s.recipient() + "/" + s.Owner + "/" + s.Server); err != nil {
		return err
	}
	return tx.delete(shareKey(s.Owner, s.Server, s.recipient()))
}

// OwnerShares returns the shares of owner's servers: of one server when all is false, of every
// server when all is true (server is then ignored), in key order.
func (tx *Txn) OwnerShares(owner, server string, all bool) ([]*Share, error) {
	prefix := sharePrefix + owner + "/"
	if !all {
		prefix += server + "/"
	}
	var out []*Share
	err := tx.scan(prefix, "", true, func(key string, val []byte) (bool, error) {
		var s Share
		if err := json.Unmarshal(val, &s); err != nil {
			return false, fmt.Errorf("decoding %s: %w", key, err)
		}
		out = append(out, &s)
		return true, nil
	})
	return out, err
}

// SharesWith returns the shares granted to recipient (UserRecipient or GroupRecipient), in owner
// and server order; with one, only the share of owner's server (none or one).
func (tx *Txn) SharesWith(recipient, owner, server string, one bool) ([]*Share, error) {
	prefix := shareWithPrefix + recipient + "/"
	if one {
		prefix += owner + "/" + server
	}
	var out []*Share
	err := tx.scan(prefix, "", false, func(key string, _ []byte) (bool, error) {
		rest := strings.TrimPrefix(key, shareWithPrefix+recipient+"/")
		o, srv, _ := strings.Cut(rest, "/")
		if one && (o != owner || srv != server) {
			return true, nil
		}
		s, err := tx.Share(o, srv, recipient)
		if errors.Is(err, ErrNotFound) {
			return true, nil
		} else if err != nil {
			return false, err
		}
		out = append(out, s)
		return true, nil
	})
	return out, err
}

// DeleteServerShares removes every share and share code of one server (the server is deleted).
func (tx *Txn) DeleteServerShares(owner, server string) error {
	if err := tx.RevokeServerShares(owner, server); err != nil {
		return err
	}
	return tx.DeleteShareCodes(owner, server, false)
}

// RevokeServerShares removes every share of one server, leaving its share codes.
func (tx *Txn) RevokeServerShares(owner, server string) error {
	shares, err := tx.OwnerShares(owner, server, false)
	if err != nil {
		return err
	}
	for _, s := range shares {
		if err := tx.DeleteShare(s); err != nil {
			return err
		}
	}
	return nil
}

// DeleteRecipientShares removes every share granted to recipient (the user or group is deleted).
func (tx *Txn) DeleteRecipientShares(recipient string) error {
	shares, err := tx.SharesWith(recipient, "", "", false)
	if err != nil {
		return err
	}
	for _, s := range shares {
		if err := tx.DeleteShare(s); err != nil {
			return err
		}
	}
	return nil
}

// ShareCode is a code that, once accepted by a logged-in user, shares a server with that user. Only
// the code's hash is stored; the code is shown once, at creation.
type ShareCode struct {
	// ID is the public identifier ("sc_<hex>").
	ID string `json:"id"`
	// Hash is the SHA-256 of the code.
	Hash   string   `json:"hash"`
	Owner  string   `json:"owner"`
	Server string   `json:"server"`
	Scopes []string `json:"scopes"`
	// Created, ExpiresAt: a code cannot be accepted after ExpiresAt (always set).
	Created   time.Time `json:"created"`
	ExpiresAt time.Time `json:"expires_at"`
	// ExchangeCount counts acceptances; LastExchangedAt is the latest.
	ExchangeCount   int       `json:"exchange_count"`
	LastExchangedAt time.Time `json:"last_exchanged_at,omitzero"`
}

// Expired reports whether the code can no longer be accepted.
func (c *ShareCode) Expired(now time.Time) bool { return !now.Before(c.ExpiresAt) }

// CreateShareCode stores a new share code for the secret code and fills c.ID and c.Hash; the entry
// expires at c.ExpiresAt.
func (tx *Txn) CreateShareCode(c *ShareCode, code string) error {
	ttl := time.Until(c.ExpiresAt)
	if ttl <= 0 {
		return fmt.Errorf("share code already expired")
	}
	if c.Owner == "" || strings.Contains(c.Owner+c.Server, "/") {
		return fmt.Errorf("invalid share code for %s/%s", c.Owner, c.Server)
	}
	c.Hash = Hash(code)
	if c.ID == "" {
		c.ID = "sc_" + NewSecret(8)
	}
	if c.Created.IsZero() {
		c.Created = time.Now().UTC()
	}
	return tx.putShareCode(c)
}

func (tx *Txn) putShareCode(c *ShareCode) error {
	ttl := time.Until(c.ExpiresAt)
	if ttl <= 0 {
		return tx.deleteShareCode(c)
	}
	if err := tx.putJSON(shareCodePrefix+c.Hash, c, ttl); err != nil {
		return err
	}
	return tx.putRaw(shareCodeIDPrefix+c.Owner+"/"+c.Server+"/"+c.ID, []byte(c.Hash), ttl)
}

// ShareCodeBySecret returns the unexpired share code for code, or ErrNotFound.
func (tx *Txn) ShareCodeBySecret(code string, now time.Time) (*ShareCode, error) {
	var c ShareCode
	if err := tx.getJSON(shareCodePrefix+Hash(code), &c); err != nil {
		return nil, err
	}
	if c.Expired(now) {
		return nil, ErrNotFound
	}
	return &c, nil
}

// ExchangeShareCode records an acceptance of c at now.
func (tx *Txn) ExchangeShareCode(c *ShareCode, now time.Time) error {
	c.ExchangeCount++
	c.LastExchangedAt = now.UTC()
	return tx.putShareCode(c)
}

// ShareCodes returns the unexpired share codes of owner's server (of all its servers when all).
func (tx *Txn) ShareCodes(owner, server string, all bool, now time.Time) ([]*ShareCode, error) {
	prefix := shareCodeIDPrefix + owner + "/"
	if !all {
		prefix += server + "/"
	}
	var out []*ShareCode
	err := tx.scan(prefix, "", true, func(key string, val []byte) (bool, error) {
		var c ShareCode
		if err := tx.getJSON(shareCodePrefix+string(val), &c); errors.Is(err, ErrNotFound) {
			return true, nil
		} else if err != nil {
			return false, err
		}
		if !c.Expired(now) {
			out = append(out, &c)
		}
		return true, nil
	})
	return out, err
}

func (tx *Txn) deleteShareCode(c *ShareCode) error {
	if err := tx.delete(shareCodeIDPrefix + c.Owner + "/" + c.Server + "/" + c.ID); err != nil {
		return err
	}
	return tx.delete(shareCodePrefix + c.Hash)
}

// DeleteShareCodes removes the share codes of owner's server (of all its servers when all).
func (tx *Txn) DeleteShareCodes(owner, server string, all bool) error {
	codes, err := tx.ShareCodes(owner, server, all, time.Time{})
	if err != nil {
		return err
	}
	for _, c := range codes {
		if err := tx.deleteShareCode(c); err != nil {
			return err
		}
	}
	return nil
}

// DeleteShareCode removes one share code of owner's server by id; ErrNotFound if there is none.
func (tx *Txn) DeleteShareCode(owner, server, id string) error {
	var hash []byte
	err := tx.scan(shareCodeIDPrefix+owner+"/"+server+"/"+id, "", true, func(key string, val []byte) (bool, error) {
		if key == shareCodeIDPrefix+owner+"/"+server+"/"+id {
			hash = val
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	if hash == nil {
		return ErrNotFound
	}
	var c ShareCode
	if err := tx.getJSON(shareCodePrefix+string(hash), &c); err != nil {
		return err
	}
	return tx.deleteShareCode(&c)
}

// DeleteUserShares removes everything about sharing that involves a user: shares and codes of its
// servers and shares granted to it (the user is deleted).
func (tx *Txn) DeleteUserShares(name string) error {
	owned, err := tx.OwnerShares(name, "", true)
	if err != nil {
		return err
	}
	for _, s := range owned {
		if err := tx.DeleteShare(s); err != nil {
			return err
		}
	}
	if err := tx.DeleteShareCodes(name, "", true); err != nil {
		return err
	}
	return tx.DeleteRecipientShares(UserRecipient(name))
}

// RenameUserShares moves everything about sharing from oldName to newName (the user is renamed):
// shares of its servers (their scopes re-filtered to the new server names) and shares granted to it.
// Its share codes are revoked: they were handed out under the old name.
func (tx *Txn) RenameUserShares(oldName, newName string) error {
	owned, err := tx.OwnerShares(oldName, "", true)
	if err != nil {
		return err
	}
	for _, s := range owned {
		if err := tx.DeleteShare(s); err != nil {
			return err
		}
		oldFilter, newFilter := "!server="+oldName+"/"+s.Server, "!server="+newName+"/"+s.Server
		for i, sc := range s.Scopes {
			if base, ok := strings.CutSuffix(sc, oldFilter); ok {
				s.Scopes[i] = base + newFilter
			}
		}
		s.Owner = newName
		if err := tx.PutShare(s); err != nil {
			return err
		}
	}
	if err := tx.DeleteShareCodes(oldName, "", true); err != nil {
		return err
	}
	received, err := tx.SharesWith(UserRecipient(oldName), "", "", false)
	if err != nil {
		return err
	}
	for _, s := range received {
		if err := tx.DeleteShare(s); err != nil {
			return err
		}
		s.User = newName
		if err := tx.PutShare(s); err != nil {
			return err
		}
	}
	return nil
}
