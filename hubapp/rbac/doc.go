// Package rbac is CaddyHub's role-based access control engine: JupyterHub's
// scopes and roles (docs/protocols.md, "RBAC: scopes and roles") as a pure Go library.
//
// It sits between the store and the REST API in the hub's data flow:
// the store keeps users, groups, services, tokens and their role names; the
// hub app asks an [Engine] for the expanded scopes of the requesting owner
// ([Engine.OwnerScopes]) or token ([Engine.TokenScopes]), and every API
// handler checks the resulting [Set] with [Set.Authorize] (or [Set.Allows]),
// narrows listings with [Set.ListUsers] and friends, and trims JSON models
// with [Set.UserFields] and friends.
//
// Vocabulary, as in JupyterHub's scopes.py:
//
//   - a raw scope is what a role or a token lists: "servers", "self",
//     "read:users!group=staff", "users:activity!user" (a bare filter that
//     names the owner);
//   - expansion resolves metascopes (self), bare filters and sub-scopes into
//     a [Set] of expanded scopes, each either unfiltered or restricted to
//     users, servers, groups and services;
//   - a token never exceeds its owner: its effective scopes are the
//     intersection ([Intersect]) of its own expanded scopes with the owner's,
//     computed each time the token is used.
//
// The scope tree is JupyterHub 5.5's (with 6.0's start:servers); where 3.0
// and later versions differ, the later, narrower behaviour is kept (see the
// comments on [Registry.ExpandFor] and [Set.Authorize]).
package rbac
