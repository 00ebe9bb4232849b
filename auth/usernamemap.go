package auth

// username_map follows JupyterHub's normalize_username: the map is looked up once, for the name a
// person logs in with (lower-cased), and its value is the hub user's name. Chains are not followed:
// with a→b and b→c, logging in as "a" gives user "b" and logging in as "b" gives user "c". So
// Normalize is meant for login names (and for the names of config lists and of the REST API's bulk
// user creation, which JupyterHub normalizes the same way), never for a name that already is a
// user's: normalizing "b" again would turn person a's user into person b's. CheckUsername is the
// test for a name that must already be a user name; it holds for every result of Normalize.

// CheckUsername reports whether name can be a hub user's name as it stands: NormalizeUsername
// leaves it unchanged, it matches username_pattern, and it is not a login name that username_map
// sends elsewhere, unless it is also a name the map produces (a→b, b→c: "b" and "c" are user
// names, "a" is not). Errors wrap ErrInvalidUsername. Call Provision first.
func (o *Options) CheckUsername(name string) error {
	n, err := NormalizeUsername(name)
	if err != nil {
		return err
	}
	if n != name {
		return invalidUsername(name, "it is not in normal form (lower case, no surrounding space)")
	}
	if to, mapped := o.usernameMap[n]; mapped && to != n && !o.isMapTarget(n) {
		return invalidUsername(name, "username_map maps it to another name")
	}
	if o.pattern != nil && !o.pattern.MatchString(n) {
		return invalidUsername(n, "it does not match the username_pattern of this hub")
	}
	return nil
}

// isMapTarget reports whether name is a value of username_map.
func (o *Options) isMapTarget(name string) bool {
	for _, to := range o.usernameMap {
		if to == name {
			return true
		}
	}
	return false
}
