package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
//		dial_timeout            <duration>
//		stream_close_delay      <duration>
//		flush_interval          <duration>|-1
//		max_idle_conns_per_host <n>
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
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

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
