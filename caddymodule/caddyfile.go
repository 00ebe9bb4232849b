package caddymodule

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("jupyterhub", parseCaddyfile)
	// Before respond, so that a site may still answer some paths itself.
	httpcaddyfile.RegisterDirectiveOrder("jupyterhub", httpcaddyfile.Before, "respond")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	jupyterhub {
//		dial_timeout             <duration>
//		stream_close_delay       <duration>
//		flush_interval           <duration>|-1
//		max_idle_conns_per_host  <n>
//		tls_trusted_ca_certs     <pem_files...>
//		tls_client_auth          <cert_file> <key_file>
//		tls_server_name          <name>
//		tls_insecure_skip_verify
//	}
//
// The tls_* options apply to https targets only.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		if strings.HasPrefix(opt, "tls_") {
			if err := h.unmarshalTLSOption(d, opt); err != nil {
				return err
			}
			continue
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		val := d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
		switch opt {
		case "dial_timeout", "stream_close_delay", "flush_interval":
			dur, err := caddy.ParseDuration(val)
			if val == "-1" && opt == "flush_interval" {
				dur, err = -1, nil
			}
			if err != nil {
				return d.Errf("bad %s %q: %v", opt, val, err)
			}
			if dur < 0 && opt != "flush_interval" {
				return d.Errf("%s must not be negative", opt)
			}
			switch opt {
			case "dial_timeout":
				h.DialTimeout = caddy.Duration(dur)
			case "stream_close_delay":
				h.StreamCloseDelay = caddy.Duration(dur)
			default:
				h.FlushInterval = caddy.Duration(dur)
			}
		case "max_idle_conns_per_host":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return d.Errf("bad max_idle_conns_per_host %q: want a positive integer", val)
			}
			h.MaxIdleConnsPerHost = n
		default:
			return d.Errf("unknown jupyterhub option %q", opt)
		}
	}
	return nil
}

func (h *Handler) unmarshalTLSOption(d *caddyfile.Dispenser, opt string) error {
	if h.TLS == nil {
		h.TLS = new(reverseproxy.TLSConfig)
	}
	args := d.RemainingArgs()
	switch opt {
	case "tls_trusted_ca_certs":
		if len(args) == 0 {
			return d.ArgErr()
		}
		h.TLS.CARaw = caddyconfig.JSONModuleObject(map[string]any{"pem_files": args}, "provider", "file", nil)
	case "tls_client_auth":
		if len(args) != 2 {
			return d.ArgErr()
		}
		h.TLS.ClientCertificateFile, h.TLS.ClientCertificateKeyFile = args[0], args[1]
	case "tls_server_name":
		if len(args) != 1 {
			return d.ArgErr()
		}
		h.TLS.ServerName = args[0]
	case "tls_insecure_skip_verify":
		if len(args) != 0 {
			return d.ArgErr()
		}
		h.TLS.InsecureSkipVerify = true
	default:
		return d.Errf("unknown jupyterhub option %q", opt)
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
