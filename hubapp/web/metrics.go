package web

// Prometheus metrics at /hub/metrics (docs/protocols.md, "Pages"): JupyterHub's metric names, plus
// CaddyHub's own (route table size, route-add latency, store size). They live in the config's
// registry (caddy.Context.GetMetricsRegistry), so Caddy's own metrics endpoint shows them too.

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/caddyhub/caddyhub/caddymodule"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// hubMetrics are one config generation's collectors.
type hubMetrics struct {
	reg        *prometheus.Registry
	collectors []prometheus.Collector

	requestDuration *prometheus.HistogramVec
	checkRoutes     prometheus.Histogram
	proxyAdd        *prometheus.HistogramVec
	routeAdd        prometheus.Histogram
	spawnDuration   *prometheus.HistogramVec
	stopDuration    *prometheus.HistogramVec

	activeMu    sync.Mutex
	activeAt    time.Time
	activeCount map[string]float64
}

func newHubMetrics(h *Hub) *hubMetrics {
	m := &hubMetrics{reg: h.deps.Ctx.GetMetricsRegistry()}
	if m.reg == nil {
		m.reg = prometheus.NewRegistry()
	}
	m.requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "jupyterhub_request_duration_seconds", Help: "request duration for all HTTP requests",
		Buckets: prometheus.DefBuckets,
	}, []string{"method", "handler", "code"})
	m.checkRoutes = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "jupyterhub_check_routes_duration_seconds", Help: "Time taken to validate all routes in proxy",
	})
	m.proxyAdd = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "jupyterhub_proxy_add_duration_seconds", Help: "duration for adding user routes to proxy",
	}, []string{"status"})
	m.routeAdd = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "caddyhub_route_add_duration_seconds", Help: "time to add a route to the route table, persistence included",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	})
	m.spawnDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "jupyterhub_server_spawn_duration_seconds", Help: "time taken for server spawning operation",
		Buckets: []float64{0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 180, 300, 600},
	}, []string{"status"})
	m.stopDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "jupyterhub_server_stop_seconds", Help: "time taken for server stopping operation",
	}, []string{"status"})
	count := func(fn func(tx *store.Txn) (int, error)) func() float64 {
		return func() float64 {
			var n int
			_ = h.store.View(func(tx *store.Txn) error {
				var err error
				n, err = fn(tx)
				return err
			})
			return float64(n)
		}
	}
	totalUsers := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "jupyterhub_total_users", Help: "total number of users"},
		count(func(tx *store.Txn) (int, error) { return tx.CountUsers() }))
	running := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "jupyterhub_running_servers", Help: "the number of user servers currently running"},
		count(func(tx *store.Txn) (int, error) { return tx.CountActiveServers() }))
	routes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "caddyhub_routes", Help: "number of routes in the route table"},
		func() float64 { return float64(h.table.Len()) })
	websockets := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "caddyhub_websockets_open", Help: "upgraded connections (websockets) the edge is proxying now"},
		func() float64 { return float64(caddymodule.OpenWebsockets()) })
	storeSize := &storeSizeCollector{h: h, desc: prometheus.NewDesc("caddyhub_store_size_bytes", "on-disk size of the hub database", []string{"part"}, nil)}
	active := &activeUsersCollector{m: m, h: h, desc: prometheus.NewDesc("jupyterhub_active_users", "number of users who were active in the given time period", []string{"period"}, nil)}
	m.collectors = []prometheus.Collector{m.requestDuration, m.checkRoutes, m.proxyAdd, m.routeAdd, m.spawnDuration, m.stopDuration, totalUsers, running, routes, websockets, storeSize, active}
	return m
}

// register adds the collectors to the registry; collectors already registered are left as they are.
func (m *hubMetrics) register(h *Hub) {
	for _, c := range m.collectors {
		_ = m.reg.Register(c)
	}
}

func (m *hubMetrics) unregister() {
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

func (m *hubMetrics) serve(w http.ResponseWriter, r *http.Request) {
	if m == nil {
		apiError(w, http.StatusServiceUnavailable, "the hub is stopping")
		return
	}
	promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// observeRequest records an API request under its route pattern (never the raw path: names would
// explode the label space).
func (m *hubMetrics) observeRequest(r *http.Request, code int, d time.Duration) {
	handler := r.Pattern
	if _, p, ok := strings.Cut(handler, " "); ok {
		handler = p
	}
	m.requestDuration.WithLabelValues(r.Method, handler, strconv.Itoa(code)).Observe(d.Seconds())
}

func (m *hubMetrics) observeCheckRoutes(d time.Duration) {
	if m != nil {
		m.checkRoutes.Observe(d.Seconds())
	}
}

func (m *hubMetrics) observeRouteAdd(d time.Duration) {
	if m == nil {
		return
	}
	m.routeAdd.Observe(d.Seconds())
	m.proxyAdd.WithLabelValues("success").Observe(d.Seconds())
}

type storeSizeCollector struct {
	h    *Hub
	desc *prometheus.Desc
}

func (c *storeSizeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *storeSizeCollector) Collect(ch chan<- prometheus.Metric) {
	lsm, vlog := c.h.store.Size()
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(lsm), "lsm")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(vlog), "vlog")
}

// activeUsersCollector counts users active in the last 24h, 7d and 30d. It reads every user, so
// the result is kept for a minute.
type activeUsersCollector struct {
	m    *hubMetrics
	h    *Hub
	desc *prometheus.Desc
}

func (c *activeUsersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *activeUsersCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	m.activeMu.Lock()
	if time.Since(m.activeAt) > time.Minute || m.activeCount == nil {
		now := time.Now()
		counts := map[string]float64{"24h": 0, "7d": 0, "30d": 0}
		_ = c.h.store.View(func(tx *store.Txn) error {
			users, err := tx.Users(0, 0)
			for _, u := range users {
				age := now.Sub(c.h.userActivity(tx, u))
				if age <= 24*time.Hour {
					counts["24h"]++
				}
				if age <= 7*24*time.Hour {
					counts["7d"]++
				}
				if age <= 30*24*time.Hour {
					counts["30d"]++
				}
			}
			return err
		})
		m.activeCount, m.activeAt = counts, now
	}
	counts := m.activeCount
	m.activeMu.Unlock()
	for _, p := range []string{"24h", "7d", "30d"} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, counts[p], p)
	}
}

// Hooks for the spawn engine (package servers, through spawn.go): the metrics JupyterHub records around spawns, stops and
// route additions. Safe to call on a stopped generation.

// observeSpawn records a finished spawn; status is "success", "failure", "timeout" or "throttled".
func (h *Hub) observeSpawn(status string, d time.Duration) {
	if m := h.apiState().metrics; m != nil {
		m.spawnDuration.WithLabelValues(status).Observe(d.Seconds())
	}
}

// observeStop records a finished stop; status is "success" or "failure".
func (h *Hub) observeStop(status string, d time.Duration) {
	if m := h.apiState().metrics; m != nil {
		m.stopDuration.WithLabelValues(status).Observe(d.Seconds())
	}
}

// observeRouteAdd records how long adding a route took (persistence included).
func (h *Hub) observeRouteAdd(d time.Duration) { h.apiState().metrics.observeRouteAdd(d) }
