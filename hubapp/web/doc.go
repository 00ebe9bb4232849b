// Package web is the hub's HTTP layer: the pages and their templates, login (the password form and
// redirect logins), sessions, XSRF, the JupyterHub REST API, the OAuth provider single-user servers
// and services log in through, the progress stream and the metrics. A *Hub serves one config
// generation of the `jupyterhub` app (package hubapp), which builds it with New from its options
// (Config, embedded in the app) and its shared state (Deps). Servers are started and stopped through
// the spawn engine (package servers), whose refusals the hub turns into HTTP statuses.
package web
