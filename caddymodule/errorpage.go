package caddymodule

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"
)

// serveError answers a request the edge cannot proxy in proxy_only mode,
// the way configurable-http-proxy does (its handleProxyError): with an error
// target, GET <error_target>/<code>?url=<request URL> and relay that body
// (Content-Type and Content-Encoding kept) with our status code; if that
// fails, the bare status text. Without one, a small built-in page.
func (h *Handler) serveError(w http.ResponseWriter, r *http.Request, status int) {
	target := h.app.ErrorTarget()
	if target == "" {
		h.serveBuiltinError(w, r, status)
		return
	}
	if !strings.HasSuffix(target, "/") {
		target += "/"
	}
	errURL := fmt.Sprintf("%s%d?%s", target, status, url.Values{"url": {r.URL.RequestURI()}}.Encode())
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, errURL, nil)
	if err == nil {
		var resp *http.Response
		resp, err = h.errors.Do(req)
		if err == nil {
			defer resp.Body.Close()
			for _, k := range []string{"Content-Type", "Content-Encoding"} {
				if v := resp.Header.Get(k); v != "" {
					w.Header().Set(k, v)
				}
			}
			w.WriteHeader(status)
			_, _ = io.Copy(w, resp.Body)
			return
		}
	}
	h.logger.Error("getting custom error page", zap.String("error_target", target), zap.Error(err))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, http.StatusText(status))
}

func (h *Handler) serveBuiltinError(w http.ResponseWriter, r *http.Request, status int) {
	var msg string
	switch status {
	case http.StatusNotFound:
		msg = "No server is routed at this address."
	case http.StatusServiceUnavailable:
		msg = "The server for this address is not answering. It may have stopped; try restarting it from the hub."
	default:
		msg = "The request could not be proxied."
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>%d %s</title></head>
<body><h1>%d %s</h1><p>%s</p><p><code>%s</code></p></body></html>
`, status, http.StatusText(status), status, http.StatusText(status), msg, html.EscapeString(r.URL.Path))
}
