package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

const (
	userPrefix        = "user/"
	serverPrefix      = "server/"
	runningPrefix     = "running/"
	sessionPrefix     = "session/"
	userSessionPrefix = "usersession/"
	groupPrefix       = "group/"
)

// User returns the user called name, or ErrNotFound.
func (tx *Txn) User(name string) (*User, error) {
	var u User
	if err := tx.getJSON(userPrefix+name, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// PutUser creates or replaces a user record.
func (tx *Txn) PutUser(u *User) error {
	if u.Name == "" || strings.Contains(u.Name, "/") {
		return fmt.Errorf("invalid user name %q", u.Name)
	}
	if u.Created.IsZero() {
		u.Created = time.Now().UTC()
	}
	if u.CookieID == "" {
		u.CookieID = NewSecret(16)
	}
	return tx.putJSON(userPrefix+u.Name, u, 0)
}

// CreateUser adds a new user; ErrExists if the name is taken.
func (tx *Txn) CreateUser(u *User) error {
	ok, err := tx.exists(userPrefix + u.Name)
	if err != nil {
		return err
	}
	if ok {
		return fmt.Errorf("user %s: %w", u.Name, ErrExists)
	}
	return tx.PutUser(u)
}

// DeleteUser removes a user and everything that belongs to it: servers, tokens, sessions, OAuth
// clients of its servers and its group memberships. The caller stops servers and removes routes first.
func (tx *Txn) DeleteUser(name string) error {
	u, err := tx.User(name)
	if err != nil {
		return err
	}
	for _, g := range u.Groups {
		grp, err := tx.Group(g)
		if err == ErrNotFound {
			continue
		} else if err != nil {
			return err
		}
		grp.Users = without(grp.Users, name)
		if err := tx.PutGroup(grp); err != nil {
			return err
		}
	}
	servers, err := tx.Servers(name)
	if err != nil {
		return err
	}
	for _, s := range servers {
		if err := tx.DeleteServer(name, s.Name); err != nil {
			return err
		}
	}
	if err := tx.DeleteOwnerTokens(OwnerUser(name)); err != nil {
		return err
	}
	if err := tx.DeleteUserSessions(name); err != nil {
		return err
	}
	if err := tx.DeleteUserShares(name); err != nil {
		return err
	}
	return tx.delete(userPrefix + name)
}

// Users returns up to limit users in name order, starting after the first offset (limit ≤ 0: all).
// Skipping uses key-only iteration, so deep offsets stay cheap.
func (tx *Txn) Users(offset, limit int) ([]*User, error) {
	var out []*User
	i := 0
	err := tx.scan(userPrefix, "", false, func(key string, _ []byte) (bool, error) {
		if i++; i <= offset {
			return true, nil
		}
		u, err := tx.User(strings.TrimPrefix(key, userPrefix))
		if err != nil {
			return false, err
		}
		out = append(out, u)
		return limit <= 0 || len(out) < limit, nil
	})
	return out, err
}

// CountUsers returns the number of users.
func (tx *Txn) CountUsers() (int, error) {
	n := 0
	err := tx.scan(userPrefix, "", false, func(string, []byte) (bool, error) { n++; return true, nil })
	return n, err
}

func serverKey(user, name string) string { return serverPrefix + user + "/" + name }

// Server returns one server of a user, or ErrNotFound.
func (tx *Txn) Server(user, name string) (*Server, error) {
	var s Server
	if err := tx.getJSON(serverKey(user, name), &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// PutServer writes a server record and keeps the index of active servers in step, so that start-up
// and `state=active` listings cost O(active servers), not O(users).
func (tx *Txn) PutServer(s *Server) error {
	if err := tx.putJSON(serverKey(s.User, s.Name), s, 0); err != nil {
		return err
	}
	if s.Active() {
		return tx.putRaw(runningPrefix+s.User+"/"+s.Name, nil, 0)
	}
	return tx.delete(runningPrefix + s.User + "/" + s.Name)
}

// DeleteServer removes a server record (named servers are deleted; default servers usually just stop).
func (tx *Txn) DeleteServer(user, name string) error {
	if err := tx.DeleteServerShares(user, name); err != nil {
		return err
	}
	if err := tx.delete(runningPrefix + user + "/" + name); err != nil {
		return err
	}
	return tx.delete(serverKey(user, name))
}

// Servers returns all server records of a user, default server first.
func (tx *Txn) Servers(user string) ([]*Server, error) {
	var out []*Server
	err := tx.scan(serverPrefix+user+"/", "", true, func(key string, val []byte) (bool, error) {
		var s Server
		if err := json.Unmarshal(val, &s); err != nil {
			return false, fmt.Errorf("decoding %s: %w", key, err)
		}
		out = append(out, &s)
		return true, nil
	})
	return out, err
}

// ActiveServers returns every server that is ready or pending, across all users, from the index.
func (tx *Txn) ActiveServers() ([]*Server, error) {
	var out []*Server
	err := tx.scan(runningPrefix, "", false, func(key string, _ []byte) (bool, error) {
		user, name, _ := strings.Cut(strings.TrimPrefix(key, runningPrefix), "/")
		s, err := tx.Server(user, name)
		if err == ErrNotFound {
			return true, nil
		} else if err != nil {
			return false, err
		}
		out = append(out, s)
		return true, nil
	})
	return out, err
}

// Session returns the session whose id hashes to hash, or ErrNotFound (expired sessions too).
func (tx *Txn) Session(hash string, now time.Time) (*Session, error) {
	var s Session
	if err := tx.getJSON(sessionPrefix+hash, &s); err != nil {
		return nil, err
	}
	if !s.Expires.IsZero() && now.After(s.Expires) {
		return nil, ErrNotFound
	}
	return &s, nil
}

// PutSession records a session; Badger drops it when it expires.
func (tx *Txn) PutSession(s *Session) error {
	ttl := time.Until(s.Expires)
	if ttl <= 0 {
		return fmt.Errorf("session already expired")
	}
	if err := tx.putJSON(sessionPrefix+s.Hash, s, ttl); err != nil {
		return err
	}
	return tx.putRaw(userSessionPrefix+s.User+"/"+s.Hash, nil, ttl)
}

// DeleteSession revokes one session and every OAuth token issued under it (GHSA-cw7p-q79f-m2v7).
func (tx *Txn) DeleteSession(hash string) error {
	var s Session
	err := tx.getJSON(sessionPrefix+hash, &s)
	if err != nil && err != ErrNotFound {
		return err
	}
	if err == nil {
		if err := tx.delete(userSessionPrefix + s.User + "/" + hash); err != nil {
			return err
		}
	}
	if err := tx.DeleteSessionTokens(hash); err != nil {
		return err
	}
	return tx.delete(sessionPrefix + hash)
}

// DeleteUserSessions revokes all sessions of a user, with their OAuth tokens.
func (tx *Txn) DeleteUserSessions(user string) error {
	var hashes []string
	err := tx.scan(userSessionPrefix+user+"/", "", false, func(key string, _ []byte) (bool, error) {
		hashes = append(hashes, key[strings.LastIndexByte(key, '/')+1:])
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, h := range hashes {
		if err := tx.DeleteSession(h); err != nil {
			return err
		}
	}
	return nil
}

// Group returns a group, or ErrNotFound.
func (tx *Txn) Group(name string) (*Group, error) {
	var g Group
	if err := tx.getJSON(groupPrefix+name, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// PutGroup creates or replaces a group. Membership is also recorded on each user: callers that change
// Users update the users' Groups in the same transaction (see SetGroupMembers).
func (tx *Txn) PutGroup(g *Group) error {
	if g.Properties == nil {
		g.Properties = map[string]any{}
	}
	if g.Users == nil {
		g.Users = []string{}
	}
	return tx.putJSON(groupPrefix+g.Name, g, 0)
}

// SetGroupMembers replaces a group's members, updating both sides; unknown users → ErrNotFound.
func (tx *Txn) SetGroupMembers(g *Group, users []string) error {
	keep := make(map[string]struct{}, len(users)) // a class-sized group is thousands of members
	for _, name := range users {
		keep[name] = struct{}{}
	}
	for _, name := range g.Users {
		if _, ok := keep[name]; ok {
			continue
		}
		u, err := tx.User(name)
		if err == ErrNotFound {
			continue
		} else if err != nil {
			return err
		}
		u.Groups = without(u.Groups, g.Name)
		if err := tx.PutUser(u); err != nil {
			return err
		}
	}
	for _, name := range users {
		u, err := tx.User(name)
		if err != nil {
			return fmt.Errorf("user %s: %w", name, err)
		}
		if !slices.Contains(u.Groups, g.Name) {
			u.Groups = append(u.Groups, g.Name)
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
	}
	g.Users = append([]string{}, users...)
	return tx.PutGroup(g)
}

// DeleteGroup removes a group and its memberships.
func (tx *Txn) DeleteGroup(name string) error {
	g, err := tx.Group(name)
	if err != nil {
		return err
	}
	if err := tx.SetGroupMembers(g, nil); err != nil {
		return err
	}
	if err := tx.DeleteRecipientShares(GroupRecipient(name)); err != nil {
		return err
	}
	return tx.delete(groupPrefix + name)
}

// Groups returns up to limit groups in name order after offset (limit ≤ 0: all).
func (tx *Txn) Groups(offset, limit int) ([]*Group, error) {
	var out []*Group
	i := 0
	err := tx.scan(groupPrefix, "", true, func(key string, val []byte) (bool, error) {
		if i++; i <= offset {
			return true, nil
		}
		var g Group
		if err := json.Unmarshal(val, &g); err != nil {
			return false, fmt.Errorf("decoding %s: %w", key, err)
		}
		out = append(out, &g)
		return limit <= 0 || len(out) < limit, nil
	})
	return out, err
}

func without(list []string, s string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(x string) bool { return x == s })
}
